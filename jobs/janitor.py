"""A daemon thread in each `db_worker` process: reaps stale runs at start and then periodically,
deletes expired rows of the database channel layer, and runs the housekeeping other apps register
(`register_sweep`: the annotation app closes leases whose time ran out)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

_started = threading.Event()
_sweeps: list[Callable[[], object]] = []


def register_sweep(function: Callable[[], object]) -> None:
    """Run `function` on every sweep (apps register from AppConfig.ready; jobs imports no app)."""
    if function not in _sweeps:
        _sweeps.append(function)


def sweep() -> None:
    from jobs.channel_layer import delete_expired
    from jobs.services import reap_stale_runs

    try:
        for function in (reap_stale_runs, delete_expired, *_sweeps):
            try:
                function()
            except Exception:  # the database may be down for a moment; try again next time
                logger.exception("jobs janitor: %s failed", getattr(function, "__name__", function))
    finally:
        connection.close()


def _loop(interval: float) -> None:
    from django.apps import apps

    # Started from AppConfig.ready(): the first sweep waits until every app is loaded, or Django
    # warns about database access during app initialisation (and the models may not be ready).
    while not apps.ready:
        threading.Event().wait(0.05)
    while True:
        sweep()
        threading.Event().wait(interval)


def start_janitor() -> None:
    if _started.is_set():
        return
    _started.set()
    interval = max(1.0, settings.JOBS_STALE_SECONDS / 2)
    threading.Thread(target=_loop, args=(interval,), name="jobs-janitor", daemon=True).start()
