"""Workflows of the aggregation app: saving pools, collective rankings, agreement summaries.

Snapshots have their own module (`snapshots.py`): they stream files and are long.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

import socialchoice
from annotation.models import Project
from socialchoice.agreement import kendall_w_batch, mean_pairwise_tau_b

from .ballots import Ballots, load_ballots
from .models import Pool
from .pools import ALL, ALL_POOL, PoolError, PoolSpec, ResolvedPool, resolve

TIE_POLICIES = ("keep", "random")
POOL_FIELDS = tuple(f for f in PoolSpec.__dataclass_fields__ if f != "name")


class AggregationError(ValueError):
    """A rule that cannot run as asked (unknown rule, bad parameter, items beyond its K limit)."""


# ---------------------------------------------------------------- pools


def pool_spec(project: Project, name: str) -> PoolSpec:
    """The pool called ``name`` in the project (`all` is built in); `PoolError` if there is none."""
    if name == ALL_POOL:
        return ALL
    pool = Pool.objects.filter(project=project, name=name).first()
    if pool is None:
        known = [ALL_POOL, *Pool.objects.filter(project=project).values_list("name", flat=True)]
        raise PoolError("pool", f"no pool {name!r} in this project; known: {', '.join(known)}")
    return PoolSpec.from_pool(pool)


@transaction.atomic
def save_pool(*, project: Project, user: AbstractBaseUser | None, data: dict[str, Any], pool: Pool | None = None) -> Pool:
    """Create (``pool`` None) or update a pool from ``data`` after resolving it against the project's
    raters; an impossible pool raises `PoolError` and nothing is saved."""
    name = str(data.get("name", pool.name if pool else "")).strip()
    if not name:
        raise PoolError("name", "a pool needs a name")
    if "/" in name:
        raise PoolError("name", "a pool name cannot contain '/' (it is part of the pool's address)")
    if name == ALL_POOL:
        raise PoolError("name", f"{ALL_POOL!r} is the built-in pool of every rater; choose another name")
    taken = Pool.objects.filter(project=project, name=name).exclude(pk=pool.pk if pool else None)
    if taken.exists():
        raise PoolError("name", f"this project already has a pool called {name!r}")
    target = pool or Pool(project=project, created_by=user)
    target.name = name
    target.description = str(data.get("description", target.description))
    for key in POOL_FIELDS:
        if key in data:
            setattr(target, key, data[key])
    resolved = resolve(project, PoolSpec.from_pool(target))
    try:
        target.save()
    except IntegrityError:
        raise PoolError("name", f"this project already has a pool called {name!r}") from None
    target.resolved = resolved  # type: ignore[attr-defined]
    return target


# ---------------------------------------------------------------- collective rankings


@dataclass(frozen=True)
class Collective:
    """A rule's collective ranking of every ranked item: ``levels``/``scores`` are
    ``[n_items, K_max]`` arrays (padding columns: level -1, score NaN), rows as ``ballots.items``."""

    ballots: Ballots
    pool: ResolvedPool
    rule: str
    params: dict[str, Any]
    tie_policy: str
    levels: np.ndarray
    scores: np.ndarray
    tie_seed: int | None = None
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def order(self, i: int) -> list[list[str]]:
        alternatives = self.ballots.items.alternatives[i]
        # Rows are padded to the batch's widest item; the padding is not an alternative.
        return socialchoice.profiles.decode_levels(alternatives, self.levels[i, : len(alternatives)])

    def score_map(self, i: int) -> dict[str, float]:
        alts = self.ballots.items.alternatives[i]
        return dict(zip(alts, self.scores[i, : len(alts)].tolist(), strict=True))

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        counts = np.bincount(self.ballots.item_index, minlength=len(self.ballots.items))
        stop = len(self.ballots.items) if stop is None else min(stop, len(self.ballots.items))
        return [
            {"item": self.ballots.items.external_ids[i], "ranking": self.order(i), "scores": self.score_map(i),
             "rankings": int(counts[i]), "weight": float(self.weight[i])}
            for i in range(start, stop)
        ]


def check_rule(rule: str, params: dict[str, Any], tie_policy: str) -> dict[str, Any]:
    """The rule's description, or `AggregationError` naming the known rules."""
    rules = {r["name"]: r for r in socialchoice.describe()}
    if rule not in rules:
        raise AggregationError(f"unknown rule {rule!r}; known: {', '.join(sorted(rules))}")
    if tie_policy not in TIE_POLICIES:
        raise AggregationError(f"tie policy must be one of {', '.join(TIE_POLICIES)}, not {tie_policy!r}")
    if not isinstance(params, dict):
        raise AggregationError("rule parameters must be an object of name: value")
    return dict(rules[rule])


def check_k_limit(ballots: Ballots, rule: str, max_k: int | None) -> None:
    if max_k is None:
        return
    over = np.flatnonzero(ballots.items.k > max_k)
    if len(over):
        names = [ballots.items.external_ids[i] for i in over[:10].tolist()]
        more = f" and {len(over) - 10} more" if len(over) > 10 else ""
        raise AggregationError(
            f"rule {rule!r} is exact only up to K = {max_k}; these items have more responses: "
            f"{', '.join(names)}{more}"
        )


def run_rule(ballots: Ballots, rule: str, params: dict[str, Any], tie_policy: str = "keep",
             seed: int | None = None, partial: str = "bottom") -> tuple[np.ndarray, np.ndarray, int | None]:
    """(levels, scores, tie seed) of ``rule`` on every item of ``ballots`` (padded to K_max)."""
    info = check_rule(rule, params, tie_policy)
    check_k_limit(ballots, rule, info["max_k"])
    n, k_max = len(ballots.items), ballots.items.k_max
    levels = np.full((n, k_max), -1, dtype=np.int64)
    scores = np.full((n, k_max), np.nan)
    if not len(ballots):
        return levels, scores, None
    try:
        result = socialchoice.aggregate_batch(ballots.batch(partial), rule, tie_policy, seed, **params)
    except (ValueError, TypeError) as exc:
        raise AggregationError(f"rule {rule!r} refused its parameters: {exc}") from exc
    for grp, out in zip(result.batch.groups, result.outputs, strict=True):
        levels[grp.items, : grp.k] = out.levels
        scores[grp.items, : grp.k] = out.scores
    return levels, scores, result.seed


def collective(project: Project, *, pool: PoolSpec | ResolvedPool = ALL, rule: str = socialchoice.DEFAULT_RULE,
               params: dict[str, Any] | None = None, tie_policy: str = "keep", seed: int | None = None) -> Collective:
    """Every ranked item's collective ranking under ``rule`` for the pool's raters and weights."""
    params = dict(params or {})
    check_rule(rule, params, tie_policy)
    resolved = pool if isinstance(pool, ResolvedPool) else resolve(project, pool)
    ballots = load_ballots(project, raters=resolved.raters,
                           drop_cannot_judge=resolved.spec.drop_cannot_judge).ranked_items()
    partial = "bottom"
    levels, scores, used = run_rule(ballots, rule, params, tie_policy, seed, partial)
    weight = np.bincount(ballots.item_index, weights=ballots.weights, minlength=len(ballots.items))
    return Collective(ballots, resolved, rule, params, tie_policy, levels, scores, used, weight)


# ---------------------------------------------------------------- agreement


def agreement_summary(project: Project, *, pool: PoolSpec = ALL) -> dict[str, Any]:
    """Mean Kendall's W and mean pairwise tau-b over items, for the pool, its humans and its
    synthetic raters (items with at least two raters of the part only)."""
    resolved = resolve(project, pool)
    ballots = load_ballots(project, raters=resolved.raters, drop_cannot_judge=resolved.spec.drop_cannot_judge)
    out: dict[str, Any] = {"pool": resolved.summary()}
    for part, mask in (("all", np.ones(len(ballots), bool)), ("humans", ballots.human),
                       ("synthetic", ~ballots.human)):
        out[part] = _agreement(ballots.take(mask))
    return out


def _agreement(ballots: Ballots) -> dict[str, Any]:
    counts = np.bincount(ballots.item_index, minlength=len(ballots.items))
    sub = ballots.take(counts[ballots.item_index] >= 2).ranked_items()
    if not len(sub):
        return {"items": 0, "kendall_w": None, "mean_tau_b": None}
    w_values, taus = [], []
    for grp in sub.batch().groups:
        w, _ = kendall_w_batch(grp)
        w_values.append(np.asarray(w, dtype=np.float64))
        taus.append(np.asarray(mean_pairwise_tau_b(grp), dtype=np.float64))
    w_all, tau_all = np.concatenate(w_values), np.concatenate(taus)
    return {"items": len(sub.items), "kendall_w": _mean(w_all), "mean_tau_b": _mean(tau_all)}


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None
