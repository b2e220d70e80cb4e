"""The comparison report of evaluated models: every metric side by side, per group, the welfare
view, and exports (CSV, JSON, Markdown, self-contained HTML with plotly.js inlined).

The conditions compared are the models of one evaluation run (an experiment's conditions are
evaluated in one run, so their numbers share the benchmark versions and the config hash). Each
number carries what produced it: the run, the model's lineage (read from `lineage.json` beside
the model's files: base, recipe, snapshot, config hash), the benchmark version, the run's
config hash and the scorer (log-likelihood, DPO implicit reward or a reward model's reward).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aggregation.staticfiles import plotly_file
from evaluation.models import EvaluationResult, EvaluationRun

LINEAGE_FIELDS = ("base", "recipe", "objective", "snapshot", "config_hash", "created_at")
SCORER_LABELS = {"loglik": "log-likelihood", "dpo": "DPO implicit reward", "reward": "reward model"}
KIND_LABELS = {"causal_lm": "causal LM", "reward_model": "reward model"}


@dataclass
class Condition:
    name: str
    path: str
    lineage: dict[str, Any]
    public_id: str = ""  # the registered model's, when the run evaluated registered models
    kind: str = "causal_lm"  # or reward_model (the run config's model kind)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass
class MetricLine:
    benchmark: str
    version: str
    metric: str
    scope: str
    scope_value: str
    source: str
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)
    ordered: list[dict[str, Any] | None] = field(default_factory=list)  # cells in the conditions' order

    @property
    def label(self) -> str:
        where = f" [{self.scope}: {self.scope_value}]" if self.scope_value else ""
        tag = " (lm-eval)" if self.source != "rlchf" else ""
        return f"{self.benchmark} · {self.metric}{where}{tag}"


@dataclass
class Report:
    erun: EvaluationRun
    conditions: list[Condition]
    lines: list[MetricLine]
    welfare: list[dict[str, Any]]

    @property
    def config_hash(self) -> str:
        return self.erun.config_hash


def read_lineage(path: str) -> dict[str, Any]:
    """The model's lineage.json (ARCHITECTURE's contract), or {} when the model has none."""
    try:
        data = json.loads((Path(path) / "lineage.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def build_report(erun: EvaluationRun) -> Report:
    models = erun.run.config.get("models", [])
    conditions = [Condition(m["name"], m["path"], read_lineage(m["path"]), m.get("public_id", ""), m.get("kind", "causal_lm"))
                  for m in models]
    lines: dict[tuple[str, ...], MetricLine] = {}
    for r in EvaluationResult.objects.filter(evaluation=erun).order_by("benchmark", "scope", "metric", "scope_value"):
        key = (r.benchmark, r.metric, r.scope, r.scope_value, r.source)
        line = lines.setdefault(key, MetricLine(r.benchmark, r.benchmark_version, r.metric, r.scope, r.scope_value, r.source))
        line.cells[r.model_name] = {"value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "n": r.n, "scorer": r.scorer}
    ordered = sorted(lines.values(), key=lambda x: (x.benchmark, x.scope != "overall", x.scope, x.metric, x.scope_value))
    for line in ordered:
        line.ordered = [line.cells.get(c.name) for c in conditions]
    return Report(erun, conditions, ordered, welfare(ordered, [c.name for c in conditions]))


def welfare(lines: list[MetricLine], models: list[str]) -> list[dict[str, Any]]:
    """Per model: mean and worst accuracy over demographic groups (held-out preferences), ranked
    by the mean (utilitarian) and by the worst group (Rawlsian)."""
    groups = [x for x in lines if x.benchmark == "preference" and x.scope == "group" and x.metric == "accuracy"]
    rows = []
    for model in models:
        cells = {x.scope_value: x.cells[model] for x in groups if x.cells.get(model, {}).get("value") is not None}
        if not cells:
            continue
        values = {g: c["value"] for g, c in cells.items()}
        worst = min(sorted(values), key=lambda g: values[g])
        scorers = sorted({c.get("scorer") or "" for c in cells.values()} - {""})
        rows.append({"model": model, "mean": sum(values.values()) / len(values), "worst": values[worst],
                     "worst_group": worst, "groups": len(values), "scorer": ", ".join(scorers)})
    by_mean = sorted(rows, key=lambda r: -r["mean"])
    by_worst = sorted(rows, key=lambda r: -r["worst"])
    for r in rows:
        r["rank_mean"], r["rank_worst"] = by_mean.index(r) + 1, by_worst.index(r) + 1
    return by_mean


# ---------------------------------------------------------------- exports


def long_rows(report: Report) -> list[dict[str, Any]]:
    """One row per number, with everything that traces it."""
    lineage = {c.name: c for c in report.conditions}
    rows = []
    for line in report.lines:
        for model, cell in line.cells.items():
            cond = lineage.get(model)
            rows.append({
                "run": str(report.erun.run.public_id), "config_hash": report.config_hash, "model": model,
                "model_path": cond.path if cond else "", "model_kind": cond.kind if cond else "", "snapshot": (cond.lineage.get("snapshot") if cond else None) or "",
                "model_config_hash": (cond.lineage.get("config_hash") if cond else None) or "",
                "benchmark": line.benchmark, "benchmark_version": line.version, "source": line.source,
                "metric": line.metric, "scope": line.scope, "scope_value": line.scope_value, **cell,
            })
    return rows


def to_csv(report: Report) -> str:
    rows = long_rows(report)
    out = io.StringIO()
    fields = list(rows[0]) if rows else ["run", "config_hash", "model", "benchmark", "metric", "value"]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def report_data(report: Report) -> dict[str, Any]:
    """The report as JSON data: the run, its conditions with their lineage, the welfare view and
    one row per number (`long_rows`); the JSON export and the API's report."""
    return {
        "run": str(report.erun.run.public_id), "config_hash": report.config_hash, "config": report.erun.run.config,
        "conditions": [{"name": c.name, "path": c.path, "kind": c.kind, "lineage": c.lineage} for c in report.conditions],
        "welfare": report.welfare, "results": long_rows(report),
    }


def to_json(report: Report) -> str:
    return json.dumps(report_data(report), indent=1)


def fmt(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("value") is None:
        return "n/a"
    text = f"{cell['value']:.3f}"
    if cell.get("ci_low") is not None:
        text += f" [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"
    if cell.get("scorer") in ("dpo", "reward"):  # log-likelihood is the default, left unmarked
        text += f" ({cell['scorer']})"
    return text


def to_markdown(report: Report) -> str:
    names = [c.name for c in report.conditions]
    out = [f"# Evaluation report {report.erun.run.public_id}", "",
           f"Config hash `{report.config_hash}`. Intervals are 95 % bootstrap intervals. Numbers come from the models' "
           "log-likelihoods unless marked (dpo): the DPO implicit reward against the reference, or (reward): a reward model's reward.", "",
           "| condition | kind | path | base | recipe | snapshot | model config hash |", "|---|---|---|---|---|---|---|"]
    out += [f"| {c.name} | {c.kind_label} | `{c.path}` | {c.lineage.get('base', '')} | {c.lineage.get('recipe', '')} | "
            f"{c.lineage.get('snapshot') or ''} | {c.lineage.get('config_hash', '')} |" for c in report.conditions]
    out += ["", "| benchmark (version) | metric | scope | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names)]
    for line in report.lines:
        scope = f"{line.scope}: {line.scope_value}" if line.scope_value else line.scope
        out.append(f"| {line.benchmark} ({line.version}) | {line.metric} | {scope} | "
                   + " | ".join(fmt(line.cells.get(n)) for n in names) + " |")
    if report.welfare:
        out += ["", "## Welfare view (held-out preference accuracy over demographic groups)", "",
                "| model | scored by | mean group accuracy | rank | worst-group accuracy | worst group | rank |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {w['model']} | {w['scorer']} | {w['mean']:.3f} | {w['rank_mean']} | {w['worst']:.3f} | {w['worst_group']} | "
                f"{w['rank_worst']} |" for w in report.welfare]
    return "\n".join(out) + "\n"


def to_html(report: Report) -> str:
    """The self-contained HTML report (plotly.js inlined, no link back into the app), as the
    report page's `?format=html` export writes it."""
    from django.template.loader import render_to_string

    context = {"project": report.erun.project, "erun": report.erun, "report": report, "figures": figures(report),
               "standalone": True, "plotly_js": plotly_js_path().read_text()}
    return render_to_string("evaluation/report.html", context)


def plotly_js_path() -> Path:
    path = plotly_file()
    if path is None:
        raise RuntimeError("the plotly package is not installed: it ships plotly.min.js")
    return path


def figures(report: Report) -> list[dict[str, Any]]:
    """Plotly figure specs: one bar chart per overall metric (with interval error bars), and
    per-group accuracy per model."""
    names = [c.name for c in report.conditions]
    figs = []
    for line in report.lines:
        if line.scope != "overall" or not any(c.get("value") is not None for c in line.cells.values()):
            continue
        figs.append(_bar(line.label, names, [line.cells.get(n) for n in names]))
    groups = [x for x in report.lines if x.benchmark == "preference" and x.scope in ("group", "collective") and x.metric == "accuracy"]
    if groups:
        data = [{
            "type": "bar", "name": n, "x": [f"{g.scope_value}" for g in groups],
            "y": [(g.cells.get(n) or {}).get("value") for g in groups],
            "error_y": _errors([g.cells.get(n) for g in groups]),
        } for n in names]
        figs.append({"title": "Held-out preference accuracy per collective and group", "data": data,
                     "layout": {"barmode": "group", "yaxis": {"range": [0, 1], "title": "accuracy"}}})
    return figs


def _errors(cells: list[dict[str, Any] | None]) -> dict[str, Any]:
    plus = [(c["ci_high"] - c["value"]) if c and c.get("ci_high") is not None and c.get("value") is not None else 0 for c in cells]
    minus = [(c["value"] - c["ci_low"]) if c and c.get("ci_low") is not None and c.get("value") is not None else 0 for c in cells]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}


def _bar(title: str, names: list[str], cells: list[dict[str, Any] | None]) -> dict[str, Any]:
    return {"title": title, "data": [{"type": "bar", "x": names, "y": [(c or {}).get("value") for c in cells],
                                      "error_y": _errors(cells)}], "layout": {}}
