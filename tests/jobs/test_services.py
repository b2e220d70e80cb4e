"""Registry, start_run validation, cancel, resume, reaping and the visibility scope."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from annotation.models import Membership
from annotation.services import add_member
from jobs import registry
from jobs.models import Run
from jobs.runner import execute
from jobs.services import RunError, cancel_run, reap_stale_runs, resume_run, start_run, visible_runs

pytestmark = pytest.mark.django_db


def test_registry_resolves_kinds_and_refuses_duplicates():
    kind = registry.get_kind("test-count")
    assert kind.label == "Test counting" and kind.queue == "default"
    with pytest.raises(registry.UnknownKind, match="unknown run kind 'nope'"):
        registry.get_kind("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("test-count")(lambda run, ctx: None)


def test_start_run_queues_the_task_on_commit(owner, tmp_path, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = start_run("test-count", owner, None, {"n": 3, "work_dir": str(tmp_path)})
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED
    assert run.config == {"n": 3, "work_dir": str(tmp_path), "sleep": 0.0}
    task = DBTaskResult.objects.get(id=run.task_id)
    assert task.args_kwargs["args"] == [run.pk] and task.queue_name == "default"


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("test-count", {"n": 0, "work_dir": "/tmp"}, "config.n must be a positive integer, got 0"),
        ("test-count", {"n": 2}, "config.work_dir is missing"),
        ("test-count", ["n", 2], "must be a JSON object, got list"),
        ("no-such-kind", {}, "unknown run kind 'no-such-kind'"),
    ],
)
def test_invalid_start_names_the_problem_and_queues_nothing(
    owner, kind, config, message, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RunError, match=message):
        start_run(kind, owner, None, config)
    assert not Run.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_cancelling_a_queued_run_cancels_it_at_once_and_the_worker_skips_it(owner, tmp_path):
    run = start_run("test-count", owner, None, {"n": 2, "work_dir": str(tmp_path)})
    cancel_run(run, owner)
    assert run.status == Run.Status.CANCELLED and run.cancel_requested
    assert execute(run.pk).status == Run.Status.CANCELLED
    assert not (tmp_path / "unit-0.txt").exists()
    with pytest.raises(RunError, match="already cancelled"):
        cancel_run(run, owner)


def test_execute_in_process_writes_success_progress_and_artifacts(owner, tmp_path):
    run = start_run("test-count", owner, None, {"n": 3, "work_dir": str(tmp_path)})
    run = execute(run.pk)
    assert run.status == Run.Status.SUCCEEDED
    assert (run.progress_done, run.progress_total, run.attempts) == (3, 3, 1)
    assert run.artifacts == [str(tmp_path / "summary.txt")]
    assert run.eta is None, "a finished run has no ETA"


def test_execute_refuses_a_run_that_is_already_running(owner, tmp_path):
    run = start_run("test-count", owner, None, {"n": 1, "work_dir": str(tmp_path)})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    assert execute(run.pk).status == Run.Status.RUNNING
    assert not (tmp_path / "unit-0.txt").exists()


def test_rate_and_eta_follow_the_current_attempt(owner):
    now = timezone.now()
    run = Run(kind="test-count", owner=owner, status=Run.Status.RUNNING, progress_base=10,
              progress_done=30, progress_total=50, started_at=now - timedelta(seconds=10))
    assert run.rate == pytest.approx(2.0, rel=0.05)
    assert run.eta.total_seconds() == pytest.approx(10, abs=1)
    assert run.percent == 60


def test_reap_interrupts_only_runs_with_an_old_heartbeat(owner):
    stale = Run.objects.create(kind="test-count", owner=owner, status=Run.Status.RUNNING,
                               heartbeat_at=timezone.now() - timedelta(minutes=5), worker_id="host:1")
    fresh = Run.objects.create(kind="test-count", owner=owner, status=Run.Status.RUNNING, heartbeat_at=timezone.now())
    call_command("reap_runs", stale_seconds=60)
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == Run.Status.INTERRUPTED and "host:1 stopped heartbeating" in stale.log
    assert fresh.status == Run.Status.RUNNING
    assert reap_stale_runs(stale_seconds=60) == []


def test_resume_requeues_stopped_runs_only(owner, tmp_path, django_capture_on_commit_callbacks):
    run = Run.objects.create(kind="test-count", owner=owner, status=Run.Status.INTERRUPTED,
                             config={"n": 1, "work_dir": str(tmp_path), "sleep": 0}, cancel_requested=True)
    with django_capture_on_commit_callbacks(execute=True):
        resume_run(run, owner)
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED and not run.cancel_requested and run.task_id
    with pytest.raises(RunError, match="only a stopped run can be resumed"):
        resume_run(run, owner)


def test_visible_runs_are_the_owners_and_the_project_researchers(project, owner, annotator, outsider):
    run = Run.objects.create(kind="test-count", owner=owner, project=project)
    assert list(visible_runs(owner)) == [run]
    assert list(visible_runs(annotator)) == []
    assert list(visible_runs(outsider)) == []
    add_member(project=project, user=outsider, role=Membership.Role.RESEARCHER)
    assert list(visible_runs(outsider)) == [run]
