"""Parameter and array checks shared by the constructors and the rules.

Every bad parameter fails with a ``ValueError`` that names the parameter and what it must be,
before any computation: a silent answer (``reg=-1`` reversing a unanimous order, a negative item
index merging ballots into the last item) or a raw numpy error is never the result.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np


def real(name: str, value: object) -> float:
    """``value`` as a finite float, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def positive(name: str, value: object) -> float:
    """A finite number > 0."""
    x = real(name, value)
    if x <= 0:
        raise ValueError(f"{name} must be > 0, not {value!r}")
    return x


def unit_interval(name: str, value: object) -> float:
    """A finite number in [0, 1]."""
    x = real(name, value)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], not {value!r}")
    return x


def permutation(name: str, value: object, k: int, exact: bool = False) -> list[int]:
    """Alternative indices, best first, whose entries below ``k`` are each of 0..k-1 once.

    Entries >= k are allowed (one order serves a batch of mixed K) unless ``exact``."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of alternative indices, not {value!r}")
    items = list(value)
    if not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in items):
        raise ValueError(f"{name} must hold integer alternative indices, not {items!r}")
    order = [int(a) for a in items]
    if any(a < 0 for a in order) or len(set(order)) != len(order):
        raise ValueError(f"{name} must list each alternative once, no negatives: {order!r}")
    kept = [a for a in order if a < k]
    if sorted(kept) != list(range(k)) or (exact and len(order) != k):
        raise ValueError(f"{name} must be a permutation of the {k} alternatives, not {order!r}")
    return kept


def integer_array(name: str, value: object, ndim: int) -> np.ndarray:
    """An integer numpy array with ``ndim`` dimensions (integral floats are converted)."""
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr))) and bool(
        np.all(arr == np.round(arr))
    ):
        return arr.astype(np.int64)
    if arr.size == 0:
        return arr.astype(np.int64)
    raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")


def ids_permutation(name: str, value: object, alternatives: Sequence[str]) -> list[int]:
    """A tie-breaker given as alternative ids (every id once) to indices."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of alternative ids, not {value!r}")
    index = {a: i for i, a in enumerate(alternatives)}
    order = list(value)
    unknown = [a for a in order if a not in index]
    if unknown:
        raise ValueError(f"{name} names unknown alternatives {unknown!r}")
    out = [index[a] for a in order]
    if sorted(out) != list(range(len(alternatives))):
        raise ValueError(f"{name} must list every alternative once: {order!r}")
    return out
