"""The recipes read a snapshot frozen by the aggregation app (not only our contract fixture):
a random project's rankings -> create_snapshot -> one training step of each recipe, in process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregation.snapshots import SnapshotInputs, create_snapshot
from tests.aggregation.factories import random_world

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]


@pytest.mark.parametrize(
    ("recipe", "extra"),
    [("dpo", ["--objective", "group_robust", "--group_by", ""]), ("dpo", ["--objective", "listwise"]),
     ("dpo", ["--objective", "weighted"]), ("sft", []), ("reward", [])],
)
def test_a_recipe_trains_on_an_aggregation_snapshot(training_roots, settings, tmp_path, recipe, extra):
    from django.contrib.auth import get_user_model
    from trl import DPOConfig, RewardConfig, SFTConfig

    from training.recipes import common, dpo, reward, sft

    settings.VAR_DIR = tmp_path / "var"
    settings.SNAPSHOTS_DIR = settings.VAR_DIR / "snapshots"
    owner = get_user_model().objects.create_user("agg-owner")
    world = random_world(owner, seed=5, n_items=10, ks=(3, 4))
    snap, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda", seed=1))
    out = tmp_path / "out"
    argv = ["--model_name_or_path", str(training_roots["tiny"]), "--snapshot_dir", str(snap.path),
            "--output_dir", str(out), "--max_steps", "1", "--per_device_train_batch_size", "2",
            "--learning_rate", "1e-3", "--report_to", "none", "--save_strategy", "no", "--max_length", "256",
            "--gradient_checkpointing", "false", "--logging_steps", "1", *extra]
    module, config = {"dpo": (dpo, DPOConfig), "sft": (sft, SFTConfig), "reward": (reward, RewardConfig)}[recipe]
    module.main(*common.parse(config, argv))
    summary = json.loads((out / "rlchf_run.json").read_text())
    assert summary["snapshot"] == snap.snapshot_id and summary["rows"]["given"] > 0 and summary["steps"] == 1
    assert json.loads((out / "lineage.json").read_text())["snapshot"] == snap.snapshot_id
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first["loss"] == first["loss"]  # a number, not NaN
    if "group_robust" in extra:  # the aggregation app's baseline pairs carry no group: grouped by source
        assert {k for k in first if k.startswith("group_weight/")} <= {"group_weight/human", "group_weight/synthetic"}
    assert Path(out / "model.safetensors").is_file()
