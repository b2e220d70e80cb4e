"""The run form offers the project's registered reward models and adds the chosen one to the
config; the report and its exports say which scorer produced each number."""
from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from evaluation.models import EvaluationResult, EvaluationRun
from jobs.models import Run
from training.models import RegisteredModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(owner):
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    return owner


@pytest.fixture
def registered(researcher, project, reward_models_dir, tiny_model_dir, django_user_model):
    """Registered models: a trained reward model, an external sequence classifier, a DPO policy,
    and another project's reward model."""
    from annotation.services import create_project

    def model(name, path, recipe, in_project=project):
        return RegisteredModel.objects.create(owner=researcher, project=in_project, name=name, kind=RegisteredModel.Kind.TRAINED,
                                              path=str(path), lineage={"recipe": recipe})

    other = create_project(owner=django_user_model.objects.create_user("other-owner"), name="Other")
    return {
        "trained": model("rm-humans", reward_models_dir / "exclaiming", "reward"),
        "external": model("external-rm", reward_models_dir / "random", "external"),
        "policy": model("dpo-humans", tiny_model_dir, "dpo"),
        "elsewhere": model("rm-of-another-project", reward_models_dir / "random", "reward", in_project=other),
    }


def _form(project) -> str:
    return reverse("evaluation-run-create", args=[project.public_id])


def test_the_form_offers_the_projects_reward_models_only(client, researcher, project, registered):
    client.force_login(researcher)
    page = client.get(_form(project)).content.decode()
    assert 'id="reward_model"' in page
    assert str(registered["trained"].public_id) in page and str(registered["external"].public_id) in page
    assert str(registered["policy"].public_id) not in page and "rm-of-another-project" not in page


def test_without_reward_models_the_form_says_how_to_get_one(client, researcher, project):
    client.force_login(researcher)
    page = client.get(_form(project)).content.decode()
    assert 'id="reward_model"' not in page and "no registered reward model yet" in page


def test_adding_a_reward_model_puts_it_in_the_config_and_queues_nothing(client, researcher, project, registered):
    client.force_login(researcher)
    config = {"models": [{"name": "rm-humans", "path": "/x"}], "benchmarks": [{"name": "bbq"}, {"name": "preference"}]}
    response = client.post(_form(project), {"config": json.dumps(config), "name": "RM eval",
                                            "reward_model": str(registered["trained"].public_id), "add_reward_model": "1"})
    assert response.status_code == 200
    text = response.context["config"]
    models = json.loads(text)["models"]
    assert models[-1] == {"name": "rm-humans-2", "path": registered["trained"].path, "kind": "reward_model",
                          "public_id": str(registered["trained"].public_id)}
    assert "A reward model cannot score bbq" in response.content.decode()
    assert not Run.objects.exists()


def test_a_model_that_is_not_offered_cannot_be_added(client, researcher, project, registered):
    client.force_login(researcher)
    for chosen in (registered["elsewhere"], registered["policy"]):
        response = client.post(_form(project), {"config": "{}", "reward_model": str(chosen.public_id), "add_reward_model": "1"})
        assert response.status_code == 400
        assert "reward_model: choose one of this project&#x27;s registered reward models" in response.content.decode()
    response = client.post(_form(project), {"config": "[1]", "add_reward_model": "1"})
    assert response.status_code == 400 and "config must be a JSON object" in response.content.decode()
    assert not Run.objects.exists()


def test_outsiders_cannot_add_a_reward_model(client, outsider, project, registered):
    client.force_login(outsider)
    response = client.post(_form(project), {"config": "{}", "reward_model": str(registered["trained"].public_id),
                                            "add_reward_model": "1"})
    assert response.status_code == 404


def test_the_added_reward_model_is_queued_as_one(client, researcher, project, registered, settings, reward_models_dir,
                                                 tmp_path):
    from tests.evaluation.snapshots import write_snapshot

    settings.MODELS_DIR, settings.SNAPSHOTS_DIR = reward_models_dir, tmp_path / "snapshots"
    write_snapshot(tmp_path / "snapshots", "3f9a0c1d2e4b5a69")
    client.force_login(researcher)
    config = {"models": [], "benchmarks": [{"name": "preference", "snapshots": {"human": "3f9a0c1d2e4b5a69"}}]}
    added = client.post(_form(project), {"config": json.dumps(config), "reward_model": str(registered["trained"].public_id),
                                         "add_reward_model": "1"}).context["config"]
    response = client.post(_form(project), {"config": added, "name": "RM eval"})
    assert response.status_code == 302
    run = Run.objects.get(kind="evaluation")
    assert run.config["models"] == [{"name": "rm-humans", "path": registered["trained"].path, "reference": None,
                                     "kind": "reward_model", "public_id": str(registered["trained"].public_id)}]


# ---------------------------------------------------------------- the report


@pytest.fixture
def reward_report(researcher, project, reward_models_dir, tiny_model_dir):
    run = Run.objects.create(kind="evaluation", owner=researcher, project=project, status=Run.Status.SUCCEEDED, config={
        "models": [{"name": "policy", "path": str(tiny_model_dir)},
                   {"name": "rm", "path": str(reward_models_dir / "exclaiming"), "kind": "reward_model"}],
        "benchmarks": [{"name": "preference", "snapshots": {"human": "3f9a0c1d2e4b5a69"}}]})
    erun = EvaluationRun.objects.create(run=run, project=project, config_hash="feedfacecafebeef")
    for model, scorer, value in (("policy", "loglik", 0.55), ("rm", "reward", 0.875)):
        for scope, scope_value in (("collective", "human"), ("group", "country=DE")):
            EvaluationResult.objects.create(
                evaluation=erun, model_name=model, model_path="", benchmark="preference", benchmark_version="preference-1",
                config_hash=erun.config_hash, metric="accuracy", scope=scope, scope_value=scope_value, value=value, n=8,
                scorer=scorer)
    return erun


def test_the_report_shows_the_scorer(client, researcher, project, reward_report):
    client.force_login(researcher)
    url = reverse("evaluation-run-report", args=[project.public_id, reward_report.pk])
    page = client.get(url).content.decode()
    assert "<td>reward model</td>" in page and "<td>causal LM</td>" in page  # the conditions' kinds
    assert "0.875</a> <span class=\"ci scorer\">reward</span>" in page
    assert "0.550</a></td>" in page  # log-likelihood, the default, is left unmarked
    assert "scored by reward" in page and "<td>reward</td>" in page  # cell titles, the welfare view
    rows = list(csv.DictReader(io.StringIO(client.get(url + "?format=csv").content.decode())))
    assert {(r["model"], r["model_kind"], r["scorer"]) for r in rows} == {("policy", "causal_lm", "loglik"),
                                                                           ("rm", "reward_model", "reward")}
    md = client.get(url + "?format=md").content.decode()
    assert "| preference (preference-1) | accuracy | collective: human | 0.550 | 0.875 (reward) |" in md
    assert "| rm | reward model |" in md
    data = json.loads(client.get(url + "?format=json").content)
    assert [c["kind"] for c in data["conditions"]] == ["causal_lm", "reward_model"]
