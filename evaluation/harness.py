"""The optional bridge to lm-evaluation-harness (`lm-eval`): its tasks on a registered model
directory, its numbers stored beside ours (source "lm-eval", benchmark "lm_eval", one category
per task; the version names lm-eval's).

    {"name": "lm_eval", "tasks": ["rlchf_capitals"], "include_path": "var/benchmarks/lm-eval",
     "limit": 100, "num_fewshot": 0, "batch_size": 8}

Task names are checked against lm-eval's own registry: its built-in tasks, groups and tags, the
task YAMLs shipped in `data/lm-eval/` (always included) and those under `include_path`, which
must lie under the data roots (`jobs.paths`) like every other data path of a run. A local task
may read its data with `dataset_path: json` and a relative `dataset_kwargs.data_files`: the
bridge takes it from the YAML's own directory and refuses one outside the data roots.
Built-in tasks fetch their data from the Hugging Face hub at run time: where that cannot be
reached, the run fails with one line naming the task.

`lm_eval` (and through it torch) is imported inside functions only.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

from jobs import paths
from jobs.runner import RunFailure

BENCHMARK = "lm_eval"
OPTIONS = {"name", "tasks", "include_path", "limit", "num_fewshot", "batch_size"}
MAX_TASKS = 50
# lm-eval bootstraps the standard error of metrics that are not means (F1, BLEU, ...); its
# default of 100,000 resamples costs minutes on CPU for intervals that 1,000 give as well.
BOOTSTRAP_ITERS = 1000
# lm-eval's metrics that are shares of examples, whose intervals are clipped to [0, 1].
PROPORTIONS = {"acc", "acc_norm", "acc_mutual_info", "exact_match", "em"}


class HarnessFailure(RunFailure):
    """lm-eval could not run a task; the message is the readable one-line cause."""


def installed() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def shipped_tasks_dir() -> Path:
    """The task YAMLs that ship with rlchf (always on lm-eval's include path)."""
    return Path(settings.BASE_DIR) / "data" / "lm-eval"


# ---------------------------------------------------------------- validation


def clean(bench: dict[str, Any], where: str) -> dict[str, Any]:
    """The benchmark config, checked: the known options only, task names lm-eval knows, an
    include path under the data roots. ValueError naming the field otherwise."""
    unknown = sorted(set(bench) - OPTIONS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (an lm_eval benchmark takes "
                         f"{', '.join(sorted(OPTIONS - {'name'}))})")
    tasks = bench.get("tasks")
    if (not isinstance(tasks, list) or not tasks or len(tasks) > MAX_TASKS
            or not all(isinstance(t, str) and t.strip() for t in tasks)):
        raise ValueError(f"{where}.tasks must list 1 to {MAX_TASKS} lm-evaluation-harness task names")
    cleaned: dict[str, Any] = {"name": BENCHMARK, "tasks": [t.strip() for t in tasks]}
    if bench.get("include_path") is not None:
        cleaned["include_path"] = _include_dir(bench["include_path"], f"{where}.include_path")
    for key, low in (("limit", 1), ("num_fewshot", 0), ("batch_size", 1)):
        value = bench.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 1_000_000:
            raise ValueError(f"{where}.{key} must be an integer of at least {low}")
        cleaned[key] = value
    if not installed():
        raise ValueError(f"{where}: lm-evaluation-harness is not installed in this environment "
                         "(pip install lm-eval), so its tasks cannot run; our own benchmarks can")
    include = include_dirs(cleaned.get("include_path"))
    unknown_tasks = [t for t in cleaned["tasks"] if not known_task(t, include)]
    if unknown_tasks:
        raise ValueError(f"{where}.tasks: lm-evaluation-harness has no task, group or tag named "
                         f"{', '.join(repr(t) for t in unknown_tasks)}")
    for name in cleaned["tasks"]:
        try:
            check_local_data(name, local_task_manager(include))
        except ValueError as exc:
            raise ValueError(f"{where}.tasks: {exc}") from None
    return cleaned


def _include_dir(value: Any, field: str) -> str:
    try:
        path = paths.resolve_data_path(value, field)
    except paths.PathNotAllowed as exc:
        raise ValueError(str(exc)) from None
    if not path.is_dir():
        raise ValueError(f"{field}: {value!r} is not a directory of lm-eval task YAMLs")
    return str(path)


def include_dirs(extra: str | None = None) -> tuple[str, ...]:
    shipped = str(shipped_tasks_dir().resolve())
    return (shipped,) if not extra or extra == shipped else (shipped, extra)


def known_task(name: str, include: tuple[str, ...]) -> bool:
    """Whether lm-eval knows `name` as a task, group or tag: one of our include directories'
    YAMLs, or one of its own (their names cached per lm-eval version)."""
    return name in local_task_manager(include).task_index or name in builtin_task_names()


def local_task_manager(include: tuple[str, ...]) -> Any:
    """lm-eval's registry of our include directories only (a few YAMLs: milliseconds), kept
    per process while those YAMLs are unchanged."""
    return _task_manager(include, _yaml_state(include), False)


def full_task_manager(include: tuple[str, ...]) -> Any:
    """lm-eval's registry of its own tasks and ours: indexing its ~15,000 YAMLs takes 20 s and
    more of CPU, so only a run that asks for a built-in task builds it (once per process)."""
    return _task_manager(include, _yaml_state(include), True)


def _yaml_state(include: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for d in include for p in Path(d).rglob("*.yaml")))


@lru_cache(maxsize=4)
def _task_manager(include: tuple[str, ...], state: tuple[tuple[str, int], ...], defaults: bool) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include), include_defaults=defaults)


@lru_cache(maxsize=1)
def builtin_task_names() -> frozenset[str]:
    """The names of lm-eval's own tasks, groups and tags, read from VAR_DIR/cache, where the
    first call after installing an lm-eval version writes them (indexing takes 20 s and more)."""
    from importlib.metadata import version

    cache = Path(settings.VAR_DIR) / "cache" / f"lm-eval-{version('lm_eval')}-tasks.json"
    try:
        return frozenset(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    names = sorted(_task_manager((), (), True).all_tasks)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(names))
    partial.replace(cache)
    return frozenset(names)


# ---------------------------------------------------------------- running


def evaluate(model_path: str, bench: dict[str, Any], device: str, log: Callable[[str], None]) -> tuple[str, list[dict[str, Any]]]:
    """Run the benchmark's tasks on the model directory: (lm-eval's version, metric rows).
    The tasks' data is loaded before the model, so a task whose data cannot be had fails fast."""
    import lm_eval
    from lm_eval import simple_evaluate

    include = include_dirs(bench.get("include_path"))
    local = local_task_manager(include)
    if all(_our_task_yaml(name, local) is not None for name in bench["tasks"]):
        manager = local
    else:
        log("lm-eval: indexing its built-in tasks")
        manager = full_task_manager(include)
    tasks = load_tasks(bench["tasks"], manager)
    device = _device(device)
    log(f"lm-eval {lm_eval.__version__}: {', '.join(bench['tasks'])} on {model_path} ({device})")
    output = simple_evaluate(
        model="hf", model_args={"pretrained": model_path, "dtype": "float32" if device == "cpu" else "bfloat16"},
        tasks=tasks, task_manager=manager, num_fewshot=bench.get("num_fewshot"), limit=bench.get("limit"),
        batch_size=bench.get("batch_size", 8), device=device, log_samples=False, bootstrap_iters=BOOTSTRAP_ITERS,
    ) or {}
    for name, version in sorted(output.get("versions", {}).items()):
        log(f"lm-eval task {name}: version {version}, {output.get('n-shot', {}).get(name, 0)}-shot")
    return f"lm-eval {lm_eval.__version__}", metric_rows(output)


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tasks(names: Sequence[str], manager: Any) -> list[Any]:
    """Each named task, group or tag built, its data loaded, one by one, so that a task whose
    data cannot be had fails the run with one line naming it. Returns the top-level objects."""
    built: list[Any] = []
    for name in names:
        try:
            spec = task_spec(name, manager)
        except ValueError as exc:
            raise HarnessFailure(str(exc)) from None
        try:
            loaded = manager.load(spec)
        except Exception as exc:
            raise HarnessFailure(f"lm-eval task {name}: its data could not be loaded ({_first_line(exc)})") from exc
        built.extend(_top_level(loaded))
    return built


def _top_level(loaded: dict[str, Any]) -> list[Any]:
    """The groups no other group contains, and the tasks outside every group."""
    children = {child for kids in loaded.get("group_map", {}).values() for child in kids}
    groups = [g for name, g in loaded.get("groups", {}).items() if name not in children]
    grouped = {t.task_name for g in groups for t in g.get_all_tasks()}
    return groups + [t for name, t in loaded["tasks"].items() if name not in grouped]


def task_spec(name: str, manager: Any) -> str | dict[str, Any]:
    """What to ask lm-eval for: the name itself, except for a task YAML of our include
    directories, whose config is given whole with its relative data paths taken from the YAML's
    directory (lm-eval would take them from the working directory); ValueError when one of
    them lies outside the data roots."""
    from lm_eval.tasks._yaml_loader import load_yaml

    yaml_path = _our_task_yaml(name, manager)
    if yaml_path is None:
        return name
    config = load_yaml(yaml_path, resolve_func=True)
    return {**config, "dataset_kwargs": local_dataset_kwargs(name, config, yaml_path)}


def check_local_data(name: str, manager: Any) -> None:
    """ValueError when a task YAML of our include directories names data outside the data roots
    (from the index's copy of its config: no `!function` of it runs in the web process)."""
    yaml_path = _our_task_yaml(name, manager)
    if yaml_path is not None:
        local_dataset_kwargs(name, manager.task_index[name].cfg or {}, yaml_path)


def _our_task_yaml(name: str, manager: Any) -> Path | None:
    from lm_eval.tasks._index import Kind

    entry = manager.task_index.get(name)
    if entry is None or entry.kind is not Kind.TASK or entry.yaml_path is None:
        return None
    yaml_path = Path(entry.yaml_path).resolve()
    roots = [Path(p).resolve() for p in (manager.include_path or [])]
    return yaml_path if any(yaml_path.is_relative_to(root) for root in roots) else None


def local_dataset_kwargs(name: str, config: dict[str, Any], yaml_path: Path) -> dict[str, Any]:
    kwargs = dict(config.get("dataset_kwargs") or {})
    for key in ("data_files", "data_dir"):
        if key in kwargs:
            kwargs[key] = _local_data(kwargs[key], yaml_path.parent, f"lm-eval task {name}: {key}")
    return kwargs


def _local_data(value: Any, base: Path, field: str) -> Any:
    """`data_files` (a path, a list of them, or a split -> path(s) mapping) with each path
    resolved from `base` and checked to lie under the data roots."""
    if isinstance(value, dict):
        return {split: _local_data(v, base, field) for split, v in value.items()}
    if isinstance(value, list):
        return [_local_data(v, base, field) for v in value]
    try:
        return str(paths.resolve_under(value, field, paths.data_roots(), relative_to=base))
    except paths.PathNotAllowed as exc:
        raise ValueError(str(exc)) from None


def _first_line(exc: BaseException) -> str:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def metric_rows(output: dict[str, Any]) -> list[dict[str, Any]]:
    """lm-eval's results (`{"task": {"acc,none": 0.5, "acc_stderr,none": 0.2, ...}}`) as our
    metric rows: one per task and metric (its filter named unless "none"), category = the task,
    a normal 95% interval (1.96 standard errors; clipped to [0, 1] for shares) where lm-eval
    gives a finite standard error, n = the samples scored. NaN (lm-eval's "undefined") is
    stored as no value."""
    counts = output.get("n-samples", {})
    rows = []
    for task, metrics in sorted(output.get("results", {}).items()):
        n = counts.get(task, {}).get("effective")
        for key, value in sorted(metrics.items()):
            metric, _, filter_name = key.partition(",")
            if not filter_name or metric.endswith("_stderr") or _number(value) is None and not _is_nan(value):
                continue
            value, stderr = _number(value), _number(metrics.get(f"{metric}_stderr,{filter_name}"))
            low = high = None
            if value is not None and stderr is not None:
                low, high = value - 1.96 * stderr, value + 1.96 * stderr
                if metric in PROPORTIONS:  # the normal interval of a share of 6 runs past 0 and 1
                    low, high = max(low, 0.0), min(high, 1.0)
            rows.append({
                "metric": metric if filter_name == "none" else f"{metric} ({filter_name})",
                "scope": "category", "scope_value": task, "value": value, "ci_low": low, "ci_high": high,
                "n": n if isinstance(n, int) else None,
            })
    return rows


def _number(value: Any) -> float | None:
    """A finite number as float, else None (lm-eval writes "N/A" or NaN where it has none)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
