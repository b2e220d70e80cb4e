"""Signal figures of a run, on hand-built judgment records with hand-computed answers."""

from __future__ import annotations

import pytest

from synthetic.judging import JudgeOptions, judge_batch
from synthetic.judging.signal import (
    pair_agreement,
    position_distribution,
    proportion,
    rank_credits,
    signal_report,
)
from synthetic.judging.types import JudgmentRecord, PairProbability, PermutationOutput


def listwise(item: str, persona: str, perms: list[tuple[list[str], list[list[str]]]]) -> JudgmentRecord:
    record = JudgmentRecord(item, persona, "m", "listwise", "listwise_v2", 0, perms[0][0], "raw")
    record.permutations = [PermutationOutput(order, "raw", ranking) for order, ranking in perms]
    record.ranking = perms[0][1]
    return record


def reverse(order: list[str]) -> list[list[str]]:
    return [[x] for x in reversed(order)]


def test_rank_credits_spread_ties_over_their_ranks() -> None:
    rows = rank_credits(["a", "b", "c"], [["c"], ["a", "b"]])
    assert rows == [[0.0, 0.5, 0.5], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]


def test_a_reverse_copying_rater_is_flagged_degenerate() -> None:
    orders = [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    records = [listwise(f"i{n}", f"p{m}", [(o, reverse(o)) for o in orders]) for n in range(4) for m in range(3)]
    report = signal_report(records)
    matrix = report.position_distribution[3]
    # Every shown position lands on the mirrored rank: first shown is always last.
    assert matrix == [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    assert report.position_decisions[3] == 36
    assert report.shown_or_reverse is not None and report.shown_or_reverse.value == 1.0
    assert report.shown_or_reverse_chance == pytest.approx(1 / 3)
    # Same persona, other permutation: always a different ranking.
    assert report.within_persona is not None and report.within_persona.value == 1.0
    assert any("shown order or its reverse" in reason for reason in report.degenerate)


def test_a_content_reading_rater_is_not_flagged_and_agrees_with_the_reference() -> None:
    orders = [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    truth = [["b"], ["c"], ["a"]]
    records = [listwise(f"i{n}", f"p{m}", [(o, truth) for o in orders]) for n in range(4) for m in range(3)]
    report = signal_report(records, references={"i0": truth, "i1": [["a"], ["b"], ["c"]]})
    assert report.degenerate == []
    assert report.shown_or_reverse is not None and report.shown_or_reverse.value == pytest.approx(1 / 3)
    assert report.within_persona is not None and report.within_persona.value == 0.0
    # All personas agree too: no persona sensitivity.
    assert report.between_personas is not None and report.between_personas.value == 0.0
    # i0: 3 judgments agree fully; i1 (a > b > c): only b > c of 3 pairs, so 1/3 each.
    assert report.reference is not None
    assert report.reference.value == pytest.approx((3 * 1 + 3 * (1 / 3)) / 6)
    assert report.reference_items == 2


def test_pairwise_first_always_wins_is_degenerate() -> None:
    record = JudgmentRecord("i", "p", "m", "pairwise_logprob", "pairwise_v1", 0, ["a", "b"], "raw")
    record.pairs = [PairProbability("a", "b", 0.9), PairProbability("b", "a", 0.8)]
    record.ranking = [["a", "b"]]
    report = signal_report([record])
    assert report.position_flips is not None and report.position_flips.value == 1.0
    assert report.position_distribution[2] == [[1.0, 0.0], [0.0, 1.0]]
    assert any("two-way answers change" in reason for reason in report.degenerate)


def test_pair_agreement_counts_ties_as_half() -> None:
    assert pair_agreement([["a"], ["b"]], [["a"], ["b"]]) == 1.0
    assert pair_agreement([["b"], ["a"]], [["a"], ["b"]]) == 0.0
    assert pair_agreement([["a", "b"]], [["a"], ["b"]]) == 0.5
    assert pair_agreement([["a"], ["b"]], [["a", "b"]]) is None


def test_low_confidence_share_and_wilson_interval() -> None:
    records = []
    for n, mass in enumerate([0.1, 0.2, 0.9]):
        r = JudgmentRecord(f"i{n}", "p", "m", "pointwise", "pointwise_v1", 0, ["a", "b"], "raw")
        r.ranking, r.label_mass = [["a", "b"]], mass
        records.append(r)
    report = signal_report(records, label_mass_threshold=0.5)
    assert report.low_confidence is not None and report.low_confidence.value == pytest.approx(2 / 3)
    assert report.all_tied is not None and report.all_tied.value == 1.0
    assert len(report.degenerate) == 2
    interval = proportion(5, 10)
    assert interval is not None and interval.low == pytest.approx(0.2366, abs=1e-3)
    assert interval.high == pytest.approx(0.7634, abs=1e-3)


def test_position_distribution_of_the_fake_engine_is_near_uniform() -> None:
    from tests.synthetic.test_judging_runner import ITEMS, PERSONAS, fake

    records = judge_batch(fake(), ITEMS, PERSONAS * 4, JudgeOptions(permutations=2), seed=3)
    shares, counts = position_distribution(records)
    for k, matrix in shares.items():
        for row in matrix:
            assert sum(row) == pytest.approx(1.0)
            assert max(row) < 0.5 + 1 / k, (k, matrix, counts[k])
