"""Evaluation workflows: start an evaluation run (models x benchmarks) as a job, for any models
or for every condition of a training experiment; start a blind comparison's generation run; offer the
project's registered reward models."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.models import Project
from evaluation.models import EvaluationRun
from evaluation.runs import REWARD_MODEL, config_hash, sequence_classifier
from jobs.models import Run
from jobs.services import RunError, start_run
from training.models import Experiment, RegisteredModel, TrainingRun

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


# ---------------------------------------------------------------- reward models


def is_reward_model(model: RegisteredModel) -> bool:
    """Trained by the reward recipe (its lineage or its run says so), or a directory whose
    config.json names a sequence-classification architecture with one output (an external one)."""
    if model.lineage.get("recipe") == TrainingRun.Recipe.REWARD:
        return True
    if model.training_run is not None and model.training_run.recipe == TrainingRun.Recipe.REWARD:
        return True
    found = sequence_classifier(model.path)
    return found is not None and found[0] and found[1] in (None, 1)


def reward_models(project: Project) -> list[RegisteredModel]:
    """The project's ready registered reward models, newest first."""
    ready = RegisteredModel.objects.filter(project=project, status=RegisteredModel.Status.READY).exclude(path="")
    return [m for m in ready.select_related("training_run") if is_reward_model(m)]


def with_reward_model(config: dict[str, Any], model: RegisteredModel) -> tuple[dict[str, Any], list[str]]:
    """`config` with the reward model appended to its models (named uniquely), and notes on its
    benchmarks that a reward model cannot score (the researcher decides what to do with them)."""
    from evaluation.benchmarks import suite

    models = config.get("models") if isinstance(config.get("models"), list) else []
    names = {m.get("name") for m in models if isinstance(m, dict)}
    name, n = model.name, 2
    while name in names:
        name, n = f"{model.name}-{n}", n + 1
    entry = {"name": name, "path": model.path, "kind": REWARD_MODEL, "public_id": str(model.public_id)}
    benchmarks = config.get("benchmarks") if isinstance(config.get("benchmarks"), list) else []
    usable = suite.reward_benchmarks()
    refused = [b["name"] for b in benchmarks if isinstance(b, dict) and isinstance(b.get("name"), str) and b["name"] not in usable]
    notes = []
    if refused:
        notes.append(f"A reward model cannot score {', '.join(refused)}: remove them, or evaluate the reward model in a run "
                     f"of its own, on {', '.join(usable)}.")
    return {**config, "models": [*models, entry]}, notes


def start_blind_comparison(*, owner: AbstractBaseUser, project: Project, config: dict[str, Any]) -> Run:
    """Queue the generation run of a blind comparison (evaluation.blind.clean_blind_config checks
    `config`; RunError naming the problem otherwise); it creates the comparison when it is done."""
    return start_run("blind-generation", owner, project, config, name="Blind comparison")
