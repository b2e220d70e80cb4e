"""Training runs launched from the app as jobs, executed by a real `db_worker` that starts
`accelerate launch` on the tiny model (CPU): every recipe end to end, cancel, crash, resume."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from django.db import transaction

from jobs.models import Run
from jobs.services import cancel_run, reap_stale_runs, resume_run
from tests.jobs.conftest import wait_for
from tests.training.conftest import TINY_HYPER, snapshot
from training import services
from training.models import RegisteredModel, TrainingRun

pytestmark = [pytest.mark.timeout(300), pytest.mark.django_db(transaction=True)]


def start(project, base, **kwargs) -> TrainingRun:
    kwargs.setdefault("recipe", "dpo")
    kwargs.setdefault("objective", "trl")
    kwargs.setdefault("snapshot_id", snapshot())
    kwargs.setdefault("hyperparameters", TINY_HYPER)
    with transaction.atomic():  # queued when this commits
        return services.start_training(owner=project.owner, project=project, base_model=base, **kwargs)


def finished(training: TrainingRun, status: str = Run.Status.SUCCEEDED, timeout: float = 240) -> Run:
    run = training.run

    def done() -> bool:
        run.refresh_from_db()
        return run.is_final or run.status == Run.Status.INTERRUPTED

    wait_for(done, timeout=timeout, what=f"training run {run.pk} to finish")
    assert run.status == status, run.log[-3000:]
    return run


@pytest.mark.parametrize(
    ("recipe", "objective"),
    [("dpo", "trl"), ("dpo", "weighted"), ("dpo", "group_robust"), ("dpo", "listwise"), ("sft", "sft"),
     ("reward", "margin")],
)
def test_recipe_runs_as_a_job_and_registers_its_model(start_worker, tiny_base, recipe, objective):
    project = tiny_base.project
    start_worker()
    training = start(project, tiny_base, recipe=recipe, objective=objective)
    run = finished(training)
    out = Path(training.output_dir)
    assert (run.progress_done, run.progress_total) == (3, 3)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "run.yaml", "metrics.jsonl", "lineage.json",
                 "rlchf_run.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "rlchf_run.json").read_text())
    assert summary["snapshot"] == snapshot() and summary["precision"] == "fp32"
    assert summary["rows"]["given"] > 0 and summary["rows"]["dropped"] == 0
    assert "rows:" in run.log and "dropped by truncation" in run.log
    model = RegisteredModel.objects.get(training_run=training)
    lineage = model.lineage
    assert lineage["recipe"] == recipe and lineage["snapshot"] == snapshot() and lineage["base"] == "tiny"
    assert lineage["config_hash"] == training.config_hash and lineage["code_version"]
    assert model.size_bytes == services.dir_size(out) and model.kind == RegisteredModel.Kind.TRAINED
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "loss" in s] == [1, 2, 3]
    if recipe == "dpo":
        assert all("rewards/margins" in s for s in steps if "loss" in s)
    if objective == "group_robust":
        assert "worst_group_loss" in steps[0] and "group_weight/country=DE" in steps[0]
