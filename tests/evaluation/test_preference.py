"""Held-out preference accuracy: hand-made cases, known predictors, per-group summary, bootstrap,
snapshot reading and RewardBench files (pairs and best-of-4)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.benchmarks import BenchmarkDataError, preference


def test_outcomes_count_ties_half() -> None:
    assert preference.pair_outcomes([2.0, -1.0, 0.0]).tolist() == [1.0, 0.0, 0.5]


def test_dpo_margin_is_the_implicit_reward_difference() -> None:
    # policy raises chosen by 2 nats and lowers rejected by 1 relative to the reference
    margin = preference.dpo_margins([-8.0], [-11.0], [-10.0], [-10.0], beta=0.5)
    assert margin.tolist() == [pytest.approx(0.5 * 2 - 0.5 * (-1))]
    # the reference alone never makes a preference: policy == reference gives a tie
    assert preference.dpo_margins([-3.0], [-4.0], [-3.0], [-4.0]).tolist() == [0.0]


@pytest.mark.parametrize(
    ("name", "margins", "accuracy"),
    [("always right", [1, 2, 3, 4], 1.0), ("always wrong", [-1, -2, -3, -4], 0.0),
     ("indifferent", [0, 0, 0, 0], 0.5), ("three of four", [1, 1, 1, -1], 0.75)],
)
def test_known_predictors(name, margins, accuracy) -> None:
    result = preference.group_accuracy({"collective": margins})
    assert result["collectives"]["collective"]["accuracy"] == accuracy, name


def test_per_group_worst_mean_and_gap_by_hand() -> None:
    result = preference.group_accuracy({
        "human": [1, 1, -1, 1],
        "synthetic": [1, -1],
        "group:country=DE": [1, 1, 1, -1],    # 0.75
        "group:country=KE": [1, -1, -1, -1],  # 0.25
        "group:country=US": [1, 1, 0, -1],    # 0.625
    }, n_boot=200)
    assert result["collectives"]["human"]["accuracy"] == 0.75
    assert result["collectives"]["synthetic"]["accuracy"] == 0.5
    assert set(result["groups"]) == {"country=DE", "country=KE", "country=US"}
    assert result["worst_group"] == "country=KE" and result["worst_group_accuracy"] == 0.25
    assert result["gap"] == pytest.approx(0.5)
    assert result["mean_group_accuracy"] == pytest.approx((0.75 + 0.25 + 0.625) / 3)
    for ci in (result["worst_group_ci"], result["gap_ci"], result["groups"]["country=DE"]["ci"]):
        assert 0.0 <= ci["low"] <= ci["high"] <= 1.0


def test_bootstrap_interval_is_seeded_narrows_with_n_and_covers_the_mean() -> None:
    rng = np.random.default_rng(1)
    small = rng.choice([1.0, -1.0], size=40, p=[0.7, 0.3])
    big = rng.choice([1.0, -1.0], size=4000, p=[0.7, 0.3])
    a = preference.group_accuracy({"c": small})["collectives"]["c"]
    b = preference.group_accuracy({"c": small})["collectives"]["c"]
    c = preference.group_accuracy({"c": big})["collectives"]["c"]
    assert a == b
    assert a["ci"]["low"] <= a["accuracy"] <= a["ci"]["high"]
    assert (c["ci"]["high"] - c["ci"]["low"]) < (a["ci"]["high"] - a["ci"]["low"]) / 5
    assert c["ci"]["low"] < 0.7 < c["ci"]["high"]


def test_empty_group_has_no_number_and_no_interval() -> None:
    result = preference.group_accuracy({"group:a": [1.0], "group:b": []})
    assert result["groups"]["b"] == {"n": 0, "accuracy": None, "ci": None}
    assert result["worst_group"] == "a"


def _pair(item: str, split: str = "test", **extra) -> str:
    return json.dumps({
        "prompt": [{"role": "user", "content": f"Q {item}?"}], "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}], "item": item, "split": split, **extra,
    })


def test_snapshot_collectives_reads_test_split_and_groups(tmp_path) -> None:
    (tmp_path / "pairs.jsonl").write_text("\n".join([_pair("a", "train"), _pair("b"), _pair("c")]) + "\n")
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "country=DE.jsonl").write_text(_pair("b", group={"country": "DE"}) + "\n")
    pairs = preference.snapshot_collectives(tmp_path, label="human")
    assert [(p.item, p.collective) for p in pairs] == [("b", "human"), ("c", "human"), ("b", "group:country=DE")]
    assert pairs[0].prompt == (("user", "Q b?"),) and pairs[0].chosen == "good"


def test_bad_snapshot_line_is_named(tmp_path) -> None:
    (tmp_path / "pairs.jsonl").write_text(_pair("a") + "\n" + json.dumps({"prompt": "x", "chosen": [], "rejected": []}) + "\n")
    with pytest.raises(BenchmarkDataError, match="pairs.jsonl line 2: field 'prompt' must be a list of chat turns"):
        preference.snapshot_collectives(tmp_path)


def test_rewardbench_pairs_and_best_of_four(tmp_path) -> None:
    path = tmp_path / "rb.jsonl"
    rows = [
        {"prompt": "p1", "chosen": "c", "rejected": "r", "subset": "chat"},
        {"prompt": "p2", "chosen": "c", "rejected": "r", "subset": "chat"},
        {"prompt": "p3", "chosen": ["c"], "rejected": ["r1", "r2", "r3"], "subset": "bo4"},
        {"prompt": "p4", "chosen": ["c"], "rejected": ["r1", "r2", "r3"], "subset": "bo4"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    items = preference.read_rewardbench(path)
    assert [len(i.rejected) for i in items] == [1, 1, 3, 3]
    # p3: chosen beats every rejected; p4: chosen beats two of three -> wrong
    result = preference.score_rewardbench(items, [1.0, 0.0, 5.0, 5.0], [[0.0], [1.0], [1.0, 2.0, 3.0], [1.0, 6.0, 2.0]])
    assert result["per_subset"]["chat"]["accuracy"] == 0.5
    assert result["per_subset"]["bo4"]["accuracy"] == 0.5
    assert result["overall"]["accuracy"] == 0.5 and result["subset_mean"] == 0.5
    # a best-of-4 tie at the top is not a win
    tie = preference.score_rewardbench(items[2:3], [3.0], [[1.0, 3.0, 2.0]])
    assert tie["overall"]["accuracy"] == 0.0


def test_rewardbench_bad_row_is_named(tmp_path) -> None:
    path = tmp_path / "rb.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": ["a", "b"], "rejected": "r"}) + "\n")
    with pytest.raises(BenchmarkDataError, match="rb.jsonl line 1: field 'chosen' must hold exactly one response"):
        preference.read_rewardbench(path)
