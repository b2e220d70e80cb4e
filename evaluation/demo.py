"""The whole research loop on the demo data, step by step, through the apps' own services
(`manage.py demo_experiment` drives it and prints what each step made).

1. demo data: `manage.py seed_demo` (idempotent): the review project with simulated annotators'
   rankings and real SmolLM2 persona rankings;
2. snapshots (aggregation.snapshots): the same rule, pair strategy and seeded item split over three
   pools: humans, synthetic raters, both (the built-in `all`); the same inputs give the same ids;
3. a base model: a tiny Qwen2 built locally (training.tiny), or a directory under MODELS_DIR;
4. an experiment (training.services.create_experiment): base, RLHF baseline, RLCHF humans /
   synthetic / both, each training run executed here through the jobs runner;
5. one evaluation run over the five conditions (evaluation.services.experiment_config): a BBQ
   subset and held-out preference accuracy per collective and demographic group;
6. the comparison report (evaluation.report), exported as HTML, CSV, JSON and Markdown.

Every failure raises `DemoError` naming the step and, for a run, its id, cause and log tail.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from aggregation.management.commands.seed_review_demo import PROJECT as REVIEW_DEMO_PROJECT
from aggregation.models import Pool
from aggregation.pools import ALL_POOL, PoolError
from aggregation.services import AggregationError, save_pool
from aggregation.snapshot_files import split_of
from aggregation.snapshots import SnapshotInputs, create_snapshot
from annotation.models import Project
from evaluation import report as reports
from evaluation.models import EvaluationRun
from evaluation.services import experiment_config, start_evaluation
from jobs import runner
from jobs.models import Run
from jobs.services import RunError
from training import services as training
from training.models import Experiment, RegisteredModel

DEMO_PROJECT = REVIEW_DEMO_PROJECT
DEMO_OWNER = "researcher"
POOLS = {"humans": ("demo-humans", Pool.Kinds.HUMANS), "synthetic": ("demo-synthetic", Pool.Kinds.SYNTHETIC),
         "both": (ALL_POOL, Pool.Kinds.BOTH)}
# A larger test share than the default 10 %: the demo has 24 items, and per-group accuracy needs test pairs.
SPLIT = {"train": 0.7, "validation": 0.1, "test": 0.2}
# The split is a hash of (seed, item): with 24 items some seeds leave the test split (nearly) empty,
# so the demo takes the first seed from --seed up that puts at least this many items in it.
MIN_TEST_ITEMS = 4
SPLIT_SEEDS_TRIED = 100
# DPO learning rates: the tiny random model must move in a few steps; a real model keeps TRL's default.
TINY_LEARNING_RATE, REAL_LEARNING_RATE = 1e-3, 5e-7
TINY_MODEL_DIR = "demo-tiny-qwen2"
WAIT_POLL_S = 2.0


class DemoError(Exception):
    """A step of the demo failed; the message names the step and why."""


@dataclass
class DemoOptions:
    steps: int = 4
    bbq_per_category: int = 5
    model_dir: str = ""
    output: str = ""
    learning_rate: float | None = None
    batch_size: int = 2
    max_length: int = 512
    gpus: int = 0
    device: str = "auto"
    rule: str = "schulze"
    seed: int = 0


@dataclass
class DemoResult:
    project: Project
    snapshots: dict[str, str]
    base_model: RegisteredModel
    experiment: Experiment
    evaluation: EvaluationRun
    report: reports.Report
    exports: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)


class Step:
    """Times a step, logs its start and turns the apps' errors into a DemoError naming it."""

    def __init__(self, name: str, log: Any, timings: dict[str, float]) -> None:
        self.name, self.log, self.timings = name, log, timings

    def __enter__(self) -> Step:
        self.start = time.monotonic()
        self.log(f"== {self.name}")
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> bool:
        self.timings[self.name] = time.monotonic() - self.start
        if isinstance(exc, DemoError | RunError | PoolError | AggregationError | OSError | ValueError):
            raise DemoError(f"{self.name}: {exc}") from exc
        if exc is None:
            self.log(f"   done in {self.timings[self.name]:.1f} s")
        return False


def run_demo(options: DemoOptions, log: Any) -> DemoResult:
    """The whole loop; `log(line)` receives what each step made."""
    timings: dict[str, float] = {}
    with Step("1/6 demo data (seed_demo)", log, timings):
        project = demo_project(log)
    with Step("2/6 snapshots (humans, synthetic, both)", log, timings):
        snapshots = demo_snapshots(project, options, log)
    with Step("3/6 base model", log, timings):
        base = base_model(project, options, log)
    with Step("4/6 experiment: five matched conditions", log, timings):
        experiment = train_conditions(project, base, snapshots, options, log)
    with Step("5/6 evaluation (BBQ subset, preference accuracy per group)", log, timings):
        erun = evaluate(experiment, options, log)
    with Step("6/6 comparison report", log, timings):
        report = reports.build_report(erun)
        check_report(report, experiment)
        exports = write_exports(report, options.output)
    return DemoResult(project, snapshots, base, experiment, erun, report, exports, timings)


# ---------------------------------------------------------------- steps


def demo_project(log: Any) -> Project:
    call_command("seed_demo", stdout=_LogStream(log))
    project = Project.objects.filter(name=DEMO_PROJECT, owner__username=DEMO_OWNER).first()
    if project is None:
        raise DemoError(f"seed_demo did not create the project {DEMO_PROJECT!r}")
    log(f"   project {project.public_id} ({project.items.count()} items)")
    return project


def demo_snapshots(project: Project, options: DemoOptions, log: Any) -> dict[str, str]:
    if Path(settings.SNAPSHOTS_DIR).resolve() != (Path(settings.VAR_DIR) / "snapshots").resolve():
        raise DemoError(f"snapshots are written to {Path(settings.VAR_DIR) / 'snapshots'} but training reads "
                        f"RLCHF_SNAPSHOTS_DIR={settings.SNAPSHOTS_DIR}; unset it or point it there")
    split_seed = choose_split_seed(project, options.seed)
    log(f"   item split {SPLIT} with seed {split_seed}")
    ids = {}
    for label, (pool, kinds) in POOLS.items():
        if pool != ALL_POOL and not Pool.objects.filter(project=project, name=pool).exists():
            save_pool(project=project, user=None, data={"name": pool, "kinds": kinds,
                                                          "description": f"demo_experiment: {label} only"})
        inputs = SnapshotInputs(pool=pool, rule=options.rule, pair_strategy="all", seed=split_seed, split=dict(SPLIT))
        snap, created = create_snapshot(project=project, user=project.owner, inputs=inputs)
        splits = pair_splits(snap.path / "pairs.jsonl")
        log(f"   {label:9} pool {pool!r}: snapshot {snap.snapshot_id} ({'new' if created else 'existing'}), "
            f"pairs {splits}, {snap.path}")
        if not splits.get("test"):
            log(f"   note: the {label} collective has no test pairs, so it gets no held-out preference accuracy")
        ids[label] = snap.snapshot_id
    return ids


def pair_splits(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                split = json.loads(line).get("split", "?")
                counts[split] = counts.get(split, 0) + 1
    return counts


def choose_split_seed(project: Project, first: int) -> int:
    items = list(project.items.values_list("external_id", flat=True))
    for seed in range(first, first + SPLIT_SEEDS_TRIED):
        if sum(split_of(item, seed, SPLIT) == "test" for item in items) >= min(MIN_TEST_ITEMS, len(items)):
            return seed
    raise DemoError(f"no seed from {first} to {first + SPLIT_SEEDS_TRIED - 1} puts {MIN_TEST_ITEMS} of "
                    f"{len(items)} items in the test split")


def base_model(project: Project, options: DemoOptions, log: Any) -> RegisteredModel:
    if options.model_dir:
        # A path that exists from here (e.g. var/models/...) is taken as it is; anything else is
        # read relative to MODELS_DIR, as the training app reads model paths.
        given = Path(options.model_dir)
        path, name = str(given.resolve()) if given.exists() else options.model_dir, given.name
    else:
        from training.tiny import build_tiny_model

        target = Path(settings.MODELS_DIR) / TINY_MODEL_DIR
        if not (target / "config.json").is_file():  # seeded: the same weights every time
            build_tiny_model(target)
            log(f"   built the tiny model in {target}")
        path, name = str(target), "demo tiny Qwen2 (random weights)"
    resolved = training._check_model_dir(path, field="--model-dir")
    model = RegisteredModel.objects.filter(project=project, kind=RegisteredModel.Kind.BASE, path=str(resolved)).first()
    if model is None:
        model = training.register_base_model(owner=project.owner, project=project, name=name, path=str(resolved))
    log(f"   base model {model.public_id}: {model.path}")
    return model


def train_conditions(project: Project, base: RegisteredModel, snapshots: dict[str, str], options: DemoOptions,
                     log: Any) -> Experiment:
    rate = options.learning_rate or (REAL_LEARNING_RATE if options.model_dir else TINY_LEARNING_RATE)
    hyper = {"max_steps": options.steps, "per_device_train_batch_size": options.batch_size,
             "learning_rate": rate, "max_length": options.max_length, "save_steps": 1000,
             "logging_steps": 1}
    name = f"Demo experiment {timezone.now():%Y-%m-%d %H:%M:%S} ({options.steps} steps)"
    experiment = training.create_experiment(owner=project.owner, project=project, name=name, base_model=base,
                                            snapshots=snapshots, hyperparameters=hyper, seed=options.seed,
                                            gpus=options.gpus)
    log(f"   experiment {experiment.public_id}: {name}")
    for condition in experiment.conditions.select_related("training_run__run"):
        if condition.training_run is None:
            log(f"   {condition.name:16} the base model itself (untrained)")
            continue
        started = time.monotonic()
        run = execute(condition.training_run.run)
        condition.refresh_from_db()
        if run.status != Run.Status.SUCCEEDED or condition.model is None:
            raise DemoError(failed_run(f"training condition {condition.name}", run))
        log(f"   {condition.name:16} run {run.public_id} succeeded in {time.monotonic() - started:.0f} s: "
            f"model {condition.model.public_id} in {condition.model.path}")
    return experiment


def evaluate(experiment: Experiment, options: DemoOptions, log: Any) -> EvaluationRun:
    config = experiment_config(experiment, per_category=options.bbq_per_category, device=options.device)
    if len(config["models"]) != 5:
        raise DemoError(f"expected the five conditions' models, got {[m['name'] for m in config['models']]}")
    erun = start_evaluation(owner=experiment.owner, project=experiment.project, config=config,
                            name=f"Experiment {experiment.name}", experiment=experiment)
    log(f"   evaluation run {erun.run.public_id}: {len(config['models'])} models x "
        f"{', '.join(b['name'] for b in config['benchmarks'])}")
    run = execute(erun.run)
    if run.status != Run.Status.SUCCEEDED:
        raise DemoError(failed_run("evaluation", run))
    erun = EvaluationRun.objects.select_related("run", "project").get(pk=erun.pk)  # the run as it finished
    log(f"   {erun.results.count()} numbers stored")
    return erun


def execute(run: Run) -> Run:
    """Execute the queued run in this process (a worker may have claimed it first: then wait)."""
    run = runner.execute(run.pk)
    while not run.is_final and run.status != Run.Status.INTERRUPTED:
        time.sleep(WAIT_POLL_S)
        run.refresh_from_db()
    return run


def failed_run(what: str, run: Run) -> str:
    tail = (run.error or run.log)[-3000:].strip()
    return f"{what}: run {run.public_id} {run.status} (its page: /jobs/runs/{run.public_id}/)\n{tail}"


def check_report(report: reports.Report, experiment: Experiment) -> None:
    """Every condition has a number for every overall metric: a hole is a failed demo, not a quiet one."""
    names = [c.name for c in report.conditions]
    expected = list(experiment.conditions.values_list("name", flat=True))
    if names != expected:
        raise DemoError(f"the report compares {names}, not the experiment's conditions {expected}")
    wanted = [line for line in report.lines if line.source == "rlchf" and (
        (line.benchmark == "bbq" and line.scope == "overall") or line.benchmark == "preference")]
    missing = [f"{line.label} for {n}" for line in wanted for n in names if n not in line.cells]
    kinds = {(line.benchmark, line.scope) for line in wanted}
    for needed in (("bbq", "overall"), ("preference", "collective"), ("preference", "group")):
        if needed not in kinds:
            missing.append(f"every {needed[0]} number of scope {needed[1]}")
    if missing:
        raise DemoError(f"the report lacks numbers: {', '.join(missing)}")


def write_exports(report: reports.Report, output: str) -> dict[str, Path]:
    html = Path(output) if output else (Path(settings.ARTIFACTS_DIR) / "demo" /
                                        f"report-{report.erun.run.public_id}.html")
    if html.suffix != ".html":
        raise DemoError(f"--output: {html} must name an .html file (CSV, JSON and Markdown go beside it)")
    html.parent.mkdir(parents=True, exist_ok=True)
    exports = {"html": html, **{ext: html.with_suffix(f".{ext}") for ext in ("csv", "json", "md")}}
    exports["html"].write_text(reports.to_html(report), encoding="utf-8")
    exports["csv"].write_text(reports.to_csv(report), encoding="utf-8")
    exports["json"].write_text(reports.to_json(report), encoding="utf-8")
    exports["md"].write_text(reports.to_markdown(report), encoding="utf-8")
    return exports


class _LogStream:
    """A file-like sink for a sub-command's output that forwards each line to `log`."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def write(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self.log(f"   {line}")

    def flush(self) -> None:
        return None
