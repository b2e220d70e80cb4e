"""The one task of the jobs app: execute a run in whichever worker picks it up."""
from __future__ import annotations

from django_tasks import task

from jobs import runner


@task()
def execute_run(run_id: int) -> str:
    """Execute run `run_id` to a final state; returns that state (stored on the task result)."""
    return runner.execute(run_id).status
