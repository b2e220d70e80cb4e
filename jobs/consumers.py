"""Websocket of a run's page: forwards the run's rendered status fragment as it changes.

Two publishers (the worker and an engine subprocess) each read the run's row, then send: one that
reads before the other's update and sends after it delivers a stale copy. The consumer drops a
copy that shows less progress than one it already sent in the same attempt and state, so the page
never steps back ("2 / 12", then "0 / 12").
"""
from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from jobs import live
from jobs.models import Run
from jobs.services import visible_runs


@database_sync_to_async
def _visible_run(user: Any, public_id: Any) -> tuple[Run, str] | None:
    run = visible_runs(user).filter(public_id=public_id).select_related("project").first()
    if run is None:
        return None
    return run, live.render_status(run, oob=True)


class RunConsumer(AsyncWebsocketConsumer):
    """Only the run's owner and its project's researchers connect; anyone else is refused."""

    group: str | None = None
    shown: tuple[int, str, int] | None = None  # (attempt, status, progress done) of the last frame sent

    async def connect(self) -> None:
        found = await _visible_run(self.scope.get("user"), self.scope["url_route"]["kwargs"]["public_id"])
        if found is None:
            await self.close()
            return
        run, html = found
        self.group, self.shown = live.run_group(run), live.progress_key(run)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=html)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_progress(self, event: dict[str, Any]) -> None:
        key = tuple(event["key"]) if event.get("key") else None
        if key is not None and self.shown is not None and key[:2] == self.shown[:2] and key[2] < self.shown[2]:
            return  # a stale copy (see the module docstring)
        self.shown = key or self.shown  # type: ignore[assignment]
        await self.send(text_data=event["html"])
