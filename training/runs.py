"""Job handlers: "training" (a recipe under `accelerate launch`, or on Slurm through submitit) and
"model-fetch" (download a base model from a hub id, on the worker).

A training run writes its YAML into the output directory and starts

    python -m accelerate.commands.launch --num_processes N [--config_file <TRL preset>] \
        training/recipes/<recipe>.py --config <output_dir>/run.yaml

in its own process group (jobs.subprocesses): the log streams into the run, the recipe's
"[rlchf] step i/n" lines drive the progress bar, cancel stops the whole group, a crash fails the
run with the log tail. Resume: the recipe continues from the newest checkpoint in the output dir.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from jobs import registry
from jobs.models import Run
from jobs.runner import Cancelled, RunContext, SubprocessFailed
from jobs.subprocesses import run_subprocess
from training import services
from training.models import RegisteredModel, TrainingRun

logger = logging.getLogger(__name__)

PROGRESS_PREFIX = "[rlchf] step"


def launch_argv(config: dict[str, Any], yaml_path: Path) -> list[str]:
    gpus, preset = int(config.get("gpus", 0)), config.get("preset", "")
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1",
            "--num_processes", str(max(1, gpus)), "--dynamo_backend", "no"]
    if preset:
        import trl

        argv += ["--config_file", str(Path(trl.__file__).parent / "accelerate_configs" / f"{preset}.yaml")]
    if gpus == 0:
        argv += ["--cpu", "--mixed_precision", "no"]
    elif gpus > 1 and not preset:
        argv += ["--multi_gpu"]
    return [*argv, str(services.RECIPES_DIR / f"{config['recipe']}.py"), "--config", str(yaml_path)]


def write_yaml(config: dict[str, Any]) -> Path:
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "run.yaml"
    header = (f"# {config['recipe']} run written by the rlchf app; run by hand with:\n"
              f"#   accelerate launch training/recipes/{config['recipe']}.py --config {path}\n")
    path.write_text(header + yaml.safe_dump(services.recipe_yaml(config), sort_keys=False))
    return path


def child_env() -> dict[str, str]:
    return {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(settings.BASE_DIR), "ACCELERATE_DISABLE_RICH": "1", "RLCHF_DIE_WITH_PARENT": "1"}


class _Lines:
    """Log every line of the child; turn the recipe's step lines into progress."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def __call__(self, line: str) -> None:
        if line.startswith(PROGRESS_PREFIX):
            done, _, total = line[len(PROGRESS_PREFIX):].strip().partition("/")
            if done.isdigit() and total.isdigit():
                self.ctx.progress(int(done), int(total))
            return
        self.ctx.log(line)


@registry.register("training", label="Training", validate=services.check_config, queue="gpu")
def run_training(run: Run, ctx: RunContext) -> None:
    training = TrainingRun.objects.select_related("base_model", "project").get(run=run)
    yaml_path = write_yaml(run.config)
    ctx.artifact(yaml_path)
    if training.launcher == TrainingRun.Launcher.SLURM:
        from training import slurm

        slurm.run_on_slurm(training, ctx, launch_argv(run.config, yaml_path), child_env())
    else:
        _run_local(ctx, launch_argv(run.config, yaml_path))
    model = services.register_trained_model(training)
    ctx.artifact(model.path)
    ctx.log(f"registered model {model.name} ({model.size_bytes} bytes)")


def _run_local(ctx: RunContext, argv: list[str]) -> None:
    ctx.log("$ " + " ".join(argv))
    code = run_subprocess(argv, on_line=_Lines(ctx), should_stop=lambda: ctx.cancelled,
                          cwd=str(settings.BASE_DIR), env=child_env())
    ctx.flush_log()
    if ctx.cancelled:
        raise Cancelled("cancel requested while training ran")
    if code != 0:
        raise SubprocessFailed(f"accelerate launch exited with code {code}")


@registry.register("model-fetch", label="Model download", queue="default")
def run_model_fetch(run: Run, ctx: RunContext) -> None:
    model = RegisteredModel.objects.get(public_id=run.config["model"])
    target = Path(settings.MODELS_DIR) / "hub" / model.hub_id.replace("/", "__")
    try:
        from huggingface_hub import snapshot_download

        ctx.log(f"downloading {model.hub_id} to {target}")
        snapshot_download(repo_id=model.hub_id, local_dir=str(target))
    except Exception:
        RegisteredModel.objects.filter(pk=model.pk).update(status=RegisteredModel.Status.FAILED)
        raise
    RegisteredModel.objects.filter(pk=model.pk).update(
        status=RegisteredModel.Status.READY, path=str(target), size_bytes=services.dir_size(target)
    )
    ctx.artifact(target)
