"""Live run updates: the rendered status fragment, sent to the run's channel group.

Works from any process (web server, worker, management command) through the configured layer:
Redis with REDIS_URL, else the database layer. A failure to publish never fails the run.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

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


def send_to_group(group: str, message: dict[str, Any]) -> None:
    """Send `message` to a channel group from synchronous code; never raises.

    The database layer is written to directly (no event-loop round trip); other layers through
    async_to_sync. A publisher's own work (a stored ranking, a run) must never fail because the
    live-update path is down, so errors are logged and swallowed here.
    """
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        send = getattr(layer, "group_send_blocking", None) or async_to_sync(layer.group_send)
        send(group, message)
    except Exception:
        logger.exception("could not publish to channel group %s", group)


def publish(run: Run) -> None:
    try:
        html = render_status(run, oob=True)
    except Exception:  # a broken template must never fail the run itself
        logger.exception("could not render progress of run %s", run.pk)
        return
    send_to_group(run_group(run), {"type": "run.progress", "html": html})
