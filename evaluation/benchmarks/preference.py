"""Held-out preference accuracy: how often a model prefers the chosen response of a collective.

A *collective* is a set of test pairs that one pool agreed on: the snapshot's collective test
pairs (`pairs.jsonl`, split "test"), a human-only or a synthetic-only snapshot's, or one
demographic group's (`groups/<group>.jsonl`). A model prefers `chosen` when its score of the
chosen response is higher than of the rejected one. The score is one of:

- `dpo`: the DPO implicit reward  beta * (log pi(y|x) - log pi_ref(y|x))  (Rafailov et al. 2023);
  beta scales both sides, so the preferred response does not depend on it;
- `reward`: a reward model's scalar score;
- `loglik`: the policy's plain log-likelihood of the response.

A tie (equal scores) counts one half, as in RewardBench's pairwise accuracy. Per-group results
follow the pluralistic-alignment literature (e.g. Sorensen et al. 2024; Kirk et al. 2024, PRISM):
accuracy per group, the worst group, the gap between best and worst group, each with a seeded
percentile bootstrap interval over pairs (groups resampled independently).

RewardBench-format files (Lambert et al. 2024): rows `{prompt, chosen, rejected, subset}`, where
`rejected` is a string (a pair) or a list (best-of-N, e.g. RewardBench 2's best-of-4): an item
counts as correct only when the chosen response scores strictly above every rejected one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from evaluation.benchmarks import BenchmarkDataError, read_jsonl
from evaluation.benchmarks.stats import Interval, bootstrap_interval

VERSION = "preference-1"
SCORE_KINDS = ("dpo", "reward", "loglik")


@dataclass(frozen=True)
class PreferencePair:
    """One test pair: conversation turns as in the snapshot contract (TRL conversational format)."""

    item: str
    prompt: tuple[tuple[str, str], ...]
    chosen: str
    rejected: str
    collective: str


class AccuracyResult(TypedDict):
    n: int
    accuracy: float | None
    ci: Interval | None


class GroupResult(TypedDict):
    collectives: dict[str, AccuracyResult]
    groups: dict[str, AccuracyResult]
    worst_group: str | None
    worst_group_accuracy: float | None
    worst_group_ci: Interval | None
    mean_group_accuracy: float | None
    gap: float | None
    gap_ci: Interval | None


# ---------------------------------------------------------------- margins


def dpo_margins(
    policy_chosen: np.ndarray, policy_rejected: np.ndarray, ref_chosen: np.ndarray, ref_rejected: np.ndarray,
    beta: float = 0.1,
) -> np.ndarray:
    """Implicit-reward margin r(chosen) - r(rejected) with r = beta * (log pi - log pi_ref)."""
    chosen = beta * (np.asarray(policy_chosen, float) - np.asarray(ref_chosen, float))
    rejected = beta * (np.asarray(policy_rejected, float) - np.asarray(ref_rejected, float))
    return chosen - rejected


def pair_outcomes(margins: np.ndarray | Sequence[float]) -> np.ndarray:
    """1 where chosen scores higher, 0.5 on a tie, 0 where rejected scores higher."""
    m = np.asarray(margins, dtype=float)
    return np.where(m > 0, 1.0, np.where(m == 0, 0.5, 0.0))


def _accuracy(outcomes: np.ndarray, seed: int) -> AccuracyResult:
    if outcomes.size == 0:
        return {"n": 0, "accuracy": None, "ci": None}
    return {"n": int(outcomes.size), "accuracy": float(outcomes.mean()), "ci": bootstrap_interval(outcomes, seed=seed)}


# ---------------------------------------------------------------- per collective and per group


def _gap_interval(per_group: Mapping[str, np.ndarray], n_boot: int, seed: int) -> tuple[Interval | None, Interval | None]:
    """Bootstrap intervals of the worst-group accuracy and the best-worst gap: every group is
    resampled with replacement in each replicate, so both carry every group's uncertainty."""
    rng = np.random.default_rng(seed)
    worst, gap = np.empty(n_boot), np.empty(n_boot)
    arrays = [a for a in per_group.values() if a.size]
    for b in range(n_boot):
        means = np.array([a[rng.integers(0, a.size, a.size)].mean() for a in arrays])
        worst[b], gap[b] = means.min(), means.max() - means.min()
    low_w, high_w = np.quantile(worst, [0.025, 0.975])
    low_g, high_g = np.quantile(gap, [0.025, 0.975])
    return {"low": float(low_w), "high": float(high_w)}, {"low": float(low_g), "high": float(high_g)}


def group_accuracy(
    collectives: Mapping[str, np.ndarray | Sequence[float]],
    *,
    group_prefix: str = "group:",
    n_boot: int = 1000,
    seed: int = 0,
) -> GroupResult:
    """Accuracy per collective from its pairs' margins. Collectives named `group_prefix + name`
    are demographic groups: their worst group, mean, and best-worst gap are reported with
    bootstrap intervals. A group with no pairs is listed with n = 0 and left out of the summary."""
    outcomes = {name: pair_outcomes(m) for name, m in collectives.items()}
    results = {name: _accuracy(o, seed) for name, o in outcomes.items()}
    groups = {n.removeprefix(group_prefix): o for n, o in outcomes.items() if n.startswith(group_prefix)}
    group_results = {g: results[group_prefix + g] for g in groups}
    scored = {g: r["accuracy"] for g, r in group_results.items() if r["accuracy"] is not None}
    result: GroupResult = {
        "collectives": {n: r for n, r in results.items() if not n.startswith(group_prefix)},
        "groups": group_results, "worst_group": None, "worst_group_accuracy": None, "worst_group_ci": None,
        "mean_group_accuracy": None, "gap": None, "gap_ci": None,
    }
    if scored:
        worst = min(sorted(scored), key=lambda g: scored[g])
        worst_ci, gap_ci = _gap_interval(groups, n_boot, seed)
        result["worst_group"], result["worst_group_accuracy"], result["worst_group_ci"] = worst, scored[worst], worst_ci
        result["mean_group_accuracy"] = float(np.mean(list(scored.values())))
        result["gap"], result["gap_ci"] = max(scored.values()) - min(scored.values()), gap_ci
    return result


# ---------------------------------------------------------------- snapshots


def _turns(value: Any, where: str, field: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(isinstance(t, dict) and "content" in t for t in value):
        raise BenchmarkDataError(f"{where}: field {field!r} must be a list of chat turns with 'role' and 'content'")
    return tuple((str(t.get("role", "user")), str(t["content"])) for t in value)


def parse_pair(raw: Any, where: str, collective: str) -> PreferencePair:
    if not isinstance(raw, dict):
        raise BenchmarkDataError(f"{where}: expected a JSON object")
    for field in ("prompt", "chosen", "rejected"):
        if field not in raw:
            raise BenchmarkDataError(f"{where}: missing field {field!r}")
    chosen, rejected = _turns(raw["chosen"], where, "chosen"), _turns(raw["rejected"], where, "rejected")
    return PreferencePair(
        item=str(raw.get("item", "")), prompt=_turns(raw["prompt"], where, "prompt"),
        chosen=chosen[-1][1], rejected=rejected[-1][1], collective=collective,
    )


def read_pairs(path: Path, collective: str, split: str | None = "test") -> list[PreferencePair]:
    """Pairs of one snapshot file; only `split` rows (rows without a split are kept: group
    files hold the test split only)."""
    return [parse_pair(raw, where, collective) for raw, where in read_jsonl(path)
            if split is None or not isinstance(raw, dict) or raw.get("split", split) == split]


def snapshot_collectives(snapshot_dir: Path, label: str = "collective") -> list[PreferencePair]:
    """A snapshot's test pairs: its collective (named `label`) and each group's (`group:<name>`)."""
    snapshot_dir = Path(snapshot_dir)
    if not (snapshot_dir / "pairs.jsonl").is_file():
        raise BenchmarkDataError(f"snapshot {snapshot_dir.name}: no pairs.jsonl")
    pairs = read_pairs(snapshot_dir / "pairs.jsonl", label)
    for path in sorted((snapshot_dir / "groups").glob("*.jsonl")):
        pairs.extend(read_pairs(path, f"group:{path.stem}"))
    return pairs


# ---------------------------------------------------------------- RewardBench format


@dataclass(frozen=True)
class RewardBenchItem:
    prompt: str
    chosen: str
    rejected: tuple[str, ...]
    subset: str


def read_rewardbench(path: Path) -> list[RewardBenchItem]:
    """RewardBench-format JSONL: `{prompt, chosen, rejected, subset}`; `rejected` a string or a
    list (best-of-N). `chosen` may also be a one-element list (RewardBench 2's layout)."""
    return [_rewardbench_item(raw, where) for raw, where in read_jsonl(path)]


def _rewardbench_item(raw: Any, where: str) -> RewardBenchItem:
    if not isinstance(raw, dict):
        raise BenchmarkDataError(f"{where}: expected a JSON object")
    for field in ("prompt", "chosen", "rejected"):
        if field not in raw:
            raise BenchmarkDataError(f"{where}: missing field {field!r}")
    chosen = raw["chosen"]
    if isinstance(chosen, list):
        if len(chosen) != 1:
            raise BenchmarkDataError(f"{where}: field 'chosen' must hold exactly one response, got {len(chosen)}")
        chosen = chosen[0]
    rejected = raw["rejected"] if isinstance(raw["rejected"], list) else [raw["rejected"]]
    if not rejected or not all(isinstance(r, str) for r in [chosen, *rejected]):
        raise BenchmarkDataError(f"{where}: fields 'chosen' and 'rejected' must be strings (or lists of strings)")
    return RewardBenchItem(str(raw["prompt"]), chosen, tuple(rejected), str(raw.get("subset", "default")))


def score_rewardbench(
    items: Sequence[RewardBenchItem], chosen_scores: Sequence[float], rejected_scores: Sequence[Sequence[float]],
    *, seed: int = 0,
) -> dict[str, Any]:
    """Accuracy per subset and overall (mean over items, and mean over subsets as RewardBench
    reports it). A pair's tie counts one half; a best-of-N item is correct only when the chosen
    response scores strictly highest."""
    outcomes = np.empty(len(items))
    for i, (item, c, rs) in enumerate(zip(items, chosen_scores, rejected_scores, strict=True)):
        if len(rs) != len(item.rejected):
            raise ValueError(f"item {i}: {len(rs)} rejected scores for {len(item.rejected)} rejected responses")
        outcomes[i] = pair_outcomes([c - rs[0]])[0] if len(rs) == 1 else float(c > max(rs))
    subsets = sorted({item.subset for item in items})
    per_subset = {
        s: _accuracy(outcomes[[i for i, item in enumerate(items) if item.subset == s]], seed) for s in subsets
    }
    subset_means = [r["accuracy"] for r in per_subset.values() if r["accuracy"] is not None]
    return {
        "version": VERSION, "overall": _accuracy(outcomes, seed), "per_subset": per_subset,
        "subset_mean": float(np.mean(subset_means)) if subset_means else None,
    }
