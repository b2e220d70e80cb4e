"""Training pages: researchers only (404 for annotators, outsiders), forms refuse with the field
named, the model downloads as a zip, metrics come as chart series, plotly.js is served locally."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from jobs.models import Run
from tests.html import EXTERNAL_ASSET
from tests.training.conftest import TINY_HYPER, snapshot
from training import services
from training.models import Experiment, TrainingRun

pytestmark = pytest.mark.django_db


def login(client, name: str) -> None:
    assert client.login(username=name, password=f"{name}-pass-123")


@pytest.fixture
def training(tiny_base):
    return services.start_training(owner=tiny_base.owner, project=tiny_base.project, base_model=tiny_base,
                                   recipe="dpo", objective="trl", snapshot_id=snapshot(), hyperparameters=TINY_HYPER)


def urls(project, base, training) -> list[str]:
    p = project.public_id
    return [
        reverse("training-project", args=[p]),
        reverse("training-model-detail", args=[p, base.public_id]),
        reverse("training-model-download", args=[p, base.public_id]),
        reverse("training-run-create", args=[p]),
        reverse("training-run-detail", args=[p, training.run.public_id]),
        reverse("training-run-metrics", args=[p, training.run.public_id]),
        reverse("training-experiment-create", args=[p]),
    ]


def test_researcher_sees_every_page(client, tiny_base, training):
    login(client, "res")
    for url in urls(tiny_base.project, tiny_base, training):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("user", ["ann", "out"])
def test_annotators_and_outsiders_get_404_everywhere(client, tiny_base, training, user):
    login(client, user)
    for url in urls(tiny_base.project, tiny_base, training):
        assert client.get(url).status_code == 404, url
    p = tiny_base.project.public_id
    for name in ("training-run-create", "training-experiment-create", "training-model-register"):
        assert client.post(reverse(name, args=[p]), {"name": "x"}).status_code == 404
    assert TrainingRun.objects.count() == 1 and not Experiment.objects.exists()


def test_anonymous_is_sent_to_login(client, tiny_base):
    response = client.get(reverse("training-project", args=[tiny_base.project.public_id]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_wrong_method(client, tiny_base):
    login(client, "res")
    assert client.get(reverse("training-model-register", args=[tiny_base.project.public_id])).status_code == 405


def run_form(base, **overrides) -> dict:
    data = {"recipe": "dpo", "objective": "trl", "base_model": base.pk, "snapshot_id": snapshot(), "max_steps": 3,
            "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 64, "seed": 0,
            "dataset_file": "pairs", "algorithm": "grpo", "save_steps": 50, "gpus": 0, "preset": "",
            "launcher": "local", "lora_r": 16, "lora_alpha": 32}
    return {**data, **overrides}


def test_run_form_starts_a_run(client, tiny_base):
    login(client, "res")
    response = client.post(reverse("training-run-create", args=[tiny_base.project.public_id]),
                           run_form(tiny_base, use_peft="on", lora_r=4, learning_rate=0.001))
    training = TrainingRun.objects.get()
    assert response.status_code == 302 and str(training.run.public_id) in response["Location"]
    hyper = training.run.config["hyperparameters"]
    assert hyper["use_peft"] is True and hyper["lora_r"] == 4 and hyper["learning_rate"] == 0.001
    assert training.run.owner.username == "res" and training.run.status == Run.Status.QUEUED


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"use_peft": "on", "lora_r": 0}, "lora_r", "LoRA rank must be at least 1"),
        ({"gpus": 4}, "gpus", "4 asked, but a training node has 0"),
        ({"snapshot_id": snapshot("no-rankings"), "objective": "listwise"}, "snapshot_id", "has no rankings.jsonl"),
        ({"objective": "nash"}, "objective", "not an objective of dpo"),
    ],
)
def test_run_form_refuses_with_the_field_named(client, tiny_base, overrides, field, message):
    login(client, "res")
    response = client.post(reverse("training-run-create", args=[tiny_base.project.public_id]),
                           run_form(tiny_base, **overrides))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not TrainingRun.objects.exists() and not Run.objects.exists()


def test_register_a_base_model_from_a_local_directory(client, tiny_base, training_dirs):
    login(client, "res")
    url = reverse("training-model-register", args=[tiny_base.project.public_id])
    response = client.post(url, {"name": "again", "path": str(training_dirs["tiny"])})
    assert response.status_code == 302
    response = client.post(url, {"name": "bad", "path": "/etc"})
    assert response.status_code == 400 and "is outside the allowed directories" in response.content.decode()


def test_model_downloads_as_an_hf_directory_zip(client, tiny_base):
    login(client, "res")
    response = client.get(reverse("training-model-download", args=[tiny_base.project.public_id, tiny_base.public_id]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"tiny/config.json", "tiny/model.safetensors", "tiny/tokenizer.json"} <= names
    assert archive.read("tiny/config.json") == (Path(tiny_base.path) / "config.json").read_bytes()


def test_metrics_become_chart_series_and_a_resumed_step_is_not_doubled(client, tiny_base, training):
    out = Path(training.output_dir)
    out.mkdir(parents=True)
    rows = [{"step": 1, "loss": 0.7, "rewards/chosen": 0.1, "group_weight/country=DE": 0.5},
            {"step": 2, "loss": 0.6, "learning_rate": 1e-3}, {"step": 2, "loss": 0.55}]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "lo')
    login(client, "res")
    data = client.get(reverse("training-run-metrics", args=[tiny_base.project.public_id, training.run.public_id])).json()
    assert data["series"]["loss"] == {"step": [1, 2], "value": [0.7, 0.55]}
    assert data["series"]["group_weight/country=DE"]["value"] == [0.5]
    assert data["status"] == "queued"


def test_run_page_loads_plotly_from_this_server(client, tiny_base, training):
    login(client, "res")
    page = client.get(reverse("training-run-detail", args=[tiny_base.project.public_id, training.run.public_id]))
    html = page.content.decode()
    assert "/static/vendor/plotly.min.js" in html and not EXTERNAL_ASSET.search(html)


def test_experiment_form_creates_five_matched_conditions(client, tiny_base):
    login(client, "res")
    data = {"name": "exp", "base_model": tiny_base.pk, "snapshot_humans": snapshot("test"),
            "snapshot_synthetic": snapshot("synthetic"), "snapshot_both": snapshot("both"), "objective": "trl",
            "learning_rate": 0.001, "max_steps": 2, "per_device_train_batch_size": 2, "max_length": 64, "beta": 0.1,
            "seed": 3}
    response = client.post(reverse("training-experiment-create", args=[tiny_base.project.public_id]), data)
    experiment = Experiment.objects.get()
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    for name in ("base", "rlhf-baseline", "rlchf-humans", "rlchf-synthetic", "rlchf-both"):
        assert f'data-condition="{name}"' in page
    runs = TrainingRun.objects.filter(condition__experiment=experiment)
    assert runs.count() == 4
    assert {json.dumps(r.run.config["hyperparameters"] | {"dataset_file": None}, sort_keys=True) for r in runs} == {
        json.dumps(runs[0].run.config["hyperparameters"] | {"dataset_file": None}, sort_keys=True)}


def test_admin_lists_training_objects(client, tiny_base, training, django_user_model):
    django_user_model.objects.create_superuser("admin", password="admin-pass-123")
    login(client, "admin")
    for name in ("registeredmodel", "trainingrun", "experiment"):
        assert client.get(f"/admin/training/{name}/").status_code == 200, name
    assert client.get(f"/admin/training/registeredmodel/{tiny_base.pk}/change/").status_code == 200
