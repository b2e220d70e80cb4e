"""Positional rules: Borda, plurality, mean rank. Scores are weighted sums over ballots."""

from __future__ import annotations

import numpy as np

from ..orders import levels_from_scores
from ..pairwise import counted_margins, small_group, snap, total_weight
from ..profiles import ProfileGroup
from .registry import RuleOutput, register


def _small_integer_weights(weights: np.ndarray) -> bool:
    """Whether float32 sums of half-integer values (up to 32) times ``weights`` are exact."""
    small = weights.sum(axis=1).max(initial=0) * 64 < 2**24
    return bool(small and np.all(weights == np.round(weights)))


def small_integer_group(group: ProfileGroup) -> bool:
    """:func:`_small_integer_weights` of the group's weights, kept on the (immutable) group."""
    flag: bool | None = group.__dict__.get("_small_integer")
    if flag is None:
        flag = _small_integer_weights(group.weights)
        group.__dict__["_small_integer"] = flag
    return flag


def weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_v weights[n, v] * values[n, v, K]`` -> ``[n, K]``.

    Uses a float32 matrix product (several times faster) only when it is exact: small integer
    weights and half-integer values (Borda points); otherwise float64, whose last-bit summation
    differences the callers remove with :func:`~socialchoice.pairwise.snap`."""
    if _small_integer_weights(weights) and _half_integers(values):
        return _sum32(values, weights)
    return np.einsum("nvk,nv->nk", values.astype(np.float64), weights)


def _sum32(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    v32 = values.astype(np.float32, copy=False)
    return np.matmul(weights.astype(np.float32)[:, None, :], v32)[:, 0].astype(np.float64)


def _half_integers(values: np.ndarray) -> bool:
    twice = values * 2
    return bool(np.all(twice == np.round(twice)))


def _by_scores(group: ProfileGroup, scores: np.ndarray) -> RuleOutput:
    scores = snap(scores, total_weight(group))
    return RuleOutput(scores, levels_from_scores(scores))


def borda_points(ranks: np.ndarray) -> np.ndarray:
    """Tie-aware Borda points ``[n, V, K]``: alternatives ranked below + half the tied ones."""
    ranked = ~np.isnan(ranks)
    k_v = ranked.sum(axis=2, keepdims=True).astype(np.float32)
    return np.where(ranked, k_v - 1 - ranks, 0.0)


@register("borda", axioms=("anonymity", "neutrality", "pareto", "condorcet_loser",
                           "monotonicity"))
def borda(group: ProfileGroup) -> RuleOutput:
    """Borda count (tie-aware).

    Definition: each voter gives an alternative one point per alternative she ranks strictly below
    it and half a point per alternative tied with it (for linear orders: K-1 for first place down
    to 0); the score is the weighted sum over voters. Under ``partial="ignore"`` a voter scores
    only among the alternatives she ranked. Higher score ranks higher.
    Ties: alternatives with equal scores are tied in the collective order; nothing else breaks ties.
    Complexity: O(V K) per item after the rank matrix is built.
    Axioms: anonymity, neutrality, Pareto, monotonicity, reinforcement, Condorcet loser (never on
    top); not Condorcet-consistent; NOT independent of clones (adding near-duplicates of an
    alternative adds points to it: "teaming"), which is why all-pairs RLHF inherits clone bias.
    Reference: J.-C. de Borda (1781); H. P. Young, "An axiomatization of Borda's rule", J. Econ.
    Theory 9 (1974).
    """
    w = group.weights
    if group.partial == "bottom" and small_group(group):
        m = counted_margins(group)  # 0/1 weights: points = (K - 1 + row sum of margins) / 2
        if m is not None:
            scores = ((group.k - 1) * w.sum(axis=1)[:, None] + m.sum(axis=2)) / 2.0
            return RuleOutput(scores, levels_from_scores(scores), {"margins": m})
    complete = group.partial == "bottom" and _half_integers(group.ranks)
    if complete and small_integer_group(group):
        # Complete ballots: points = K - 1 - rank (fractional ranks are half-integers, so the
        # float32 sum is exact and equals the general path's).
        return _by_scores(group, (group.k - 1) * w.sum(axis=1)[:, None] - _sum32(group.ranks, w))
    return _by_scores(group, weighted_sum(borda_points(group.ranks), w))


@register("plurality", axioms=("anonymity", "neutrality", "monotonicity"))
def plurality(group: ProfileGroup) -> RuleOutput:
    """Plurality (first-place votes).

    Definition: each voter's weight goes to the alternatives in her top tie group, split equally
    among them; the score is the total received. Higher score ranks higher.
    Ties: equal scores are tied (so everything outside all top groups ties at the bottom).
    Complexity: O(V K) per item.
    Axioms: anonymity, neutrality, monotonicity; not Pareto (two alternatives nobody puts first
    tie), not Condorcet-consistent, NOT independent of clones (vote splitting).
    Reference: see e.g. F. Brandt et al. (eds.), Handbook of Computational Social Choice (2016),
    ch. 1.
    """
    if group.linear and small_integer_group(group):
        # Linear ballots: the first choice has rank 0; exact integer sums, as below.
        scores = np.matmul(group.weights[:, None, :], group.ranks == 0)[:, 0, :]
        return RuleOutput(scores, levels_from_scores(scores))
    ranks_t = group.ranks.transpose(0, 2, 1).copy()  # C order: reduce over K rows
    nan = np.isnan(ranks_t)
    if nan.any():
        ranks_t[nan] = np.inf
    top = ranks_t == ranks_t.min(axis=1, keepdims=True)
    count = np.add.reduce(top, axis=1, keepdims=True, dtype=np.int64)
    most = count.max(initial=0)
    share_t = top if most == 1 else top / np.maximum(count, 1)
    if most <= 2 and small_integer_group(group):
        # shares are 0, 1/2 or 1 and weights small integers: the float64 sums are exact
        scores = np.matmul(share_t, group.weights[:, :, None])[:, :, 0]
        return RuleOutput(scores, levels_from_scores(scores))
    share_t = top / np.maximum(count, 1)
    share = np.ascontiguousarray(share_t.transpose(0, 2, 1))
    return _by_scores(group, weighted_sum(share, group.weights))


@register("mean_rank", axioms=("anonymity", "neutrality", "pareto", "monotonicity"))
def mean_rank(group: ProfileGroup) -> RuleOutput:
    """Mean rank.

    Definition: score = minus the weighted mean 1-based position of the alternative over the voters
    who ranked it (tied alternatives share the mean of their positions). With complete ballots this
    orders like Borda; under ``partial="ignore"`` it averages only over voters who ranked it, and an
    alternative nobody ranked gets score -(K + 1).
    Ties: equal scores are tied.
    Complexity: O(V K) per item.
    Axioms: anonymity, neutrality, Pareto, monotonicity (complete ballots); NOT independent of
    clones (like Borda).
    Reference: the "average rank" aggregate used in crowd ranking, e.g. Dwork et al., "Rank
    aggregation methods for the web", WWW 2001.
    """
    ranked = ~np.isnan(group.ranks)
    pos = np.where(ranked, group.ranks + 1.0, 0.0)
    total = weighted_sum(pos, group.weights)
    count = weighted_sum(ranked.astype(np.float32), group.weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.where(count > 0, count, 1), group.k + 1.0)
    scores = -np.round(mean, 9)
    return RuleOutput(scores, levels_from_scores(scores))
