"""Evaluating a training experiment: every condition with a ready model in one run, its snapshots'
preference test pairs, researchers only."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from evaluation.models import EvaluationRun
from evaluation.services import experiment_config
from jobs.models import Run
from jobs.services import RunError
from tests.evaluation.snapshots import write_snapshot
from training.models import Experiment, ExperimentCondition, RegisteredModel

pytestmark = pytest.mark.django_db
SNAPSHOT = "0123456789abcdef"


@pytest.fixture
def experiment(owner, project, tiny_model_dir, settings, tmp_path):
    settings.MODELS_DIR = tiny_model_dir.parent
    settings.SNAPSHOTS_DIR = tmp_path / "snapshots"
    write_snapshot(tmp_path / "snapshots", SNAPSHOT)
    base = RegisteredModel.objects.create(owner=owner, project=project, name="tiny", kind="base", path=str(tiny_model_dir))
    trained = RegisteredModel.objects.create(owner=owner, project=project, name="tiny-dpo", kind="trained", path=str(tiny_model_dir))
    exp = Experiment.objects.create(owner=owner, project=project, name="Humans vs personas", base_model=base)
    ExperimentCondition.objects.create(experiment=exp, name="base", feedback="base", model=base)
    ExperimentCondition.objects.create(experiment=exp, name="rlchf-humans", feedback="rlchf_humans", snapshot_id=SNAPSHOT, model=trained)
    ExperimentCondition.objects.create(experiment=exp, name="rlchf-synthetic", feedback="rlchf_synthetic", snapshot_id="feedfeedfeedfeed")
    return exp


def test_config_has_every_ready_condition_and_existing_snapshots(experiment):
    config = experiment_config(experiment, per_category=5)
    assert [m["name"] for m in config["models"]] == ["base", "rlchf-humans"]
    assert config["benchmarks"] == [{"name": "bbq", "per_category": 5},
                                    {"name": "preference", "snapshots": {"rlchf_humans": SNAPSHOT}}]


def test_an_experiment_without_models_is_refused(owner, project, experiment):
    experiment.conditions.update(model=None)
    with pytest.raises(RunError, match="no condition with a ready model"):
        experiment_config(experiment)


def test_evaluate_page_starts_one_run_for_researchers_only(client, owner, outsider, annotator, project, experiment):
    urls = [reverse("evaluation-experiment", args=[project.public_id, experiment.public_id]),
            reverse("evaluation-experiment-evaluate", args=[project.public_id, experiment.public_id])]
    for user in (outsider, annotator):
        client.force_login(user)
        assert client.get(urls[0]).status_code == 404
        assert client.post(urls[1], {"per_category": "3"}).status_code == 404
    assert not Run.objects.exists()
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    client.force_login(owner)
    assert "rlchf-synthetic" in client.get(urls[0]).content.decode()
    assert client.get(urls[1]).status_code == 405
    bad = client.post(urls[1], {"per_category": "many"}, follow=True)
    assert "whole number" in bad.content.decode() and not Run.objects.exists()
    response = client.post(urls[1], {"per_category": "3"})
    erun = EvaluationRun.objects.get(experiment=experiment)
    assert response.status_code == 302 and response["Location"] == reverse("jobs-run-detail", args=[erun.run.public_id])
    assert erun.run.config["benchmarks"][0] == {"name": "bbq", "per_category": 3}
    assert erun.run.config["models"][1]["public_id"] == str(experiment.conditions.get(name="rlchf-humans").model.public_id)
