"""Preference profiles: the weak orders of many voters over one item's alternatives.

A weak order arrives in the contract form of ARCHITECTURE.md, a list of tie groups best first:
``[["r3"], ["r1", "r4"], ["r2"]]`` means r3 > r1 = r4 > r2. Internally a profile is a *rank
matrix* ``ranks[voter, alternative]`` holding the alternative's **fractional rank**: the mean of
the 0-based positions its tie group occupies (r3 -> 0, r1 and r4 -> 1.5, r2 -> 3). Smaller is
better and tied alternatives have equal ranks, so every rule reads pairwise preferences as
``ranks[v, a] < ranks[v, b]``, and the tie-aware Borda score of a in v's ballot is
``k_v - 1 - ranks[v, a]`` with ``k_v`` the number of alternatives v ranked.

Partial rankings (some alternatives unranked) are treated by the ``partial`` policy:

* ``"bottom"`` (default): the unranked alternatives form one tie group below every ranked one.
* ``"ignore"``: unranked alternatives get rank ``NaN``; every comparison with them is false, so a
  voter takes part only in the pairs she ranked both of (and positional rules skip them).

Weights are non-negative voter weights; a weight of 0 means "absent" (the batch form pads items
with fewer voters this way). The fastest input path is :meth:`BatchProfile.from_rank_arrays`:
one integer array of *tie-group indices* per stored ranking (0 = best group, equal index = tie,
-1 = unranked) plus the item index of each ranking; it is fully vectorised.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .checks import integer_array

Partial = Literal["bottom", "ignore"]
WeakOrder = list[list[str]]
_CHUNK = 1 << 16


def fractional_ranks(groups: np.ndarray, partial: Partial = "bottom") -> np.ndarray:
    """Tie-group indices ``[..., K]`` (0 = best, equal = tied, negative = unranked) to
    fractional ranks ``float32 [..., K]`` (mean 0-based position of the tie group).

    With ``partial="bottom"`` unranked alternatives share the bottom group; with ``"ignore"``
    they get ``NaN`` and ranked alternatives are positioned among the ranked ones only. Group
    indices need not be dense (``[0, 5, 5]`` is the same ballot as ``[0, 1, 1]``).
    """
    return _fractional_ranks(groups, partial)[0]


def _fractional_ranks(groups: np.ndarray, partial: Partial) -> tuple[np.ndarray, bool]:
    """:func:`fractional_ranks` and whether every row was a linear order (permutation)."""
    _check_partial(partial)
    shape = np.shape(groups)
    flat = np.asarray(groups).reshape(-1, shape[-1])
    if _all_permutations(flat):
        return flat.astype(np.float32).reshape(shape), True
    out = np.empty(flat.shape, dtype=np.float32)
    for start in range(0, flat.shape[0], _CHUNK):
        out[start : start + _CHUNK] = _fractional_chunk(flat[start : start + _CHUNK], partial)
    return out.reshape(shape), False


def _all_permutations(g: np.ndarray) -> bool:
    """Whether every row is a linear order 0..K-1 (then the fractional ranks are the indices)."""
    if g.size == 0 or g.shape[-1] > 52 or g.dtype.kind not in "iu":
        return False
    return bool(np.all(permutation_rows(g)))


def permutation_rows(g: np.ndarray) -> np.ndarray:
    """``bool [...]``: whether each row of the integer array ``g [..., K]`` (K <= 52) holds every
    value 0..K-1 once.

    Each value maps to a float64 power of two (out-of-range values to 2^60); K distinct powers
    below 2^K sum to 2^K - 1 exactly when they are all different, and a row sum (a matvec,
    fast for short rows) is exact below 2^53 while any larger one stays above 2^K - 1."""
    k = g.shape[-1]
    table, ones = _power_table(k)
    powers = np.take(table, g.reshape(-1, k) + 1, mode="clip")
    return (powers @ ones == (1 << k) - 1).reshape(g.shape[:-1])


@functools.cache
def _power_table(k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`permutation_rows`' lookup table (index value + 1; both ends 2^60) and ones [K]."""
    table = np.full(k + 2, 2.0**60)
    table[1 : k + 1] = np.exp2(np.arange(k))
    table.flags.writeable = False
    ones = np.ones(k)
    ones.flags.writeable = False
    return table, ones


def _fractional_chunk(g: np.ndarray, partial: Partial) -> np.ndarray:
    """O(R K) via per-ballot group sizes: #above = sizes of better groups, #tied = own size - 1."""
    r, k = g.shape
    ranked = g >= 0
    if int(g.max(initial=0)) >= k:
        g = _densify(g)
    dense = np.where(ranked, g, k).astype(np.int64)
    counted = ranked if partial == "ignore" else np.ones_like(ranked)
    idx = (np.arange(r)[:, None] * (k + 1) + dense)[counted]
    sizes = np.bincount(idx, minlength=r * (k + 1)).reshape(r, k + 1)
    above = np.cumsum(sizes, axis=1) - sizes
    own = np.take_along_axis(sizes, dense, axis=1)
    frac = np.take_along_axis(above, dense, axis=1) + 0.5 * (own - 1)
    return np.where(ranked | (partial == "bottom"), frac, np.nan)


def _densify(g: np.ndarray) -> np.ndarray:
    """Per-row dense ranks of the values (equal values equal, order kept), all below K."""
    order = np.argsort(g, axis=1, kind="stable")
    sv = np.take_along_axis(g, order, axis=1)
    steps = np.cumsum(np.diff(sv, axis=1) > 0, axis=1)
    d = np.concatenate([np.zeros((g.shape[0], 1), dtype=steps.dtype), steps], axis=1)
    out = np.empty_like(d)
    np.put_along_axis(out, order, d, axis=1)
    return out


def _check_partial(partial: str) -> None:
    if partial not in ("bottom", "ignore"):
        raise ValueError(f"partial must be 'bottom' or 'ignore', not {partial!r}")


def _check_weights(weights: np.ndarray, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"expected {n} weights, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    return w


def encode_weak_order(order: Sequence[Sequence[str]], index: dict[str, int]) -> list[int]:
    """One weak order (contract form) to tie-group indices over ``index``'s alternatives.

    Raises ``ValueError`` for an unknown id, an id listed twice, or a bare string where the list
    of tie groups or a tie group is expected (``["a", "b"]`` for ``[["a"], ["b"]]``). Unlisted
    alternatives get -1. Plain Python lists: numpy scalar access is slow here.
    """
    if isinstance(order, str | bytes) or not hasattr(order, "__iter__"):
        raise ValueError(f"a weak order is a list of tie groups, not {order!r}")
    row = [-1] * len(index)
    for g, group in enumerate(order):
        if isinstance(group, str | bytes) or not hasattr(group, "__iter__"):
            raise ValueError(f"tie group {g} must be a list of ids, not {group!r}")
        for alt in group:
            i = index.get(alt)
            if i is None:
                raise ValueError(f"unknown alternative {alt!r}")
            if row[i] >= 0:
                raise ValueError(f"alternative {alt!r} listed twice")
            row[i] = g
    return row


def encode_weak_orders(
    alternatives: Sequence[str], orders: Sequence[Sequence[Sequence[str]]]
) -> np.ndarray:
    """Many weak orders (contract form) to tie-group indices ``int16 [V, K]`` (-1 = unlisted).

    Same result and errors as :func:`encode_weak_order` per ballot (errors name the ballot), but
    the lists are walked by C-level passes (flatten, look up, count) and the indices are placed by
    numpy, several times faster than a Python loop per ballot. Bad input falls back to that loop
    to find and name the fault.
    """
    index = {a: i for i, a in enumerate(alternatives)}
    if len(index) != len(alternatives):
        raise ValueError("alternative ids must be unique")
    try:
        out = _encode_fast(index, orders)
    except (KeyError, TypeError, ValueError):
        out = None
    return _encode_slow(index, orders) if out is None else out


def _encode_slow(index: dict[str, int], orders: Sequence[Sequence[Sequence[str]]]) -> np.ndarray:
    rows = []
    for v, order in enumerate(orders):
        try:
            rows.append(encode_weak_order(order, index))
        except ValueError as exc:
            raise ValueError(f"ballot {v}: {exc}") from None
    return np.array(rows, dtype=np.int16).reshape(len(rows), len(index))


def _encode_fast(
    index: dict[str, int], orders: Sequence[Sequence[Sequence[str]]]
) -> np.ndarray | None:
    """:func:`encode_weak_orders` for well-formed input (None or an exception otherwise).

    Flattening with ``+=`` splits a bare string into characters, so where an id could be one
    character the groups' types are checked first (longer ids make such characters unknown)."""
    k, n = len(index), len(orders)
    if k > 255 or isinstance(orders, str):
        return None
    groups: list[Sequence[str]] = functools.reduce(operator.iadd, orders, [])
    if any(not isinstance(a, str) or len(a) <= 1 for a in index) and not (
        set(map(type, orders)) | set(map(type, groups))
    ) <= {list, tuple}:
        return None
    per_ballot = bytes(map(len, orders))
    try:  # linear ballots: every group is one id
        ids = [alt for (alt,) in groups]
        sizes = None
    except ValueError:
        ids = functools.reduce(operator.iadd, groups, [])
        sizes = np.frombuffer(bytes(map(len, groups)), dtype=np.uint8)
    codes = np.frombuffer(bytes(map(index.__getitem__, ids)), dtype=np.uint8)
    out = np.full((n, k), -1, dtype=np.int16)
    if sizes is None and per_ballot == bytes([k]) * n:  # complete linear ballots
        out[np.arange(n)[:, None], codes.reshape(n, k)] = np.arange(k, dtype=np.int16)
        return out if n == 0 or int(out.min()) >= 0 else None
    counts = np.frombuffer(per_ballot, dtype=np.uint8)
    ballot = np.repeat(np.arange(n), counts)
    group = np.arange(len(groups)) - (np.cumsum(counts) - counts)[ballot]
    if sizes is not None:
        ballot, group = np.repeat(ballot, sizes), np.repeat(group, sizes)
    out[ballot, codes] = group
    return out if np.count_nonzero(out >= 0) == len(ids) else None


def decode_levels(alternatives: Sequence[str], levels: np.ndarray | Sequence[int]) -> WeakOrder:
    """Tie-group levels ``[K]`` (0 = best, -1 = unranked) back to the contract form, ids in
    input order (levels need not be dense)."""
    row = levels.tolist() if isinstance(levels, np.ndarray) else levels
    top = max(row, default=-1)
    if top >= 4 * len(row) + 4:  # sparse levels: sort them instead of bucketing
        by_level: dict[int, list[str]] = {}
        for alt, level in zip(alternatives, row, strict=True):
            if level >= 0:
                by_level.setdefault(level, []).append(alt)
        return [by_level[level] for level in sorted(by_level)]
    buckets: list[list[str]] = [[] for _ in range(top + 1)]
    for alt, level in zip(alternatives, row, strict=True):
        if level >= 0:
            buckets[level].append(alt)
    return [b for b in buckets if b]


@dataclass(frozen=True)
class Profile:
    """The weak orders of the voters of one item.

    ``ranks`` is ``float32 [V, K]`` (fractional ranks, ``NaN`` = unranked under "ignore"),
    ``weights`` is ``float64 [V]``, ``groups`` optionally names each voter's rater group (for the
    egalitarian rule and per-group agreement). ``linear`` records that every ballot is known to be
    a linear order (``ranks`` rows are permutations of 0..K-1), as the constructors find out while
    encoding; False means "not known" and rules check for themselves.
    """

    alternatives: tuple[str, ...]
    ranks: np.ndarray
    weights: np.ndarray
    partial: Partial = "bottom"
    groups: tuple[str, ...] | None = None
    linear: bool = False

    def __post_init__(self) -> None:
        k = len(self.alternatives)
        if np.ndim(self.ranks) != 2 or np.shape(self.ranks)[1] != k:
            raise ValueError(f"ranks must be [voters, {k}] for {k} alternatives, "
                             f"got shape {np.shape(self.ranks)}")
        if np.shape(self.weights) != (np.shape(self.ranks)[0],):
            raise ValueError(f"weights must be [{np.shape(self.ranks)[0]}] (one per voter), "
                             f"got shape {np.shape(self.weights)}")
        if self.groups is not None and len(self.groups) != np.shape(self.ranks)[0]:
            raise ValueError("groups must name one group per voter")

    @classmethod
    def from_weak_orders(
        cls,
        alternatives: Sequence[str],
        orders: Sequence[Sequence[Sequence[str]]],
        weights: Sequence[float] | np.ndarray | None = None,
        partial: Partial = "bottom",
        groups: Sequence[str] | None = None,
    ) -> Profile:
        """Build from weak orders in the contract form; see the module docstring for ``partial``."""
        alts = tuple(alternatives)
        group_idx = encode_weak_orders(alts, orders)
        return cls.from_group_indices(alts, group_idx, weights, partial, groups)

    @classmethod
    def from_group_indices(
        cls,
        alternatives: Sequence[str],
        group_indices: np.ndarray,
        weights: Sequence[float] | np.ndarray | None = None,
        partial: Partial = "bottom",
        groups: Sequence[str] | None = None,
    ) -> Profile:
        """Build from tie-group indices ``[V, K]`` (0 = best, equal = tied, -1 = unranked).

        The array form of :meth:`from_weak_orders` (no per-ballot Python lists): e.g. one row per
        stored ranking, as kept next to its JSON or built from database rows."""
        g = integer_array("group_indices", group_indices, 2)
        if g.shape[1] != len(alternatives):
            raise ValueError(f"group_indices must have one column per alternative "
                             f"({len(alternatives)}), got shape {g.shape}")
        n = g.shape[0]
        w = np.ones(n) if weights is None else _check_weights(np.asarray(weights), n)
        if groups is not None and len(groups) != n:
            raise ValueError("groups must name one group per voter")
        ranks, linear = _fractional_ranks(g, partial)
        grp = None if groups is None else tuple(groups)
        return cls(tuple(alternatives), ranks, w, partial, grp, linear and ranks.ndim == 2)

    @property
    def n_voters(self) -> int:
        """Number of ballots (including weight-0 ones)."""
        return int(self.ranks.shape[0])

    @property
    def n_alternatives(self) -> int:
        """K, the number of alternatives."""
        return len(self.alternatives)

    def weak_orders(self) -> list[WeakOrder]:
        """Each voter's ballot back in the contract form (unranked alternatives omitted)."""
        return [decode_levels(self.alternatives, _levels_of_ranks(r)) for r in self.ranks]

    def as_group(self) -> ProfileGroup:
        """This profile as a batch group of one item (what the rule functions consume); made
        once, so the group's cached margins serve every rule run on this profile."""
        group: ProfileGroup | None = self.__dict__.get("_group")
        if group is None:
            group = self._make_group()
            self.__dict__["_group"] = group  # frozen dataclass: the cache bypasses __setattr__
        return group

    def _make_group(self) -> ProfileGroup:
        codes = None
        if self.groups is not None:
            names = sorted(set(self.groups))
            codes = np.array([[names.index(g) for g in self.groups]], dtype=np.int32)
        return ProfileGroup(
            np.zeros(1, dtype=np.int64),
            self.ranks[None],
            self.weights[None],
            self.partial,
            codes,
            self.linear,
        )


def _levels_of_ranks(ranks: np.ndarray) -> np.ndarray:
    levels = np.full(ranks.shape, -1, dtype=np.int64)
    ok = ~np.isnan(ranks)
    levels[ok] = np.unique(ranks[ok], return_inverse=True)[1]
    return levels


@dataclass(frozen=True)
class ProfileGroup:
    """Items of a batch that share K: dense arrays the rules work on.

    ``ranks float32 [n, V, K]``, ``weights float64 [n, V]`` (0 = padding / absent voter),
    ``items int64 [n]`` (positions in the batch), ``voter_groups int32 [n, V]`` (-1 = none) or None,
    ``linear``: every ballot is known to be a linear order (False = not known).
    """

    items: np.ndarray
    ranks: np.ndarray
    weights: np.ndarray
    partial: Partial = "bottom"
    voter_groups: np.ndarray | None = None
    linear: bool = False

    @property
    def k(self) -> int:
        """Number of alternatives of every item in the group."""
        return int(self.ranks.shape[2])

    def take(self, rows: np.ndarray) -> ProfileGroup:
        """The sub-group of the given rows."""
        vg = None if self.voter_groups is None else self.voter_groups[rows]
        return ProfileGroup(
            self.items[rows], self.ranks[rows], self.weights[rows], self.partial, vg, self.linear
        )
