"""Judging: persona raters ranking items through an engine (pure prompt building, output
parsing, seeded orders, position bias; `judge_batch` is the entry point for synthetic runs)."""

from __future__ import annotations

from synthetic.judging.bias import PositionBias, position_bias
from synthetic.judging.candidates import Candidate, CandidateSet, generate_candidates
from synthetic.judging.runner import iter_judgments, judge_batch, plan_judgments
from synthetic.judging.types import (
    JudgeItem,
    JudgeOptions,
    JudgmentRecord,
    Method,
    PairProbability,
    ResponseText,
)

__all__ = [
    "Candidate",
    "CandidateSet",
    "JudgeItem",
    "JudgeOptions",
    "JudgmentRecord",
    "Method",
    "PairProbability",
    "PositionBias",
    "ResponseText",
    "generate_candidates",
    "iter_judgments",
    "judge_batch",
    "plan_judgments",
    "position_bias",
]
