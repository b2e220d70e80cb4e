"""Many items at once: a whole project's profiles as dense numpy arrays, grouped by K.

Items with different numbers of alternatives are allowed: a :class:`BatchProfile` keeps one
:class:`~socialchoice.profiles.ProfileGroup` per distinct K, each a dense ``[n_items, V, K]``
rank array whose shorter items are padded with weight-0 voters.

Fastest input path (vectorised, no Python loop per ranking):
:meth:`BatchProfile.from_rank_arrays` with ``group_indices int [R, K_max]`` (one stored ranking per
row, tie-group index per alternative, -1 = unranked; columns at or beyond the item's K are ignored)
and ``item_index int [R]``. The apps can keep rankings in this form next to the JSON.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .checks import integer_array
from .profiles import (
    Partial,
    Profile,
    ProfileGroup,
    _check_partial,
    encode_weak_order,
    encode_weak_orders,
    fractional_ranks,
)


@dataclass(frozen=True)
class BatchProfile:
    """Profiles of many items. ``alternatives[i]`` are item i's ids; ``groups`` hold the arrays."""

    alternatives: tuple[tuple[str, ...], ...]
    groups: tuple[ProfileGroup, ...]
    partial: Partial = "bottom"

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.alternatives)

    @classmethod
    def from_rank_arrays(
        cls,
        group_indices: np.ndarray,
        item_index: np.ndarray,
        n_alternatives: np.ndarray | Sequence[int],
        weights: np.ndarray | None = None,
        alternatives: Sequence[Sequence[str]] | None = None,
        partial: Partial = "bottom",
        voter_groups: np.ndarray | None = None,
    ) -> BatchProfile:
        """Build from stored rankings as arrays (the fast path; see the module docstring).

        ``n_alternatives[i]`` is item i's K; ``alternatives[i]`` its ids (default ``"0".."K-1"``);
        ``weights [R]`` voter weights (default 1); ``voter_groups int [R]`` rater-group codes.
        """
        _check_partial(partial)
        g = integer_array("group_indices", group_indices, 2)
        item = integer_array("item_index", item_index, 1).astype(np.int64, copy=False)
        k_of = integer_array("n_alternatives", n_alternatives, 1).astype(np.int64, copy=False)
        w = np.ones(len(item)) if weights is None else np.asarray(weights, dtype=np.float64)
        _check_rank_arrays(g, item, k_of, w, voter_groups)
        alts = _default_alternatives(k_of, alternatives)
        order = np.argsort(item, kind="stable")
        groups = tuple(
            _build_group(g, item, w, k_of, order, int(k), partial, voter_groups)
            for k in np.unique(k_of)
        )
        return cls(alts, groups, partial)

    @classmethod
    def from_ranking_entries(
        cls,
        ranking: np.ndarray,
        column: np.ndarray,
        level: np.ndarray,
        item_of_ranking: np.ndarray,
        n_alternatives: np.ndarray | Sequence[int],
        weights: np.ndarray | None = None,
        alternatives: Sequence[Sequence[str]] | None = None,
        partial: Partial = "bottom",
        voter_groups: np.ndarray | None = None,
    ) -> BatchProfile:
        """Build from database rows in long form: one entry per (stored ranking, response).

        ``ranking [E]``: the ranking's row number (0..R-1); ``column [E]``: the response's
        position among its item's alternatives; ``level [E]``: its tie group in that ranking (0 =
        best); ``item_of_ranking [R]``: each ranking's item; ``weights`` and ``voter_groups`` are
        per ranking ``[R]``. Responses a ranking has no entry for are unranked. E.g. from
        PostgreSQL: ``jsonb_array_elements(ranking) WITH ORDINALITY`` gives the level of every
        response id, and a join gives its column. No Python object per ballot is made.
        """
        r_of = integer_array("ranking", ranking, 1)
        col = integer_array("column", column, 1)
        lev = integer_array("level", level, 1)
        item = integer_array("item_of_ranking", item_of_ranking, 1).astype(np.int64, copy=False)
        k_of = integer_array("n_alternatives", n_alternatives, 1).astype(np.int64, copy=False)
        if not len(r_of) == len(col) == len(lev):
            raise ValueError(f"ranking, column and level must have one value per entry, got "
                             f"{len(r_of)}, {len(col)}, {len(lev)}")
        n_rankings = len(item)
        if len(r_of) and (int(r_of.min()) < 0 or int(r_of.max()) >= n_rankings):
            raise ValueError(f"ranking must be in 0..{n_rankings - 1} (one per item_of_ranking)")
        if len(item) and (int(item.min()) < 0 or int(item.max()) >= len(k_of)):
            raise ValueError(f"item_of_ranking must be in 0..{len(k_of) - 1}")
        if len(col) and (int(col.min()) < 0 or np.any(col >= k_of[item[r_of]])):
            raise ValueError("column must be in 0..K-1 of the ranking's item")
        if len(lev) and int(lev.min()) < 0:
            raise ValueError("level must be >= 0 (leave unranked responses out)")
        k_max = int(k_of.max(initial=1))
        g = np.full((n_rankings, k_max), -1, dtype=np.int64)
        g[r_of, col] = lev
        if np.count_nonzero(g >= 0) != len(r_of):
            raise ValueError("a (ranking, column) pair has more than one entry")
        return cls.from_rank_arrays(g, item, k_of, weights, alternatives, partial, voter_groups)

    @classmethod
    def from_weak_orders(
        cls,
        alternatives: Sequence[Sequence[str]],
        orders: Sequence[Sequence[Sequence[Sequence[str]]]],
        weights: Sequence[Sequence[float]] | None = None,
        partial: Partial = "bottom",
    ) -> BatchProfile:
        """Build from contract-form weak orders: ``orders[i]`` are item i's ballots.

        Items that list the same alternatives (in the same order) are encoded together by
        :func:`~socialchoice.profiles.encode_weak_orders`; items with ids of their own cost a
        Python loop per ballot. The app's fast path is :meth:`from_rank_arrays`.
        """
        if len(alternatives) != len(orders):
            raise ValueError(f"{len(alternatives)} items' alternatives but {len(orders)} items' "
                             f"orders")
        if weights is not None and [len(x) for x in weights] != [len(o) for o in orders]:
            raise ValueError("weights must give one weight per ballot of every item")
        k_max = max((len(a) for a in alternatives), default=1)
        counts = np.array([len(o) for o in orders], dtype=np.int64)
        try:
            g = _encode_by_alternatives(alternatives, orders, counts, k_max)
        except ValueError:
            g = _encode_per_ballot(alternatives, orders, k_max)  # names the item and ballot
        items = np.repeat(np.arange(len(orders)), counts)
        w = None if weights is None else np.concatenate([np.asarray(x, float) for x in weights])
        k_of = [len(a) for a in alternatives]
        return cls.from_rank_arrays(g, items, k_of, w, alternatives, partial)

    @classmethod
    def from_profiles(cls, profiles: Sequence[Profile]) -> BatchProfile:
        """Stack single-item profiles (all must share the same ``partial`` policy)."""
        policies = {p.partial for p in profiles}
        if len(policies) > 1:
            raise ValueError("all profiles must use the same partial policy")
        partial = policies.pop() if policies else "bottom"
        by_k: dict[int, list[int]] = {}
        for i, p in enumerate(profiles):
            by_k.setdefault(p.n_alternatives, []).append(i)
        groups = tuple(_stack(profiles, idx, partial) for _, idx in sorted(by_k.items()))
        return cls(tuple(p.alternatives for p in profiles), groups, partial)

    def profile(self, item: int) -> Profile:
        """Item ``item`` as a single :class:`Profile` (padding voters dropped)."""
        for grp in self.groups:
            rows = np.flatnonzero(grp.items == item)
            if len(rows):
                keep = grp.weights[rows[0]] > 0
                return Profile(self.alternatives[item], grp.ranks[rows[0]][keep],
                               grp.weights[rows[0]][keep], self.partial)
        raise IndexError(item)


_SHARED_MIN_BALLOTS = 64  # below this, the vectorised encoder's fixed cost outweighs it


def _encode_by_alternatives(
    alternatives: Sequence[Sequence[str]],
    orders: Sequence[Sequence[Sequence[Sequence[str]]]],
    counts: np.ndarray,
    k_max: int,
) -> np.ndarray:
    """Tie-group indices ``int16 [R, K_max]``, rows in item order: the ballots of all items
    with the same alternatives encoded in one :func:`encode_weak_orders` call."""
    out = np.full((int(counts.sum()), k_max), -1, dtype=np.int16)
    starts = np.cumsum(counts) - counts
    by_alts: dict[tuple[str, ...], list[int]] = {}
    for i, alts in enumerate(alternatives):
        by_alts.setdefault(tuple(alts), []).append(i)
    for alts, members in by_alts.items():
        if len(set(alts)) != len(alts):
            raise ValueError("alternative ids must be unique")
        ballots: list[Sequence[Sequence[str]]] = functools.reduce(
            operator.iadd, (list(orders[i]) for i in members), []
        )
        if len(ballots) < _SHARED_MIN_BALLOTS:
            index = {a: j for j, a in enumerate(alts)}
            codes = np.array([encode_weak_order(o, index) for o in ballots], dtype=np.int16)
        else:
            codes = encode_weak_orders(alts, ballots)
        rows = np.concatenate([np.arange(starts[i], starts[i] + counts[i]) for i in members])
        out[rows, : len(alts)] = codes.reshape(len(rows), len(alts))
    return out


def _encode_per_ballot(
    alternatives: Sequence[Sequence[str]],
    orders: Sequence[Sequence[Sequence[Sequence[str]]]],
    k_max: int,
) -> np.ndarray:
    """The per-ballot loop, raising a ValueError that names the item and the ballot."""
    rows: list[list[int]] = []
    for i, (alts, item_orders) in enumerate(zip(alternatives, orders, strict=True)):
        index = {a: j for j, a in enumerate(alts)}
        if len(index) != len(alts):
            raise ValueError(f"item {i}: alternative ids must be unique")
        pad = [-1] * (k_max - len(alts))
        for b, order in enumerate(item_orders):
            try:
                rows.append(encode_weak_order(order, index) + pad)
            except ValueError as exc:
                raise ValueError(f"item {i}, ballot {b}: {exc}") from None
    return np.array(rows, dtype=np.int16).reshape(len(rows), k_max)


def _check_rank_arrays(g: np.ndarray, item: np.ndarray, k_of: np.ndarray, w: np.ndarray,
                       voter_groups: np.ndarray | None) -> None:
    """Shapes and ranges of :meth:`BatchProfile.from_rank_arrays`' arrays (ValueError naming
    the array; an out-of-range item index would otherwise land on another item)."""
    r = len(item)
    if g.shape[0] != r or w.shape != (r,):
        raise ValueError(f"group_indices {g.shape}, item_index ({r},) and weights {w.shape} "
                         f"must have one row per ranking")
    if voter_groups is not None and np.shape(voter_groups) != (r,):
        raise ValueError(f"voter_groups must be [{r}], got shape {np.shape(voter_groups)}")
    if r and (int(item.min()) < 0 or int(item.max()) >= len(k_of)):
        bad = item[(item < 0) | (item >= len(k_of))]
        raise ValueError(f"item_index must be in 0..{len(k_of) - 1} (n_alternatives has "
                         f"{len(k_of)} items), got {bad[:5].tolist()}")
    if np.any(k_of < 1):
        raise ValueError("n_alternatives must be >= 1 for every item")
    if len(k_of) and g.shape[1] < int(k_of.max()):
        raise ValueError(f"group_indices has {g.shape[1]} columns but an item has "
                         f"K = {int(k_of.max())}")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")


def _default_alternatives(
    k_of: np.ndarray, alternatives: Sequence[Sequence[str]] | None
) -> tuple[tuple[str, ...], ...]:
    if alternatives is None:
        names = {int(k): tuple(str(j) for j in range(int(k))) for k in np.unique(k_of)}
        return tuple(names[int(k)] for k in k_of)
    alts = tuple(tuple(a) for a in alternatives)
    if [len(a) for a in alts] != k_of.tolist():
        raise ValueError("alternatives must list n_alternatives[i] ids for every item")
    return alts


def _build_group(
    g: np.ndarray,
    item: np.ndarray,
    w: np.ndarray,
    k_of: np.ndarray,
    order: np.ndarray,
    k: int,
    partial: Partial,
    voter_groups: np.ndarray | None,
) -> ProfileGroup:
    items_k = np.flatnonzero(k_of == k)
    sel = order[k_of[item[order]] == k]
    local = np.full(len(k_of), -1, dtype=np.int64)
    local[items_k] = np.arange(len(items_k))
    row = local[item[sel]]
    counts = np.bincount(row, minlength=len(items_k))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(len(sel)) - starts[row]
    v = max(int(counts.max(initial=0)), 1)
    ranks = np.zeros((len(items_k), v, k), dtype=np.float32)
    ranks[row, pos] = fractional_ranks(g[sel, :k], partial)
    weights = np.zeros((len(items_k), v))
    weights[row, pos] = w[sel]
    vg = None
    if voter_groups is not None:
        vg = np.full((len(items_k), v), -1, dtype=np.int32)
        vg[row, pos] = np.asarray(voter_groups)[sel]
    return ProfileGroup(items_k, ranks, weights, partial, vg)


def _stack(profiles: Sequence[Profile], idx: list[int], partial: Partial) -> ProfileGroup:
    k = profiles[idx[0]].n_alternatives
    v = max(max(profiles[i].n_voters for i in idx), 1)
    ranks = np.zeros((len(idx), v, k), dtype=np.float32)
    weights = np.zeros((len(idx), v))
    for row, i in enumerate(idx):
        p = profiles[i]
        ranks[row, : p.n_voters] = p.ranks
        weights[row, : p.n_voters] = p.weights
    return ProfileGroup(np.array(idx, dtype=np.int64), ranks, weights, partial)
