"""Evaluation workflows: start an evaluation run (models x benchmarks) as a job, for any models
or for every condition of a training experiment; start a blind comparison's generation run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.models import Project
from evaluation.models import EvaluationRun
from evaluation.runs import config_hash
from jobs.models import Run
from jobs.services import RunError, start_run
from training.models import Experiment

MAX_PER_CATEGORY = 100_000


@transaction.atomic
def start_evaluation(
    *, owner: AbstractBaseUser, project: Project, config: dict[str, Any], name: str = "", experiment: Experiment | None = None,
) -> EvaluationRun:
    """Validate `config`, store the run and queue it (jobs.RunError naming the problem otherwise)."""
    run = start_run("evaluation", owner, project, config, name=name or "Evaluation")
    return EvaluationRun.objects.create(run=run, project=project, config_hash=config_hash(run.config), experiment=experiment)


def experiment_config(experiment: Experiment, *, per_category: int = 50, chunk_size: int = 256, device: str = "auto") -> dict[str, Any]:
    """Every condition with a model, side by side: BBQ (a seeded subset per category) and, where
    the conditions' snapshots exist, held-out preference accuracy on each snapshot's test pairs
    (labelled by the condition's feedback source; groups from the first)."""
    conditions = [c for c in experiment.conditions.select_related("model") if c.model is not None and c.model.is_ready]
    if not conditions:
        raise RunError(f"experiment {experiment.name!r} has no condition with a ready model yet")
    models = [{"name": c.name, "path": c.model.path, "public_id": str(c.model.public_id)} for c in conditions]
    benchmarks: list[dict[str, Any]] = [{"name": "bbq", "per_category": per_category}]
    snapshots: dict[str, str] = {}
    for c in experiment.conditions.all():
        if c.snapshot_id and c.snapshot_id not in snapshots.values() and (Path(settings.SNAPSHOTS_DIR) / c.snapshot_id).is_dir():
            snapshots[c.feedback if c.feedback not in snapshots else c.name] = c.snapshot_id
    if snapshots:
        benchmarks.append({"name": "preference", "snapshots": snapshots})
    return {"models": models, "benchmarks": benchmarks, "chunk_size": chunk_size, "device": device}


def evaluate_experiment(*, owner: AbstractBaseUser, experiment: Experiment, per_category: int = 50) -> EvaluationRun:
    if isinstance(per_category, bool) or not isinstance(per_category, int) or not 1 <= per_category <= MAX_PER_CATEGORY:
        raise RunError(f"per_category: examples per BBQ category must be a whole number from 1 to {MAX_PER_CATEGORY}")
    config = experiment_config(experiment, per_category=per_category)
    return start_evaluation(owner=owner, project=experiment.project, config=config, name=f"Experiment {experiment.name}",
                            experiment=experiment)


def start_blind_comparison(*, owner: AbstractBaseUser, project: Project, config: dict[str, Any]) -> Run:
    """Queue the generation run of a blind comparison (evaluation.blind.clean_blind_config checks
    `config`; RunError naming the problem otherwise); it creates the comparison when it is done."""
    return start_run("blind-generation", owner, project, config, name="Blind comparison")
