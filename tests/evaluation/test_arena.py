"""Blind-comparison statistics on hand-made rankings: battles, win rates, matrices, Bradley-Terry
with ties against closed forms, bootstrap, and the group-size threshold."""
from __future__ import annotations

import math

import pytest

from evaluation.benchmarks import arena

MODELS = ["base", "dpo"]


def test_battles_from_weak_orders_with_ties() -> None:
    wins, battles = arena.battle_counts([[["a"], ["b", "c"]], [["c"], ["a"], ["b"]]], ["a", "b", "c"])
    assert battles.tolist() == [[0, 2, 2], [2, 0, 2], [2, 2, 0]]
    assert wins.tolist() == [[0, 2, 1], [0, 0, 0.5], [1, 1.5, 0]]


def test_two_models_closed_form() -> None:
    # dpo beats base 3 times, loses once: p_dpo / p_base = 3 -> 400 log10 3 Elo apart
    orders = [[["dpo"], ["base"]]] * 3 + [[["base"], ["dpo"]]]
    result = arena.compare(orders, MODELS, n_boot=100)
    assert result["win_rate"] == {"base": 0.25, "dpo": 0.75}
    assert result["win_matrix"] == [[None, 0.25], [0.75, None]]
    assert result["battle_matrix"] == [[0, 4], [4, 0]]
    assert result["bt"]["dpo"] - result["bt"]["base"] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert (result["bt"]["dpo"] + result["bt"]["base"]) / 2 == pytest.approx(1000)
    assert not result["bt_prior_used"]
    ci = result["bt_ci"]["dpo"]
    assert ci["low"] <= result["bt"]["dpo"] <= ci["high"]


def test_ties_count_half_and_all_ties_give_equal_scores() -> None:
    result = arena.compare([[["base", "dpo"]]] * 5, MODELS, n_boot=10)
    assert result["win_rate"] == {"base": 0.5, "dpo": 0.5}
    assert result["bt"]["base"] == pytest.approx(result["bt"]["dpo"])
    # one win and two ties: dpo has 2 of 3 -> odds 2
    mixed = arena.compare([[["dpo"], ["base"]], [["base", "dpo"]], [["base", "dpo"]]], MODELS, n_boot=10)
    assert mixed["bt"]["dpo"] - mixed["bt"]["base"] == pytest.approx(400 * math.log10(2), abs=1e-6)


def test_a_model_that_never_wins_gets_a_finite_score_and_the_prior_is_reported() -> None:
    result = arena.compare([[["dpo"], ["base"]]] * 4, MODELS, n_boot=10)
    assert result["bt_prior_used"] and math.isfinite(result["bt"]["base"])
    assert result["bt"]["dpo"] > result["bt"]["base"]


def test_transitive_three_models_order() -> None:
    orders = [[["c"], ["b"], ["a"]]] * 6 + [[["b"], ["c"], ["a"]]] * 2 + [[["a"], ["c"], ["b"]]]
    bt = arena.compare(orders, ["a", "b", "c"], n_boot=10)["bt"]
    assert bt["c"] > bt["b"] > bt["a"]


def test_groups_below_the_threshold_are_left_out() -> None:
    rows = [([["dpo"], ["base"]], f"u{n}", {"country": "DE"}) for n in range(5)]
    rows += [([["base"], ["dpo"]], f"k{n}", {"country": "KE"}) for n in range(4)]
    rows += [([["base"], ["dpo"]], "k0", {"country": "KE"})] * 3  # same rater again: still 4 people
    groups = arena.compare_by_group(rows, MODELS, min_group=5, n_boot=10)
    assert list(groups) == ["country=DE"]
    assert groups["country=DE"]["win_rate"]["dpo"] == 1.0
