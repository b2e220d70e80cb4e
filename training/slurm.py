"""Training on a Slurm cluster through submitit: submit, poll, cancel, fetch the log and outputs.

The job runs the same `accelerate launch ... --config run.yaml` command as a local run (see
`training.recipes.cluster.run_command`) on one node with the config's GPUs. The output directory
must be on a filesystem the worker and the cluster share (MODELS_DIR), so the model is
registered from it when the job ends. Without Slurm (tests, a laptop) set
TRAINING_SLURM_EXECUTOR=local: submitit's local executor runs the job as a local process.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings

from jobs.runner import Cancelled, RunContext, SubprocessFailed
from training.models import TrainingRun

POLL_SECONDS = 1.0


def executor_for(training: TrainingRun) -> Any:
    import submitit

    folder = Path(settings.TRAINING_SLURM_FOLDER) / str(training.run.public_id)
    gpus = int(training.run.config.get("gpus", 0))
    if settings.TRAINING_SLURM_EXECUTOR == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=settings.TRAINING_SLURM_TIMEOUT_MIN)
        return executor
    executor = submitit.SlurmExecutor(folder=folder)
    params: dict[str, Any] = {"nodes": 1, "ntasks_per_node": 1, "time": settings.TRAINING_SLURM_TIMEOUT_MIN,
                              "job_name": f"rlchf-{training.recipe}"}
    if gpus:
        params["gpus_per_node"] = gpus
    if settings.TRAINING_SLURM_PARTITION:
        params["partition"] = settings.TRAINING_SLURM_PARTITION
    executor.update_parameters(**params)
    return executor


def run_on_slurm(training: TrainingRun, ctx: RunContext, argv: list[str], env: dict[str, str]) -> None:
    import cloudpickle

    from training.recipes import cluster
    from training.runs import _Lines

    cloudpickle.register_pickle_by_value(cluster)  # the job imports nothing of this project
    executor = executor_for(training)
    job = executor.submit(cluster.run_command, argv, str(settings.BASE_DIR), env)
    TrainingRun.objects.filter(pk=training.pk).update(slurm_job_id=str(job.job_id))
    ctx.log(f"submitted job {job.job_id} ({type(executor).__name__}); log {job.paths.stdout}")
    tail = _Tail(Path(job.paths.stdout), _Lines(ctx))
    while not job.done():
        tail.read()
        if ctx.cancelled:
            job.cancel(check=False)
            _wait_done(job, 30)
            tail.read()
            raise Cancelled(f"cancel requested; job {job.job_id} cancelled")
        time.sleep(POLL_SECONDS)
    tail.read()
    ctx.flush_log()
    try:
        job.result()
    except Exception as exc:
        raise SubprocessFailed(f"job {job.job_id} failed: {str(exc).strip().splitlines()[-1:] or exc}") from None


def _wait_done(job: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.2)


class _Tail:
    """Hands the lines appended to a growing log file to `on_line`."""

    def __init__(self, path: Path, on_line: Any) -> None:
        self.path, self.on_line, self.offset, self.partial = path, on_line, 0, ""

    def read(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            fh.seek(self.offset)
            text = fh.read()
            self.offset = fh.tell()
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.on_line(line)
