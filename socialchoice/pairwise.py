"""Pairwise statistics of a profile group, vectorised over items.

``margins[i, a, b]`` = weight of voters ranking a strictly above b minus the weight ranking b above
a; ``compared[i, a, b]`` = weight of voters who ranked both a and b (the total weight unless
``partial="ignore"``). The weighted support of a over b counting ties as half is
``(compared + margins) / 2``.

Float voter weights make sums depend on summation order, so margins are *snapped*: rounded to a
grid of ``SNAP`` times the item's total weight. Equal quantities therefore compare equal whatever
the voter order, which keeps every rule exactly anonymous. Integer weights are unaffected.

A group's margins are computed once and kept on the group (read-only), as pref-voting's
``Profile`` keeps its margins: every rule run on the same prebuilt profile or batch reuses them.
Groups and profiles are immutable; their arrays must not be modified in place.
"""

from __future__ import annotations

import numpy as np

from .profiles import ProfileGroup

SNAP = 1e-10
_BROADCAST_LIMIT = 1 << 18
_PACKED_LIMIT = 1 << 20
_MAX_BITS_K = 63  # doubled ranks up to 2(K - 1) fit in int8


def total_weight(group: ProfileGroup) -> np.ndarray:
    """Total voter weight per item, ``[n]``."""
    return group.weights.sum(axis=1)


def snap(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Round ``x [n, ...]`` to multiples of the power of two just below ``SNAP * scale[n]`` (see
    the module docstring); a power-of-two grid leaves integers and halves exactly as they are."""
    s = np.exp2(np.floor(np.log2(np.where(scale > 0, scale, 1.0) * SNAP)))
    s = s.reshape((-1,) + (1,) * (x.ndim - 1))
    return np.round(x / s) * s + 0.0


_CACHE = "_margins"


def margins(group: ProfileGroup) -> np.ndarray:
    """Weighted pairwise margins ``float64 [n, K, K]`` (antisymmetric, snapped; cached on the
    group, read-only)."""
    m: np.ndarray | None = group.__dict__.get(_CACHE)
    if m is None:
        m = _margins_counted(group)
        if m is None:
            m = _margins_weighted(group)
        m.flags.writeable = False
        group.__dict__[_CACHE] = m  # frozen dataclass: the cache bypasses __setattr__
    return m


def _margins_weighted(group: ProfileGroup) -> np.ndarray:
    """:func:`margins` for any weights (float sums, recomputed exactly when not integral)."""
    n, v, k = group.ranks.shape
    if n * v * k * k <= _BROADCAST_LIMIT:
        return _margins_broadcast(group)
    out = np.zeros((n, k, k))
    rt = np.ascontiguousarray(group.ranks.transpose(2, 0, 1))
    w = group.weights.astype(np.float32)[:, :, None]
    for a in range(k):
        for b in range(a + 1, k):
            d = (rt[a] < rt[b]).view(np.int8) - (rt[a] > rt[b]).view(np.int8)
            out[:, a, b] = np.matmul(d.astype(np.float32)[:, None, :], w)[:, 0, 0]
    if not _integral(group.weights):
        out = _exact_margins(group, out)
    out = snap(out - out.transpose(0, 2, 1), total_weight(group))
    return out


def small_group(group: ProfileGroup) -> bool:
    """Whether the group is one item's size (margins are then a single packed comparison)."""
    n, v, k = group.ranks.shape
    return n * v * k * k <= _PACKED_LIMIT


def counted_margins(group: ProfileGroup) -> np.ndarray | None:
    """The margins when they are voter counts (weights 0 or 1, K < 64; large groups also need
    half-integer ranks), else None."""
    cached = group.__dict__.get(_CACHE)
    if cached is not None:
        return cached if _countable(group) else None
    m = _margins_counted(group)
    if m is not None:
        m.flags.writeable = False
        group.__dict__[_CACHE] = m
    return m


def _countable(group: ProfileGroup) -> bool:
    w = group.weights
    return group.k <= _MAX_BITS_K and group.ranks.size > 0 and bool(np.all((w == 1.0) | (w == 0.0)))


def _margins_counted(group: ProfileGroup) -> np.ndarray | None:
    """Margins by counting voters (weights 0 or 1, K < 64); None otherwise. One item compares
    the float ranks; larger groups need half-integer ranks (int8 doubled ranks)."""
    n, v, k = group.ranks.shape
    w = group.weights
    if not _countable(group):
        return None
    if n * v * k * k <= _PACKED_LIMIT:
        wins = _wins_packed(group.ranks, w > 0, group.linear)
        return (wins - wins.transpose(0, 2, 1)).astype(np.float64)
    r2 = _doubled(group.ranks, w > 0)
    if r2 is None:
        return None
    last = _wins_last(r2).astype(np.int32)
    out = np.empty((n, k, k))
    out[...] = (last - last.transpose(1, 0, 2)).transpose(2, 0, 1)
    return out


def win_counts(ranks: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``wins[n, a, b]`` = number of present voters ranking a strictly above b, ``int64``
    (``ranks`` must be fractional ranks: half-integers, no NaN)."""
    r2 = _doubled(ranks, present)
    if r2 is None:
        raise ValueError("ranks must be half-integers below 64 (fractional ranks, no NaN)")
    return _wins_last(r2).transpose(2, 0, 1).astype(np.int64)


def _doubled(ranks: np.ndarray, present: np.ndarray) -> np.ndarray | None:
    """Doubled fractional ranks as int8 ``[n, V, K]`` (absent voters all 0, so never counted);
    None unless every doubled rank is an integer in int8 range (NaN, odd values fall back)."""
    d = np.multiply(ranks, 2, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        r2 = d.astype(np.int8)
    if not bool(np.all(r2 == d)):
        return None
    if not bool(present.all()):
        r2 *= present[:, :, None]
    return r2


def _wins_packed(ranks: np.ndarray, present: np.ndarray, linear: bool = False) -> np.ndarray:
    """Win counts of small groups (one item) from the float ranks themselves: one broadcast
    comparison ``[n, a, b, V]`` (NaN compares false, as in the float path; absent voters get
    rank 0 everywhere), packed 8 voters a byte and counted with a popcount per 64-bit word.
    ``linear`` (ranks known to be permutations of 0..K-1, K < 64) compares int8 copies, and
    below 2^16 voters sums the comparison bytes directly."""
    n, v, k = ranks.shape
    if linear and v < 1 << 16:  # int8 ranks, byte comparisons summed in uint16 (no packing)
        rt8 = np.ascontiguousarray(ranks.transpose(0, 2, 1), dtype=np.int8)
        if not bool(present.all()):
            rt8 *= present[:, None, :]
        byte = (rt8[:, :, None, :] < rt8[:, None, :, :]).view(np.uint8)
        return byte.sum(axis=-1, dtype=np.uint16).astype(np.int64)
    width = -(-v // 64) * 64
    rt = np.zeros((n, k, width), dtype=np.int8 if linear else np.float32)
    rt[:, :, :v] = ranks.transpose(0, 2, 1)
    if not bool(present.all()):
        rt[:, :, :v] *= present[:, None, :]
    less = rt[:, :, None, :] < rt[:, None, :, :]
    packed = np.packbits(less, axis=-1).view(np.uint64)
    return np.bitwise_count(packed).sum(axis=-1, dtype=np.int64)


def _wins_last(r2: np.ndarray) -> np.ndarray:
    """Win counts from doubled ranks ``int8 [n, V, K]``, laid out ``[a, b, n]`` (uint8 when
    every item has < 256 voters).

    Doubled fractional ranks are small integers: they go with voters on the last axis,
    and each ordered pair is one comparison plus a byte-sized count over voters (blocks of 255
    voters, so a uint8 count cannot overflow). Absent voters get equal ranks everywhere, so they
    never count."""
    n, v, k = r2.shape
    kt = np.ascontiguousarray(r2.transpose(2, 0, 1))
    counts = np.zeros((k, k, n), dtype=np.uint8)
    total = np.zeros((k, k, n), dtype=np.int64) if v > 255 else None
    for start in range(0, v, 255):
        block = kt[:, :, start : start + 255]
        for a in range(k):
            for b in range(k):
                if a != b:
                    less = (block[a] < block[b]).view(np.uint8)
                    np.add.reduce(less, axis=-1, dtype=np.uint8, out=counts[a, b])
        if total is not None:
            total += counts
    return counts if total is None else total


def _margins_broadcast(group: ProfileGroup) -> np.ndarray:
    """Small groups (one item): all pairs in one broadcast comparison, float64 throughout."""
    r = group.ranks
    a, b = r[:, :, :, None], r[:, :, None, :]
    d = (a < b).astype(np.float64) - (a > b)
    return snap(np.einsum("nvab,nv->nab", d, group.weights), total_weight(group))


def _integral(w: np.ndarray) -> bool:
    return bool(np.all(w == np.round(w)) and w.sum(axis=1).max(initial=0) < 2**23)


def _exact_margins(group: ProfileGroup, approx: np.ndarray) -> np.ndarray:
    """Recompute the upper triangle in float64 when weights are not small integers."""
    k = group.k
    out = np.zeros_like(approx)
    for a in range(k):
        for b in range(a + 1, k):
            ra, rb = group.ranks[:, :, a], group.ranks[:, :, b]
            d = (ra < rb).astype(np.float64) - (ra > rb)
            out[:, a, b] = np.einsum("nv,nv->n", d, group.weights)
    return out


def compared(group: ProfileGroup) -> np.ndarray:
    """Weight of voters who ranked both a and b, ``[n, K, K]`` (zero diagonal)."""
    n, _, k = group.ranks.shape
    if group.partial == "bottom":
        out = np.broadcast_to(total_weight(group)[:, None, None], (n, k, k)).copy()
    else:
        ranked = (~np.isnan(group.ranks)).astype(np.float64)
        out = np.einsum("nva,nvb,nv->nab", ranked, ranked, group.weights)
    out[:, np.arange(k), np.arange(k)] = 0.0
    return out


def support(group: ProfileGroup) -> np.ndarray:
    """Weighted support of a over b with ties counted as half, ``[n, K, K]``."""
    return (compared(group) + margins(group)) / 2.0
