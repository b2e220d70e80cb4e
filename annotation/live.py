"""Live updates for the researcher's project page, sent through the Channels layer.

The layer is Redis with REDIS_URL, else the database-backed layer, so the web server and every
worker process reach the same group. A failure to publish never fails the submission itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from jobs.live import send_coalesced

if TYPE_CHECKING:
    from annotation.models import Project, Ranking


def project_group(project: Project) -> str:
    return f"project-{project.public_id}"


def ranking_stored(ranking: Ranking) -> None:
    project_progress_changed(ranking.item.project)


def project_progress_changed(project: Project, *, in_thread: bool = False) -> None:
    """Tell the project's open pages that progress moved; they read the current numbers themselves.

    Coalesced (settings.LIVE_PROGRESS_INTERVAL): at hundreds of rankings a second a page needs one
    update per interval, not one per ranking, and each send costs the submitting request a write.
    `in_thread`: the caller is an event loop, so a send never runs in the caller's thread.
    """
    interval = getattr(settings, "LIVE_PROGRESS_INTERVAL", 0.5)
    send_coalesced(project_group(project), {"type": "project.progress"}, interval=interval, in_thread=in_thread)
