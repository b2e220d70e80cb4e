"""The model registry's uses (issue 12, point 6): a trained model is the base of another run and
the reference of a DPO run, every model carries the full lineage, downloads as an HF directory
(researchers only), and a hub id is fetched by the worker, never by the web process."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from jobs.models import Run
from tests.training.conftest import TINY_HYPER, snapshot
from training import services
from training.models import RegisteredModel, TrainingRun

pytestmark = pytest.mark.django_db

LINEAGE_KEYS = {"model", "base", "recipe", "objective", "snapshot", "config_hash", "code_version", "created_at"}


def start(base, **kwargs) -> TrainingRun:
    kwargs.setdefault("recipe", "dpo")
    kwargs.setdefault("objective", "trl")
    kwargs.setdefault("snapshot_id", snapshot())
    kwargs.setdefault("hyperparameters", TINY_HYPER)
    return services.start_training(owner=base.owner, project=base.project, base_model=base, **kwargs)


def trained_model(base: RegisteredModel, name: str = "tiny-dpo", seed: int = 1) -> RegisteredModel:
    """A model as a finished DPO run leaves it (other weights than the base: `seed`), registered."""
    from tests.tiny_models import TinyModelSpec, build_tiny_model

    training = start(base, name=name)
    out = build_tiny_model(Path(training.output_dir), TinyModelSpec(seed=seed))
    (out / "lineage.json").write_text(json.dumps({
        "model": out.name, "base": base.name, "recipe": "dpo", "objective": "sigmoid", "snapshot": snapshot(),
        "config_hash": training.config_hash, "code_version": "0123456789ab", "created_at": "2026-11-02T10:00:00+00:00",
    }))
    return services.register_trained_model(training)


def login(client, name: str) -> None:
    assert client.login(username=name, password=f"{name}-pass-123")


def test_every_registered_model_has_the_whole_lineage(tiny_base):
    hub = services.register_base_model(owner=tiny_base.owner, project=tiny_base.project, name="hub",
                                       hub_id="HuggingFaceTB/SmolLM2-135M-Instruct")
    trained = trained_model(tiny_base)
    for model in (tiny_base, hub, trained):
        assert set(model.lineage) >= LINEAGE_KEYS, model.name
        assert model.lineage["created_at"] and model.lineage["code_version"], model.name
    assert tiny_base.lineage["base"] == tiny_base.path and hub.lineage["base"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert tiny_base.lineage["recipe"] == hub.lineage["recipe"] == "external"
    assert trained.lineage["base"] == "tiny" and trained.lineage["base_model_id"] == str(tiny_base.public_id)
    assert trained.lineage["snapshot"] == snapshot() and trained.size_bytes == services.dir_size(Path(trained.path))


def test_a_trained_model_is_the_base_of_another_run(client, tiny_base):
    trained = trained_model(tiny_base)
    login(client, "res")
    url = reverse("training-run-create", args=[tiny_base.project.public_id])
    assert f'<option value="{trained.pk}">tiny-dpo (trained model)</option>' in client.get(url).content.decode()
    form = {"recipe": "dpo", "objective": "trl", "base_model": trained.pk, "snapshot_id": snapshot(), "max_steps": 3,
            "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 64, "seed": 0,
            "dataset_file": "pairs", "algorithm": "grpo", "save_steps": 50, "gpus": 0, "preset": "",
            "launcher": "local"}
    response = client.post(url, form)
    assert response.status_code == 302
    second = TrainingRun.objects.get(base_model=trained)
    values = services.recipe_yaml(second.run.config)
    assert values["model_name_or_path"] == trained.path and values["base_model_name"] == "tiny-dpo"


@pytest.mark.timeout(300)
def test_a_registered_model_is_the_reference_of_a_dpo_run(tiny_base):
    """The reference model the DPO trainer holds has the registered model's weights, not the base's."""
    import torch
    from trl import DPOConfig

    from training.recipes import common, dpo
    from training.runs import write_yaml

    reference = trained_model(tiny_base, name="reference", seed=7)
    training = start(tiny_base, ref_model=reference, hyperparameters={**TINY_HYPER, "max_train_rows": 2})
    assert training.ref_model == reference
    yaml_path = write_yaml(training.run.config)
    rlchf, args, model_args = common.parse(DPOConfig, ["--config", str(yaml_path)])
    assert rlchf.ref_model_path == reference.path and model_args.model_name_or_path == tiny_base.path
    trainer, _ = dpo.build_trainer(rlchf, args, model_args)
    from transformers import AutoModelForCausalLM

    ref_weights = AutoModelForCausalLM.from_pretrained(reference.path).state_dict()
    held = trainer.accelerator.unwrap_model(trainer.ref_model).state_dict()
    policy = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(held[name].cpu(), ref_weights[name])
    assert not torch.equal(policy[name].cpu(), ref_weights[name])


def test_models_of_another_project_are_neither_base_nor_reference(tiny_base, training_dirs):
    from annotation.services import create_project

    other_project = create_project(owner=tiny_base.owner, name="Other")
    foreign = services.register_base_model(owner=tiny_base.owner, project=other_project, name="foreign",
                                           path=str(training_dirs["tiny"]))
    with pytest.raises(services.TrainingError, match="base_model: model foreign is not one of this project's models"):
        services.start_training(owner=tiny_base.owner, project=tiny_base.project, base_model=foreign, recipe="dpo",
                                objective="trl", snapshot_id=snapshot(), hyperparameters=TINY_HYPER)
    with pytest.raises(services.TrainingError, match="base_model: model foreign is not one of this project's models"):
        services.create_experiment(owner=tiny_base.owner, project=tiny_base.project, name="e", base_model=foreign,
                                   snapshots={"humans": snapshot(), "synthetic": snapshot("synthetic"),
                                              "both": snapshot("both")})
    with pytest.raises(services.TrainingError, match="ref_model: model foreign is not one of this project's models"):
        start(tiny_base, ref_model=foreign)
    with pytest.raises(services.TrainingError, match="reward_models: model foreign is not one"):
        start(tiny_base, recipe="rl", objective="utilitarian", reward_models=[foreign], hyperparameters={})
    assert not Run.objects.filter(kind="training").exists()


def zip_of(response) -> zipfile.ZipFile:
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_a_trained_model_downloads_as_an_hf_directory_with_its_lineage(client, tiny_base):
    trained = trained_model(tiny_base)
    Path(trained.path, "checkpoint-2").mkdir()
    Path(trained.path, "checkpoint-2", "optimizer.pt").write_bytes(b"x" * 100)
    login(client, "res")
    url = reverse("training-model-download", args=[tiny_base.project.public_id, trained.public_id])
    response = client.get(url)
    assert response["Content-Disposition"] == 'attachment; filename="tiny-dpo.zip"'
    archive = zip_of(response)
    assert archive.testzip() is None
    names = set(archive.namelist())
    assert {"tiny-dpo/config.json", "tiny-dpo/model.safetensors", "tiny-dpo/tokenizer.json",
            "tiny-dpo/lineage.json"} <= names
    assert not any("checkpoint-" in n for n in names)
    assert archive.read("tiny-dpo/model.safetensors") == Path(trained.path, "model.safetensors").read_bytes()
    assert json.loads(archive.read("tiny-dpo/lineage.json"))["config_hash"] == trained.lineage["config_hash"]
    # Unpacked, the folder loads as a model: it is an HF directory.
    from transformers import AutoConfig

    archive.extractall(Path(trained.path).parent / "unpacked")
    assert AutoConfig.from_pretrained(Path(trained.path).parent / "unpacked" / "tiny-dpo").model_type == "qwen2"


def test_a_base_model_zip_gets_its_lineage_and_a_safe_folder_name(client, tiny_base):
    RegisteredModel.objects.filter(pk=tiny_base.pk).update(name="../../evil name")
    login(client, "res")
    archive = zip_of(client.get(reverse("training-model-download",
                                        args=[tiny_base.project.public_id, tiny_base.public_id])))
    names = archive.namelist()
    assert all(n.startswith("evil-name/") for n in names), names
    assert json.loads(archive.read("evil-name/lineage.json"))["recipe"] == "external"


@pytest.mark.parametrize("user", ["ann", "out"])
def test_only_the_projects_researchers_download_models(client, tiny_base, user):
    trained = trained_model(tiny_base)
    login(client, user)
    for model in (tiny_base, trained):
        url = reverse("training-model-download", args=[tiny_base.project.public_id, model.public_id])
        assert client.get(url).status_code == 404
        assert client.get(reverse("training-model-detail", args=[tiny_base.project.public_id, model.public_id])
                          ).status_code == 404


def test_a_model_is_not_downloaded_through_another_project(client, tiny_base):
    from annotation.services import create_project

    mine = create_project(owner=tiny_base.owner, name="Mine too")
    login(client, "res")
    url = reverse("training-model-download", args=[mine.public_id, tiny_base.public_id])
    assert client.get(url).status_code == 404


def test_registering_a_hub_id_queues_the_fetch_and_a_local_dir_is_ready(client, tiny_base, training_dirs,
                                                                           monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: pytest.fail("downloaded in the web process"))
    login(client, "res")
    url = reverse("training-model-register", args=[tiny_base.project.public_id])
    response = client.post(url, {"name": "from-hub", "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    model = RegisteredModel.objects.get(name="from-hub")
    assert response.status_code == 302
    assert model.status == RegisteredModel.Status.FETCHING and not model.path and model.size_bytes == 0
    assert model.fetch_run.kind == "model-fetch" and model.fetch_run.status == Run.Status.QUEUED
    assert model.fetch_run.config == {"model": str(model.public_id), "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    assert "Fetching" in client.get(response["Location"]).content.decode()

    response = client.post(url, {"name": "local", "path": str(training_dirs["tiny"])})
    local = RegisteredModel.objects.get(name="local")
    assert response.status_code == 302 and local.is_ready and local.fetch_run is None
    assert Run.objects.filter(kind="model-fetch").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_fetches_a_hub_id_into_the_models_directory(tiny_base, training_dirs, monkeypatch):
    import shutil

    import huggingface_hub

    from jobs.runner import execute

    asked = []

    def fake_download(*, repo_id: str, local_dir: str) -> str:
        asked.append(repo_id)
        shutil.copytree(training_dirs["tiny"], local_dir, dirs_exist_ok=True)
        return local_dir

    model = services.register_base_model(owner=tiny_base.owner, project=tiny_base.project, name="hub",
                                         hub_id="someone/tiny-model")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    run = execute(model.fetch_run.pk)
    model.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.log
    assert asked == ["someone/tiny-model"]
    assert model.is_ready and Path(model.path) == training_dirs["models"] / "hub" / "someone__tiny-model"
    assert model.size_bytes == services.dir_size(Path(model.path)) > 0
    assert start(model).run.config["base_model_path"] == model.path


def test_the_code_version_is_the_commit_in_a_worktree_and_in_packed_refs(tmp_path, settings):
    main = tmp_path / "main" / ".git"
    gitdir = main / "worktrees" / "wt"
    gitdir.mkdir(parents=True)
    (gitdir / "commondir").write_text("../..\n")
    (main / "refs" / "heads").mkdir(parents=True)
    (main / "refs" / "heads" / "loose").write_text("1234567890abcdef\n")
    (main / "packed-refs").write_text("# pack-refs with: peeled fully-peeled sorted\nabcdef1234567890 refs/heads/packed\n")
    settings.BASE_DIR = tmp_path / "wt"
    settings.BASE_DIR.mkdir()
    (settings.BASE_DIR / ".git").write_text(f"gitdir: {gitdir}\n")
    for head, version in [("ref: refs/heads/loose", "1234567890ab"), ("ref: refs/heads/packed", "abcdef123456"),
                          ("fedcba9876543210", "fedcba987654")]:
        (gitdir / "HEAD").write_text(head + "\n")
        assert services.code_version() == version, head
