"""Executing one run inside a worker: the handler's context, heartbeats and the final state.

`execute(run_id, worker_id=...)` claims a queued or interrupted run, starts a heartbeat thread,
calls the kind's handler with a `RunContext`, and ALWAYS writes a final state: succeeded, failed
(with the log tail in `error`) or cancelled. A worker killed mid-run leaves the run `running`
with a heartbeat that stops; `jobs.services.reap_stale_runs` turns it into `interrupted`.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from jobs import live, registry
from jobs.models import LOG_TAIL_CHARS, Run
from jobs.subprocesses import SubprocessFailed, run_subprocess

logger = logging.getLogger(__name__)

# At most this many live updates per second reach the browser; the last one always does.
PUBLISH_INTERVAL = 0.25
LOG_FLUSH_INTERVAL = 0.5
CANCEL_POLL = 0.5

__all__ = ["CAUSE_PREFIX", "Cancelled", "RunContext", "RunFailure", "SubprocessFailed", "execute"]

# A child process names why it failed in one output line starting with this (see `cause_line`);
# the worker puts that line above the log tail in the run's error.
CAUSE_PREFIX = "run failed: "


class Cancelled(Exception):
    """The run was asked to stop; raised by `RunContext.check_cancelled`."""


class RunFailure(Exception):
    """A failure whose message is already the readable, one-line cause (no type name needed)."""


def cause_line(exc: BaseException) -> str:
    """One readable line saying why a run failed: the message's first line, with the exception
    type unless the exception is a `RunFailure` (or a child's failure, which carries its cause)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if isinstance(exc, RunFailure | SubprocessFailed) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# An engine child's exit status when it stopped because its run was cancelled.
CANCELLED_EXIT = 3
ENGINE_LIBRARIES = ("transformers", "huggingface_hub", "accelerate", "torch", "vllm")


def quiet_engine_libraries() -> None:
    """Errors only from the engine libraries (transformers, huggingface_hub, vLLM ...), no
    progress bars, no Python warnings from them (they were landing in every run log as
    "template" and generation-flag noise, and as weight-loading bars), and no line per HTTP
    request from httpx."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # vLLM sets its logger's level from this on import
    for name in ENGINE_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=rf"{name}(\.|$)")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def engine_child(work: Callable[[], None]) -> None:
    """The body of an engine subprocess (`manage.py synthetic_engine`, `evaluation_engine`): the
    libraries quietened, then `work`; exit CANCELLED_EXIT when the run was cancelled, and on any
    failure the traceback and one `run failed: <cause>` line (which the worker puts first in the
    failed run's error), exit 1."""
    quiet_engine_libraries()
    try:
        work()
    except Cancelled:
        raise SystemExit(CANCELLED_EXIT) from None
    except Exception as exc:
        traceback.print_exc(file=sys.stdout)
        sys.stdout.write(f"{CAUSE_PREFIX}{cause_line(exc)}\n")
        sys.stdout.flush()
        raise SystemExit(1) from None


class RunContext:
    """What a handler may do to its run: report progress, log, add artifacts, stop when asked."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._cancel = threading.Event()
        self._log_tail = run.log
        self._log_dirty = False
        self._last_log_flush = 0.0
        self._last_publish = 0.0
        self._last_cancel_check = 0.0
        Path(run.log_path).parent.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- for handlers

    def progress(self, done: int, total: int | None = None) -> None:
        fields = {"progress_done": done}
        if total is not None:
            fields["progress_total"] = total
        Run.objects.filter(pk=self.run.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.run, name, value)
        self._publish()

    def log(self, message: str) -> None:
        text = message if message.endswith("\n") else message + "\n"
        with open(self.run.log_path, "a", encoding="utf-8") as fh:
            fh.write(text)
        self._log_tail = (self._log_tail + text)[-LOG_TAIL_CHARS:]
        self._log_dirty = True
        if time.monotonic() - self._last_log_flush >= LOG_FLUSH_INTERVAL:
            self.flush_log()

    def artifact(self, path: str | os.PathLike[str]) -> None:
        path = str(path)
        if path not in self.run.artifacts:
            self.run.artifacts = [*self.run.artifacts, path]
            Run.objects.filter(pk=self.run.pk).update(artifacts=self.run.artifacts)
            self._publish(force=True)

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled("cancel requested")

    @property
    def cancelled(self) -> bool:
        """True once a cancel was requested; looks at the database at most every CANCEL_POLL s."""
        if not self._cancel.is_set() and time.monotonic() - self._last_cancel_check >= CANCEL_POLL:
            self._last_cancel_check = time.monotonic()
            if Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
                self._cancel.set()
        return self._cancel.is_set()

    def run_subprocess(
        self, argv: Sequence[str], *, cwd: str | None = None, env: dict[str, str] | None = None
    ) -> int:
        """Run `argv`, streaming its output into the log; stop it when the run is cancelled.

        Raises `SubprocessFailed` when the child exits non-zero (a crash of the child, CUDA
        included, ends the run as failed but leaves the worker alive) and `Cancelled` when the
        run was cancelled while the child ran.
        """
        self.log(f"$ {' '.join(argv)}")
        causes: list[str] = []

        def on_line(line: str) -> None:
            if line.startswith(CAUSE_PREFIX):
                causes.append(line[len(CAUSE_PREFIX) :].strip())
            self.log(line)

        code = run_subprocess(argv, on_line=on_line, should_stop=lambda: self.cancelled, cwd=cwd, env=env)
        self.flush_log()
        if self.cancelled:
            raise Cancelled("cancel requested while the subprocess ran")
        if code != 0:
            cause = causes[-1] if causes else "no cause reported"
            raise SubprocessFailed(f"{cause} ({Path(argv[0]).name} exited with code {code})")
        return code

    # ---------------------------------------------------------------- for the runner

    def flush_log(self) -> None:
        if self._log_dirty:
            Run.objects.filter(pk=self.run.pk).update(log=self._log_tail)
            self.run.log = self._log_tail
            self._log_dirty = False
            self._publish(force=True)
        self._last_log_flush = time.monotonic()

    def _publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_publish >= PUBLISH_INTERVAL:
            self._last_publish = now
            live.publish(self.run)


class _Heartbeat(threading.Thread):
    """Stamps heartbeat_at every few seconds, on its own connection, whatever the handler is doing."""

    def __init__(self, ctx: RunContext, interval: float) -> None:
        super().__init__(name=f"heartbeat-{ctx.run.pk}", daemon=True)
        self.ctx, self.interval = ctx, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            Run.objects.filter(pk=self.ctx.run.pk).update(heartbeat_at=timezone.now())
        except Exception:  # a missed beat is harmless; a dead heartbeat thread is not
            logger.exception("heartbeat of run %s failed", self.ctx.run.pk)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(run_id: int, *, worker_id: str = "") -> Run:
    """Run the handler of run `run_id` to a final state; returns the run as stored."""
    run = _claim(run_id, worker_id or worker_identity())
    if run is None:
        return Run.objects.get(pk=run_id)
    ctx = RunContext(run)
    live.publish(run)
    heartbeat = _Heartbeat(ctx, float(getattr(settings, "JOBS_HEARTBEAT_SECONDS", 5)))
    heartbeat.start()
    try:
        registry.get_kind(run.kind).handler(run, ctx)
    except Cancelled:
        _finish(ctx, Run.Status.CANCELLED)
    except BaseException as exc:
        ctx.log(_describe(exc))
        _finish(ctx, Run.Status.FAILED, cause=cause_line(exc))
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt / SystemExit: the state is written, let the worker stop
    else:
        _finish(ctx, Run.Status.SUCCEEDED)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
    return Run.objects.get(pk=run_id)


def _claim(run_id: int, worker_id: str) -> Run | None:
    """Mark the run running for this worker, unless it is final, cancelled or already taken."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            logger.warning("run %s no longer exists", run_id)
            return None
        if run.status not in (Run.Status.QUEUED, Run.Status.INTERRUPTED):
            logger.warning("run %s is %s; not starting it", run_id, run.status)
            return None
        now = timezone.now()
        if run.cancel_requested:
            run.status, run.finished_at = Run.Status.CANCELLED, now
            run.save(update_fields=["status", "finished_at"])
            return None
        run.status, run.started_at, run.heartbeat_at, run.finished_at = Run.Status.RUNNING, now, now, None
        run.progress_base, run.attempts = run.progress_done, run.attempts + 1
        run.worker_id, run.worker_pid, run.error = worker_id[:200], os.getpid(), ""
        run.save(
            update_fields=[
                "status", "started_at", "heartbeat_at", "finished_at", "progress_base",
                "attempts", "worker_id", "worker_pid", "error",
            ]
        )
    return run


def _finish(ctx: RunContext, status: str, *, cause: str = "") -> None:
    """Write the final state; a failure's `error` is its one-line cause, a blank line, the log tail."""
    ctx.log(f"run {status}")
    ctx.flush_log()
    run = ctx.run
    run.status, run.finished_at = status, timezone.now()
    run.error = f"{cause}\n\n{run.log[-4000:]}" if cause else ""
    fields: dict[str, Any] = {"status": status, "finished_at": run.finished_at, "error": run.error}
    # Retry: the final state must be written even when the database was briefly unavailable.
    for attempt in range(5):
        try:
            Run.objects.filter(pk=run.pk).update(**fields)
            break
        except Exception:
            logger.exception("could not store the final state of run %s", run.pk)
            connection.close()
            time.sleep(0.5 * (attempt + 1))
    live.publish(run)


def _describe(exc: BaseException) -> str:
    lines = traceback.format_exception(exc)
    return "".join(lines[-12:]).rstrip()
