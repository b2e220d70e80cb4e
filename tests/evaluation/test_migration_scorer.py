"""Migration 0003 records the scorer of results stored before it: log-likelihood, or the DPO
implicit reward where the run's preference benchmark said so; lm-eval's numbers have none."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotation.services import create_project
from jobs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("evaluation", "0002_evaluation_run_experiment")]
AFTER = [("evaluation", "0003_evaluationresult_scorer")]


def test_backfill_names_the_scorer_of_older_results(django_user_model):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps  # evaluation as it was; the other apps' tables as they are now
    user = django_user_model.objects.create_user("old-researcher")
    project = create_project(owner=user, name="old")
    EvaluationRun, Result = apps.get_model("evaluation", "EvaluationRun"), apps.get_model("evaluation", "EvaluationResult")
    configs = {"dpo": {"benchmarks": [{"name": "bbq"}, {"name": "preference", "score": "dpo"}]},
               "loglik": {"benchmarks": [{"name": "preference"}]}}
    for label, config in configs.items():
        run = Run.objects.create(kind="evaluation", owner=user, project=project, config=config)
        erun = EvaluationRun.objects.create(run_id=run.pk, project_id=project.pk, config_hash=label)
        for benchmark, source in (("bbq", "rlchf"), ("preference", "rlchf"), ("lm_eval", "lm-eval")):
            Result.objects.create(evaluation=erun, model_name="m", model_path="", benchmark=benchmark, benchmark_version="1",
                                  config_hash=label, metric="accuracy", source=source, value=0.5)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    rows = apps.get_model("evaluation", "EvaluationResult").objects.values_list("config_hash", "benchmark", "scorer")
    assert set(rows) == {("dpo", "bbq", "loglik"), ("dpo", "preference", "dpo"), ("dpo", "lm_eval", ""),
                         ("loglik", "bbq", "loglik"), ("loglik", "preference", "loglik"), ("loglik", "lm_eval", "")}
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
