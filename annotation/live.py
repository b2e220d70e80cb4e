"""Live updates for the researcher's project page, sent through the Channels layer.

The layer is Redis with REDIS_URL, else the database-backed layer, so the web server and every
worker process reach the same group. A failure to publish never fails the submission itself.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

if TYPE_CHECKING:
    from annotation.models import Project, Ranking

logger = logging.getLogger(__name__)


def project_group(project: Project) -> str:
    return f"project-{project.public_id}"


def ranking_stored(ranking: Ranking) -> None:
    project = ranking.item.project
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        send = getattr(layer, "group_send_blocking", None) or async_to_sync(layer.group_send)
        send(project_group(project), {"type": "project.progress"})
    except Exception:  # a dead channel layer must never lose a stored ranking
        logger.exception("could not publish progress for project %s", project.pk)
