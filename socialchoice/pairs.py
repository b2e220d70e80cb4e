"""Preference pairs for training: from a collective weak order, or each rater's own ballot.

:func:`preference_pairs` turns a collective ranking into (chosen, rejected, margin) pairs by a
strategy; alternatives in the same tie group never produce a pair. :func:`per_rater_pairs` is the
standard-RLHF baseline: every rater's own strict pairwise preferences, kept as separate examples
with no aggregation, so the two datasets can be compared in training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .aggregate import Result
from .profiles import Profile

Strategy = Literal["all", "best_vs_rest", "best_vs_worst", "adjacent"]
MarginSource = Literal["scores", "support"]
Lookup = Callable[[str, str], float]
STRATEGIES: tuple[str, ...] = ("all", "best_vs_rest", "best_vs_worst", "adjacent")


@dataclass(frozen=True)
class Pair:
    """One preference pair; ``margin`` > 0 measures how clearly ``chosen`` beat ``rejected``."""

    chosen: str
    rejected: str
    margin: float


@dataclass(frozen=True)
class RaterPair:
    """One rater's own strict preference (the per-rater baseline); ``weight`` is the rater's."""

    rater: int
    chosen: str
    rejected: str
    weight: float


def group_pairs(n_groups: int, strategy: str) -> list[tuple[int, int]]:
    """Which (better group, worse group) index pairs a strategy takes from a weak order."""
    if strategy == "all":
        return [(i, j) for i in range(n_groups) for j in range(i + 1, n_groups)]
    if strategy == "best_vs_rest":
        return [(0, j) for j in range(1, n_groups)]
    if strategy == "best_vs_worst":
        return [(0, n_groups - 1)] if n_groups > 1 else []
    if strategy == "adjacent":
        return [(i, i + 1) for i in range(n_groups - 1)]
    raise ValueError(f"unknown strategy {strategy!r}; known: {STRATEGIES}")


def preference_pairs(
    result_or_order: Result | Sequence[Sequence[str]],
    scores: Mapping[str, float] | None = None,
    strategy: Strategy = "all",
    margin: MarginSource = "scores",
    support: Mapping[tuple[str, str], float] | None = None,
) -> list[Pair]:
    """Preference pairs of a collective weak order.

    ``margin="scores"``: the difference of the rule's scores (``result.scores`` or ``scores``).
    ``margin="support"``: the normalised pairwise margin of chosen over rejected (from
    ``result.margins``, or the ``support`` mapping ``(a, b) -> margin``). Pairs come out group by
    group in the strategy's order; inside a group in the order the ids are listed.
    """
    order, scores, lookup = _inputs(result_or_order, scores, margin, support)
    pairs = []
    for i, j in group_pairs(len(order), strategy):
        for a in order[i]:
            for b in order[j]:
                pairs.append(Pair(a, b, lookup(a, b)))
    return pairs


def _inputs(
    source: Result | Sequence[Sequence[str]],
    scores: Mapping[str, float] | None,
    margin: str,
    support: Mapping[tuple[str, str], float] | None,
) -> tuple[list[list[str]], Mapping[str, float] | None, Lookup]:
    if isinstance(source, Result):
        order = [list(g) for g in source.order]
        scores = source.scores if scores is None else scores
        if support is None and source.margins is not None:
            support = _support_map(source)
    else:
        order = [list(g) for g in source]
    if margin == "scores":
        if scores is None:
            raise ValueError("margin='scores' needs the rule's scores")
        sc = scores
        return order, scores, lambda a, b: float(sc[a] - sc[b])
    if margin == "support":
        if support is None:
            raise ValueError("margin='support' needs a Result with margins or a support mapping")
        sp = support
        return order, scores, lambda a, b: float(sp[(a, b)])
    raise ValueError(f"margin must be 'scores' or 'support', not {margin!r}")


def _support_map(result: Result) -> dict[tuple[str, str], float]:
    alts, m = result.alternatives, result.margins
    assert m is not None
    return {(a, b): float(m[i, j]) for i, a in enumerate(alts) for j, b in enumerate(alts)}


def per_rater_pairs(profile: Profile) -> list[RaterPair]:
    """Every rater's own strict pairwise preferences (ties and unranked-vs-unranked give none;
    under ``partial="ignore"`` pairs with an unranked alternative give none either). Raters with
    weight 0 are skipped. Ordered by rater, then by the alternatives' listed order."""
    r = profile.ranks
    strict = (r[:, :, None] < r[:, None, :]) & (profile.weights > 0)[:, None, None]
    voter, a, b = np.nonzero(strict)
    alts = profile.alternatives
    w = profile.weights
    return [
        RaterPair(int(v), alts[i], alts[j], float(w[v]))
        for v, i, j in zip(voter.tolist(), a.tolist(), b.tolist(), strict=True)
    ]
