"""Training API: every route for the project's researcher only (annotators and outsiders 404,
anonymous 401, nothing created), creates validated by the pages' forms (400 naming the field,
nothing stored), valid creates queued without running, cancel and resume."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from jobs.models import Run
from tests.training.conftest import TINY_HYPER, snapshot
from training import services
from training.models import Experiment, ExperimentCondition, RegisteredModel, TrainingRun

pytestmark = pytest.mark.django_db


def api(username: str | None) -> APIClient:
    client = APIClient()
    if username is not None:
        client.force_authenticate(get_user_model().objects.get(username=username))
    return client


@pytest.fixture
def world(tiny_base, training_dirs):
    """The researcher's project with a base model, a queued training run and an experiment."""
    project = tiny_base.project
    training = services.start_training(owner=project.owner, project=project, base_model=tiny_base, recipe="dpo",
                                       objective="trl", snapshot_id=snapshot(), hyperparameters=TINY_HYPER)
    experiment = services.create_experiment(
        owner=project.owner, project=project, name="exp", base_model=tiny_base,
        snapshots={"humans": snapshot("test"), "synthetic": snapshot("synthetic"), "both": snapshot("both")},
        hyperparameters={"max_steps": 2}, seed=3)
    return {"p": project.public_id, "model": tiny_base, "run": training.run.public_id,
            "experiment": experiment.public_id, "tiny": str(training_dirs["tiny"])}


def run_body(world: dict, **overrides) -> dict:
    return {"recipe": "dpo", "objective": "trl", "base_model": str(world["model"].public_id),
            "snapshot_id": snapshot(), "max_steps": 3, "per_device_train_batch_size": 2, "max_length": 64,
            "seed": 0, **overrides}


def experiment_body(world: dict, **overrides) -> dict:
    return {"name": "exp2", "base_model": str(world["model"].public_id), "snapshot_humans": snapshot("test"),
            "snapshot_synthetic": snapshot("synthetic"), "snapshot_both": snapshot("both"), "max_steps": 2,
            **overrides}


# (method, path, body, the researcher's status)
ROUTES = [
    ("get", "/api/v1/projects/{p}/models/", None, 200),
    ("post", "/api/v1/projects/{p}/models/", lambda w: {"name": "again", "path": w["tiny"]}, 201),
    ("get", "/api/v1/models/{model}/", None, 200),
    ("get", "/api/v1/models/{model}/download/", None, 200),
    ("get", "/api/v1/projects/{p}/training-runs/", None, 200),
    ("post", "/api/v1/projects/{p}/training-runs/", run_body, 201),
    ("get", "/api/v1/training-runs/{run}/", None, 200),
    ("post", "/api/v1/training-runs/{run}/cancel/", None, 200),
    ("post", "/api/v1/training-runs/{run}/resume/", None, 409),  # queued: nothing to resume
    ("get", "/api/v1/projects/{p}/experiments/", None, 200),
    ("post", "/api/v1/projects/{p}/experiments/", experiment_body, 201),
    ("get", "/api/v1/experiments/{experiment}/", None, 200),
]


def _call(world: dict, username: str | None, method: str, path: str, body):
    url = path.format(p=world["p"], model=world["model"].public_id, run=world["run"], experiment=world["experiment"])
    return getattr(api(username), method)(url, body(world) if body else None, format="json")


def _state() -> tuple:
    return (Run.objects.count(), RegisteredModel.objects.count(), TrainingRun.objects.count(),
            Experiment.objects.count(), tuple(Run.objects.order_by("pk").values_list("status", "cancel_requested")))


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
@pytest.mark.parametrize(("who", "code"), [("ann", 404), ("out", 404), (None, 401)], ids=["annotator", "outsider",
                                                                                       "anonymous"])
def test_only_the_projects_researcher_reaches_any_route(world, method, path, body, expected, who, code):
    before = _state()
    assert _call(world, who, method, path, body).status_code == code
    assert _state() == before  # nothing created, nothing cancelled


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_the_researcher_reaches_every_route(world, method, path, body, expected):
    response = _call(world, "res", method, path, body)
    assert response.status_code == expected, response.content[:500]


def test_a_researcher_of_another_project_gets_404(world):
    from annotation.models import Membership
    from annotation.services import add_member, create_project

    other = create_project(owner=get_user_model().objects.get(username="out"), name="Other")
    add_member(project=other, user=get_user_model().objects.get(username="ann"), role=Membership.Role.RESEARCHER)
    for method, path, body, _ in ROUTES:
        assert _call(world, "out", method, path, body).status_code == 404, path


# ---------------------------------------------------------------- models


def test_register_from_a_directory_and_from_a_hub_id(world, django_capture_on_commit_callbacks):
    client, url = api("res"), f"/api/v1/projects/{world['p']}/models/"
    made = client.post(url, {"name": "again", "path": world["tiny"]}, format="json")
    assert made.status_code == 201
    body = made.json()
    assert body["kind"] == "base" and body["status"] == "ready" and body["path"] == world["tiny"]
    assert "config.json" in {f["name"] for f in body["files"]}
    with django_capture_on_commit_callbacks(execute=True):
        hub = client.post(url, {"name": "smol", "hub_id": "HuggingFaceTB/SmolLM2-135M"}, format="json")
    assert hub.status_code == 201 and hub.json()["status"] == "fetching"
    fetch = Run.objects.get(public_id=hub.json()["fetch_run"])
    assert fetch.kind == "model-fetch" and fetch.status == Run.Status.QUEUED and fetch.task_id  # queued, not run
    listed = client.get(url).json()
    assert listed["count"] == 3 and listed["results"][0]["name"] == "smol"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "bad", "path": "/etc"}, "path", "is outside the allowed directories"),
        ({"name": "both", "path": "tiny", "hub_id": "a/b"}, "path", "not both"),
        ({"name": "neither"}, "path", "not both"),
        ({"name": "hub", "hub_id": "not a hub id"}, "hub_id", "is not a hub id"),
        ({"path": "tiny"}, "name", "required"),
        ({"name": ["a", "b"], "path": "tiny"}, "name", "single value"),
        ({"name": "typo", "pth": "tiny"}, "pth", "unknown field"),
        ({"name": "x" * 201, "path": "tiny"}, "name", "at most 200"),
        ({"name": "long", "path": "a" * 300}, "path", "is not a model directory"),  # ENAMETOOLONG was a 500
    ],
)
def test_register_refuses_with_the_field_named(world, body, field, message):
    before = _state()
    response = api("res").post(f"/api/v1/projects/{world['p']}/models/", body, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert _state() == before


def test_a_body_that_is_not_an_object_is_a_400(world):
    for body in ([1, 2], "x", 5):
        response = api("res").post(f"/api/v1/projects/{world['p']}/training-runs/", body, format="json")
        assert response.status_code == 400 and "non_field_errors" in response.json()


def test_model_download_is_the_hf_directory(world):
    response = api("res").get(f"/api/v1/models/{world['model'].public_id}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {"tiny/config.json", "tiny/tokenizer.json"} <= set(archive.namelist())


# ---------------------------------------------------------------- training runs


def test_create_a_run_queues_it_without_running(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api("res").post(f"/api/v1/projects/{world['p']}/training-runs/",
                                   run_body(world, use_peft=True, lora_r=4, learning_rate=0.001, loss_type="sigmoid,ipo",
                                            name="scripted"), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get(public_id=body["id"])
    assert run.status == Run.Status.QUEUED and run.queue == "gpu" and run.task_id  # handed to the Tasks API
    assert body["status"] == "queued" and body["name"] == "scripted" and body["base_model"]["name"] == "tiny"
    hyper = body["hyperparameters"]
    assert (hyper["use_peft"], hyper["lora_r"], hyper["learning_rate"]) == (True, 4, 0.001)
    assert hyper["loss_type"] == ["sigmoid", "ipo"]
    # The page's defaults for what was left out: lora_alpha 32, save_steps 50, no gradient accumulation.
    assert body["hyperparameters"]["lora_alpha"] == 32 and body["hyperparameters"]["save_steps"] == 50
    assert body["metrics"] == {} and body["summary"] is None


def test_the_api_and_the_page_store_the_same_run(world, client):
    api("res").post(f"/api/v1/projects/{world['p']}/training-runs/", run_body(world), format="json")
    client.force_login(get_user_model().objects.get(username="res"))
    page = {"recipe": "dpo", "objective": "trl", "base_model": world["model"].pk, "snapshot_id": snapshot(),
            "max_steps": 3, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 64,
            "seed": 0, "dataset_file": "pairs", "algorithm": "grpo", "save_steps": 50, "gpus": 0, "preset": "",
            "launcher": "local", "lora_r": 16, "lora_alpha": 32}
    assert client.post(f"/training/projects/{world['p']}/runs/new/", page).status_code == 302
    made = TrainingRun.objects.order_by("-pk")[:2]
    assert made[0].run.config["hyperparameters"] == made[1].run.config["hyperparameters"]
    assert made[0].config_hash == made[1].config_hash


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"use_peft": True, "lora_r": 0}, "lora_r", "LoRA rank must be at least 1"),
        ({"gpus": 4}, "gpus", "4 asked, but a training node has 0"),
        ({"snapshot_id": snapshot("no-rankings"), "objective": "listwise"}, "snapshot_id", "has no rankings.jsonl"),
        ({"objective": "nash"}, "objective", "not an objective of dpo"),
        ({"snapshot_id": "0123456789abcdef"}, "snapshot_id", "not one of the available choices"),
        ({"base_model": "00000000-0000-0000-0000-000000000000"}, "base_model", "not one of the available choices"),
        ({"base_model": "not-a-uuid"}, "base_model", "valid UUID"),
        ({"reward_models": "x"}, "reward_models", "list of values"),
        ({"max_steps": 0}, "max_steps", "greater than or equal to 1"),
        ({"max_steps": "many"}, "max_steps", "whole number"),
        ({"seed": 2**40}, "seed", "less than or equal to"),
        ({"learning_rate": 5}, "learning_rate", "is not in (0, 1)"),
        ({"loss_type": "sigmoid,nope"}, "loss_type", "unknown DPO loss 'nope'"),
        ({"recipe": "ppo"}, "recipe", "not one of the available choices"),
        ({"hyperparameters": {"max_steps": 1}}, "hyperparameters", "unknown field"),
    ],
)
def test_create_a_run_refuses_with_the_field_named(world, overrides, field, message):
    before = _state()
    response = api("res").post(f"/api/v1/projects/{world['p']}/training-runs/", run_body(world, **overrides),
                               format="json")
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()[field]), response.json()
    assert _state() == before


def test_another_projects_model_is_not_a_choice(world):
    from annotation.services import create_project

    other = create_project(owner=world["model"].owner, name="Other")
    foreign = services.register_base_model(owner=other.owner, project=other, name="foreign", path=world["tiny"])
    response = api("res").post(f"/api/v1/projects/{world['p']}/training-runs/",
                               run_body(world, base_model=str(foreign.public_id)), format="json")
    assert response.status_code == 400 and "base_model" in response.json()


def test_run_detail_has_metrics_summary_and_log_tail(world):
    training = TrainingRun.objects.get(run__public_id=world["run"])
    out = Path(training.output_dir)
    out.mkdir(parents=True)
    rows = [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}, {"step": 2, "loss": 0.55}]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "rlchf_run.json").write_text(json.dumps({"rows": {"given": 8, "kept": 7}, "precision": "fp32"}))
    Run.objects.filter(public_id=world["run"]).update(log="step 1\nstep 2\n", progress_done=2, progress_total=3)
    body = api("res").get(f"/api/v1/training-runs/{world['run']}/").json()
    assert body["metrics"]["loss"] == {"step": [1, 2], "value": [0.7, 0.55]}
    assert body["summary"]["rows"] == {"given": 8, "kept": 7}
    assert body["log"].endswith("step 2\n") and body["progress_done"] == 2 and body["percent"] == pytest.approx(66.67, 0.01)
    assert body["snapshot_id"] == snapshot() and body["config"]["recipe"] == "dpo"
    listed = api("res").get(f"/api/v1/projects/{world['p']}/training-runs/?limit=1").json()
    assert listed["count"] == 5 and "log" not in listed["results"][0]


def test_cancel_then_resume(world):
    client = api("res")
    cancelled = client.post(f"/api/v1/training-runs/{world['run']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/training-runs/{world['run']}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    resumed = client.post(f"/api/v1/training-runs/{world['run']}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    assert client.get(f"/api/v1/training-runs/{world['run']}/cancel/").status_code == 405


# ---------------------------------------------------------------- experiments


def test_create_an_experiment_queues_its_conditions(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api("res").post(f"/api/v1/projects/{world['p']}/experiments/",
                                   experiment_body(world, extra_objectives=["weighted"]), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    conditions = {c["name"]: c for c in body["conditions"]}
    assert list(conditions) == ["base", "rlhf-baseline", "rlchf-humans", "rlchf-synthetic", "rlchf-both",
                                "objective-weighted"]
    assert conditions["base"]["training_run"] is None and conditions["base"]["model"]["name"] == "tiny"
    assert conditions["rlchf-both"]["training_run"]["status"] == "queued"
    assert body["seed"] == 42 and body["hyperparameters"]["learning_rate"] == 5e-7  # the page's defaults
    runs = Run.objects.filter(training__condition__experiment__public_id=body["id"])
    assert runs.count() == 5 and all(r.task_id for r in runs)
    detail = api("res").get(f"/api/v1/experiments/{body['id']}/").json()
    assert detail == body


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"snapshot_both": "0123456789abcdef"}, "snapshot_both", "not one of the available choices"),
        ({"extra_objectives": "weighted"}, "extra_objectives", "list of values"),
        ({"extra_objectives": ["nash"]}, "extra_objectives", "not one of the available choices"),
        ({"name": ""}, "name", "required"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        # PostgreSQL stored 2**40 as 0 in Experiment.seed with server-side binding (a 500 without it).
        ({"seed": 2**40}, "seed", "less than or equal to 2147483647"),
        ({"max_length": 4}, "max_length", "greater than or equal to 8"),
    ],
)
def test_create_an_experiment_refuses_with_the_field_named(world, overrides, field, message):
    before = (_state(), ExperimentCondition.objects.count())
    response = api("res").post(f"/api/v1/projects/{world['p']}/experiments/", experiment_body(world, **overrides),
                               format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field]), response.json()
    assert (_state(), ExperimentCondition.objects.count()) == before


def test_snapshots_with_different_splits_are_refused_whole(world, training_dirs):
    from tests.training.snapshots import write_snapshot

    other = write_snapshot(training_dirs["snapshots"], items=6, seed="other-split").name
    before = (_state(), ExperimentCondition.objects.count())
    response = api("res").post(f"/api/v1/projects/{world['p']}/experiments/",
                               experiment_body(world, snapshot_both=other), format="json")
    assert response.status_code == 400 and "same item split" in response.json()["non_field_errors"][0]
    assert (_state(), ExperimentCondition.objects.count()) == before


# ---------------------------------------------------------------- schema


def test_the_schema_documents_every_route_and_the_forms_fields():
    from training import forms

    schema = APIClient().get("/api/v1/schema/", {"format": "json"}).json()
    paths = {p.format(p="{public_id}", model="{model_id}", run="{run_id}", experiment="{experiment_id}")
             for _, p, _, _ in ROUTES}
    assert paths <= set(schema["paths"])
    components = schema["components"]["schemas"]
    for name, form in (("TrainingRunInput", forms.TrainingRunForm), ("ExperimentInput", forms.ExperimentForm),
                       ("RegisterModelInput", forms.RegisterModelForm)):
        assert set(components[name]["properties"]) == set(form.base_fields), name
    run_input = components["TrainingRunInput"]["properties"]
    assert run_input["base_model"]["format"] == "uuid" and run_input["max_steps"]["default"] == 100
    assert run_input["reward_models"]["type"] == "array" and "snapshot_id" in components["TrainingRunInput"]["required"]
    listed = schema["paths"]["/api/v1/projects/{public_id}/training-runs/"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"]["$ref"].endswith("PaginatedTrainingRunList")
