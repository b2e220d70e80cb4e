"""Run workflows: start (validated, queued on commit), cancel, resume, reap stale runs.

Who may see and act on a run: its owner, and the researchers of its project. Everyone else gets
404 (`visible_runs` is the one scope every view, API and consumer goes through).
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from jobs import live, registry
from jobs.models import Run

logger = logging.getLogger(__name__)


class RunError(ValueError):
    """A run cannot be started or changed as asked; the message says why."""


# ---------------------------------------------------------------- scope


def visible_runs(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Run]:
    if not user.is_authenticated:
        return Run.objects.none()
    researcher = Q(project__memberships__user=user, project__memberships__role="researcher")
    # Membership joins may repeat a run; filtering ids through a subquery keeps rows unique.
    ids = Run.objects.filter(Q(owner=user) | researcher).values("id")
    return Run.objects.filter(id__in=ids)


# ---------------------------------------------------------------- start


def clean_config(kind: str, config: Any) -> dict[str, Any]:
    """The config as the kind's validator cleans it; RunError naming the problem otherwise."""
    try:
        spec = registry.get_kind(kind)
    except registry.UnknownKind as exc:
        raise RunError(str(exc)) from None
    if not isinstance(config, dict):
        raise RunError(f"config of a {kind} run must be a JSON object, got {type(config).__name__}")
    try:
        # JSON parsers read 1e999 as infinity, which no validator expects and PostgreSQL's jsonb refuses.
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RunError(f"config of a {kind} run is not plain JSON (a number too large, or not a number): {exc}") from None
    if spec.validate is not None:
        try:
            config = spec.validate(config)
        except (ValueError, TypeError, KeyError, OSError) as exc:  # OSError: a path the filesystem cannot hold
            raise RunError(f"invalid config for a {kind} run: {exc}") from None
        except ValidationError as exc:
            raise RunError(f"invalid config for a {kind} run: {'; '.join(exc.messages)}") from None
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise RunError(f"config of a {kind} run is not JSON-serialisable: {exc}") from None
    return config


@transaction.atomic
def start_run(
    kind: str,
    owner: AbstractBaseUser,
    project: Any | None = None,
    config: dict[str, Any] | None = None,
    *,
    name: str = "",
) -> Run:
    """Validate the config, store a queued run and enqueue it once the transaction commits."""
    cleaned = clean_config(kind, {} if config is None else config)
    queue = registry.get_kind(kind).queue
    if queue not in settings.TASKS["default"].get("QUEUES", [queue]):
        raise RunError(f"run kind {kind!r} asks for queue {queue!r}, which TASKS does not define")
    run = Run.objects.create(kind=kind, owner=owner, project=project, config=cleaned, name=name, queue=queue)
    _enqueue_on_commit(run)
    return run


def _enqueue_on_commit(run: Run) -> None:
    transaction.on_commit(lambda: enqueue(run.pk))


def enqueue(run_id: int) -> None:
    """Hand run `run_id` to the Tasks API; a run that cannot be queued is marked failed."""
    from jobs.tasks import execute_run

    run = Run.objects.get(pk=run_id)
    try:
        result = execute_run.using(queue_name=run.queue).enqueue(run.pk)
    except Exception as exc:
        logger.exception("could not queue run %s", run.pk)
        Run.objects.filter(pk=run.pk).update(
            status=Run.Status.FAILED, finished_at=timezone.now(), error=f"could not queue the run: {exc}"
        )
        return
    Run.objects.filter(pk=run.pk).update(task_id=str(result.id))


# ---------------------------------------------------------------- cancel and resume


@transaction.atomic
def cancel_run(run: Run, user: AbstractBaseUser | None = None) -> Run:
    """Ask the run to stop. A run not yet executing (queued, interrupted) is cancelled at once;
    a running one stops at its handler's next `check_cancelled()` (within a heartbeat)."""
    if run.is_final:
        raise RunError(f"run {run.public_id} is already {run.status}; there is nothing to cancel")
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    Run.objects.filter(pk=run.pk, status__in=[Run.Status.QUEUED, Run.Status.INTERRUPTED]).update(
        status=Run.Status.CANCELLED, finished_at=now
    )
    run.refresh_from_db()
    logger.info("run %s: cancel requested by %s", run.pk, user)
    transaction.on_commit(lambda: live.publish(run))
    return run


@transaction.atomic
def resume_run(run: Run, user: AbstractBaseUser | None = None) -> Run:
    """Queue a stopped run again; its handler skips the work it already stored."""
    updated = Run.objects.filter(pk=run.pk, status__in=Run.RESUMABLE).update(
        status=Run.Status.QUEUED, cancel_requested=False, finished_at=None, error=""
    )
    if not updated:
        run.refresh_from_db()
        raise RunError(f"run {run.public_id} is {run.status}; only a stopped run can be resumed")
    run.refresh_from_db()
    logger.info("run %s: resumed by %s", run.pk, user)
    _enqueue_on_commit(run)
    transaction.on_commit(lambda: live.publish(run))
    return run


# ---------------------------------------------------------------- reaping


def reap_stale_runs(*, stale_seconds: float | None = None) -> list[Run]:
    """Mark running runs whose worker stopped heartbeating as interrupted; returns them."""
    if stale_seconds is None:
        stale_seconds = settings.JOBS_STALE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    stale = Run.objects.filter(status=Run.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    reaped = []
    for run in stale:
        note = (
            f"worker {run.worker_id or '?'} stopped heartbeating "
            f"(last beat {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); run interrupted\n"
            if run.heartbeat_at
            else "run interrupted: no heartbeat\n"
        )
        # Conditional on the old heartbeat: a worker that beat meanwhile keeps its run.
        done = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING, heartbeat_at=run.heartbeat_at).update(
            status=Run.Status.INTERRUPTED, finished_at=timezone.now(), log=(run.log + note)[-20_000:]
        )
        if done:
            run.refresh_from_db()
            reaped.append(run)
            live.publish(run)
    if reaped:
        logger.warning("interrupted %d stale run(s): %s", len(reaped), [r.pk for r in reaped])
    return reaped
