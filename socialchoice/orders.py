"""Collective weak orders as arrays: ``levels[i, a]`` = tie group of a (0 = best), vectorised.

Two ways rules turn their computation into a weak order, both deterministic and label-free:

* :func:`levels_from_scores`: higher score is better; scores within ``tol`` of the next higher
  score (after sorting) share its group.
* :func:`levels_from_defeats`: for rules that produce an acyclic *defeat* relation, group 0 is
  the undefeated alternatives, group 1 those undefeated once group 0 is set aside, and so on
  (iterated removal of the maximal elements; the defeat relation is not recomputed). The top group
  is exactly the rule's winner set, and a defeats b always puts a in a strictly better group.
"""

from __future__ import annotations

import numpy as np


def levels_from_scores(scores: np.ndarray, tol: float | np.ndarray = 0.0) -> np.ndarray:
    """Dense tie-group levels ``int64 [n, K]`` from ``scores [n, K]`` (higher is better)."""
    s = np.asarray(scores, dtype=np.float64)
    n, k = s.shape
    if n == 1 and np.ndim(tol) == 0:
        row = s[0].tolist()
        if all(x == x for x in row):  # no NaN, so Python's sort agrees with argsort
            return np.array([_score_levels_one(row, float(tol))], dtype=np.int64)
    order = np.argsort(-s, axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    sorted_s = s[rows, order]
    tol_arr = np.asarray(tol, dtype=np.float64).reshape(-1, 1)
    new_group = (sorted_s[:, 1:] - sorted_s[:, :-1]) < -tol_arr
    sorted_levels = np.zeros((n, k), dtype=np.int64)
    np.cumsum(new_group, axis=1, out=sorted_levels[:, 1:])
    levels = np.empty_like(sorted_levels)
    levels[rows, order] = sorted_levels
    return levels


def _score_levels_one(scores: list[float], tol: float) -> list[int]:
    """:func:`levels_from_scores` for one item in plain Python (same stable order, same gaps)."""
    order = sorted(range(len(scores)), key=lambda a: -scores[a])
    levels = [0] * len(scores)
    level = 0
    for prev, a in zip(order, order[1:], strict=False):
        if scores[a] - scores[prev] < -tol:
            level += 1
        levels[a] = level
    return levels


def levels_from_defeats(defeats: np.ndarray) -> np.ndarray:
    """Levels from an acyclic defeat relation ``bool [n, K, K]`` (``[i, a, b]``: a defeats b)."""
    n, k, _ = defeats.shape
    if n == 1:
        return np.array([_levels_one(defeats[0].tolist())], dtype=np.int64).reshape(1, k)
    levels = np.full((n, k), -1, dtype=np.int64)
    remaining = np.ones((n, k), dtype=bool)
    for step in range(k):
        beaten = np.any(defeats & remaining[:, :, None], axis=1)
        top = remaining & ~beaten
        levels[top] = step
        remaining &= ~top
        if not remaining.any():
            break
    if remaining.any():
        raise ValueError("defeat relation has a cycle")
    return levels


def _levels_one(defeats: list[list[bool]]) -> list[int]:
    """:func:`levels_from_defeats` for one item in plain Python with bitmasks (K is small)."""
    k = len(defeats)
    beaten_by = [0] * k  # bit a of beaten_by[b]: a defeats b
    for a, row in enumerate(defeats):
        for b, d in enumerate(row):
            if d:
                beaten_by[b] |= 1 << a
    levels = [-1] * k
    remaining = list(range(k))
    mask = (1 << k) - 1
    step = 0
    while remaining:
        top = [b for b in remaining if not beaten_by[b] & mask]
        if not top:
            raise ValueError("defeat relation has a cycle")
        for b in top:
            levels[b] = step
            mask ^= 1 << b
        remaining = [b for b in remaining if levels[b] < 0]
        step += 1
    return levels


def below_counts(levels: np.ndarray) -> np.ndarray:
    """Number of alternatives in strictly worse groups, ``float64 [n, K]`` (an order score)."""
    return np.sum(levels[:, None, :] > levels[:, :, None], axis=2).astype(np.float64)


def transitive_closure(rel: np.ndarray) -> np.ndarray:
    """Transitive closure of ``bool [n, K, K]`` relations (Warshall, vectorised over items)."""
    r = rel.copy()
    for m in range(r.shape[1]):
        r |= r[:, :, m, None] & r[:, None, m, :]
    return r


def precedence(levels: np.ndarray) -> np.ndarray:
    """``bool [n, K, K]``: ``[i, a, b]`` true when a is in a strictly better group than b."""
    return levels[:, :, None] < levels[:, None, :]
