"""The "evaluation" run kind: models x benchmarks on the batched scoring engine.

Config (validated by `clean_config`, stored on the `jobs.Run`, hashed into every result):

    {"models": [{"name": "base", "path": "<model dir>", "reference": "<model dir>" | null},
                {"name": "rm", "path": "<reward model dir>", "kind": "reward_model"}],
     "benchmarks": [{"name": "bbq", "per_category": 50}, {"name": "crows_pairs"},
                    {"name": "winogenerated"}, {"name": "preference", "snapshots": {"human": "<id>"}},
                    {"name": "rewardbench", "path": "<jsonl>"}, {"name": "lm_eval", "tasks": ["..."]},
                    {"name": "distributional", "min_raters": 4}],
     "chunk_size": 256, "device": "auto"}

A model is a causal LM (the default), scored by its log-likelihoods (or, with a reference and a
preference benchmark's `"score": "dpo"`, by the DPO implicit reward), or a `"kind":
"reward_model"`: a sequence-classification directory with one output (training/recipes/reward.py),
scored by its reward of each (prompt, response) and usable only on the benchmarks built from such
pairs (preference, rewardbench, distributional). Every result stores its scorer.

Model directories must lie under MODELS_DIR, ARTIFACTS_DIR or EXTRA_MODEL_DIRS, data files under the
shipped `data/` or VAR_DIR/benchmarks (jobs.paths): no config names a file elsewhere.

Execution: each benchmark's requests are scored in chunks of `chunk_size`; every chunk's scores
are stored (`ScoreChunk`) before the next starts, so a cancelled, crashed or interrupted run
resumes where it stopped. Cancel is checked between chunks. With
`settings.EVALUATION_ENGINE_SUBPROCESS` (default) the engine runs in `manage.py
evaluation_engine <id>`, so a CUDA or out-of-memory crash fails the run, never the worker.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from evaluation.models import EvaluationResult, EvaluationRun, ScoreChunk
from jobs import paths, registry
from jobs.models import Run
from jobs.runner import Cancelled, RunContext, SubprocessFailed

logger = logging.getLogger(__name__)

DEFAULT_CHUNK = 256
LM_EVAL = "lm_eval"
CAUSAL_LM, REWARD_MODEL = "causal_lm", "reward_model"


# ---------------------------------------------------------------- config


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def snapshots_dir() -> Path:
    return Path(settings.SNAPSHOTS_DIR)


def _inside(value: Any, roots: list[Path], where: str) -> str:
    """The shared check (jobs.paths): resolved, under one of `roots`, else ValueError naming `where`."""
    try:
        return str(paths.resolve_under(value, where, roots))
    except paths.PathNotAllowed as exc:
        raise ValueError(str(exc)) from None


def _model_path(value: Any, where: str) -> str:
    try:
        return str(paths.resolve_model_path(value, where))
    except paths.PathNotAllowed as exc:
        raise ValueError(str(exc)) from None


def is_reward_model(model: dict[str, Any]) -> bool:
    return model.get("kind") == REWARD_MODEL


def sequence_classifier(path: str | Path) -> tuple[bool, int | None] | None:
    """(whether config.json names a sequence-classification architecture, its number of outputs
    where the file says), or None when the file cannot tell (unreadable, no architectures listed)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if not isinstance(architectures, list) or not architectures:
        return None
    labels, count = config.get("id2label"), config.get("num_labels")
    outputs = len(labels) if isinstance(labels, dict) else count if isinstance(count, int) else None
    return all(str(a).endswith("ForSequenceClassification") for a in architectures), outputs


def _clean_kind(raw: dict[str, Any], path: str, where: str) -> str:
    kind = raw.get("kind", CAUSAL_LM)
    if kind not in (CAUSAL_LM, REWARD_MODEL):
        raise ValueError(f"{where}.kind must be {CAUSAL_LM} or {REWARD_MODEL}, not {kind!r}")
    found = sequence_classifier(path)
    if kind == REWARD_MODEL:
        if raw.get("reference") is not None:
            raise ValueError(f"{where}.reference: a reward model is scored by its own reward and takes no reference")
        if found is not None and not found[0]:
            raise ValueError(f"{where}.kind: {path} is not a sequence-classification model, so not a reward model")
        if found is not None and found[1] not in (None, 1):
            raise ValueError(f"{where}.kind: {path} has {found[1]} outputs; a reward model has one")
    elif found is not None and found[0]:
        raise ValueError(f'{where}.kind: {path} is a sequence-classification model: declare "kind": "{REWARD_MODEL}" to score with its reward')
    return kind


def clean_model(raw: Any, n: int) -> dict[str, Any]:
    where = f"models[{n}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object with name and path")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValueError(f"{where}.name must be a non-empty name of at most 200 characters")
    path = _model_path(raw.get("path"), f"{where}.path")
    if not (Path(path) / "config.json").is_file():
        raise ValueError(f"{where}.path {path} is not a model directory (no config.json)")
    kind = _clean_kind(raw, path, where)
    reference = raw.get("reference")
    if reference is not None:
        reference = _model_path(reference, f"{where}.reference")
    extra = {"kind": kind} if kind == REWARD_MODEL else {}  # a causal LM's entry stays as it was (and hashes the same)
    return {"name": name.strip(), "path": path, "reference": reference, **extra,
            **{k: raw[k] for k in ("public_id",) if k in raw}}


def _clean_benchmark(raw: Any, n: int) -> dict[str, Any]:
    from evaluation.benchmarks import BenchmarkDataError, suite

    where = f"benchmarks[{n}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ValueError(f"{where} must be an object with a name")
    bench = {k: v for k, v in raw.items() if k != "items"}  # distributional items come from the project at run time
    if bench.get("score") == "reward":
        raise ValueError(f'{where}.score: reward is not chosen per benchmark; a model with "kind": "{REWARD_MODEL}" is scored by its reward')
    for key in ("directory", "path"):
        if key in bench:
            bench[key] = _inside(bench[key], paths.data_roots(), f"{where}.{key}")
    if bench["name"] == LM_EVAL:
        return _clean_lm_eval(bench, where)
    try:
        task = suite.build(bench, lambda turns: "\n".join(c for _, c in turns), snapshots_dir())
    except (ValueError, BenchmarkDataError, OSError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if task.needs_reference:
        bench["_needs_reference"] = True
    return bench


def _clean_lm_eval(bench: dict[str, Any], where: str) -> dict[str, Any]:
    from evaluation import harness

    return harness.clean(bench, where)


def _check_reward_benchmarks(models: list[dict[str, Any]], benchmarks: list[Any]) -> None:
    """A reward model scores (prompt, response) pairs: the benchmarks that need a causal LM's
    log-likelihoods of other texts (BBQ's answers, CrowS-Pairs' sentences, lm-eval's tasks) are refused."""
    from evaluation.benchmarks import suite

    usable = suite.reward_benchmarks()
    for i, model in enumerate(models):
        if not is_reward_model(model):
            continue
        for n, bench in enumerate(benchmarks):
            name = bench.get("name") if isinstance(bench, dict) else None
            if isinstance(name, str) and (name == LM_EVAL or name in suite.names()) and name not in usable:
                raise ValueError(
                    f"models[{i}].kind: {model['name']} is a reward model, which cannot score benchmarks[{n}] ({name}): "
                    f"that needs a causal LM's log-likelihoods; reward models score {', '.join(usable)}"
                )


def clean_config(config: dict[str, Any]) -> dict[str, Any]:
    models = config.get("models")
    if not isinstance(models, list) or not models:
        raise ValueError("models: at least one model is needed")
    cleaned_models = [clean_model(m, n) for n, m in enumerate(models)]
    names = [m["name"] for m in cleaned_models]
    if len(set(names)) != len(names):
        raise ValueError("models: two models have the same name")
    benchmarks = config.get("benchmarks")
    if not isinstance(benchmarks, list) or not benchmarks:
        raise ValueError("benchmarks: at least one benchmark is needed")
    _check_reward_benchmarks(cleaned_models, benchmarks)
    cleaned_benchmarks = [_clean_benchmark(b, n) for n, b in enumerate(benchmarks)]
    for n, bench in enumerate(cleaned_benchmarks):
        if bench.pop("_needs_reference", False):
            missing = [m["name"] for m in cleaned_models if not m["reference"] and not is_reward_model(m)]
            if missing:
                raise ValueError(f"benchmarks[{n}] scores with the DPO implicit reward: models {', '.join(missing)} need a reference")
    chunk = config.get("chunk_size", DEFAULT_CHUNK)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or not 1 <= chunk <= 100_000:
        raise ValueError("chunk_size must be an integer from 1 to 100000")
    device = config.get("device", "auto")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError("device must be auto, cpu or cuda")
    return {"models": cleaned_models, "benchmarks": cleaned_benchmarks, "chunk_size": chunk, "device": device}


# ---------------------------------------------------------------- the handler


def _in_subprocess() -> bool:
    return bool(getattr(settings, "EVALUATION_ENGINE_SUBPROCESS", True))


@registry.register("evaluation", label="Evaluation", validate=clean_config)
def run_evaluation(run: Run, ctx: RunContext) -> None:
    erun = EvaluationRun.objects.select_related("run").get(run=run)
    if _in_subprocess():
        argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "evaluation_engine", str(erun.pk)]
        try:
            ctx.run_subprocess(argv, cwd=str(settings.BASE_DIR))
        except SubprocessFailed:
            if Run.objects.filter(pk=run.pk, cancel_requested=True).exists():
                raise Cancelled("cancel requested") from None
            raise
    else:
        evaluate_run(erun, ctx)
    ctx.artifact(write_results_file(erun))
    ctx.log(f"{erun.results.count()} result(s) stored")


def write_results_file(erun: EvaluationRun) -> Path:
    """Every result of the run as JSON beside its log, with the config and its hash."""
    path = Path(settings.ARTIFACTS_DIR) / "runs" / str(erun.run.public_id) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(erun.results.values(
        "model_name", "model_path", "benchmark", "benchmark_version", "config_hash", "metric", "scope",
        "scope_value", "value", "ci_low", "ci_high", "n", "source", "scorer",
    ))
    path.write_text(json.dumps({"run": str(erun.run.public_id), "config": erun.run.config,
                                "config_hash": erun.config_hash, "results": rows}, indent=1))
    return path


# ---------------------------------------------------------------- the work


def project_rating_items(project: Any) -> list[dict[str, Any]]:
    """The project's items with their current human rankings, for distributional alignment."""
    from annotation.models import Item, Rater

    items = Item.objects.filter(project=project).prefetch_related("responses", "rankings__rater").order_by("id")
    out = []
    for item in items:
        rankings = [r.order for r in item.rankings.all() if r.is_current and r.rater.kind == Rater.Kind.HUMAN]
        turns = [(t.get("role", "user"), t.get("content", "")) for t in item.context] + [("user", item.prompt)]
        out.append({"prompt": turns, "rankings": rankings,
                    "responses": [{"id": r.response_id, "text": r.text} for r in item.responses.all()]})
    return out


def _total(config: dict[str, Any], project: Any) -> int:
    from evaluation.benchmarks import suite

    total = 0
    for bench in config["benchmarks"]:
        if bench["name"] == LM_EVAL:
            continue
        if bench["name"] == "distributional":
            bench = {**bench, "items": project_rating_items(project)}
        task = suite.build(bench, lambda turns: "", snapshots_dir())
        passes = sum(1 if is_reward_model(m) or not task.needs_reference else 2 for m in config["models"])
        total += len(task.requests) * passes
    return total


def evaluate_run(erun: EvaluationRun, report: Any) -> None:
    """Score every (model, benchmark) of the run, skipping chunks already stored; store results."""
    config = erun.run.config
    state = {"done": 0, "total": _total(config, erun.project)}
    report.progress(0, state["total"])
    for model in config["models"]:
        engines: dict[str, Any] = {}
        try:
            for bench in config["benchmarks"]:
                if bench["name"] == LM_EVAL:
                    run_lm_eval(erun, model, bench, config, report)
                    continue
                _evaluate_benchmark(erun, model, bench, engines, state, report)
        finally:
            engines.clear()


def _engine(engines: dict[str, Any], role: str, path: str, config: dict[str, Any], report: Any) -> Any:
    """The model of `role` (policy, reference: a causal LM; reward: a reward model), loaded once."""
    from evaluation.engine import RewardEngine, ScoringEngine

    if role not in engines:
        report.log(f"loading {role} model {path}")
        engine_class = RewardEngine if role == "reward" else ScoringEngine
        engines[role] = engine_class(path, device=config["device"])
    return engines[role]


def _evaluate_benchmark(erun: EvaluationRun, model: dict[str, Any], bench: dict[str, Any], engines: dict[str, Any],
                        state: dict[str, int], report: Any) -> None:
    from evaluation.benchmarks import suite

    config = erun.run.config
    main = "reward" if is_reward_model(model) else "policy"
    scorer = _engine(engines, main, model["path"], config, report)
    if bench["name"] == "distributional":
        bench = {**bench, "items": project_rating_items(erun.project)}
    if main == "reward":
        bench = {**bench, "score": "reward"}
    task = suite.build(bench, scorer.render_chat, snapshots_dir())
    roles = [(main, model["path"])] + ([("reference", model["reference"])] if task.needs_reference else [])
    scores: dict[str, list[float]] = {}
    for role, path in roles:
        engine = _engine(engines, role, path, config, report)
        scores[role] = _score_chunks(erun, model["name"], task, role, engine, state, report)
    rows = task.evaluate(scores[main], scores.get("reference"))
    _store_results(erun, model, task, rows)
    report.log(f"{model['name']} / {task.name} ({task.scorer}): {len(rows)} numbers stored")


def _score_chunks(erun: EvaluationRun, model_name: str, task: Any, role: str, engine: Any,
                  state: dict[str, int], report: Any) -> list[float]:
    size = erun.run.config["chunk_size"]
    stored = {c.index: c.scores for c in ScoreChunk.objects.filter(
        evaluation=erun, model_name=model_name, benchmark=task.name, role=role)}
    scores: list[float] = []
    for index, start in enumerate(range(0, len(task.requests), size)):
        requests = task.requests[start:start + size]
        chunk = stored.get(index)
        if chunk is None or len(chunk) != len(requests):
            report.check_cancelled()
            chunk = engine.score(requests)
            ScoreChunk.objects.update_or_create(
                evaluation=erun, model_name=model_name, benchmark=task.name, role=role, index=index,
                defaults={"scores": chunk},
            )
        scores.extend(chunk)
        state["done"] += len(requests)
        report.progress(state["done"], state["total"])
    return scores


@transaction.atomic
def _store_results(erun: EvaluationRun, model: dict[str, Any], task: Any, rows: list[dict[str, Any]], source: str = "rlchf") -> None:
    EvaluationResult.objects.filter(evaluation=erun, model_name=model["name"], benchmark=task.name, source=source).delete()
    scorer = getattr(task, "scorer", "")  # our tasks have one; lm-eval's numbers have none of ours
    EvaluationResult.objects.bulk_create([
        EvaluationResult(
            evaluation=erun, model_name=model["name"], model_path=model["path"], benchmark=task.name,
            benchmark_version=task.version, config_hash=erun.config_hash, source=source, scorer=scorer, **r,
        )
        for r in rows
    ])


# ---------------------------------------------------------------- lm-evaluation-harness bridge


def run_lm_eval(erun: EvaluationRun, model: dict[str, Any], bench: dict[str, Any], config: dict[str, Any], report: Any) -> None:
    """Run lm-evaluation-harness's tasks on the model directory and store its numbers beside
    ours (evaluation.harness: source "lm-eval", version "lm-eval <its version>")."""
    from types import SimpleNamespace

    from evaluation import harness

    report.check_cancelled()
    version, rows = harness.evaluate(model["path"], bench, config["device"], report.log)
    _store_results(erun, model, SimpleNamespace(name=harness.BENCHMARK, version=version), rows, source="lm-eval")
    report.log(f"{model['name']} / lm-eval {', '.join(bench['tasks'])}: {len(rows)} numbers stored")
