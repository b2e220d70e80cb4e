"""Evaluation workflows: start an evaluation run (models x benchmarks) as a job."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.models import Project
from evaluation.models import EvaluationRun
from evaluation.runs import config_hash
from jobs.services import start_run


@transaction.atomic
def start_evaluation(*, owner: AbstractBaseUser, project: Project, config: dict[str, Any], name: str = "") -> EvaluationRun:
    """Validate `config`, store the run and queue it (jobs.RunError naming the problem otherwise)."""
    run = start_run("evaluation", owner, project, config, name=name or "Evaluation")
    return EvaluationRun.objects.create(run=run, project=project, config_hash=config_hash(run.config))
