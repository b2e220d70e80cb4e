"""Blind pairwise comparisons from rankings, as Chatbot Arena reports them (Chiang et al. 2024).

Each ranking of K anonymised responses (a weak order over the models that wrote them) gives
K(K-1)/2 battles: the model ranked higher wins, models in one tie group tie. Reported:
- win rate per model: (wins + ties / 2) / battles;
- the win-rate matrix W[a][b]: a's share against b (ties half), None where they never met;
- the battle-count matrix N[a][b];
- Bradley-Terry scores on the Elo scale (400 log10 strength, mean 1000), fitted by Hunter's
  (2004) minorisation-maximisation with a tie counted as half a win for each side (as Chatbot
  Arena's logistic fit does), with percentile bootstrap intervals over rankings. When a model
  never won or never lost, the maximum-likelihood strength is infinite; then every pair that
  met gets a prior of `prior` virtual ties (0.5 by default) and the result says so.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

VERSION = "arena-1"
WeakOrder = Sequence[Sequence[str]]


def battle_counts(orders: Sequence[WeakOrder], models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(wins, battles): wins[a, b] = a's wins over b (ties half), battles[a, b] = times they met."""
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    battles = np.zeros((len(models), len(models)))
    for order in orders:
        groups = [[index[m] for m in group if m in index] for group in order]
        for gi, group in enumerate(groups):
            for pos, a in enumerate(group):
                for b in group[pos + 1:]:  # a tie
                    wins[a, b] += 0.5
                    wins[b, a] += 0.5
                    battles[a, b] += 1
                    battles[b, a] += 1
                for lower in groups[gi + 1:]:
                    for b in lower:
                        wins[a, b] += 1
                        battles[a, b] += 1
                        battles[b, a] += 1
    return wins, battles


def bradley_terry(wins: np.ndarray, battles: np.ndarray, *, prior: float = 0.5, iters: int = 2000,
                  tol: float = 1e-10) -> tuple[np.ndarray, bool]:
    """Elo-scale strengths (mean 1000) and whether the prior was needed (see module doc)."""
    k = wins.shape[0]
    w, n = wins.copy(), battles.copy()
    total_wins, total_losses = w.sum(axis=1), w.sum(axis=0)
    met = n.sum(axis=1) > 0
    used_prior = bool(np.any(met & ((total_wins == 0) | (total_losses == 0))))
    if used_prior:
        pairs = n > 0
        w = w + prior / 2 * pairs
        n = n + prior * pairs
    p = np.ones(k)
    for _ in range(iters):
        denom = np.array([np.sum(n[i] / (p[i] + p)) for i in range(k)])
        new = np.where(denom > 0, w.sum(axis=1) / np.where(denom > 0, denom, 1), 1.0)
        new = np.where(met, new, 1.0)
        new = new / math.exp(np.mean(np.log(new[met]))) if met.any() else new
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    elo = 400 * np.log10(p)
    elo = elo - elo[met].mean() + 1000 if met.any() else elo + 1000
    return elo, used_prior


def compare(orders: Sequence[WeakOrder], models: Sequence[str], *, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Win rates, matrices and Bradley-Terry scores with bootstrap intervals (see module doc)."""
    wins, battles = battle_counts(orders, models)
    played = battles.sum(axis=1)
    elo, used_prior = bradley_terry(wins, battles)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot if orders else 0):
        sample = [orders[i] for i in rng.integers(0, len(orders), len(orders))]
        boot.append(bradley_terry(*battle_counts(sample, models))[0])
    ci = np.quantile(np.array(boot), [0.025, 0.975], axis=0) if boot else None
    return {
        "version": VERSION, "models": list(models), "rankings": len(orders),
        "win_rate": {m: (float(wins[i].sum() / played[i]) if played[i] else None) for i, m in enumerate(models)},
        "win_matrix": [[float(wins[i, j] / battles[i, j]) if battles[i, j] else None for j in range(len(models))]
                       for i in range(len(models))],
        "battle_matrix": battles.astype(int).tolist(),
        "bt": {m: float(elo[i]) for i, m in enumerate(models)},
        "bt_ci": {m: ({"low": float(ci[0, i]), "high": float(ci[1, i])} if ci is not None else None) for i, m in enumerate(models)},
        "bt_prior_used": used_prior,
    }


def compare_by_group(
    rows: Sequence[tuple[WeakOrder, str, dict[str, str]]], models: Sequence[str], *, min_group: int,
    n_boot: int = 200, seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """`rows`: (order, rater id, rater's consented demographics). One comparison per
    `field=value` group with at least `min_group` distinct raters; smaller groups are left out
    (and counted under "suppressed") so no small group's choices can be singled out."""
    groups: dict[str, list[tuple[WeakOrder, str]]] = {}
    for order, rater, profile in rows:
        for field_name, value in sorted(profile.items()):
            if value:
                groups.setdefault(f"{field_name}={value}", []).append((order, rater))
    result: dict[str, dict[str, Any]] = {}
    for name, members in sorted(groups.items()):
        if len({r for _, r in members}) >= min_group:
            result[name] = compare([o for o, _ in members], models, n_boot=n_boot, seed=seed)
    return result
