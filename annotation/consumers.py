"""Websocket consumers of the annotation app.

`ProjectProgressConsumer` serves the researcher's project page: it lets in only researchers of the
project, joins the project's group (`annotation.live.project_group`) and answers every
`project.progress` event with the freshly rendered `_progress.html` fragment, which htmx's ws
extension swaps in by its id. It holds no business logic.
"""
from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from annotation.live import project_group
from annotation.models import Project
from annotation.views.projects import render_progress, researcher_project

# Close code for "not allowed" (4000-4999 are free for applications); sent before accepting.
CLOSE_FORBIDDEN = 4403


class ProjectProgressConsumer(AsyncWebsocketConsumer):
    project: Project | None = None
    group: str | None = None

    async def connect(self) -> None:
        public_id = self.scope["url_route"]["kwargs"]["public_id"]
        self.project = await database_sync_to_async(researcher_project)(self.scope.get("user"), public_id)
        if self.project is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = project_group(self.project)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # A (re)connected page may have missed events: start from the current state.
        await self._send_progress()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def project_progress(self, event: dict[str, Any]) -> None:
        await self._send_progress()

    async def _send_progress(self) -> None:
        if self.project is None:
            return
        html = await database_sync_to_async(render_progress)(self.project)
        await self.send(text_data=html)
