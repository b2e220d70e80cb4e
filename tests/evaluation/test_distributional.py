"""Distributional alignment: 1 - Jensen-Shannon distance against hand-computed values, and the
ceiling and baseline behave as their definitions say."""
from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.benchmarks import distributional as dist


def test_js_distance_by_hand() -> None:
    assert dist.js_distance(np.array([1, 0]), np.array([1, 0])) == 0.0
    assert dist.js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); JSD = 1/2 [log2(4/3)] + 1/2 [1/2 log2(2/3) + 1/2 log2(2)]
    jsd = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert dist.js_distance(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(math.sqrt(jsd))


def test_first_choice_shares_split_ties() -> None:
    shares = dist.first_choice_shares(["a", "b", "c"], [[["a"], ["b"]], [["a", "b"], ["c"]], [["c"]], [["a"]]])
    assert shares.tolist() == pytest.approx([2.5 / 4, 0.5 / 4, 1 / 4])


def _item(n_a: int, n_b: int, scores: list[float]) -> tuple:
    return ["a", "b"], [[["a"], ["b"]]] * n_a + [[["b"], ["a"]]] * n_b, scores


def test_model_matching_the_split_scores_one_and_beats_uniform() -> None:
    # raters 3:1 -> p(a) = 0.75; sigmoid(log 3) = 0.75 exactly
    result = dist.alignment([_item(6, 2, [math.log(3), 0.0])], n_splits=50)
    assert result["alignment"] == pytest.approx(1.0)
    assert result["uniform_baseline"] < 1.0
    assert result["n_items"] == 1


def test_uniform_model_equals_uniform_baseline_and_items_with_few_raters_are_left_out() -> None:
    items = [_item(5, 1, [0.0, 0.0]), _item(2, 2, [0.0, 0.0]), _item(1, 1, [9.0, 0.0])]
    result = dist.alignment(items, min_raters=4)
    assert result["n_items"] == 2
    assert result["alignment"] == pytest.approx(result["uniform_baseline"])


def test_split_half_ceiling_is_one_for_unanimous_raters_and_lower_for_split_ones() -> None:
    unanimous = dist.alignment([_item(10, 0, [1.0, 0.0])])
    split = dist.alignment([_item(5, 5, [1.0, 0.0])], n_splits=50, seed=1)
    assert unanimous["split_half_ceiling"] == pytest.approx(1.0)
    assert split["split_half_ceiling"] < 1.0


def test_no_items_gives_no_numbers() -> None:
    assert dist.alignment([])["alignment"] is None
