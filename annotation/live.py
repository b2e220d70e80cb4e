"""Live updates for the researcher's project page, sent through the Channels layer.

The layer is Redis with REDIS_URL, else the database-backed layer, so the web server and every
worker process reach the same group. A failure to publish never fails the submission itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.live import send_to_group

if TYPE_CHECKING:
    from annotation.models import Project, Ranking


def project_group(project: Project) -> str:
    return f"project-{project.public_id}"


def ranking_stored(ranking: Ranking) -> None:
    send_to_group(project_group(ranking.item.project), {"type": "project.progress"})
