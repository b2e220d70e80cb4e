"""Egalitarian (max-min) Kemeny over rater groups, after MaxMin-RLHF.

Voters carry a group code (``ProfileGroup.voter_groups``; the single-item ``Profile.groups``
names). A ranking's *agreement* with a group is the weight-averaged Kendall tau-a between the
ranking and the group's ballots, ``sum_{a before b} M_g[a, b] / (W_g * K(K-1)/2)`` in [-1, 1].
"""

from __future__ import annotations

from functools import lru_cache
from itertools import permutations

import numpy as np

from ..orders import below_counts, levels_from_defeats
from ..pairwise import margins
from ..profiles import ProfileGroup
from .registry import RuleOutput, register

MAX_K = 8
_TOL = 1e-9


@lru_cache(maxsize=16)
def _permutation_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """All k! rankings as ``pos[p, a]`` (position of a) and ``before[p, a*k+b]`` (float)."""
    perms = np.array(list(permutations(range(k))), dtype=np.int64).reshape(-1, k)
    pos = np.argsort(perms, axis=1)
    before = (pos[:, :, None] < pos[:, None, :]).reshape(len(perms), k * k)
    return pos, before.astype(np.float64)


def group_margins(group: ProfileGroup) -> tuple[np.ndarray, np.ndarray]:
    """Per rater group: margins ``[n, G, K, K]`` and total weights ``[n, G]``; voters without a
    group code (-1 or no codes at all) form one extra group."""
    codes = group.voter_groups
    if codes is None:
        codes = np.zeros(group.weights.shape, dtype=np.int32)
    codes = np.where(codes < 0, codes.max(initial=0) + 1, codes)
    out, totals = [], []
    for g in range(int(codes.max(initial=0)) + 1):
        w = np.where(codes == g, group.weights, 0.0)
        out.append(margins(ProfileGroup(group.items, group.ranks, w, group.partial)))
        totals.append(w.sum(axis=1))
    return np.stack(out, axis=1), np.stack(totals, axis=1)


def _optimal_precedence(m: np.ndarray, wg: np.ndarray) -> np.ndarray:
    """For one chunk of items: a before b in every lexicographically optimal ranking."""
    n, _, k, _ = m.shape
    _, before = _permutation_pairs(k)
    norm = np.where(wg > 0, wg * k * (k - 1) / 2, 1.0)
    agree = np.einsum("pq,ngq->npg", before, m.reshape(n, -1, k * k) / norm[:, :, None])
    agree = np.where(wg[:, None, :] > 0, agree, np.inf)
    worst = agree.min(axis=2)
    total = np.einsum("pq,nq->np", before, m.sum(axis=1).reshape(n, k * k))
    best = (worst >= worst.max(axis=1, keepdims=True) - _TOL)
    total = np.where(best, total, -np.inf)
    scale = np.maximum(1.0, wg.sum(axis=1, keepdims=True))  # per item: batch-independent
    best &= total >= total.max(axis=1, keepdims=True) - _TOL * scale
    some = np.einsum("np,pq->nq", best.astype(np.float64), before) > 0
    some = some.reshape(n, k, k)
    return ~some.transpose(0, 2, 1) & ~np.eye(k, dtype=bool)


@register("egalitarian", axioms=("anonymity", "neutrality", "pareto"), max_k=MAX_K)
def egalitarian(group: ProfileGroup) -> RuleOutput:
    """Egalitarian Kemeny (max-min agreement across rater groups).

    Definition: among all linear orders, choose those maximising the *minimum* over rater groups of
    the group's agreement (weight-averaged Kendall tau-a between the ranking and the group's
    ballots); among those, the ones with the largest total Kemeny score (sum over pairs a before b
    of the overall margin). The collective order keeps a before b when every such ranking does,
    grouped by iterated removal of the undominated alternatives. Score = number of alternatives in
    strictly worse groups. Groups come from ``Profile.groups`` / ``voter_groups``; ungrouped voters
    form one group; with a single group this is Kemeny-Young.
    Ties: pairs on which the optimal rankings disagree are tied; agreements within 1e-9 count as
    equal. No label order is used.
    Complexity: exhaustive over the K! rankings, O(K! K^2 G) per item; exact, limited to K <= 8
    (larger K raises an error rather than approximating).
    Axioms: anonymity (voters keep their group), neutrality, Pareto; not Condorcet-consistent (it
    trades majority wins for the worst-off group), NOT independent of clones.
    Reference: S. Chakraborty et al., "MaxMin-RLHF: alignment with diverse human preferences",
    ICML 2024; J. Rawls, A Theory of Justice (1971); Kemeny (1959).
    """
    m, wg = group_margins(group)
    n, k = m.shape[0], group.k
    chunk = max(1, 2**22 // (len(_permutation_pairs(k)[0]) * max(m.shape[1], 1)))
    prec = np.concatenate(
        [_optimal_precedence(m[i : i + chunk], wg[i : i + chunk]) for i in range(0, n, chunk)]
    ) if n else np.zeros((0, k, k), dtype=bool)
    levels = levels_from_defeats(prec)
    return RuleOutput(below_counts(levels), levels, {"group_margins": m})
