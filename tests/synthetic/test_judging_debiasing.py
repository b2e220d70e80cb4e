"""Permutations, Borda combination, pointwise ratings and label mass (engine parts on the tiny
real model; hand-computed expectations for the pure parts)."""

from __future__ import annotations

import json
import math

import pytest

from synthetic.backends.base import Backend, BackendConfig, GenerationOutput
from synthetic.judging import JudgeItem, JudgeOptions, Method, ResponseText, judge_batch
from synthetic.judging.listwise import combine_permutations
from synthetic.judging.order import permuted_orders
from synthetic.judging.pointwise import expected_rating, label_mass, scores_weak_order
from synthetic.judging.types import chunk_size_for
from synthetic.personas import PanelSpec, generate_panel

ITEM = JudgeItem("i1", "Best way to learn?", tuple(ResponseText(f"r{j}", f"way {j}") for j in range(1, 5)))
PERSONAS = generate_panel(PanelSpec(size=2, seed=1))


def test_permutations_with_n_equal_k_show_every_response_in_every_position() -> None:
    orders = permuted_orders(["a", "b", "c", "d"], 4, 0, "i", "p")
    for position in range(4):
        assert sorted(o[position] for o in orders) == ["a", "b", "c", "d"]
    assert permuted_orders(["a", "b", "c"], 1, 0) == [["a", "b", "c"]]
    # More permutations than responses: rotations first, then seeded shuffles, reproducibly.
    many = permuted_orders(["a", "b", "c"], 5, 0, "i", "p")
    assert many[:3] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert many == permuted_orders(["a", "b", "c"], 5, 0, "i", "p")


def test_borda_over_permutations_cancels_a_pure_position_preference() -> None:
    ids = ["a", "b", "c"]
    # A rater that always ranks the last-shown first, under the three rotations: no signal left.
    rotations = permuted_orders(ids, 3, 0)
    reversed_rankings = [[[x] for x in reversed(o)] for o in rotations]
    assert combine_permutations(ids, reversed_rankings, allow_ties=True) == [["a", "b", "c"]]
    # Strict projects: the first permutation's ranking breaks Borda ties.
    assert combine_permutations(ids, reversed_rankings, allow_ties=False) == [["c"], ["b"], ["a"]]
    # Hand-computed Borda: a = 2+1+2 = 5, b = 1+2+0 = 3, c = 0+0+1 = 1.
    rankings = [[["a"], ["b"], ["c"]], [["b"], ["a"], ["c"]], [["a"], ["c"], ["b"]]]
    assert combine_permutations(ids, rankings, allow_ties=True) == [["a"], ["b"], ["c"]]


def test_expected_rating_and_label_mass_by_hand() -> None:
    labels = ("1", "2", "3", "4", "5")
    logprobs = {"1": math.log(0.1), "2": -math.inf, "3": math.log(0.1), "4": -math.inf, "5": math.log(0.2)}
    assert label_mass(logprobs, labels) == pytest.approx(0.4)
    assert expected_rating(logprobs, labels) == pytest.approx((1 * 0.1 + 3 * 0.1 + 5 * 0.2) / 0.4)
    assert expected_rating({}, labels) is None
    scores = {"r1": 4.0, "r2": 3.95, "r3": 2.0, "r4": 3.9}
    assert scores_weak_order(["r1", "r2", "r3", "r4"], scores, 0.1) == [["r1", "r2", "r4"], ["r3"]]
    assert scores_weak_order(["r1", "r2", "r3", "r4"], scores, 0.0) == [["r1"], ["r2"], ["r4"], ["r3"]]


def test_chunk_size_adapts_to_the_run() -> None:
    assert chunk_size_for(12) == 2
    assert chunk_size_for(72) == 8
    assert chunk_size_for(100_000) == 64
    assert chunk_size_for(3) == 1
    assert chunk_size_for(100_000, 500) == 500


class _Scripted(Backend):
    """Scores from a fixed table keyed by the response text in the prompt (tests the record
    building; the engine itself is tested on the tiny model below)."""

    engine = "scripted"

    def generate(self, conversations, params):  # noqa: ANN001, ANN201
        return [GenerationOutput(text="") for _ in conversations]

    def score(self, conversations, options):  # noqa: ANN001, ANN201
        out = []
        for conv in conversations:
            best = "5" if "way 1" in conv[0]["content"] else "2"
            out.append({o: (math.log(0.3) if o == best else math.log(0.01)) for o in options})
        return out

    def rank(self, conversations, spec, params):  # noqa: ANN001, ANN201
        return [GenerationOutput(text="", error="no") for _ in conversations]


def test_pointwise_records_scores_ranking_and_mass() -> None:
    engine = _Scripted(BackendConfig(engine="scripted", model="m"))
    (record,) = judge_batch(engine, [ITEM], PERSONAS[:1], JudgeOptions(method=Method.POINTWISE), seed=0)
    assert record.ok and record.method == "pointwise"
    # Equal expected ratings stay tied even at margin 0 (nothing to order them by).
    assert record.ranking == [["r1"], ["r2", "r3", "r4"]]
    assert record.scores["r1"] > 4 > 3 > record.scores["r2"] == record.scores["r4"]
    assert record.label_mass == pytest.approx(0.34)
    assert {row["response"] for row in json.loads(record.raw_output)} == set(ITEM.response_ids)


def test_pointwise_and_listwise_on_the_tiny_real_model(tiny_backend) -> None:
    pointwise = judge_batch(
        tiny_backend, [ITEM], PERSONAS, JudgeOptions(method=Method.POINTWISE, allow_ties=True), seed=0
    )
    for record in pointwise:
        assert record.ok, record.failure
        assert set(record.scores) == set(ITEM.response_ids)
        assert all(1.0 <= s <= 5.0 for s in record.scores.values())
        assert record.label_mass is not None and 0.0 < record.label_mass <= 1.0
    listwise = judge_batch(tiny_backend, [ITEM], PERSONAS, JudgeOptions(permutations=4), seed=0)
    for record in listwise:
        assert record.ok and len(record.permutations) == 4
        masses = [p.label_mass for p in record.permutations]
        assert all(m is not None and 0.0 < m <= 1.0 for m in masses)
        assert record.label_mass == pytest.approx(sum(masses) / 4)
    pairwise = judge_batch(tiny_backend, [ITEM], PERSONAS[:1], JudgeOptions(method=Method.PAIRWISE_LOGPROB), seed=0)
    (record,) = pairwise
    # Both orders by default: every pair asked twice.
    assert len(record.pairs) == 12
    assert record.label_mass is not None and 0.0 < record.label_mass <= 1.0
