"""Ranked Pairs (Tideman), vectorised over items.

Majority edges are locked in decreasing order of margin unless they would close a cycle with the
edges already locked. The lock state is the reachability matrix ``R[n, K, K]`` of the locked graph
(reflexive); locking a -> b updates it with one outer product, ``R |= R[:, a] (x) R[b, :]``, so a
whole batch advances one edge per numpy step.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from ..checks import permutation
from ..orders import below_counts, levels_from_defeats
from ..pairwise import margins
from ..profiles import ProfileGroup
from .condorcet import CONDORCET_AXIOMS
from .registry import RuleOutput, register

# Not "monotonicity": locking equal margins as a group is not monotonic (see the docstring).
RANKED_PAIRS_AXIOMS = tuple(a for a in CONDORCET_AXIOMS if a != "monotonicity") + (
    "clone_independence",
)


def _dense_levels(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per item, dense rank of ``values [n, E]`` in decreasing order among ``valid``; -1 else."""
    v = np.where(valid, values, values.min(initial=0.0) - 1.0)
    order = np.argsort(-v, axis=1, kind="stable")
    sv = np.take_along_axis(v, order, axis=1)
    ranks = np.concatenate([np.zeros((len(v), 1), np.int64),
                            np.cumsum(np.diff(sv, axis=1) != 0, axis=1)], axis=1)
    out = np.empty_like(ranks)
    np.put_along_axis(out, order, ranks, axis=1)
    return np.where(valid, out, -1)


def _lock_single(reach: np.ndarray, rows: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    col = reach[rows, :, a]
    row = reach[rows, b, :]
    reach[rows] |= col[:, :, None] & row[:, None, :]


def _lock_group_policy(m: np.ndarray) -> np.ndarray:
    n, k, _ = m.shape
    level = _dense_levels(m.reshape(n, -1), (m > 0).reshape(n, -1)).reshape(n, k, k)
    if k <= _MAX_MASK_K:
        return _lock_levels_masks(level, k)
    reach = np.broadcast_to(np.eye(k, dtype=bool), (n, k, k)).copy()
    for t in range(int(level.max(initial=-1)) + 1):
        cand = (level == t) & ~reach.transpose(0, 2, 1)
        count = cand.sum(axis=(1, 2))
        single = np.flatnonzero(count == 1)
        if len(single):
            flat = np.argmax(cand[single].reshape(len(single), -1), axis=1)
            _lock_single(reach, single, flat // k, flat % k)
        multi = np.flatnonzero(count > 1)
        if len(multi):
            reach[multi] = _lock_together(reach[multi], cand[multi])
    return reach


def _lock_together(reach: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Lock equal-margin candidate edges at once, skipping those that lie on a cycle together."""
    closure = _add_edges(reach, cand)
    accepted = cand & ~closure.transpose(0, 2, 1)
    return _add_edges(reach, accepted)


def _add_edges(reach: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Reachability after adding ``edges`` to the closed graph ``reach``: one outer-product update
    per edge (the closure of a union does not depend on the order edges are added in)."""
    out = reach.copy()
    m, k, _ = edges.shape
    flat = edges.reshape(m, -1)
    order = np.argsort(~flat, axis=1, kind="stable")
    for j in range(int(flat.sum(axis=1).max(initial=0))):
        rows = np.flatnonzero(flat[np.arange(m), order[:, j]])
        e = order[rows, j]
        _lock_single(out, rows, e // k, e % k)
    return out


_MAX_MASK_K = 63


def _unpack(masks: np.ndarray, k: int) -> np.ndarray:
    """``[m, K]`` uint64 reach masks to ``bool [m, K, K]`` with ``[i, x, y]`` = x reaches y."""
    return (masks[:, :, None] & (np.uint64(1) << np.arange(k, dtype=np.uint64))) != 0


def _lock_levels_masks(level: np.ndarray, k: int) -> np.ndarray:
    """:func:`_lock_group_policy` with reach bitmasks: per margin level, the items having edges
    there lock their candidates together (:func:`_lock_together`) with mask updates."""
    n = level.shape[0]
    reach = np.broadcast_to(np.uint64(1) << np.arange(k, dtype=np.uint64), (n, k)).copy()
    top_level = level.reshape(n, -1).max(axis=1)  # dense levels: every t <= top is present
    for t in range(int(top_level.max(initial=-1)) + 1):
        rows = np.flatnonzero(top_level >= t)
        r = reach[rows]
        cand = (level[rows] == t) & ~_unpack(r, k).transpose(0, 2, 1)
        closure = _add_edges_masks(r, cand)
        multi = np.flatnonzero(cand.sum(axis=(1, 2)) > 1)  # one edge never closes a cycle
        if len(multi):
            accepted = cand[multi] & ~_unpack(closure[multi], k).transpose(0, 2, 1)
            redo = np.flatnonzero((accepted != cand[multi]).any(axis=(1, 2)))
            if len(redo):
                closure[multi[redo]] = _add_edges_masks(r[multi[redo]], accepted[redo])
        reach[rows] = closure
    return _unpack(reach, k)


def _add_edges_masks(reach: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """:func:`_add_edges` on masks ``[m, K]``: every x reaching a gains b's mask, edge by edge."""
    m, k = reach.shape
    out = reach.copy()
    left = edges.reshape(m, -1).copy()
    count = left.sum(axis=1)
    one = np.uint64(1)
    for j in range(int(count.max(initial=0))):
        rows = np.flatnonzero(count > j)
        e = np.argmax(left[rows], axis=1)
        left[rows, e] = False
        a, b = (e // k).astype(np.uint64), e % k
        sub = out[rows]
        hits = ((sub >> a[:, None]) & one).astype(bool)
        out[rows] = sub | np.where(hits, sub[np.arange(len(rows)), b][:, None], np.uint64(0))
    return out


def _lock_masks(edge: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
    """Lock edges in the given per-item order with reachability kept as bitmasks: ``reach[i, x]``
    has bit y set when x reaches y. Locking a -> b ors b's mask into every x that reaches a."""
    n = edge.shape[0]
    one = np.uint64(1)
    bits = one << np.arange(k, dtype=np.uint64)
    if n == 1:
        masks = _lock_one(edge[0].tolist(), order[0].tolist(), k)
        return (np.array(masks, dtype=np.uint64)[None, :, None] & bits) != 0
    reach = np.broadcast_to(bits, (n, k)).copy()
    rows = np.arange(n)
    for t in range(order.shape[1]):
        flat = order[:, t]
        a, b = (flat // k).astype(np.uint64), flat % k
        mask_b = reach[rows, b]
        ok = edge[rows, flat] & (((mask_b >> a) & one) == 0)
        hits = ((reach >> a[:, None]) & one).astype(bool) & ok[:, None]
        reach |= np.where(hits, mask_b[:, None], np.uint64(0))
    return (reach[:, :, None] & bits) != 0


def _lock_one(edge: list[bool], order: list[int], k: int) -> list[int]:
    """:func:`_lock_masks` for one item with Python integers as bitmasks."""
    reach = [1 << x for x in range(k)]
    for flat in order:
        a, b = divmod(flat, k)
        mask_b = reach[b]
        if not edge[flat] or (mask_b >> a) & 1:
            continue
        for x in range(k):
            if (reach[x] >> a) & 1:
                reach[x] |= mask_b
    return reach


def _lock_tie_breaker(m: np.ndarray, position: np.ndarray) -> np.ndarray:
    n, k, _ = m.shape
    if n == 1 and k <= _MAX_MASK_K:
        return _lock_tie_breaker_one(m[0].tolist(), position.tolist(), k)
    edge = (m >= 0) & ~np.eye(k, dtype=bool)
    level = _dense_levels(m.reshape(n, -1), edge.reshape(n, -1))
    tb = (position[:, None] * k + position[None, :]).reshape(-1)
    key = np.where(level >= 0, level * k * k + tb[None, :], np.iinfo(np.int64).max)
    order = np.argsort(key, axis=1, kind="stable")
    n_steps = int(edge.sum(axis=(1, 2)).max(initial=0))
    lock = _lock_masks if k <= _MAX_MASK_K else _lock_in_order
    return lock(edge.reshape(n, -1), order[:, :n_steps], k)


def _lock_tie_breaker_one(m: list[list[float]], position: list[int], k: int) -> np.ndarray:
    """:func:`_lock_tie_breaker` for one item in Python: edges with margin >= 0 sorted by
    decreasing margin, then by the tie-breaker positions of (source, target)."""
    keyed = sorted(
        (-x, position[a] * k + position[b], a * k + b)
        for a, row in enumerate(m)
        for b, x in enumerate(row)
        if a != b and x >= 0
    )
    masks = _lock_one([True] * (k * k), [flat for _, _, flat in keyed], k)
    return _unpack(np.array([masks], dtype=np.uint64), k)


def _ranked_pairs_tb_one(m: np.ndarray, tie_breaker: list[int], k: int) -> RuleOutput | None:
    """Fixed-order Ranked Pairs for one item in Python. Every pair has an edge one way or both
    (zero margins included), so the locked relation is a linear order: alternative x's reach
    mask holds x and everything below it, its level is K - popcount and its score popcount - 1.
    None when the masks are not such a chain (then the general path decides)."""
    kept = [int(a) for a in tie_breaker if a < k]
    if sorted(kept) != list(range(k)):
        return None
    position = [0] * k  # argsort of the permutation ``kept``: its inverse
    for i, a in enumerate(kept):
        position[a] = i
    rows = m[0].tolist()
    keyed = sorted(
        (-x, position[a] * k + position[b], a * k + b)
        for a, row in enumerate(rows)
        for b, x in enumerate(row)
        if a != b and x >= 0
    )
    masks = _lock_one([True] * (k * k), [flat for _, _, flat in keyed], k)
    sizes = [mask.bit_count() for mask in masks]
    if sorted(sizes) != list(range(1, k + 1)):
        return None
    levels = np.array([[k - s for s in sizes]], dtype=np.int64)
    scores = np.array([[s - 1.0 for s in sizes]])
    defeats = _unpack(np.array([masks], dtype=np.uint64), k) & ~np.eye(k, dtype=bool)
    return RuleOutput(scores, levels, {"margins": m, "locked": defeats})


def _ranked_pairs_one(m: np.ndarray, k: int) -> RuleOutput:
    """Default Ranked Pairs for one item in plain Python with bitmasks (the numpy path costs
    tens of calls per margin level, which dominates at one item): the same locking as
    :func:`_lock_levels_masks`, the same levels and scores. A margin shared by one edge only
    (the usual case with many voters) is locked or skipped directly."""
    rows = m[0].tolist()
    edges = sorted((-x, a, b) for a, row in enumerate(rows) for b, x in enumerate(row) if x > 0)
    reach = [1 << x for x in range(k)]
    start, n_edges = 0, len(edges)
    while start < n_edges:
        stop = start + 1
        while stop < n_edges and edges[stop][0] == edges[start][0]:
            stop += 1
        if stop == start + 1:
            _, a, b = edges[start]
            if not (reach[b] >> a) & 1:
                reach = _add_edges_one(reach, [(a, b)])
        else:
            cand = [(a, b) for _, a, b in edges[start:stop] if not (reach[b] >> a) & 1]
            closure = _add_edges_one(reach, cand)
            accepted = [(a, b) for a, b in cand if not (closure[b] >> a) & 1]
            reach = closure if len(accepted) == len(cand) else _add_edges_one(reach, accepted)
        start = stop
    levels = _levels_from_reach(reach, k)
    worse = [0] * (max(levels) + 2)
    for level in levels:
        worse[level] += 1
    for level in range(len(worse) - 2, -1, -1):  # worse[l] = count at levels >= l, then > l
        worse[level] += worse[level + 1]
    scores = [float(worse[level + 1]) for level in levels]
    locked = _unpack(np.array([reach], dtype=np.uint64), k) & _off_diagonal(k)
    return RuleOutput(np.array([scores]), np.array([levels], dtype=np.int64),
                      {"margins": m, "locked": locked})


@functools.cache
def _off_diagonal(k: int) -> np.ndarray:
    off = ~np.eye(k, dtype=bool)
    off.flags.writeable = False
    return off


def _add_edges_one(reach: list[int], edges: list[tuple[int, int]]) -> list[int]:
    """Closed reach masks after adding ``edges`` (every x reaching a gains b's mask)."""
    out = list(reach)
    for a, b in edges:
        mask_b = out[b]
        for x, mask in enumerate(out):
            if (mask >> a) & 1:
                out[x] = mask | mask_b
    return out


def _levels_from_reach(reach: list[int], k: int) -> list[int]:
    """:func:`levels_from_defeats` of the (acyclic) relation "x reaches y", x != y."""
    beaten_by = [0] * k
    for x, mask in enumerate(reach):
        for y in range(k):
            if y != x and (mask >> y) & 1:
                beaten_by[y] |= 1 << x
    levels = [-1] * k
    left = (1 << k) - 1
    step = 0
    while left:
        top = [y for y in range(k) if (left >> y) & 1 and not beaten_by[y] & left]
        for y in top:
            levels[y] = step
            left ^= 1 << y
        step += 1
    return levels


def _lock_in_order(edge: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
    """:func:`_lock_masks` with a boolean reachability matrix (any K)."""
    n = edge.shape[0]
    reach = np.broadcast_to(np.eye(k, dtype=bool), (n, k, k)).copy()
    rows = np.arange(n)
    for t in range(order.shape[1]):
        flat = order[:, t]
        a, b = flat // k, flat % k
        ok = np.flatnonzero(edge[rows, flat] & ~reach[rows, b, a])
        _lock_single(reach, ok, a[ok], b[ok])
    return reach


@register("ranked_pairs", axioms=RANKED_PAIRS_AXIOMS, condorcet=True)
def ranked_pairs(
    group: ProfileGroup, tie_breaker: Sequence[int] | np.ndarray | None = None
) -> RuleOutput:
    """Ranked Pairs (Tideman).

    Definition: majority edges a -> b (positive margin) are considered in decreasing order of
    margin; an edge is locked unless it would create a cycle with the edges already locked. a
    defeats b when the locked graph has a path from a to b; the collective order takes the
    undefeated alternatives as group 0, then the undefeated among the rest, and so on. Score =
    number of alternatives in strictly worse groups.
    Ties: by default edges with *equal* margins are locked together as a group: each is kept unless
    it closes a cycle with the edges locked before the group, or lies on a cycle formed with the
    other edges of its group (then it is skipped). This depends only on the margins, never on labels
    or input order, and leaves unresolved pairs (and zero-margin pairs) tied. With ``tie_breaker``
    (a permutation of alternative indices, best first) the rule is instead Tideman's fixed-order
    variant, as pref-voting's ``ranked_pairs_tb``: zero-margin edges are included and equal margins
    are ordered by the tie-breaker positions of (source, target); the result is a linear order.
    Indices >= K in ``tie_breaker`` are ignored, so one order serves a batch of mixed K.
    Complexity: O(V K^2) for margins plus O(K^4) for locking (K^2 edges, each an O(K^2)
    reachability update); batched one edge per vectorised step.
    Axioms: anonymity, neutrality (default tie policy), Pareto, Condorcet winner and loser,
    independence of clones, Smith criterion (the top group lies in the Smith set). NOT monotonic
    with the default tie policy: ten ballots adbc, bcad, abdc, bcad, cadb, dabc, cdba, cdba,
    cabd, dabc put a in the top group (all margins equal, every edge on a cycle, all tied), but
    raising a in the second ballot (b > c = a > d) leaves c > a alone at a lower margin, locked
    after the cycle is skipped, and a drops out. The fixed-order variant (``tie_breaker``) is
    monotonic (Tideman 1987; property-tested) but not neutral. The monotonic label-free variant
    (winners under every tie-breaking order) is NP-hard (Brill and Fischer, AAAI 2012), so the
    default rule is Schulze.
    Reference: T. N. Tideman, "Independence of clones as a criterion for voting rules", Soc. Choice
    Welf. 4 (1987); Zavist and Tideman, Soc. Choice Welf. 6 (1989).
    """
    kept = None if tie_breaker is None else permutation("tie_breaker", tie_breaker, group.k)
    m = margins(group)
    if kept is not None and m.shape[0] == 1 and 0 < group.k <= _MAX_MASK_K:
        out = _ranked_pairs_tb_one(m, kept, group.k)
        if out is not None:
            return out
    if kept is None and m.shape[0] == 1 and 0 < group.k <= _MAX_MASK_K:
        return _ranked_pairs_one(m, group.k)
    if kept is None:
        reach = _lock_group_policy(m)
    else:
        position = np.argsort(np.array(kept, dtype=np.int64))
        reach = _lock_tie_breaker(m, position)
    defeats = reach & ~np.eye(group.k, dtype=bool)
    levels = levels_from_defeats(defeats)
    return RuleOutput(below_counts(levels), levels, {"margins": m, "locked": defeats})
