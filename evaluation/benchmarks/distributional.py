"""Distributional alignment: does the model's preference *split* match the raters' split?

For an item ranked by many raters, the raters' distribution is the share of raters who put each
response first (a response tied first with m others gets 1/(m+1) of that rater's vote). The
model's distribution is the softmax of its scores of the responses (for two responses: the
Bradley-Terry probability sigmoid(margin)). Alignment = 1 - Jensen-Shannon *distance* (base 2,
so it lies in [0, 1]; 1 = identical distributions), averaged over items (after Sorensen et al.
2024 and Durmus et al. 2023, who use 1 - JSD to score distributional pluralism).

Two reference points make a number interpretable:
- the **split-half ceiling**: raters split at random into two halves, 1 - JSD between the
  halves' distributions, averaged over items and `n_splits` seeded splits (how well one sample of
  people predicts another; a model cannot be expected to beat it);
- the **uniform baseline**: 1 - JSD between a uniform distribution and the raters'.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

VERSION = "distributional-1"
Ranking = Sequence[Sequence[str]]


class AlignmentResult(TypedDict):
    version: str
    n_items: int
    alignment: float | None
    split_half_ceiling: float | None
    uniform_baseline: float | None


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2 (the square root of the divergence), in [0, 1]."""
    p, q = np.asarray(p, float) / np.sum(p), np.asarray(q, float) / np.sum(q)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def first_choice_shares(responses: Sequence[str], rankings: Sequence[Ranking]) -> np.ndarray:
    """Share of raters putting each response first (ties share a rater's vote)."""
    index = {r: i for i, r in enumerate(responses)}
    shares = np.zeros(len(responses))
    for ranking in rankings:
        top = [r for r in ranking[0] if r in index] if ranking else []
        for r in top:
            shares[index[r]] += 1 / len(top)
    total = shares.sum()
    return shares / total if total else shares


def softmax(scores: Sequence[float]) -> np.ndarray:
    s = np.asarray(scores, float)
    e = np.exp(s - s.max())
    return e / e.sum()


def _split_half(responses: Sequence[str], rankings: Sequence[Ranking], rng: np.random.Generator) -> float | None:
    order = rng.permutation(len(rankings))
    half = len(rankings) // 2
    a = first_choice_shares(responses, [rankings[i] for i in order[:half]])
    b = first_choice_shares(responses, [rankings[i] for i in order[half:2 * half]])
    if a.sum() == 0 or b.sum() == 0:
        return None
    return 1 - js_distance(a, b)


def alignment(
    items: Sequence[tuple[Sequence[str], Sequence[Ranking], Sequence[float]]],
    *,
    min_raters: int = 4,
    n_splits: int = 20,
    seed: int = 0,
) -> AlignmentResult:
    """`items`: (response ids, the raters' rankings, the model's score per response). Items with
    fewer than `min_raters` rankings are left out (a split of two raters says little)."""
    rng = np.random.default_rng(seed)
    model, ceiling, uniform = [], [], []
    for responses, rankings, scores in items:
        if len(rankings) < min_raters:
            continue
        human = first_choice_shares(responses, rankings)
        if human.sum() == 0:
            continue
        model.append(1 - js_distance(softmax(scores), human))
        uniform.append(1 - js_distance(np.ones(len(responses)), human))
        halves = [v for v in (_split_half(responses, rankings, rng) for _ in range(n_splits)) if v is not None]
        if halves:
            ceiling.append(float(np.mean(halves)))
    return {
        "version": VERSION, "n_items": len(model),
        "alignment": float(np.mean(model)) if model else None,
        "split_half_ceiling": float(np.mean(ceiling)) if ceiling else None,
        "uniform_baseline": float(np.mean(uniform)) if uniform else None,
    }
