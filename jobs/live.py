"""Live run updates: the rendered status fragment, sent to the run's channel group.

Works from any process (web server, worker, management command) through the configured layer:
Redis with REDIS_URL, else the database layer. A failure to publish never fails the run.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from jobs.models import Run

logger = logging.getLogger(__name__)


def run_group(run: Run) -> str:
    return f"run-{run.public_id}"


def render_status(run: Run, *, oob: bool = False) -> str:
    """The status fragment outside any request (workers, engine subprocesses, the socket). Its
    forms post through htmx, which sends the page's CSRF token from `<body hx-headers>`; saying
    "NOTPROVIDED" keeps `{% csrf_token %}` quiet instead of warning into every run log."""
    return render_to_string("jobs/_run_status.html", {"run": run, "oob": oob, "csrf_token": "NOTPROVIDED"})


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


class Coalescer:
    """At most one send per group per `interval` seconds, and never a change left unannounced.

    The first event in a quiet period is sent at once; events during the following `interval` are
    folded into one send at its end (from a timer thread), so a burst of hundreds of rankings a second
    costs one message per interval, and the last state always reaches the page. Suits messages that
    say "something changed" (the receiver reads the current state), not ones that carry a delta.
    """

    def __init__(self, send: Callable[[str, dict[str, Any]], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._due: set[str] = set()

    def __call__(self, group: str, message: dict[str, Any], *, interval: float, in_thread: bool = False) -> None:
        """`in_thread`: a send due now also runs in a thread of its own (callers on an event loop)."""
        now = time.monotonic()
        with self._lock:
            if group in self._due:
                return  # a send is already scheduled and will report this change too
            wait = self._last.get(group, float("-inf")) + interval - now
            send_here = wait <= 0 and not in_thread
            if send_here:
                self._last[group] = now
            else:
                self._due.add(group)
        if send_here:
            self._send(group, message)
            return
        timer = threading.Timer(max(wait, 0.0), self._fire, (group, message))
        timer.daemon = True
        timer.start()

    def _fire(self, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            self._due.discard(group)
            self._last[group] = time.monotonic()
        try:
            self._send(group, message)
        except Exception:  # nobody is left to tell in a timer thread
            logger.exception("could not publish to channel group %s", group)
        finally:
            connections.close_all()  # the timer thread's own connections


_coalesced = Coalescer(send_to_group)


def send_coalesced(group: str, message: dict[str, Any], *, interval: float, in_thread: bool = False) -> None:
    """`send_to_group`, coalesced per group to one send per `interval` seconds (0: every time).
    `in_thread`: never send in the caller's thread (an event loop's)."""
    if interval <= 0 and not in_thread:
        send_to_group(group, message)
    else:
        _coalesced(group, message, interval=max(interval, 0.0), in_thread=in_thread)


def progress_key(run: Run) -> tuple[int, str, int]:
    """(attempt, status, progress done): within one attempt and state, progress only grows, so a
    frame with a smaller key than one already shown was read before it (jobs.consumers)."""
    return run.attempts, run.status, run.progress_done


def publish(run: Run) -> None:
    """Send the run's status as stored NOW: the row is re-read, so whichever process publishes
    (the worker, an engine subprocess) shows the one current state, never its own stale copy.
    The event carries the state's `progress_key`: when two processes publish at once, the one
    that read first may send last, and the page's consumer drops that copy."""
    from jobs.models import Run as RunModel

    try:
        fresh = RunModel.objects.select_related("project", "owner").filter(pk=run.pk).first()
    except Exception:  # a database hiccup must never fail the run; skip this update
        logger.exception("could not read run %s to publish it", run.pk)
        return
    if fresh is None:
        return
    try:
        html = render_status(fresh, oob=True)
    except Exception:  # a broken template must never fail the run itself
        logger.exception("could not render progress of run %s", run.pk)
        return
    send_to_group(run_group(fresh), {"type": "run.progress", "html": html, "key": list(progress_key(fresh))})
