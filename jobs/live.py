"""Live run updates: the rendered status fragment, sent to the run's channel group.

Works from any process (web server, worker, management command) through the configured layer:
Redis with REDIS_URL, else the database layer. A failure to publish never fails the run.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from jobs.models import Run

logger = logging.getLogger(__name__)


def run_group(run: Run) -> str:
    return f"run-{run.public_id}"


def render_status(run: Run, *, oob: bool = False) -> str:
    return render_to_string("jobs/_run_status.html", {"run": run, "oob": oob})


def publish(run: Run) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        html = render_status(run, oob=True)
        async_to_sync(layer.group_send)(run_group(run), {"type": "run.progress", "html": html})
    except Exception:  # a dead channel layer must never fail the run itself
        logger.exception("could not publish progress of run %s", run.pk)
