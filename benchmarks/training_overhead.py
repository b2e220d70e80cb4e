"""Training overhead: our DPO run through the job system vs a bare TRL script, same model, data, steps.

    .venv/bin/python benchmarks/training_overhead.py [--steps 40] [--repeats 2] [--model-dir DIR] [--gpus N]

Both sides train DPO (sigmoid loss) on the same snapshot's train pairs with the same DPOConfig
values, each under `accelerate launch` (a fresh process, as a real run):

1. bare: a minimal TRL script (load the JSONL, DPOTrainer, train, save), as TRL's docs write it;
2. ours: `training.services.start_training` -> the jobs queue -> a running `manage.py db_worker`
   -> accelerate launch training/recipes/dpo.py -> model registered. Timed from the commit that
   queues the run to its final state, so the queue, the worker, the YAML, the log streaming,
   progress updates, the metrics file and the registration are all inside the measurement.

The worker is started (and warm) before timing, as in a deployment. Runs alternate (bare, ours,
bare, ours, ...) and the median of the paired ratios (ours / bare of the same repeat) is the figure,
which damps a drifting machine's noise; best against best is printed beside it.
Target: wall-time overhead at most 5 %. Prints steps per second of each side (and, with --gpus,
tokens per second of ours). Without --model-dir a tiny model is built locally (CPU).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

logger = logging.getLogger("training_overhead")

BARE_SCRIPT = '''
import json, sys
from datasets import Dataset
from trl import DPOConfig, DPOTrainer
from transformers import AutoTokenizer

model, data, out, hyper = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
rows = [json.loads(l) for l in open(data)]
rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows if r["split"] == "train"]
tokenizer = AutoTokenizer.from_pretrained(model)
args = DPOConfig(output_dir=out, **hyper)
trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
trainer.train()
trainer.save_model(out)
'''


def prepare(root: Path, model_dir: str | None, items: int) -> tuple[Path, Path]:
    from tests.training.snapshots import write_snapshot

    models, snapshots = root / "models", root / "snapshots"
    if model_dir:
        target = models / "base"
        models.mkdir(parents=True)
        target.symlink_to(Path(model_dir).resolve())
    else:
        from tests.tiny_models import build_tiny_model

        target = build_tiny_model(models / "base")
    return target, write_snapshot(snapshots, items=items, responses=4)


def django_env(root: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}", "RLCHF_MODELS_DIR": str(root / "models"),
            "RLCHF_SNAPSHOTS_DIR": str(root / "snapshots"), "RLCHF_ARTIFACTS_DIR": str(root / "artifacts"),
            "RLCHF_VAR_DIR": str(root / "var"), "DJANGO_SETTINGS_MODULE": "config.settings",
            "JOBS_HEARTBEAT_SECONDS": "5"}


def hyper(steps: int) -> dict:
    return {"max_steps": steps, "per_device_train_batch_size": 4, "learning_rate": 1e-4, "max_length": 128,
              "seed": 0, "save_steps": 10_000, "logging_steps": 1}


def bare_config(values: dict, gpus: int) -> dict:
    """The same DPOConfig values our YAML carries (explicit defaults included)."""
    return {**values, "gradient_checkpointing": False, "save_strategy": "steps", "save_total_limit": 2,
            "report_to": "none", "disable_tqdm": True, "bf16": bool(gpus) and _bf16(), "use_cpu": not gpus}


def _bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def launch_prefix(gpus: int) -> list[str]:
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1",
            "--num_processes", str(max(1, gpus)), "--dynamo_backend", "no"]
    return argv + (["--cpu", "--mixed_precision", "no"] if gpus == 0 else (["--multi_gpu"] if gpus > 1 else []))


def run_bare(root: Path, model: Path, snapshot: Path, values: dict, gpus: int, n: int) -> tuple[float, float]:
    """Wall seconds of the bare script, and its trainer's own train_runtime."""
    script = root / "bare_dpo.py"
    script.write_text(BARE_SCRIPT)
    out = root / f"bare-{n}"
    argv = [*launch_prefix(gpus), str(script), str(model), str(snapshot / "pairs.jsonl"), str(out),
            json.dumps(bare_config(values, gpus))]
    start = time.perf_counter()
    done = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=root,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    elapsed = time.perf_counter() - start
    found = re.search(r"'train_runtime': '?([0-9.]+)", done.stdout + done.stderr)
    return elapsed, float(found.group(1)) if found else float("nan")


def start_worker(root: Path) -> subprocess.Popen:
    log = open(root / "worker.log", "a")  # noqa: SIM115 - closed when the benchmark exits
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--queue-name", "default,gpu", "--no-reload", "--interval", "0.2",
         "--no-startup-delay"], cwd=REPO, env={**os.environ, **django_env(root)}, stdout=log, stderr=subprocess.STDOUT,
    )


def run_ours(owner, project, base, snapshot_id: str, values: dict, gpus: int) -> tuple[float, object]:
    from django.db import transaction

    from jobs.models import Run
    from training import services

    start = time.perf_counter()
    with transaction.atomic():
        training = services.start_training(owner=owner, project=project, base_model=base, recipe="dpo",
                                           objective="trl", snapshot_id=snapshot_id, hyperparameters=values, gpus=gpus)
    run = training.run
    while True:
        run.refresh_from_db(fields=["status"])
        if run.status in Run.FINAL:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    run.refresh_from_db()
    if run.status != Run.Status.SUCCEEDED:
        raise SystemExit(f"our run {run.status}:\n{run.log[-3000:]}")
    return elapsed, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--items", type=int, default=64, help="snapshot items (2 pairs each)")
    parser.add_argument("--model-dir", help="an HF model directory (default: a tiny model built here)")
    parser.add_argument("--gpus", type=int, default=0)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    root = Path(tempfile.mkdtemp(prefix="training-overhead-"))
    model, snapshot = prepare(root, opts.model_dir, opts.items)
    os.environ.update(django_env(root))
    os.environ["TRAINING_NODE_GPUS"] = str(opts.gpus)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.services import create_project
    from training import services

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench")
    project = create_project(owner=owner, name="bench")
    base = services.register_base_model(owner=owner, project=project, name="base", path=str(model))
    values = hyper(opts.steps)
    worker = start_worker(root)
    try:
        run_ours(owner, project, base, snapshot.name, {**values, "max_steps": 1}, opts.gpus)  # warm the worker
        bare_times, bare_inner, our_times, trainings = [], [], [], []
        for n in range(opts.repeats):
            wall, inner = run_bare(root, model, snapshot, values, opts.gpus, n)
            bare_times.append(wall)
            bare_inner.append(inner)
            elapsed, training = run_ours(owner, project, base, snapshot.name, values, opts.gpus)
            our_times.append(elapsed)
            trainings.append(training)
            logger.info("repeat %d: bare %.2f s (trainer %.2f s), ours %.2f s (trainer %.2f s)", n + 1, wall, inner,
                        elapsed, _train_runtime(training))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    report(opts, bare_times, our_times, trainings)
    logger.info("bare, inside the trainer: best train_runtime %.2f s", min(bare_inner))


def _train_runtime(training: object) -> float:
    summary = json.loads((Path(training.output_dir) / "rlchf_run.json").read_text())
    return float(summary.get("final", {}).get("train_runtime", float("nan")))


def report(opts: argparse.Namespace, bare: list[float], ours: list[float], trainings: list) -> None:
    # Each repeat runs bare then ours back to back, so their ratio sees the same machine speed; the
    # median of those paired ratios is the figure (this machine's speed drifts between repeats).
    ratios = sorted(100 * (o - b) / b for b, o in zip(bare, ours, strict=True))
    overhead = statistics.median(ratios)
    logger.info("model: %s; %d steps; %d GPU(s); %d repeats", opts.model_dir or "tiny (built here)",
                opts.steps, opts.gpus, opts.repeats)
    logger.info("bare TRL script : median %.2f s wall [%.2f - %.2f], %.3f steps/s", statistics.median(bare),
                min(bare), max(bare), opts.steps / statistics.median(bare))
    logger.info("ours (job)      : median %.2f s wall [%.2f - %.2f], %.3f steps/s", statistics.median(ours),
                min(ours), max(ours), opts.steps / statistics.median(ours))
    logger.info("overhead        : median of paired repeats %+.1f %% [%+.1f - %+.1f] (target <= 5 %%): %s; "
                "best against best %+.1f %%", overhead, ratios[0], ratios[-1], "OK" if overhead <= 5 else "OVER",
                100 * (min(ours) - min(bare)) / min(bare))
    summary = json.loads((Path(trainings[-1].output_dir) / "rlchf_run.json").read_text())
    final = summary.get("final", {})
    logger.info("ours, inside the trainer: %.3f steps/s (train_runtime %.2f s)",
                float(final.get("train_steps_per_second", 0)), float(final.get("train_runtime", 0)))
    metrics = [json.loads(line) for line in (Path(trainings[-1].output_dir) / "metrics.jsonl").read_text().splitlines()]
    tokens = max((float(m["num_tokens"]) for m in metrics if "num_tokens" in m), default=0.0)
    if tokens and final.get("train_runtime"):
        logger.info("tokens/s (trained tokens / train_runtime): %.0f", tokens / float(final["train_runtime"]))


if __name__ == "__main__":
    main()
