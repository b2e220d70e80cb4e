"""Our DPOTrainer subclass against TRL's own DPOTrainer on the tiny model: with all weights 1,
one group, or two responses per ranking, the first batch's loss is TRL's sigmoid DPO loss."""
from __future__ import annotations

import pytest
import torch

from tests.training.snapshots import write_snapshot
from training.recipes import common

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.tiny_models import build_tiny_model

    root = tmp_path_factory.mktemp("trainers")
    model_dir = build_tiny_model(root / "tiny")
    snap = write_snapshot(root / "snapshots", items=4)
    rows = [r for r in common.read_jsonl(snap / "pairs.jsonl") if r["split"] == "train"][:2]
    return root, str(model_dir), rows


def trainer(root, model_dir, dataset, objective=None, groups=None):
    from trl import DPOConfig, DPOTrainer

    from training.recipes.trainers import PluralisticDPOTrainer

    args = DPOConfig(output_dir=str(root / f"out-{objective}"), bf16=False, use_cpu=True, max_length=64,
                     per_device_train_batch_size=2, report_to="none", gradient_checkpointing=False, beta=0.3)
    kwargs = {"model": model_dir, "args": args, "train_dataset": dataset,
              "processing_class": common.tokenizer_for(model_dir)}
    if objective is None:
        return DPOTrainer(**kwargs)
    return PluralisticDPOTrainer(**kwargs, objective=objective, group_names=groups)


def first_loss(t) -> float:
    batch = t.data_collator([t.train_dataset[i] for i in range(len(t.train_dataset))])
    t.model.eval()  # no dropout: the same weights give the same numbers
    with torch.no_grad():
        return t.compute_loss(t.model, batch).item()


def test_weighted_with_unit_weights_group_robust_with_one_group_and_listwise_of_two_are_trl_dpo(setup):
    root, model_dir, rows = setup
    reference = first_loss(trainer(root, model_dir, common.pair_dataset(rows)))
    assert reference == pytest.approx(0.6931, abs=0.01)  # random tiny model: about log 2

    weighted = common.pair_dataset([{**r, "vote_share": 1.0} for r in rows], extras=("vote_share",))
    assert first_loss(trainer(root, model_dir, weighted, "weighted")) == pytest.approx(reference, rel=1e-5)

    grouped = common.pair_dataset([{**r, "group_id": 0} for r in rows], extras=("group_id",))
    assert first_loss(trainer(root, model_dir, grouped, "group_robust", ["all"])) == pytest.approx(reference, rel=1e-5)

    from datasets import Dataset

    rankings = Dataset.from_list([
        {"prompt": r["prompt"], "levels": [0, 1],
         "responses": [{"id": "a", "content": r["chosen"][0]["content"]},
                       {"id": "b", "content": r["rejected"][0]["content"]}]}
        for r in rows
    ])
    assert first_loss(trainer(root, model_dir, rankings, "listwise")) == pytest.approx(reference, rel=1e-5)


def test_vote_shares_change_the_loss_as_weights(setup):
    root, model_dir, rows = setup
    unit = first_loss(trainer(root, model_dir, common.pair_dataset(
        [{**r, "vote_share": 1.0} for r in rows], extras=("vote_share",)), "weighted"))
    half = first_loss(trainer(root, model_dir, common.pair_dataset(
        [{**r, "vote_share": 0.5} for r in rows], extras=("vote_share",)), "weighted"))
    assert half == pytest.approx(unit / 2, rel=1e-5)
