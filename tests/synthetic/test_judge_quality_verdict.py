"""benchmarks/judge_quality.py's choice of the default method: a position-driven method's accuracy
does not compete, and a best method at chance is reported as such."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "judge_quality", Path(__file__).resolve().parents[2] / "benchmarks" / "judge_quality.py"
)
judge_quality = sys.modules["judge_quality"] = importlib.util.module_from_spec(SPEC)  # dataclasses look it up
SPEC.loader.exec_module(judge_quality)
Row = judge_quality.Row
ONE, TWO, NONE = "first shown won (chance 50%)", "answer flipped with the order", "n/a (no positions)"


def row(method, accuracy, position, label, half_width=0.069):
    return Row(method, 200, accuracy, half_width, 0.0, position, label, 0.0, 0, 1.0)


@pytest.mark.parametrize(
    ("position", "label", "expected"),
    [
        (1.0, ONE, True), (0.0, ONE, True), (0.5, ONE, False), (0.7, ONE, False), (0.8, ONE, True),
        (0.995, TWO, True), (0.5, TWO, False), (0.1, TWO, False), (math.nan, NONE, False),
    ],
)
def test_degenerate_means_over_half_of_the_answers_follow_position(position, label, expected):
    assert judge_quality.degenerate(row("m", 0.5, position, label)) is expected


def test_the_session_measurement_picks_pointwise_and_says_it_is_at_chance():
    # The 200-pair figures of 2026-12-02 (SmolLM2-135M): the one-order listwise judge had the top
    # accuracy only because the first-shown response always won.
    rows = [
        row("listwise, one order", 0.55, 1.0, ONE),
        row("listwise, debiased", 0.5, 1.0, TWO, half_width=0.0),
        row("pairwise, both orders", 0.465, 0.995, TWO),
        row("pointwise", 0.465, math.nan, NONE),
    ]
    verdict = judge_quality.verdict(rows)
    assert verdict.startswith("best: pointwise (0.465")
    assert "NOT above chance" in verdict
    assert "left out: listwise, one order, listwise, debiased, pairwise, both orders" in verdict


def test_a_method_above_chance_is_named_so():
    rows = [row("pairwise, both orders", 0.70, 0.2, TWO, half_width=0.06), row("pointwise", 0.6, math.nan, NONE)]
    assert judge_quality.verdict(rows) == "best: pairwise, both orders (0.700 ± 0.060, n = 200; above chance)"


def test_every_method_position_driven_has_no_best():
    assert judge_quality.verdict([row("a", 0.9, 1.0, ONE)]).startswith("best: none")
