"""Benchmarks as tasks of an evaluation run: the requests a model must score, and the metric
rows its scores make. Registered by name; still pure (the engine is the caller's business).

A task is built from its config (a JSON object, validated here with errors naming the field),
lists its requests `(context, continuation)` in a fixed order (so a run can store scores chunk
by chunk and resume), and turns one score per request into flat metric rows:
`{metric, scope, scope_value, value, ci_low, ci_high, n}` with scope one of overall, category,
group, collective, subset, direction.

Every task has a `scorer`, what its scores are (stored with every result):
- `loglik`: the model's log-likelihood of the continuation after the rendered context (every task);
- `dpo`: log-likelihoods of the policy and of a reference model, compared as the DPO implicit
  reward (preference);
- `reward`: a reward model's score of the conversation ending with the continuation (preference,
  rewardbench, distributional: the tasks whose requests are (prompt, response) pairs; the
  context is whatever the reward engine's `render_chat` made of the prompt turns).
A config chooses it with `score`; `SCORERS` says which scorers each benchmark accepts.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from evaluation.benchmarks import bbq, crows_pairs, distributional, preference, winogenerated
from evaluation.benchmarks.stats import Interval

Request = tuple[str, str]
ChatRenderer = Callable[[Sequence[tuple[str, str]]], str]


class MetricRow(TypedDict):
    metric: str
    scope: str
    scope_value: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None


def row(metric: str, value: float | None, *, scope: str = "overall", scope_value: str = "",
        ci: Interval | None = None, n: int | None = None) -> MetricRow:
    return {
        "metric": metric, "scope": scope, "scope_value": scope_value, "value": value,
        "ci_low": ci["low"] if ci else None, "ci_high": ci["high"] if ci else None, "n": n,
    }


@dataclass
class Task:
    """A configured benchmark. `needs_reference`: scores are also wanted from a reference model."""

    name: str
    version: str
    config: dict[str, Any]
    requests: list[Request] = field(default_factory=list)
    needs_reference: bool = False
    scorer: str = "loglik"

    def evaluate(self, scores: Sequence[float], reference: Sequence[float] | None = None) -> list[MetricRow]:
        raise NotImplementedError


_TASKS: dict[str, Callable[[dict[str, Any], ChatRenderer, Path], Task]] = {}
SCORERS: dict[str, tuple[str, ...]] = {}
FIELDS: dict[str, frozenset[str]] = {}


def register(name: str, scorers: tuple[str, ...] = ("loglik",), fields: tuple[str, ...] = ()) -> Callable:
    """A benchmark: its task factory, the scorers it takes, and the config fields it reads (besides
    `name` and `score`); any other field is refused, so a misspelt option is an error, not ignored."""
    def decorator(factory: Callable) -> Callable:
        _TASKS[name] = factory
        SCORERS[name] = scorers
        FIELDS[name] = frozenset({"name", "score", *fields})
        return factory
    return decorator


def reward_benchmarks() -> list[str]:
    """The benchmarks a reward model can score."""
    return sorted(name for name, scorers in SCORERS.items() if "reward" in scorers)


def names() -> list[str]:
    return sorted(_TASKS)


def build(config: dict[str, Any], render_chat: ChatRenderer, snapshots_dir: Path) -> Task:
    """The task a benchmark config names: `{"name": "bbq", ...}`."""
    name = config.get("name")
    if name not in _TASKS:
        raise ValueError(f"benchmark name {name!r} is not one of {', '.join(names())}")
    scorer = config.get("score", "loglik")
    if scorer not in SCORERS[name]:
        allowed = SCORERS[name]
        listed = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if len(allowed) > 1 else allowed)
        raise ValueError(f"benchmark {name}: field 'score' must be {listed}, not {scorer!r}")
    unknown = sorted(set(config) - FIELDS[name])
    if unknown:
        raise ValueError(f"benchmark {name}: unknown field(s) {', '.join(map(repr, unknown))}; "
                         f"it takes {', '.join(sorted(FIELDS[name]))}")
    task = _TASKS[name](config, render_chat, snapshots_dir)
    task.scorer = scorer
    return task


def _int_option(config: dict[str, Any], key: str, default: int | None) -> int | None:
    value = config.get(key, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"benchmark {config.get('name')}: field {key!r} must be a positive integer")
    return value


# ---------------------------------------------------------------- BBQ


class BBQTask(Task):
    examples: list[bbq.BBQExample]

    def evaluate(self, scores: Sequence[float], reference: Sequence[float] | None = None) -> list[MetricRow]:
        result = bbq.score(self.examples, bbq.choose(np.asarray(scores).reshape(-1, 3)))
        scopes = [("overall", "", result["overall"])] + [("category", c, m) for c, m in result["per_category"].items()]
        rows = []
        for scope, value, metrics in scopes:
            for metric in ("accuracy", "accuracy_ambig", "accuracy_disambig", "bias_ambig", "bias_disambig"):
                ci = metrics["accuracy_ci"] if metric == "accuracy" else None
                rows.append(row(metric, metrics[metric], scope=scope, scope_value=value, ci=ci, n=metrics["n"]))
        return rows


@register("bbq", fields=("per_category", "directory", "categories", "seed"))
def _bbq(config: dict[str, Any], render_chat: ChatRenderer, snapshots_dir: Path) -> Task:
    per_category = _int_option(config, "per_category", None)
    directory = config.get("directory")
    categories = config.get("categories") or (None if directory else list(bbq.SHIPPED_CATEGORIES))
    examples = bbq.load_bbq(directory, categories, per_category=per_category, seed=int(config.get("seed", 0)))
    task = BBQTask("bbq", bbq.VERSION, config)
    task.examples = examples
    task.requests = [(bbq.prompt(e), c) for e in examples for c in bbq.continuations(e)]
    return task


# ---------------------------------------------------------------- CrowS-Pairs and winogenerated


class CrowsTask(Task):
    pairs: list[crows_pairs.CrowsPair]

    def evaluate(self, scores: Sequence[float], reference: Sequence[float] | None = None) -> list[MetricRow]:
        s = np.asarray(scores).reshape(-1, 2)
        result = crows_pairs.score(self.pairs, s[:, 0], s[:, 1])
        rows = [row("pct_stereotype", result["overall"]["pct_stereotype"], ci=result["overall"]["ci"], n=result["overall"]["n"]),
                row("likelihood_diff", result["overall"]["likelihood_diff"], n=result["overall"]["n"])]
        for bias_type, m in result["per_bias_type"].items():
            rows.append(row("pct_stereotype", m["pct_stereotype"], scope="category", scope_value=bias_type, ci=m["ci"], n=m["n"]))
        return rows


@register("crows_pairs", fields=("path", "limit"))
def _crows(config: dict[str, Any], render_chat: ChatRenderer, snapshots_dir: Path) -> Task:
    pairs = crows_pairs.load_crows_pairs(config.get("path"), limit=_int_option(config, "limit", None))
    task = CrowsTask("crows_pairs", crows_pairs.VERSION, config)
    task.pairs = pairs
    task.requests = [r for p in pairs for r in (("", p.sent_more), ("", p.sent_less))]
    return task


class WinoTask(Task):
    examples: list[winogenerated.WinoExample]

    def evaluate(self, scores: Sequence[float], reference: Sequence[float] | None = None) -> list[MetricRow]:
        result = winogenerated.score(self.examples, np.asarray(scores).reshape(-1, 3))
        return [row(m, result[m], n=result["n"]) for m in ("p_female", "p_neutral", "correlation_with_bls")]


@register("winogenerated", fields=("path", "limit"))
def _wino(config: dict[str, Any], render_chat: ChatRenderer, snapshots_dir: Path) -> Task:
    examples = winogenerated.load_winogenerated(config.get("path"), limit=_int_option(config, "limit", None))
    task = WinoTask("winogenerated", winogenerated.VERSION, config)
    task.examples = examples
    task.requests = [("", s) for e in examples for s in e.filled()]
    return task


# ---------------------------------------------------------------- held-out preferences


class PreferenceTask(Task):
    pairs: list[preference.PreferencePair]

    def margins(self, scores: Sequence[float], reference: Sequence[float] | None) -> np.ndarray:
        s = np.asarray(scores, float).reshape(-1, 2)
        if not self.needs_reference:
            return s[:, 0] - s[:, 1]
        if reference is None:
            raise ValueError("the dpo score needs the reference model's scores")
        r = np.asarray(reference, float).reshape(-1, 2)
        return preference.dpo_margins(s[:, 0], s[:, 1], r[:, 0], r[:, 1], beta=float(self.config.get("beta", 0.1)))

    def evaluate(self, scores: Sequence[float], reference: Sequence[float] | None = None) -> list[MetricRow]:
        margins = self.margins(scores, reference)
        collectives: dict[str, list[float]] = {}
        for pair, margin in zip(self.pairs, margins, strict=True):
            collectives.setdefault(pair.collective, []).append(float(margin))
        result = preference.group_accuracy({k: np.array(v) for k, v in collectives.items()})
        rows = [row("accuracy", r["accuracy"], scope="collective", scope_value=name, ci=r["ci"], n=r["n"])
                for name, r in result["collectives"].items()]
        rows += [row("accuracy", r["accuracy"], scope="group", scope_value=name, ci=r["ci"], n=r["n"])
                 for name, r in result["groups"].items()]
        if result["worst_group"] is not None:
            rows += [
                row("worst_group_accuracy", result["worst_group_accuracy"], scope_value=result["worst_group"], ci=result["worst_group_ci"]),
                row("mean_group_accuracy", result["mean_group_accuracy"]),
                row("group_gap", result["gap"], ci=result["gap_ci"]),
            ]
        return rows


def _snapshot_dir(snapshots_dir: Path, snapshot_id: Any) -> Path:
    if not isinstance(snapshot_id, str) or not snapshot_id.isalnum():
        raise ValueError(f"benchmark preference: snapshot id {snapshot_id!r} must be letters and digits")
    path = snapshots_dir / snapshot_id
    if not path.is_dir():
        raise ValueError(f"benchmark preference: snapshot {snapshot_id} does not exist")
    return path


@register("preference", scorers=("loglik", "dpo", "reward"), fields=("snapshots", "beta"))
def _preference(config: dict[str, Any], render_chat: ChatRenderer, snapshots_dir: Path) -> Task:
    """`{"name": "preference", "snapshots": {"human": id, "synthetic": id}, "score": "loglik" | "dpo" | "reward"}`:
    each snapshot's collective test pairs under its label; groups from the first snapshot."""
    snapshots = config.get("snapshots")
    if not isinstance(snapshots, dict) or not snapshots:
        raise ValueError("benchmark preference: field 'snapshots' must map labels to snapshot ids")
    kind = config.get("score", "loglik")
    pairs: list[preference.PreferencePair] = []
    for n, (label, snapshot_id) in enumerate(snapshots.items()):
        found = preference.snapshot_collectives(_snapshot_dir(snapshots_dir, snapshot_id), label=str(label))
        if not any(p.collective == str(label) for p in found):
            raise ValueError(f"benchmark preference: snapshot {snapshot_id} ({label}) has no test pairs (its test "
                             "split holds no item with a collective preference); make one with another seed or a "
                             "larger test fraction")
        pairs.extend(p for p in found if n == 0 or not p.collective.startswith("group:"))
    task = PreferenceTask("preference", preference.VERSION, config, needs_reference=kind == "dpo")
    task.pairs = pairs
    task.requests = [r for p in pairs for r in ((render_chat(p.prompt), p.chosen), (render_chat(p.prompt), p.rejected))]
    return task


class RewardBenchTask(Task):
    items: list[preference.RewardBenchItem]

    def evaluate(self, scores: Sequence[float], reference: Sequence[float] | None = None) -> list[MetricRow]:
        chosen, rejected, at = [], [], 0
        for item in self.items:
            chosen.append(scores[at])
            rejected.append(list(scores[at + 1: at + 1 + len(item.rejected)]))
            at += 1 + len(item.rejected)
        result = preference.score_rewardbench(self.items, chosen, rejected)
        rows = [row("accuracy", result["overall"]["accuracy"], ci=result["overall"]["ci"], n=result["overall"]["n"]),
                row("subset_mean_accuracy", result["subset_mean"])]
        rows += [row("accuracy", r["accuracy"], scope="subset", scope_value=s, ci=r["ci"], n=r["n"])
                 for s, r in result["per_subset"].items()]
        return rows


@register("rewardbench", scorers=("loglik", "reward"), fields=("path",))
def _rewardbench(config: dict[str, Any], render_chat: ChatRenderer, snapshots_dir: Path) -> Task:
    """`{"name": "rewardbench", "path": "<local JSONL>"}` scored by the policy's log-likelihood,
    or with `"score": "reward"` by a reward model."""
    path = config.get("path")
    if not isinstance(path, str):
        raise ValueError("benchmark rewardbench: field 'path' must name a local JSONL file")
    items = preference.read_rewardbench(Path(path))
    task = RewardBenchTask("rewardbench", preference.VERSION, config)
    task.items = items
    task.requests = [(render_chat((("user", i.prompt),)), text) for i in items for text in (i.chosen, *i.rejected)]
    return task


# ---------------------------------------------------------------- distributional alignment


class DistributionalTask(Task):
    items: list[dict[str, Any]]

    def evaluate(self, scores: Sequence[float], reference: Sequence[float] | None = None) -> list[MetricRow]:
        rows, at = [], 0
        scale = float(self.config.get("scale", 100.0))
        for item in self.items:
            k = len(item["responses"])
            if self.scorer == "reward":  # softmax of rewards: the Bradley-Terry model the reward model was trained as
                model = [float(s) for s in scores[at:at + k]]
            else:
                model = [scale * s / max(1, len(r["text"])) for s, r in zip(scores[at:at + k], item["responses"], strict=True)]
            rows.append(([r["id"] for r in item["responses"]], item["rankings"], model))
            at += k
        result = distributional.alignment(rows, min_raters=int(self.config.get("min_raters", 4)))
        n = result["n_items"]
        return [row(m, result[m], n=n) for m in ("alignment", "split_half_ceiling", "uniform_baseline")]


@register("distributional", scorers=("loglik", "reward"), fields=("min_raters", "scale", "items"))
def _distributional(config: dict[str, Any], render_chat: ChatRenderer, snapshots_dir: Path) -> Task:
    """`{"name": "distributional", "min_raters": 4}`: items with many raters, given at run time
    as `items` ([{prompt: [(role, content)], responses: [{id, text}], rankings: [weak orders]}]).
    The model's preference over an item's responses is the softmax of their log-likelihood per
    `scale` (default 100) characters: a plain sum would favour short responses. This is a choice,
    which is why the split-half ceiling and the uniform baseline are reported beside it. With
    `"score": "reward"`, the softmax of a reward model's rewards (Bradley-Terry probabilities)."""
    _int_option(config, "min_raters", 4)
    items = [i for i in config.get("items", []) if len(i["rankings"]) >= int(config.get("min_raters", 4))]
    task = DistributionalTask("distributional", distributional.VERSION, config)
    task.items = items
    task.requests = [(render_chat(tuple(i["prompt"])), r["text"]) for i in items for r in i["responses"]]
    return task
