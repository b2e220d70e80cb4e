"""Instant-runoff as a ranking: iterated elimination of the weakest first-choice tallies."""

from __future__ import annotations

import functools

import numpy as np

from ..orders import levels_from_scores
from ..pairwise import snap, total_weight
from ..profiles import ProfileGroup, permutation_rows
from .positional import _small_integer_weights, small_integer_group, weighted_sum
from .registry import RuleOutput, register


def first_choice_tallies(group: ProfileGroup, remaining: np.ndarray) -> np.ndarray:
    """Weight each remaining alternative receives as a voter's top remaining choice
    (split equally among tied top choices; exhausted ballots count for nobody)."""
    ranks = np.where(remaining[:, None, :], np.nan_to_num(group.ranks, nan=np.inf), np.inf)
    best = ranks.min(axis=2, keepdims=True)
    top = (ranks == best) & np.isfinite(ranks)
    share = top / np.maximum(top.sum(axis=2, keepdims=True), 1)
    return snap(weighted_sum(share, group.weights), total_weight(group))


@register("instant_runoff", axioms=("anonymity", "neutrality"))
def instant_runoff(group: ProfileGroup) -> RuleOutput:
    """Instant-runoff voting as a ranking (iterated elimination).

    Definition: in each round every voter's weight goes to her highest-ranked remaining
    alternative (split equally over a tie group; a ballot with no ranked remaining alternative is
    exhausted). All alternatives with the lowest tally are eliminated together and form the next
    group from the bottom of the collective order; the rounds repeat until none remain, so the last
    survivors are on top. Score = the round in which the alternative was eliminated (higher is
    better).
    Ties: alternatives with equal lowest tallies leave in the same round and stay tied; this
    simultaneous elimination replaces the usual arbitrary tie-breaking. pref-voting's
    ``instant_runoff_ranking`` agrees on ballots without ties in any round.
    Complexity: O(K) rounds of O(V K) each: O(V K^2) per item, vectorised over items.
    Axioms: anonymity, neutrality; with linear ballots the Condorcet loser never wins, but with
    tied ballots split first-choice shares can tie everyone (found by the property tests), so it
    is not claimed; classic IRV is independent of
    clones (Tideman 1987), but with simultaneous elimination this holds only when no two
    alternatives tie for the lowest tally (an original and its clone can tie and leave together),
    so it is not claimed; NOT monotonic, not Condorcet-consistent.
    Reference: T. N. Tideman, "Independence of clones as a criterion for voting rules", Soc. Choice
    Welf. 4 (1987); Handbook of Computational Social Choice (2016), ch. 4.
    """
    if group.linear and group.ranks.shape[0] == 1 and 0 < group.k <= _TYPES_MAX_K:
        w = group.weights[0]
        unit = bool(np.all(w == 1.0))
        if unit or small_integer_group(group):
            eliminated_in, m = _runoff_one_linear(group.ranks[0], None if unit else w)
            if not unit:
                m = snap(m[None], total_weight(group))[0]
            scores = eliminated_in[None]
            return RuleOutput(scores, levels_from_scores(scores), {"margins": m[None]})
    linear = _linear_order(group)
    if linear is not None and linear.shape[0] == 1:
        eliminated_in = _runoff_one(linear[0], group.weights[0])[None]
        return RuleOutput(eliminated_in, levels_from_scores(eliminated_in))
    if linear is not None:
        eliminated_in = _runoff_linear(linear, group.weights)
        return RuleOutput(eliminated_in, levels_from_scores(eliminated_in))
    eliminated_in = _runoff_general(group)
    return RuleOutput(eliminated_in, levels_from_scores(eliminated_in))


_TYPES_MAX_K = 10


_DISJOINT_TABLE_MAX_K = 8


@functools.cache
def _above_tables(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Constants for :func:`_runoff_one_linear`: bit weights ``float32 [K]``, row offsets
    ``c * 2^K`` ``[K, 1]``, all subsets ``0..2^K-1`` and their bits ``float64 [2^K, K]``."""
    subsets = np.arange(1 << k)
    bits = ((subsets[:, None] >> np.arange(k)) & 1).astype(np.float64)
    offsets = (np.arange(k, dtype=np.intp) << k)[:, None]
    return np.exp2(np.arange(k)).astype(np.float32), offsets, subsets, bits


@functools.cache
def _byte_powers(k: int) -> np.ndarray:
    """``uint8 [K]``: 2^b for b < K <= 8."""
    return (1 << np.arange(k)).astype(np.uint8)


@functools.cache
def _disjoint_table(k: int) -> np.ndarray:
    """``float64 [2^K, 2^K]``: row S holds ``[A & S == 0]`` for every subset A (K <= 8)."""
    subsets = np.arange(1 << k)
    table = ((subsets[:, None] & subsets[None, :]) == 0).astype(np.float64)
    table.flags.writeable = False
    return table


def _runoff_one_linear(ranks: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Instant runoff of one item with linear ballots ``ranks [V, K]`` (0..K-1 per row) and
    unit (None) or small integer weights, plus its margins ``[K, K]``.

    Voter v's top remaining alternative is c exactly when none of the alternatives she ranks
    above c (the bitmask ``above[v, c]``) remains. So one bincount of ``(c, above)`` pairs,
    ``count[c, A]``, gives every round's tallies as ``count @ [A & remaining == 0]``, and the
    margins as ``count @ bits`` (``wins[c, b]`` = weight ranking b above c)."""
    v, k = ranks.shape
    powers, offsets, subsets, bits = _above_tables(k)
    if k <= _DISJOINT_TABLE_MAX_K:  # bitmasks fit a byte: int8 ranks, uint8 weighted sum
        rt8 = np.ascontiguousarray(ranks.T, dtype=np.int8)
        less = (rt8[None, :, :] < rt8[:, None, :]).view(np.uint8)
        above = np.einsum("b,cbv->cv", _byte_powers(k), less)
    else:
        rt = np.ascontiguousarray(ranks.T)
        above = np.matmul(powers, rt[None, :, :] < rt[:, None, :])  # exact below 2^24
    keys = (above.astype(np.intp) + offsets).ravel()
    flat_w = None if weights is None else np.broadcast_to(weights, (k, v)).ravel()
    count = np.bincount(keys, flat_w, k << k).astype(np.float64).reshape(k, 1 << k)
    wins = count @ bits
    disjoint = _disjoint_table(k) if k <= _DISJOINT_TABLE_MAX_K else None
    remaining = list(range(k))
    left = (1 << k) - 1
    out = [0.0] * k
    for round_ in range(k):
        free = (subsets & left) == 0 if disjoint is None else disjoint[left]
        tally = (count @ free).tolist()
        low = min(tally[a] for a in remaining)
        for a in remaining:
            if tally[a] == low:
                out[a] = float(round_)
                left ^= 1 << a
        remaining = [a for a in remaining if tally[a] != low]
        if len(remaining) <= 1:  # a lone survivor leaves alone next round
            for a in remaining:
                out[a] = float(round_ + 1)
            break
    return np.array(out), wins.T - wins


def _runoff_general(group: ProfileGroup) -> np.ndarray:
    """Elimination rounds for any ballots (ties, unranked alternatives, any weights)."""
    n, _, k = group.ranks.shape
    remaining = np.ones((n, k), dtype=bool)
    eliminated_in = np.zeros((n, k))
    for round_ in range(k):
        tally = np.where(remaining, first_choice_tallies(group, remaining), np.inf)
        low = remaining & (tally == tally.min(axis=1, keepdims=True))
        eliminated_in[low] = round_
        remaining &= ~low
        if not remaining.any():
            break
    return eliminated_in


def _linear_order(group: ProfileGroup) -> np.ndarray | None:
    """Integer ranks laid out ``int32 [n, K, V]`` when every present voter's ballot is a linear
    order and the weights are small integers (so tallies are exact); None otherwise."""
    r, w = group.ranks, group.weights
    k = group.k
    if r.size == 0 or k > 30 or not _small_integer_weights(w):
        return None
    ri = r.astype(np.int32)
    if not bool(np.all(ri == r)) or not bool(np.all(permutation_rows(ri) | (w == 0))):
        return None
    return np.ascontiguousarray(ri.transpose(0, 2, 1))


def _positions(ranks_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``slots [..., V]`` (each voter's offset) and ``order`` with ``order[slot + position]`` =
    the alternative at that position, from linear ranks ``[..., K, V]``."""
    k, v = ranks_t.shape[-2:]
    n = ranks_t.size // (k * v)
    slots = np.arange(n * v).reshape(ranks_t.shape[:-2] + (v,)) * k
    order = np.zeros(n * v * k, dtype=np.int64)  # absent voters: all zeros, weight 0
    order[slots[..., None, :] + ranks_t] = np.arange(k)[:, None]
    return slots, order


def _runoff_one(ranks_t: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`_runoff_linear` for one item ``ranks_t [K, V]``: each round, a remaining
    alternative's tally is the weight of the voters whose smallest remaining rank is its own."""
    k = ranks_t.shape[0]
    unit = bool(np.all(weights == 1.0))
    remaining = list(range(k))
    out = [0.0] * k
    sub = ranks_t
    for round_ in range(k):
        hits = sub == sub.min(axis=0)
        tally = (np.count_nonzero(hits, axis=1) if unit else hits @ weights).tolist()
        low = min(tally)
        for a, t in zip(remaining, tally, strict=True):
            if t == low:
                out[a] = float(round_)
        remaining = [a for a, t in zip(remaining, tally, strict=True) if t != low]
        if len(remaining) <= 1:  # a lone survivor leaves alone next round
            for a in remaining:
                out[a] = float(round_ + 1)
            break
        sub = ranks_t[remaining]
    return np.array(out)


def _runoff_linear(ranks_t: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`instant_runoff` for linear ballots ``ranks_t [n, K, V]``: a voter's top remaining
    alternative sits at the smallest rank among the remaining ones (eliminated ones pushed past
    K), looked up in her order; tallies are one bincount per round."""
    n, k, v = ranks_t.shape
    slots, order = _positions(ranks_t)
    base = np.arange(n)[:, None] * k
    remaining = np.ones((n, k), dtype=bool)
    eliminated_in = np.zeros((n, k))
    flat_w = None if bool(np.all(weights == 1.0)) else weights.ravel()
    top = order[slots]
    for round_ in range(k):
        tally = np.bincount((base + top).ravel(), flat_w, n * k).reshape(n, k).astype(np.float64)
        tally[~remaining] = np.inf
        low = remaining & (tally == tally.min(axis=1, keepdims=True))
        eliminated_in[low] = round_
        remaining &= ~low
        if remaining.sum(axis=1).max() <= 1:  # a lone survivor leaves alone next round
            eliminated_in[remaining] = round_ + 1
            break
        penalty = np.where(remaining, 0, k).astype(np.int32)[:, :, None]
        top = order[slots + np.minimum(np.min(ranks_t + penalty, axis=1), k - 1)]
    return eliminated_in
