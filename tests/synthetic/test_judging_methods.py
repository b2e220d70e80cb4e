from __future__ import annotations

import math

import pytest

from synthetic.backends.base import GenerationOutput
from synthetic.judging.listwise import labels_to_ids, parse_listwise
from synthetic.judging.order import shown_order
from synthetic.judging.pairwise import copeland_weak_order, p_first, preference_matrix, shown_pairs
from synthetic.judging.types import JudgeItem, ResponseText

ITEM = JudgeItem("i1", "p", tuple(ResponseText(f"r{j}", f"t{j}") for j in range(1, 6)))


@pytest.mark.parametrize(
    ("text", "order", "ties", "expected"),
    [
        ("B > A > C", ["r3", "r1", "r2"], False, [["r1"], ["r3"], ["r2"]]),
        ("C = A > B", ["r3", "r1", "r2"], True, [["r3", "r2"], ["r1"]]),
        (" A>B ", ["x", "y"], False, [["x"], ["y"]]),
    ],
)
def test_listwise_answers_map_labels_back_to_response_ids(
    text: str, order: list[str], ties: bool, expected: list
) -> None:
    assert parse_listwise(GenerationOutput(text=text), order, ties) == (expected, None)


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (GenerationOutput(text="I like A best"), "unparseable ranking"),
        (GenerationOutput(text="A > B"), "unparseable ranking"),  # C missing
        (GenerationOutput(text="A = B > C"), "ties are not allowed"),
        (GenerationOutput(text="", error="server returned 500 three times"), "server returned 500"),
    ],
)
def test_listwise_failures_carry_a_reason(output: GenerationOutput, reason: str) -> None:
    ranking, failure = parse_listwise(output, ["r1", "r2", "r3"], allow_ties=False)
    assert ranking is None
    assert failure is not None and reason in failure


def test_labels_to_ids() -> None:
    assert labels_to_ids([["C"], ["A", "B"]], ["r9", "r8", "r7"]) == [["r7"], ["r9", "r8"]]


def test_shown_order_is_seeded_per_judgment_and_stable() -> None:
    a = shown_order(ITEM, "p1", seed=7, orders_per_item=None)
    assert a == shown_order(ITEM, "p1", seed=7, orders_per_item=None)
    assert sorted(a) == ITEM.response_ids
    orders = {tuple(shown_order(ITEM, f"p{i}", seed=7, orders_per_item=None)) for i in range(40)}
    assert len(orders) > 20  # really shuffled per judgment
    other_seed = [shown_order(ITEM, f"p{i}", seed=8, orders_per_item=None) for i in range(10)]
    assert other_seed != [
        shown_order(ITEM, f"p{i}", seed=7, orders_per_item=None) for i in range(10)
    ]


def test_orders_per_item_limits_distinct_prefixes_and_balances_positions() -> None:
    orders = [tuple(shown_order(ITEM, f"p{i}", seed=1, orders_per_item=5)) for i in range(500)]
    assert len(set(orders)) == 5
    first_counts = {rid: sum(o[0] == rid for o in orders) for rid in ITEM.response_ids}
    assert min(first_counts.values()) > 60  # each response leads about 100 times
    assert len({tuple(shown_order(ITEM, f"p{i}", 1, 2)) for i in range(100)}) == 2


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        ({"A": math.log(0.6), "B": math.log(0.2)}, 0.75),
        ({"A": -1000.0, "B": -1000.0}, 0.5),
        ({"A": -2.0}, 1.0),  # B not among the engine's top log-probs
        ({}, None),
    ],
)
def test_p_first_renormalises_over_the_two_options(logprobs: dict, expected: float | None) -> None:
    got = p_first(logprobs, ("A", "B"))
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_both_orders_are_averaged() -> None:
    prefs = preference_matrix([("r1", "r2", 0.9), ("r2", "r1", 0.3)])
    assert prefs[("r1", "r2")] == pytest.approx((0.9 + 0.7) / 2)
    assert prefs[("r2", "r1")] == pytest.approx(1 - (0.9 + 0.7) / 2)


def test_shown_pairs_one_or_both_orders() -> None:
    first_of = {("a", "b"): False, ("a", "c"): True, ("b", "c"): True}
    assert shown_pairs(["a", "b", "c"], first_of, both=False) == [
        ("b", "a"),
        ("a", "c"),
        ("b", "c"),
    ]
    assert len(shown_pairs(["a", "b", "c"], first_of, both=True)) == 6


def _prefs(table: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    full = dict(table)
    full.update({(b, a): 1 - p for (a, b), p in table.items()})
    return full


@pytest.mark.parametrize(
    ("table", "margin", "expected"),
    [
        # a beats everyone, b beats c: a strict order
        ({("a", "b"): 0.9, ("a", "c"): 0.8, ("b", "c"): 0.7}, 0.05, [["a"], ["b"], ["c"]]),
        # b vs c within the margin of 0.5: tied
        ({("a", "b"): 0.9, ("a", "c"): 0.8, ("b", "c"): 0.53}, 0.05, [["a"], ["b", "c"]]),
        # the same pair outside a smaller margin
        ({("a", "b"): 0.9, ("a", "c"): 0.8, ("b", "c"): 0.53}, 0.01, [["a"], ["b"], ["c"]]),
        # a Condorcet cycle: everyone scores 1, one tie group
        ({("a", "b"): 0.9, ("b", "c"): 0.9, ("a", "c"): 0.1}, 0.05, [["a", "b", "c"]]),
        # all indifferent
        ({("a", "b"): 0.5, ("b", "c"): 0.49, ("a", "c"): 0.51}, 0.05, [["a", "b", "c"]]),
    ],
)
def test_copeland_weak_order(table: dict, margin: float, expected: list) -> None:
    assert copeland_weak_order(["a", "b", "c"], _prefs(table), margin) == expected
