"""A daemon thread in each `db_worker` process: reaps stale runs at start and then periodically,
and deletes expired rows of the database channel layer."""
from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

_started = threading.Event()


def sweep() -> None:
    from jobs.channel_layer import delete_expired
    from jobs.services import reap_stale_runs

    try:
        reap_stale_runs()
        delete_expired()
    except Exception:  # the database may be down for a moment; try again next time
        logger.exception("jobs janitor sweep failed")
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
