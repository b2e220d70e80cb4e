"""The default mode of evaluation runs: the engine in a `manage.py evaluation_engine` child that
stores chunks and results itself; a crash of the child fails the run, never the worker."""
from __future__ import annotations

import shutil

import pytest

from evaluation.models import EvaluationResult, ScoreChunk
from evaluation.services import start_evaluation
from jobs.models import Run
from jobs.runner import execute
from tests.jobs.conftest import _migrated_sqlite_template, shared_db  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def child_mode(settings, shared_db, monkeypatch, tmp_path, tiny_model_dir):  # noqa: F811
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "tiny")
    settings.EVALUATION_ENGINE_SUBPROCESS = True
    settings.MODELS_DIR, settings.ARTIFACTS_DIR = models, tmp_path / "artifacts"
    monkeypatch.setenv("DATABASE_URL", shared_db)  # the child opens the test's database
    monkeypatch.setenv("RLCHF_MODELS_DIR", str(models))
    monkeypatch.setenv("RLCHF_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    return models


def _owner_and_project():
    from django.contrib.auth import get_user_model

    from annotation.services import create_project

    owner = get_user_model().objects.create_user("res", password="x")
    return owner, create_project(owner=owner, name="Eval", status="active")


def test_the_child_scores_and_stores_results(child_mode):
    owner, project = _owner_and_project()
    config = {"models": [{"name": "tiny", "path": str(child_mode / "tiny")}],
              "benchmarks": [{"name": "bbq", "per_category": 1}], "chunk_size": 8, "device": "cpu"}
    erun = start_evaluation(owner=owner, project=project, config=config)
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.log
    assert "evaluation_engine" in run.log
    assert "Loading weights" not in run.log and "it/s]" not in run.log  # no library progress bars
    assert run.progress_done == run.progress_total == 18
    assert ScoreChunk.objects.filter(evaluation=erun).count() == 3
    assert EvaluationResult.objects.filter(evaluation=erun, benchmark="bbq", metric="accuracy", scope="overall").exists()


def test_an_engine_crash_in_the_child_fails_the_run(child_mode):
    owner, project = _owner_and_project()
    broken = child_mode / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    config = {"models": [{"name": "broken", "path": str(broken)}], "benchmarks": [{"name": "bbq", "per_category": 1}]}
    erun = start_evaluation(owner=owner, project=project, config=config)
    run = execute(erun.run.pk)
    assert run.status == Run.Status.FAILED
    assert "exited with code" in run.error
    assert not EvaluationResult.objects.filter(evaluation=erun).exists()
