"""Configs that cannot run are refused before the run starts, naming the field; nothing is stored."""
from __future__ import annotations

import pytest

from jobs.models import Run
from tests.training.conftest import TINY_HYPER, snapshot
from training import services
from training.models import RegisteredModel, TrainingRun

pytestmark = pytest.mark.django_db


def start(base, **kwargs):
    kwargs.setdefault("recipe", "dpo")
    kwargs.setdefault("objective", "trl")
    kwargs.setdefault("snapshot_id", snapshot())
    kwargs.setdefault("hyperparameters", TINY_HYPER)
    return services.start_training(owner=base.owner, project=base.project, base_model=base, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"snapshot_id": "0123456789abcdef"}, "snapshot_id: no snapshot 0123456789abcdef"),
        ({"snapshot_id": "../etc"}, "snapshot_id: '../etc' is not a snapshot id"),
        ({"snapshot_id": snapshot("no-rankings"), "objective": "listwise"}, "has no rankings.jsonl"),
        ({"snapshot_id": snapshot("no-rankings"), "recipe": "sft", "objective": "sft",
          "hyperparameters": {"max_steps": 1}}, "has no rankings.jsonl"),
        ({"snapshot_id": snapshot("no-rankings"), "objective": "group_robust"}, "has no baseline_pairs.jsonl"),
        ({"hyperparameters": {"use_peft": True, "lora_r": 0}}, "hyperparameters.lora_r: LoRA rank must be at least 1"),
        ({"gpus": 2}, "gpus: 2 asked, but a training node has 0"),
        ({"preset": "zero3"}, "preset: zero3 needs at least one GPU"),
        ({"objective": "nash"}, "objective: 'nash' is not an objective of dpo"),
        ({"recipe": "ppo"}, "recipe: unknown 'ppo'"),
        ({"hyperparameters": {"output_dir": "/etc"}}, "hyperparameters.output_dir: not a setting a run may change"),
        ({"hyperparameters": {"push_to_hub": True}}, "hyperparameters.push_to_hub: not a setting"),
        ({"hyperparameters": {"max_steps": "many"}}, "hyperparameters.max_steps: 'many' is not a int"),
        ({"hyperparameters": {"loss_type": ["sigmoid", "nope"]}}, "unknown DPO loss 'nope'"),
        ({"recipe": "sft", "objective": "sft", "hyperparameters": {"beta": 0.1}}, "hyperparameters.beta: not a setting of a sft run"),
        ({"recipe": "rl", "objective": "utilitarian", "hyperparameters": {}}, "reward_models: an RL run needs"),
    ],
)
def test_refused_before_start_with_the_field_named(tiny_base, kwargs, message):
    with pytest.raises(services.TrainingError, match=None) as caught:
        start(tiny_base, **kwargs)
    assert message in str(caught.value)
    assert not Run.objects.exists() and not TrainingRun.objects.exists()


def test_unknown_base_model_directory_is_refused(tiny_base, tmp_path):
    RegisteredModel.objects.filter(pk=tiny_base.pk).update(path=str(tmp_path / "gone"))
    tiny_base.refresh_from_db()
    with pytest.raises(services.TrainingError, match="base_model: model directory .* does not exist"):
        start(tiny_base)


def test_register_base_model_only_from_the_models_directory(tiny_base, tmp_path, training_dirs):
    owner, project = tiny_base.owner, tiny_base.project
    with pytest.raises(services.TrainingError, match="path: .* is outside the allowed directories"):
        services.register_base_model(owner=owner, project=project, name="x", path=str(tmp_path))
    with pytest.raises(services.TrainingError, match="path: .* is outside the allowed directories"):
        services.register_base_model(owner=owner, project=project, name="x", path="../../etc")
    with pytest.raises(services.TrainingError, match="no config.json"):
        services.register_base_model(owner=owner, project=project, name="x", path=str(training_dirs["models"]))
    with pytest.raises(services.TrainingError, match="hub_id: 'not a hub id'"):
        services.register_base_model(owner=owner, project=project, name="x", hub_id="not a hub id")
    assert tiny_base.size_bytes == services.dir_size(training_dirs["tiny"]) > 0
    assert tiny_base.lineage["recipe"] == "external"


def test_a_hub_id_is_fetched_by_a_worker_not_by_the_web_process(tiny_base, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: pytest.fail("downloaded in the web process"))
    model = services.register_base_model(owner=tiny_base.owner, project=tiny_base.project, name="hub",
                                         hub_id="HuggingFaceTB/SmolLM2-135M-Instruct")
    assert model.status == RegisteredModel.Status.FETCHING and not model.path
    assert model.fetch_run.kind == "model-fetch" and model.fetch_run.status == Run.Status.QUEUED
    with pytest.raises(services.TrainingError, match="base_model: model hub is not ready"):
        start(model)


def test_the_run_yaml_holds_explicit_defaults_and_the_researchers_settings(tiny_base):
    training = start(tiny_base, hyperparameters={**TINY_HYPER, "use_peft": True, "lora_r": 4})
    values = services.recipe_yaml(training.run.config)
    assert values["gradient_checkpointing"] is False and values["learning_rate"] == TINY_HYPER["learning_rate"]
    assert values["use_peft"] is True and values["lora_r"] == 4
    assert values["snapshot_id"] == snapshot() and values["objective"] == "trl"
    assert values["config_hash"] == training.config_hash
    assert training.run.queue == "gpu" and training.dataset == "pairs"
    # The hash ignores where the model is written, so matched runs can be compared by it.
    other = start(tiny_base, hyperparameters={**TINY_HYPER, "use_peft": True, "lora_r": 4})
    assert other.config_hash == training.config_hash and other.output_dir != training.output_dir


def test_an_experiment_needs_snapshots_with_the_same_item_split(tiny_base, training_dirs):
    import json

    from tests.training.snapshots import write_snapshot

    other = write_snapshot(training_dirs["snapshots"], seed="moved-split")
    rows = [json.loads(line) for line in (other / "pairs.jsonl").read_text().splitlines()]
    for row in rows:
        if row["item"] == "item-0":
            row["split"] = "test"
    (other / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(services.TrainingError, match="snapshots: item item-0 is train in .* but test in"):
        services.create_experiment(owner=tiny_base.owner, project=tiny_base.project, name="e", base_model=tiny_base,
                                   snapshots={"humans": snapshot(), "synthetic": other.name, "both": snapshot("both")})
    from training.models import Experiment

    assert not Experiment.objects.exists() and not Run.objects.exists()


def test_a_snapshot_of_another_project_is_not_trainable_here(tiny_base):
    from aggregation.models import Snapshot
    from annotation.services import create_project

    other = create_project(owner=tiny_base.owner, name="Other")
    Snapshot.objects.create(project=other, snapshot_id=snapshot("both"), pool_name="all", rule="borda",
                            pair_strategy="all", source_hash="x")
    with pytest.raises(services.TrainingError, match=f"snapshot_id: no snapshot {snapshot('both')}"):
        start(tiny_base, snapshot_id=snapshot("both"))
    assert snapshot("both") not in services.list_snapshots(tiny_base.project)
    assert snapshot("both") in services.list_snapshots(other) and snapshot() in services.list_snapshots(other)
    assert not Run.objects.exists()
