"""A real `manage.py db_worker` process executing runs: success, cancel, kill + reap + resume,
handler failure and a crashing child process. Each scenario takes a few seconds."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from jobs.models import Run
from jobs.services import cancel_run, reap_stale_runs, resume_run, start_run
from tests.jobs.conftest import wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.django_db(transaction=True)]


def make_owner():
    # Not the django_user_model fixture: it wraps the test in a transaction subprocesses cannot see.
    return get_user_model().objects.create_user("res")


def status_of(run: Run) -> str:
    run.refresh_from_db()
    return run.status


def start(kind: str, owner, config: dict | None = None) -> Run:
    with transaction.atomic():  # the run is enqueued when this commits
        return start_run(kind, owner, None, config or {})


def reaches(run: Run, status: str, timeout: float = 30) -> None:
    wait_for(lambda: status_of(run) == status, timeout=timeout, what=f"run {run.pk} to be {status}")


def computed_units(work: Path) -> list[int]:
    log = work / "computed.log"
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_worker_runs_a_queued_run_to_success(start_worker, tmp_path):
    owner = make_owner()
    start_worker()
    run = start("test-count", owner, {"n": 4, "work_dir": str(tmp_path / "w")})
    assert run.status == Run.Status.QUEUED

    reaches(run, Run.Status.SUCCEEDED)
    assert (run.progress_done, run.progress_total) == (4, 4)
    assert run.artifacts == [str(tmp_path / "w" / "summary.txt")]
    assert "computed unit 3" in run.log
    assert run.attempts == 1 and run.finished_at is not None and run.worker_pid
    assert Path(run.log_path).read_text().count("computed unit") == 4


def test_cancel_mid_run_stops_the_handler(start_worker, tmp_path):
    owner = make_owner()
    start_worker()
    work = tmp_path / "w"
    run = start("test-count", owner, {"n": 200, "work_dir": str(work), "sleep": 0.05})
    wait_for(lambda: len(computed_units(work)) >= 3, what="the run to make progress")

    cancel_run(run, owner)
    reaches(run, Run.Status.CANCELLED)
    assert len(computed_units(work)) < 200
    assert "run cancelled" in run.log


def test_cancel_stops_a_running_child_process(start_worker):
    owner = make_owner()
    start_worker()
    run = start("test-child-sleep", owner)
    wait_for(lambda: "tick 3" in Run.objects.get(pk=run.pk).log, what="the child's output in the log")

    cancel_run(run, owner)
    reaches(run, Run.Status.CANCELLED)
    assert "stopped subprocess" in run.log
    assert "tick 599" not in run.log


def test_killed_worker_is_reaped_and_the_resumed_run_skips_stored_work(start_worker, tmp_path):
    owner = make_owner()
    worker = start_worker()
    work = tmp_path / "w"
    run = start("test-count", owner, {"n": 12, "work_dir": str(work), "sleep": 0.25})
    wait_for(lambda: len(computed_units(work)) >= 3, what="the run to make progress")

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    assert status_of(run) == Run.Status.RUNNING  # nobody could write the final state...
    stored_before = sorted(computed_units(work))
    # ...until its heartbeat (every second here) is older than the stale limit.
    wait_for(lambda: reap_stale_runs(stale_seconds=2), timeout=15, what="the reaper to interrupt the run")
    assert status_of(run) == Run.Status.INTERRUPTED
    assert "stopped heartbeating" in run.log

    resume_run(run, owner)
    start_worker()
    reaches(run, Run.Status.SUCCEEDED, timeout=40)
    computed = computed_units(work)
    assert sorted(computed) == list(range(12)), "every unit computed exactly once"
    assert computed[: len(stored_before)] == stored_before
    assert run.attempts == 2 and run.progress_done == 12


def test_failing_handler_ends_failed_with_the_log_tail(start_worker):
    owner = make_owner()
    start_worker()
    run = start("test-fail", owner)

    reaches(run, Run.Status.FAILED)
    assert "about to fail" in run.error
    assert "RuntimeError: boom: the handler failed on purpose" in run.error
    assert run.finished_at is not None


def test_crashing_child_process_fails_the_run_not_the_worker(start_worker, tmp_path):
    owner = make_owner()
    worker = start_worker()
    crashed = start("test-crash", owner)
    reaches(crashed, Run.Status.FAILED)
    assert "child starting" in crashed.error
    assert "exited with code 3" in crashed.error

    after = start("test-count", owner, {"n": 2, "work_dir": str(tmp_path / "w")})
    reaches(after, Run.Status.SUCCEEDED)
    assert worker.poll() is None, "the worker survived the child's crash"
