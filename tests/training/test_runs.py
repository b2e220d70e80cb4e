"""Training runs launched from the app as jobs, executed by a real `db_worker` that starts
`accelerate launch` on the tiny model (CPU): every recipe end to end, cancel, crash, resume."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from django.db import transaction

from jobs.models import Run
from jobs.services import cancel_run, reap_stale_runs, resume_run
from tests.jobs.conftest import wait_for
from tests.training.conftest import TINY_HYPER, snapshot
from training import services
from training.models import RegisteredModel, TrainingRun

pytestmark = [pytest.mark.timeout(900), pytest.mark.django_db(transaction=True)]


def start(project, base, **kwargs) -> TrainingRun:
    kwargs.setdefault("recipe", "dpo")
    kwargs.setdefault("objective", "trl")
    kwargs.setdefault("snapshot_id", snapshot())
    kwargs.setdefault("hyperparameters", TINY_HYPER)
    with transaction.atomic():  # queued when this commits
        return services.start_training(owner=project.owner, project=project, base_model=base, **kwargs)


def finished(training: TrainingRun, status: str = Run.Status.SUCCEEDED, timeout: float = 240) -> Run:
    run = training.run

    def done() -> bool:
        run.refresh_from_db()
        return run.is_final or run.status == Run.Status.INTERRUPTED

    wait_for(done, timeout=timeout, what=f"training run {run.pk} to finish")
    assert run.status == status, run.log[-3000:]
    return run


@pytest.mark.parametrize(
    ("recipe", "objective", "extra"),
    [("dpo", "trl", {}),
     # The other recipes train as long again each and add nothing the PostgreSQL pass would
     # check that dpo-trl does not (the job plumbing): slow, so that pass leaves them to SQLite's.
     *[pytest.param(*case, marks=pytest.mark.slow) for case in (
         ("dpo", "weighted", {}), ("dpo", "group_robust", {}), ("dpo", "listwise", {}),
         ("sft", "sft", {"use_peft": True, "lora_r": 4}), ("reward", "margin", {}))]],
)
def test_recipe_runs_as_a_job_and_registers_its_model(start_worker, tiny_base, recipe, objective, extra):
    project = tiny_base.project
    start_worker()
    training = start(project, tiny_base, recipe=recipe, objective=objective, hyperparameters={**TINY_HYPER, **extra})
    run = finished(training)
    out = Path(training.output_dir)
    assert (run.progress_done, run.progress_total) == (3, 3)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "run.yaml", "metrics.jsonl", "lineage.json",
                 "rlchf_run.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "rlchf_run.json").read_text())
    assert summary["snapshot"] == snapshot() and summary["precision"] == "fp32"
    assert summary["rows"]["given"] > 0 and summary["rows"]["dropped"] == 0
    assert "rows:" in run.log and "dropped by truncation" in run.log
    model = RegisteredModel.objects.get(training_run=training)
    lineage = model.lineage
    assert lineage["recipe"] == recipe and lineage["snapshot"] == snapshot() and lineage["base"] == "tiny"
    assert lineage["config_hash"] == training.config_hash and lineage["code_version"]
    assert model.size_bytes == services.dir_size(out) and model.kind == RegisteredModel.Kind.TRAINED
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "loss" in s] == [1, 2, 3]
    if recipe == "dpo":
        assert all("rewards/margins" in s for s in steps if "loss" in s)
    if objective == "group_robust":
        assert "worst_group_loss" in steps[0] and "group_weight/country=DE" in steps[0]
    if extra.get("use_peft"):  # LoRA: the adapter is merged, the directory is a plain model
        assert not (out / "adapter_config.json").exists()
        assert "lora" not in (out / "model.safetensors").read_bytes()[:20000].decode("latin-1").lower()


@pytest.mark.slow
def test_rl_run_with_welfare_of_two_group_reward_models(start_worker, tiny_base):
    project = tiny_base.project
    start_worker()
    rms = []
    for group in ("DE", "KE"):
        rm = start(project, tiny_base, recipe="reward", objective="margin",
                   hyperparameters={**TINY_HYPER, "max_steps": 1, "dataset_file": "baseline_pairs",
                                    "group_filter": f"country={group}"})
        finished(rm)
        rms.append(RegisteredModel.objects.get(training_run=rm))
    assert {m.lineage["recipe"] for m in rms} == {"reward"}
    rl = start(project, tiny_base, recipe="rl", objective="egalitarian", reward_models=rms,
               hyperparameters={"max_steps": 2, "per_device_train_batch_size": 2, "num_generations": 2,
                                "max_completion_length": 6, "learning_rate": 1e-4, "seed": 0})
    run = finished(rl)
    steps = [json.loads(line) for line in (Path(rl.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert "rewards/welfare_egalitarian/mean" in steps[0]
    assert RegisteredModel.objects.get(training_run=rl).lineage["objective"] == "grpo+egalitarian"
    assert run.progress_done == 2


def test_cancel_mid_run_stops_the_process_group_within_seconds(start_worker, tiny_base):
    start_worker()
    training = start(tiny_base.project, tiny_base, hyperparameters={**TINY_HYPER, "max_steps": 100000})
    run = training.run
    wait_for(lambda: (run.refresh_from_db(), run.progress_done >= 1)[1], timeout=240, what="the first step")
    cancel_run(run)
    finished(training, Run.Status.CANCELLED, timeout=30)
    assert "stopped subprocess" in run.log
    wait_for(lambda: not _processes_writing(training.output_dir), timeout=10, what="the trainers to exit")
    assert not RegisteredModel.objects.filter(training_run=training).exists()


def _processes_writing(output_dir: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if output_dir.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return [p for p in found if p != os.getpid()]


def test_a_crash_fails_the_run_with_the_log_tail(start_worker, tiny_base):
    start_worker()
    # Every row is longer than 8 tokens: the recipe refuses to train on nothing and exits non-zero.
    training = start(tiny_base.project, tiny_base, hyperparameters={**TINY_HYPER, "max_length": 8})
    run = finished(training, Run.Status.FAILED)
    assert "longer than max_length=8" in run.error
    assert "accelerate launch exited with code" in run.error


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_last_checkpoint(start_worker, tiny_base):
    worker = start_worker()
    training = start(tiny_base.project, tiny_base, hyperparameters={**TINY_HYPER, "max_steps": 8, "save_steps": 2})
    run, out = training.run, Path(training.output_dir)
    wait_for(lambda: (out / "checkpoint-4").is_dir(), timeout=240, what="checkpoint-4")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not _processes_writing(training.output_dir), timeout=20, what="the orphaned trainers to exit")
    wait_for(lambda: reap_stale_runs(stale_seconds=2), timeout=20, what="the run to be reaped")
    run.refresh_from_db()
    assert run.status == Run.Status.INTERRUPTED
    resume_run(run)
    start_worker()
    finished(training)
    run.refresh_from_db()
    assert "resuming from checkpoint" in run.log and run.attempts == 2
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    # The second attempt continued from a checkpoint: step 1 was trained once, the run ended at 8.
    assert steps[-1] == 8 and steps.count(1) == 1, steps


@pytest.mark.slow
def test_the_yaml_the_app_wrote_run_by_hand_gives_the_same_first_step_loss(start_worker, tiny_base, tmp_path):
    import subprocess
    import sys

    start_worker()
    training = start(tiny_base.project, tiny_base, hyperparameters={**TINY_HYPER, "max_steps": 1})
    finished(training)
    app_loss = json.loads((Path(training.output_dir) / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    by_hand = tmp_path / "by-hand"
    subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
         "training/recipes/dpo.py", "--config", str(Path(training.output_dir) / "run.yaml"),
         "--output_dir", str(by_hand)],
        cwd=Path(__file__).resolve().parents[2], check=True, timeout=240, capture_output=True,
    )
    hand_loss = json.loads((by_hand / "metrics.jsonl").read_text().splitlines()[0])["loss"]
    assert hand_loss == pytest.approx(app_loss, rel=1e-6)


@pytest.mark.slow
def test_slurm_runner_on_submitits_local_executor(start_worker, tiny_base, settings, monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINING_SLURM_EXECUTOR", "local")
    monkeypatch.setenv("TRAINING_SLURM_FOLDER", str(tmp_path / "slurm"))
    start_worker()
    training = start(tiny_base.project, tiny_base, launcher="slurm", hyperparameters={**TINY_HYPER, "max_steps": 2})
    run = finished(training)
    training.refresh_from_db()
    assert training.slurm_job_id and "submitted job" in run.log and "LocalExecutor" in run.log
    assert (run.progress_done, run.progress_total) == (2, 2)
    assert "rows:" in run.log  # the job's log was fetched into the run
    assert RegisteredModel.objects.filter(training_run=training).exists()


@pytest.mark.slow
def test_cancel_a_slurm_job(start_worker, tiny_base, monkeypatch, tmp_path):
    monkeypatch.setenv("TRAINING_SLURM_EXECUTOR", "local")
    monkeypatch.setenv("TRAINING_SLURM_FOLDER", str(tmp_path / "slurm"))
    start_worker()
    training = start(tiny_base.project, tiny_base, launcher="slurm", hyperparameters={**TINY_HYPER, "max_steps": 100000})
    run = training.run
    wait_for(lambda: (run.refresh_from_db(), run.progress_done >= 1)[1], timeout=240, what="the first step")
    cancel_run(run)
    finished(training, Run.Status.CANCELLED, timeout=60)
    wait_for(lambda: not _processes_writing(training.output_dir), timeout=20, what="the job's trainers to exit")


@pytest.mark.slow
def test_an_experiment_with_five_conditions_runs_to_completion(start_worker, tiny_base):
    from tests.training.conftest import snapshot as sid
    from training.models import ExperimentCondition

    start_worker()
    with transaction.atomic():
        experiment = services.create_experiment(
            owner=tiny_base.owner, project=tiny_base.project, name="matched", base_model=tiny_base,
            snapshots={"humans": sid("test"), "synthetic": sid("synthetic"), "both": sid("both")},
            hyperparameters={k: v for k, v in TINY_HYPER.items() if k != "seed"} | {"max_steps": 1}, seed=7,
        )
    conditions = list(experiment.conditions.select_related("training_run__run"))
    assert [c.name for c in conditions] == ["base", "rlhf-baseline", "rlchf-humans", "rlchf-synthetic", "rlchf-both"]
    assert conditions[0].model == tiny_base and conditions[0].training_run is None
    for condition in conditions[1:]:
        finished(condition.training_run)
    trained = [RegisteredModel.objects.get(training_run=c.training_run) for c in conditions[1:]]
    configs = [c.training_run.run.config for c in conditions[1:]]
    # Matched: same base, hyperparameters and seed; only the feedback differs.
    assert {c["base_model_path"] for c in configs} == {tiny_base.path}
    assert all(c["hyperparameters"]["seed"] == 7 for c in configs)
    assert configs[0]["hyperparameters"]["dataset_file"] == "baseline_pairs"
    assert [m.lineage["snapshot"] for m in trained] == [sid("test"), sid("test"), sid("synthetic"), sid("both")]
    assert ExperimentCondition.objects.filter(experiment=experiment).count() == 5
    # Registration gives each trained condition its model: what evaluating the experiment compares.
    assert [c.model for c in experiment.conditions.order_by("id")] == [tiny_base, *trained]
