"""Small statistics shared by the scorers: percentile bootstrap intervals over examples."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import numpy as np

DEFAULT_BOOT = 1000
DEFAULT_ALPHA = 0.05


class Interval(TypedDict):
    low: float
    high: float


def bootstrap_interval(
    values: np.ndarray | list[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = DEFAULT_BOOT,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Interval | None:
    """Percentile bootstrap interval of `statistic` over the rows of `values`.

    Rows are resampled with replacement `n_boot` times with a seeded generator, so the same
    input always gives the same interval. None for an empty input (no interval, not a fake one).
    `values` may be 2-D (rows are examples) for statistics of several columns.
    """
    data = np.asarray(values, dtype=float)
    n = data.shape[0]
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    if data.ndim == 1 and statistic is np.mean:
        stats = data[idx].mean(axis=1)
    else:
        stats = np.array([statistic(data[row]) for row in idx])
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return None
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {"low": float(low), "high": float(high)}
