"""Agreement between rankings: Kendall tau-b, Kendall's W, Krippendorff's alpha, bootstrap CIs.

Raters with weight 0 (batch padding) are left out; otherwise raters count once each (agreement
statistics are unweighted). A ballot's pairwise signs ``s[a, b] = sign(rank_b - rank_a)`` drive
the tau-based statistics; pairs with an unranked alternative (``partial="ignore"``) count as tied.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .checks import real
from .profiles import Profile, ProfileGroup, WeakOrder, encode_weak_order, fractional_ranks


@dataclass(frozen=True)
class KendallW:
    """Kendall's W (tie-corrected) with its panel size: W is biased upward for small panels
    (for m raters of pure noise E[W] = 1/m), so always read it with ``n_raters``."""

    w: float
    n_raters: int
    n_alternatives: int
    chi2: float
    p_value: float


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int


def _ranks_of(order: WeakOrder, alternatives: Sequence[str]) -> np.ndarray:
    index = {a: i for i, a in enumerate(alternatives)}
    return fractional_ranks(np.array([encode_weak_order(order, index)]), "bottom")[0]


def signs(ranks: np.ndarray) -> np.ndarray:
    """Pairwise signs ``[..., P]`` over the pairs a < b: +1 a above b, -1 below, 0 tied/unranked."""
    k = ranks.shape[-1]
    iu, ju = np.triu_indices(k, 1)
    ra, rb = ranks[..., iu], ranks[..., ju]
    return (ra < rb).astype(np.float64) - (ra > rb)


def kendall_tau_b(order_a: WeakOrder, order_b: WeakOrder,
                  alternatives: Sequence[str] | None = None) -> float:
    """Kendall's tau-b between two weak orders (ids missing from one order are tied at its
    bottom). NaN when either order ties everything. Same value as ``scipy.stats.kendalltau``."""
    alts = alternatives or sorted({a for g in (*order_a, *order_b) for a in g})
    s = signs(np.stack([_ranks_of(order_a, alts), _ranks_of(order_b, alts)]))
    return float(_tau_b_matrix(s[None])[0, 0, 1])


def _tau_b_matrix(s: np.ndarray) -> np.ndarray:
    """``[n, V, V]`` tau-b between all ballots of each item from signs ``[n, V, P]``."""
    num = np.matmul(s, s.transpose(0, 2, 1))
    untied = np.count_nonzero(s, axis=2).astype(np.float64)
    den = np.sqrt(untied[:, :, None] * untied[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def mean_pairwise_tau_b(group: ProfileGroup | Profile) -> np.ndarray:
    """Mean tau-b over all pairs of (present) raters, per item ``[n]`` (NaN below 2 raters)."""
    g = group.as_group() if isinstance(group, Profile) else group
    tau = _tau_b_matrix(signs(g.ranks))
    present = g.weights > 0
    pair = present[:, :, None] & present[:, None, :] & ~np.eye(tau.shape[1], dtype=bool)
    pair &= ~np.isnan(tau)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.where(pair, tau, 0).sum(axis=(1, 2)) / pair.sum(axis=(1, 2)))


def kendall_w(profile: Profile) -> KendallW:
    """Kendall's coefficient of concordance W with the tie correction (complete ballots only)."""
    w, m = kendall_w_batch(profile.as_group())
    k = profile.n_alternatives
    chi2 = float(m[0] * (k - 1) * w[0])
    # Imported here, not with the module: scipy.stats alone was most of the web process's start-up.
    from scipy import stats

    p = float(stats.chi2.sf(chi2, k - 1)) if k > 1 else float("nan")
    return KendallW(float(w[0]), int(m[0]), k, chi2, p)


def kendall_w_batch(group: ProfileGroup) -> tuple[np.ndarray, np.ndarray]:
    """Tie-corrected W and panel size per item: ``W = 12 S / (m^2 (K^3 - K) - m sum_j T_j)``,
    ``T_j = sum over rater j's tie groups of (t^3 - t)``, ranks 1-based mid-ranks."""
    if group.partial == "ignore" and np.isnan(group.ranks).any():
        raise ValueError("Kendall's W needs complete ballots (use partial='bottom')")
    present = group.weights > 0
    m = present.sum(axis=1).astype(np.float64)
    k = group.k
    r = np.where(present[:, :, None], group.ranks + 1.0, 0.0)
    totals = r.sum(axis=1)
    s = ((totals - (m * (k + 1) / 2)[:, None]) ** 2).sum(axis=1)
    tied = (group.ranks[:, :, :, None] == group.ranks[:, :, None, :]).sum(axis=3)
    t = np.where(present[:, :, None], tied**2 - 1.0, 0.0).sum(axis=(1, 2))
    den = m**2 * (k**3 - k) - m * t
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 12 * s / den, np.nan), m


def _coincidence_alpha(values: np.ndarray, delta: Callable[[np.ndarray, np.ndarray], np.ndarray]
                       ) -> float:
    """Krippendorff's alpha from ``values [units, coders]`` (NaN = missing) and a distance
    ``delta(value_index_counts n_c, category_values) -> [C, C]`` on the value categories."""
    ok = ~np.isnan(values)
    cats, inv = np.unique(values[ok], return_inverse=True)
    unit = np.nonzero(ok)[0]
    counts = np.zeros((values.shape[0], len(cats)))
    np.add.at(counts, (unit, inv), 1.0)
    m_u = counts.sum(axis=1)
    pairable = m_u > 1
    counts, m_u = counts[pairable], m_u[pairable]
    if len(m_u) == 0 or len(cats) < 2:
        return float("nan")
    scale = 1.0 / (m_u - 1)
    o = (counts * scale[:, None]).T @ counts - np.diag((counts * scale[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d = delta(n_c, cats)
    d_o = (o * d).sum() / n
    d_e = (np.outer(n_c, n_c) * d).sum() / (n * (n - 1))
    return float(1.0 - d_o / d_e) if d_e > 0 else float("nan")


def _ordinal_delta(n_c: np.ndarray, cats: np.ndarray) -> np.ndarray:
    cum = np.concatenate(([0.0], np.cumsum(n_c)))
    lo = np.minimum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
    hi = np.maximum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
    between = cum[hi + 1] - cum[lo]
    return np.asarray((between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2)


def _kendall_delta(n_c: np.ndarray, cats: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(cats[:, None] - cats[None, :]) / 2.0)


def krippendorff_alpha(groups: Sequence[ProfileGroup | Profile],
                       metric: str = "ordinal") -> float:
    """Krippendorff's alpha for rankings over one or many items.

    ``metric="ordinal"``: units are the (item, alternative) cells, the values are the raters'
    1-based mid-ranks, with Krippendorff's ordinal distance. ``metric="kendall"``: units are the
    ordered pairs (a, b) of each item (both orientations, so the chance model has no direction),
    values +1 / 0 / -1 (a above b / tied / below) and distance |x - y| / 2: a reversed pair costs
    1 and a tie against a strict preference 1/2, the per-pair Kendall distance.
    """
    units = [_units(g.as_group() if isinstance(g, Profile) else g, metric) for g in groups]
    values = _stack_ragged(units)
    delta = {"ordinal": _ordinal_delta, "kendall": _kendall_delta}.get(metric)
    if delta is None:
        raise ValueError("metric must be 'ordinal' or 'kendall'")
    return _coincidence_alpha(values, delta)


def _units(group: ProfileGroup, metric: str) -> np.ndarray:
    present = group.weights > 0
    r = np.where(present[:, :, None], group.ranks + 1.0, np.nan)
    if metric == "ordinal":
        return r.transpose(0, 2, 1).reshape(-1, r.shape[1])
    iu, ju = np.triu_indices(group.k, 1)
    s = np.where(np.isnan(r[..., iu]) | np.isnan(r[..., ju]), np.nan, signs(r))
    both = np.concatenate([s, -s], axis=2)
    return both.transpose(0, 2, 1).reshape(-1, r.shape[1])


def _stack_ragged(blocks: Sequence[np.ndarray]) -> np.ndarray:
    width = max((b.shape[1] for b in blocks), default=0)
    padded = [np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=np.nan) for b in blocks]
    return np.concatenate(padded) if padded else np.zeros((0, 0))


def bootstrap(
    profile: Profile,
    statistic: Callable[[Profile], float],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int | None = 0,
) -> Interval:
    """Percentile bootstrap CI of ``statistic(profile)``, resampling raters with replacement."""
    _check_bootstrap(n_boot, level)
    rng = np.random.default_rng(seed)
    v = profile.n_voters
    draws = rng.integers(0, v, size=(n_boot, v))
    values = np.array([statistic(_resampled(profile, d)) for d in draws])
    return _interval(statistic(profile), values, level)


def bootstrap_items(values: Sequence[float] | np.ndarray, n_boot: int = 1000,
                    level: float = 0.95, seed: int | None = 0) -> Interval:
    """Percentile bootstrap CI of the mean of per-item statistics (project level; NaNs dropped),
    resampling items with replacement (vectorised)."""
    _check_bootstrap(n_boot, level)
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level, n_boot)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return _interval(float(x.mean()), means, level)


def _check_bootstrap(n_boot: int, level: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, not {n_boot!r}")
    if not 0.0 < real("level", level) < 1.0:
        raise ValueError(f"level must be in (0, 1), not {level!r}")


def _interval(estimate: float, values: np.ndarray, level: float) -> Interval:
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return Interval(estimate, float("nan"), float("nan"), level, len(values))
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate, float(lo), float(hi), level, len(values))


def _resampled(profile: Profile, rows: np.ndarray) -> Profile:
    groups = None if profile.groups is None else tuple(profile.groups[i] for i in rows)
    return Profile(profile.alternatives, profile.ranks[rows], profile.weights[rows],
                   profile.partial, groups)


@dataclass(frozen=True)
class RaterDistances:
    """Per rater: normalised Kendall distance to the collective order (0 = identical, 1 =
    reversed; a pair tied on one side only costs 1/2) and tau-b with it."""

    distance: np.ndarray
    tau_b: np.ndarray


def rater_distances(profile: Profile, collective: WeakOrder) -> RaterDistances:
    """Each rater's distance to the collective ranking, to spot careless or outlying raters."""
    target = signs(_ranks_of(collective, profile.alternatives))
    s = signs(profile.ranks)
    p = max(s.shape[1], 1)
    distance = np.abs(s - target[None, :]).sum(axis=1) / (2.0 * p)
    tau = _tau_b_matrix(np.concatenate([target[None], s])[None])[0, 0, 1:]
    return RaterDistances(distance, tau)


@dataclass(frozen=True)
class PoolAgreement:
    """Agreement of two rater pools on one item."""

    collective_tau_b: float
    mean_cross_tau_b: float
    within_a: float
    within_b: float


def pool_agreement(pool_a: Profile, pool_b: Profile, order_a: WeakOrder,
                   order_b: WeakOrder) -> PoolAgreement:
    """Two pools (e.g. humans vs synthetic) on one item: tau-b between their collective orders,
    mean tau-b over cross-pool rater pairs, and each pool's mean pairwise tau-b."""
    if pool_a.alternatives != pool_b.alternatives:
        raise ValueError("both pools must rank the same alternatives in the same order")
    sa, sb = signs(pool_a.ranks[pool_a.weights > 0]), signs(pool_b.ranks[pool_b.weights > 0])
    cross = _tau_b_matrix(np.concatenate([sa, sb])[None])[0, : len(sa), len(sa) :]
    return PoolAgreement(
        kendall_tau_b(order_a, order_b, pool_a.alternatives),
        float(np.nanmean(cross)) if np.any(~np.isnan(cross)) else float("nan"),
        float(mean_pairwise_tau_b(pool_a)[0]),
        float(mean_pairwise_tau_b(pool_b)[0]),
    )
