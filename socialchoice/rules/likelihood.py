"""Maximum-likelihood rules: Bradley-Terry (pairwise) and Plackett-Luce (whole rankings).

Both fit log-strengths ``theta`` by damped Newton steps, vectorised over items, with the ridge
penalty ``(reg / 2) * |theta|^2``. Data are normalised by each item's total voter weight, so
``reg`` is measured in "voters" and duplicating every ballot does not change the fit. The penalty
makes the maximum unique and finite even when an alternative wins every comparison (the plain
MLE diverges then) and centres theta at 0. Scores are the fitted theta; values within ``1e-7``
are tied.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.linalg.lapack import get_lapack_funcs

from ..checks import positive
from ..orders import _score_levels_one, levels_from_scores
from ..pairwise import compared, margins, total_weight
from ..profiles import ProfileGroup
from .registry import RuleOutput, register

_gesv = get_lapack_funcs("gesv", (np.zeros(1),))

DEFAULT_REG = 0.01
# Plackett-Luce: dense per-item layouts while they hold at most _DENSE_KEYS cells or
# _DENSE_FACTOR times as many as there are choice events.
_DENSE_KEYS = 1 << 16
_DENSE_FACTOR = 4
SCORE_TOL = 1e-7


GradHess = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _newton(grad_hess: GradHess, theta: np.ndarray, iters: int = 100) -> np.ndarray:
    """Maximise a concave objective given ``grad_hess(theta) -> (g [n, K], H [n, K, K])``."""
    for _ in range(iters):
        g, h = grad_hess(theta)
        step = np.linalg.solve(h, -g[:, :, None])[:, :, 0]
        size = np.abs(step).max(axis=1, keepdims=True)
        theta = theta + step / np.maximum(size, 1.0)
        if size.max(initial=0.0) < 1e-12:
            break
    return theta


def _output(theta: np.ndarray) -> RuleOutput:
    scores = theta - theta.mean(axis=1, keepdims=True)
    return RuleOutput(scores, levels_from_scores(scores, SCORE_TOL))


@register("bradley_terry", axioms=("anonymity", "neutrality", "pareto"))
def bradley_terry(group: ProfileGroup, reg: float = DEFAULT_REG) -> RuleOutput:
    """Bradley-Terry maximum likelihood (ridge-regularised).

    Definition: P(a beats b) = sigmoid(theta_a - theta_b). Every voter contributes, for each pair
    she ranked, one comparison won by the alternative she prefers (a tie counts half a win each).
    theta maximises the log-likelihood of the support fractions (support / total weight) minus
    ``reg / 2 * |theta|^2`` (default reg = 0.01). Higher theta ranks higher.
    Ties: thetas within 1e-7 are tied (symmetric alternatives get equal thetas).
    Complexity: O(V K^2) for the support matrix, then O(K^3) per Newton step (about 10 steps).
    Axioms: anonymity, neutrality, Pareto; with complete linear ballots and reg -> 0 it orders like
    Borda; NOT independent of clones, not Condorcet-consistent.
    Reference: R. A. Bradley and M. E. Terry, Biometrika 39 (1952); D. R. Hunter, "MM algorithms for
    generalized Bradley-Terry models", Ann. Stat. 32 (2004).
    """
    reg = positive("reg", reg)  # reg <= 0 has no unique maximum (reg < 0 reverses orders)
    m = margins(group)
    if m.shape[0] == 1 and group.partial == "bottom":
        return _bradley_terry_one(m, float(group.weights.sum()), reg)
    w = np.maximum(total_weight(group), 1e-300)[:, None, None]
    s = (compared(group) + m) / 2.0 / w
    both = s + s.transpose(0, 2, 1)
    eye = np.eye(group.k)

    def grad_hess(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))
        g = np.sum(s - both * p, axis=2) - reg * theta
        c = both * p * (1.0 - p)
        h = c - eye * (c.sum(axis=2)[:, :, None] + reg)
        return g, h

    out = _output(_newton(grad_hess, np.zeros((s.shape[0], group.k))))
    return RuleOutput(out.scores, out.levels, {"margins": m})


def _bradley_terry_one(m: np.ndarray, total: float, reg: float) -> RuleOutput:
    """:func:`bradley_terry` for one item whose voters rank every alternative (``partial =
    "bottom"``: every voter compares every pair, so ``compared`` is the total weight off the
    diagonal), on 2-D arrays with the same Newton steps as :func:`_newton`."""
    k = m.shape[1]
    w = max(total, 1e-300)
    s = (m[0] + total) / 2.0 / w
    flat_diag = s.reshape(-1)[:: k + 1]
    flat_diag[:] = 0.0
    theta = _newton_one(s, reg)
    row = theta.tolist()
    mean = sum(row) / k if k else 0.0
    scores = [x - mean for x in row]
    if all(x == x for x in scores):  # no NaN: Python's sort agrees with the batched argsort
        levels = np.array([_score_levels_one(scores, SCORE_TOL)], dtype=np.int64)
    else:
        levels = levels_from_scores(np.array([scores]), SCORE_TOL)
    return RuleOutput(np.array([scores]), levels, {"margins": m})


def _newton_one(s: np.ndarray, reg: float, iters: int = 100) -> np.ndarray:
    """:func:`_newton` on ``grad_hess`` of :func:`bradley_terry` for one item's support
    fractions ``s [K, K]``, without the item axis (a dozen small numpy calls per step)."""
    k = s.shape[0]
    both = s + s.T
    s_rows = s.sum(axis=1)
    theta = np.zeros(k)
    for i in range(iters):
        if i == 0:  # theta = 0: every p is exactly 1/2, so bp and h are exact multiples of both
            bp = both * 0.5
            g = s_rows - bp.sum(axis=1)
            h = both * 0.25
        else:
            p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))
            bp = both * p
            g = s_rows - bp.sum(axis=1) - reg * theta
            h = bp - bp * p
        h.reshape(-1)[:: k + 1] -= h.sum(axis=1) + reg
        # LAPACK's gesv directly: the same routine as np.linalg.solve, without its ~3 us of wrapping.
        lu, piv, step, info = _gesv(h, -g)
        if info:
            step = np.linalg.solve(h, -g)  # raises LinAlgError with numpy's message
        size = max(map(abs, step.tolist()), default=0.0)
        theta = theta + (step if size <= 1.0 else step / size)
        if size < 1e-12:
            break
    return theta


def _choice_events(group: ProfileGroup) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Collapse ballots into weighted choice events: (item row, choice-set mask, weight) with
    identical (row, mask) merged, sorted by (row, mask), plus ``wins[n, K]`` = weight of times
    each alternative is chosen.

    Voter v chooses a from ``{b ranked: rank_b >= rank_a}`` (Breslow's treatment of ties)."""
    n, v, k = group.ranks.shape
    r = group.ranks
    ranked = ~np.isnan(r)
    inset = (r[:, :, None, :] >= r[:, :, :, None]) & ranked[:, :, None, :]
    masks = inset.astype(np.int64) @ (np.int64(1) << np.arange(k, dtype=np.int64))
    w = group.weights / np.maximum(total_weight(group), 1e-300)[:, None]
    real = ranked & (np.bitwise_count(masks) > 1) & (w[:, :, None] > 0)
    ev_w = np.broadcast_to(w[:, :, None], (n, v, k))[real]
    ev_rows, _, ev_cols = np.nonzero(real)
    # bincount adds each bin's weights in input order, as np.add.at and np.unique + bincount did.
    wins = np.bincount(ev_rows * k + ev_cols, weights=ev_w, minlength=n * k).reshape(n, k)
    keys = ev_rows * (1 << k) + masks[real]
    if n << k <= max(_DENSE_FACTOR * len(keys), _DENSE_KEYS):
        # Few possible (row, mask) keys: one bincount over all of them instead of sorting.
        # Every event weight is > 0, so a key occurs exactly where its sum is > 0.
        dense = np.bincount(keys, weights=ev_w, minlength=n << k)
        keys = np.flatnonzero(dense > 0)
        counts = dense[keys]
    else:
        keys, inv = np.unique(keys, return_inverse=True)
        counts = np.bincount(inv, weights=ev_w, minlength=len(keys))
    return keys >> k, keys & ((1 << k) - 1), counts, wins


@register("plackett_luce", axioms=("anonymity", "neutrality", "pareto"))
def plackett_luce(group: ProfileGroup, reg: float = DEFAULT_REG) -> RuleOutput:
    """Plackett-Luce maximum likelihood (ridge-regularised).

    Definition: a ballot is read as successive choices: the first-ranked alternative is chosen
    from all, the next from the rest, ..., with P(choose a from S) = exp(theta_a) / sum_{b in S}
    exp(theta_b). A tie group uses Breslow's approximation (each member chosen from the same set).
    Under ``partial="ignore"`` only ranked alternatives enter the choice sets. theta maximises the
    weighted log-likelihood (weights normalised to sum to 1 per item) minus ``reg / 2 *
    |theta|^2`` (default 0.01). Higher theta ranks higher.
    Ties: thetas within 1e-7 are tied.
    Complexity: O(V K^2) to collapse ballots into at most min(V K, 2^K) distinct choice sets, then
    O(E K^2 + K^3) per Newton step.
    Axioms: anonymity, neutrality, Pareto; NOT independent of clones, not Condorcet-consistent.
    Reference: R. L. Plackett, Appl. Stat. 24 (1975); R. D. Luce, Individual Choice Behavior (1959);
    D. R. Hunter, Ann. Stat. 32 (2004); N. Breslow, Biometrics 30 (1974).
    """
    reg = positive("reg", reg)
    n, _, k = group.ranks.shape
    rows, masks, counts, wins = _choice_events(group)
    member = ((masks[:, None] >> np.arange(k)) & 1).astype(bool)
    eye = np.eye(k)
    per_item = np.bincount(rows, minlength=n)
    m = int(per_item.max(initial=0))
    if n * m <= max(_DENSE_FACTOR * len(rows), _DENSE_KEYS):  # no item has far more events
        padded = _padded_grad_hess(rows, member, counts, wins, per_item, m, reg)
        return _output(_newton(padded, np.zeros((n, k))))

    def grad_hess(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = np.where(member, theta[rows], -np.inf)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = wins - _segment_sum(counts[:, None] * p, rows, n) - reg * theta
        outer = counts[:, None, None] * (p[:, :, None] * eye - p[:, :, None] * p[:, None, :])
        return g, -_segment_sum(outer, rows, n) - reg * eye

    return _output(_newton(grad_hess, np.zeros((n, k))))


def _padded_grad_hess(rows: np.ndarray, member: np.ndarray, counts: np.ndarray, wins: np.ndarray,
                      per_item: np.ndarray, m: int, reg: float) -> GradHess:
    """Plackett-Luce's gradient and Hessian with each item's choice events in one row of
    ``[n, m]`` slots (m = the most events of an item; an empty slot has no member and weight 0),
    so the sums over an item's events are small batched matrix products.

    With ``e = exp(theta - max theta)`` per item and ``den`` = the sum of ``e`` over a choice set,
    P(a chosen from the set) = e_a / den; then the gradient is ``wins - e * (sets' @ c / den)``
    and the Hessian's data part is ``e_a e_b * sum(c / den^2 over sets holding a and b)``.
    Newton's damped steps move theta by at most 1 per iteration from 0, so over 100 iterations
    ``e`` stays above exp(-200): nothing underflows, as with a maximum taken per choice set."""
    n, k = wins.shape
    slot = np.arange(len(rows)) - (np.cumsum(per_item) - per_item)[rows]
    sets = np.zeros((n, m, k))
    sets[rows, slot] = member
    sets_t = np.ascontiguousarray(sets.transpose(0, 2, 1))
    c = np.zeros((n, m))
    c[rows, slot] = counts
    empty = (c == 0).astype(np.float64)  # an empty slot's den is 1 instead of 0 (its c stays 0)
    eye = np.eye(k)

    def grad_hess(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.exp(theta - theta.max(axis=1, keepdims=True))
        den = np.matmul(sets, e[:, :, None])[:, :, 0] + empty
        q = c / den
        chosen = e * np.matmul(q[:, None, :], sets)[:, 0, :]
        h = np.matmul(sets_t * (q / den)[:, None, :], sets) * e[:, :, None] * e[:, None, :]
        h -= eye * (chosen[:, :, None] + reg)
        return wins - chosen - reg * theta, h

    return grad_hess


def _segment_sum(x: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Sum rows of ``x`` per item (``rows`` sorted); items without rows get zeros."""
    out = np.zeros((n,) + x.shape[1:])
    if len(rows) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    out[rows[starts]] = np.add.reduceat(x, starts, axis=0)
    return out
