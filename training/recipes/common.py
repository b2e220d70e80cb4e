"""What the four recipes share: our one config dataclass, the parser, snapshot readers, the
metrics file, precision by device, and the output directory's contents.

No Django here: a recipe runs by hand (`accelerate launch training/recipes/dpo.py --config
run.yaml`) on any machine that has the snapshot directory and the base model.

Output directory of every run:
    model and tokenizer files (LoRA adapters merged), run.yaml (when the app wrote it there),
    metrics.jsonl (one line per logged step), rlchf_run.json (snapshot id, objective, rows
    given / kept / dropped / truncated, precision, final metrics), lineage.json (ARCHITECTURE.md).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger("rlchf.recipes")

REPO_DIR = Path(__file__).resolve().parents[2]
METRICS_FILE = "metrics.jsonl"
RUN_FILE = "rlchf_run.json"
LINEAGE_FILE = "lineage.json"
PROGRESS_PREFIX = "[rlchf] step"


@dataclass
class RlchfArguments:
    """Our fields; everything else is TRL's own config (DPOConfig, SFTConfig, ...) and ModelConfig."""

    snapshot_dir: str = field(metadata={"help": "Directory of the snapshot (pairs.jsonl, rankings.jsonl, ...)."})
    snapshot_id: str = field(default="", metadata={"help": "Id of the snapshot (the directory name when empty)."})
    dataset_file: str = field(default="pairs", metadata={"help": "pairs | baseline_pairs | rankings"})
    objective: str = field(
        default="trl",
        metadata={"help": "trl (the config's loss_type) | weighted | group_robust | listwise"},
    )
    group_by: str = field(default="", metadata={"help": "Group-robust DPO groups: a group attribute, all attributes (empty), rater or source."})
    group_filter: str = field(default="", metadata={"help": "attr=value: keep only that group's baseline pairs."})
    group_step_size: float = field(default=0.01, metadata={"help": "Exponentiated-gradient step of group weights."})
    reward_models: list[str] = field(default_factory=list, metadata={"help": "RL: one reward model dir per group."})
    algorithm: str = field(default="grpo", metadata={"help": "RL: grpo | rloo"})
    welfare: str = field(default="utilitarian", metadata={"help": "RL: utilitarian | egalitarian | nash"})
    ref_model_path: str = field(default="", metadata={"help": "DPO reference model (the base model when empty)."})
    base_model_name: str = field(default="", metadata={"help": "Registry name of the base model, for lineage."})
    config_hash: str = field(default="", metadata={"help": "Hash of the run config (of the YAML when empty)."})
    code_version: str = field(default="", metadata={"help": "Code version (git commit when empty)."})
    max_train_rows: int = field(default=0, metadata={"help": "Use at most this many training rows (0: all)."})
    merge_lora: bool = field(default=True, metadata={"help": "Save LoRA runs as merged full models."})


# ---------------------------------------------------------------- parsing


def device_defaults() -> dict[str, Any]:
    """Precision by device: bf16 on a GPU that has it, fp32 elsewhere (TRL defaults to bf16=True)."""
    import torch

    if torch.cuda.is_available():
        return {"bf16": bool(torch.cuda.is_bf16_supported()), "fp16": False, "use_cpu": False}
    return {"bf16": False, "fp16": False, "use_cpu": True}


def die_with_parent() -> None:
    """Under the app's worker, stop when `accelerate launch` dies (a killed worker takes its
    launcher down through the launcher's own parent-death signal; this carries it one level on)."""
    if os.environ.get("RLCHF_DIE_WITH_PARENT") == "1" and sys.platform == "linux":
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def parse(config_cls: type, argv: list[str] | None = None) -> tuple[Any, Any, Any]:
    """(ours, TRL's config, ModelConfig) from `--config run.yaml` and command-line overrides."""
    from trl import ModelConfig, TrlParser

    die_with_parent()
    parser = TrlParser((RlchfArguments, config_cls, ModelConfig))
    parser.set_defaults_with_config(**device_defaults())
    argv = list(sys.argv[1:] if argv is None else argv)
    rlchf, args, model_args = parser.parse_args_and_config(argv)
    if not rlchf.snapshot_id:
        rlchf.snapshot_id = Path(rlchf.snapshot_dir).name
    if not rlchf.config_hash and "--config" in argv:
        rlchf.config_hash = hashlib.sha256(Path(argv[argv.index("--config") + 1]).read_bytes()).hexdigest()[:16]
    if not rlchf.code_version:
        rlchf.code_version = code_version()
    return rlchf, args, model_args


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_DIR, capture_output=True,  # noqa: S607
                             text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)


# ---------------------------------------------------------------- snapshot files


def snapshot_file(rlchf: RlchfArguments, name: str) -> Path:
    path = Path(rlchf.snapshot_dir) / f"{name}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"snapshot {rlchf.snapshot_id} has no {path.name} (looked in {path.parent})")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}, line {n}: not JSON ({exc.msg})") from None
    return rows


def split_rows(rlchf: RlchfArguments, name: str, split: str) -> list[dict[str, Any]]:
    rows = [r for r in read_jsonl(snapshot_file(rlchf, name)) if r.get("split", "train") == split]
    if rlchf.group_filter:
        attr, _, value = rlchf.group_filter.partition("=")
        rows = [r for r in rows if str((r.get("group") or {}).get(attr)) == value]
    if split == "train" and rlchf.max_train_rows:
        rows = rows[: rlchf.max_train_rows]
    return rows


def pair_dataset(rows: list[dict[str, Any]], *, extras: tuple[str, ...] = ()) -> Any:
    from datasets import Dataset

    columns = ("prompt", "chosen", "rejected", *extras)
    return Dataset.from_list([{k: r[k] for k in columns} for r in rows])


def ranking_levels(row: dict[str, Any]) -> tuple[list[dict[str, str]], list[int]]:
    """The ranked responses of a ranking line and each one's tie group (0 = best)."""
    level = {rid: n for n, group in enumerate(row["ranking"]) for rid in group}
    responses = [r for r in row["responses"] if r["id"] in level]
    return responses, [level[r["id"]] for r in responses]


# ---------------------------------------------------------------- during and after training


def metrics_callback(output_dir: str) -> Any:
    """A TrainerCallback appending every log (with its step) to output_dir/metrics.jsonl."""
    from transformers import TrainerCallback

    class MetricsFile(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # The worker reads this line for the run's progress bar (jobs' RunContext.progress).
            if state.is_world_process_zero:
                sys.stdout.write(f"{PROGRESS_PREFIX} {state.global_step}/{state.max_steps}\n")
                sys.stdout.flush()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            row = {"step": state.global_step, "epoch": state.epoch, **logs}
            os.makedirs(output_dir, exist_ok=True)
            with open(Path(output_dir) / METRICS_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    return MetricsFile()


def last_checkpoint(args: Any) -> str | None:
    """The checkpoint to resume from: the one the config names, else the newest in output_dir."""
    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not os.path.isdir(args.output_dir):
        return None
    # Newest first, and only a complete one: a run killed while saving leaves a checkpoint
    # directory without its trainer_state.json (written last), which cannot be resumed.
    steps = sorted((int(name.rsplit("-", 1)[1]), name) for name in os.listdir(args.output_dir)
                   if name.startswith(f"{PREFIX_CHECKPOINT_DIR}-") and name.rsplit("-", 1)[1].isdigit())
    for _, name in reversed(steps):
        path = os.path.join(args.output_dir, name)
        if os.path.isfile(os.path.join(path, "trainer_state.json")):
            logger.info("resuming from checkpoint %s", path)
            return path
        logger.warning("checkpoint %s is incomplete (killed while saving); passing over it", path)
    return None


def report_rows(given: int, kept: int, truncated: int, max_length: int | None) -> dict[str, int]:
    """Log (and return) how many rows truncation dropped or shortened: TRL does it silently."""
    rows = {"given": given, "kept": kept, "dropped": given - kept, "truncated": truncated}
    logger.info(
        "rows: %d given, %d kept, %d dropped by truncation, %d truncated to max_length=%s",
        given, kept, given - kept, truncated, max_length,
    )
    if given and kept == 0:
        raise ValueError(f"every one of the {given} training rows is longer than max_length={max_length}")
    return rows


def count_longer(dataset: Any, max_length: int | None, length: Any) -> int:
    """Rows of a tokenized dataset whose longest sequence, `length(row)`, exceeds max_length."""
    if not max_length:
        return 0
    return sum(1 for row in dataset if length(row) > max_length)


def finish(trainer: Any, rlchf: RlchfArguments, args: Any, model_args: Any, *, recipe: str, rows: dict[str, int]) -> None:
    """Save model + tokenizer (LoRA merged), then rlchf_run.json and lineage.json."""
    out = Path(args.output_dir)
    model = trainer.model
    if rlchf.merge_lora and hasattr(trainer.accelerator.unwrap_model(model), "merge_and_unload"):
        merged = trainer.accelerator.unwrap_model(model).merge_and_unload()
        if trainer.accelerator.is_main_process:
            merged.save_pretrained(out)
            trainer.processing_class.save_pretrained(out)
    else:
        trainer.save_model(str(out))
    if not trainer.accelerator.is_main_process:
        return
    objective = rlchf.objective if rlchf.objective != "trl" else ",".join(_loss_types(args)) or recipe
    final = trainer.state.log_history[-1] if trainer.state.log_history else {}
    summary = {
        "recipe": recipe, "objective": objective, "snapshot": rlchf.snapshot_id, "dataset_file": rlchf.dataset_file,
        "rows": rows, "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "steps": trainer.state.global_step, "final": final, "rlchf": asdict(rlchf),
        "base": model_args.model_name_or_path,
    }
    (out / RUN_FILE).write_text(json.dumps(summary, indent=2, default=str))
    lineage = {
        "model": out.name, "base": rlchf.base_model_name or model_args.model_name_or_path, "recipe": recipe,
        "objective": objective, "snapshot": rlchf.snapshot_id, "config_hash": rlchf.config_hash,
        "code_version": rlchf.code_version, "created_at": datetime.now(UTC).isoformat(),
    }
    (out / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2))
    logger.info("saved %s model to %s", recipe, out)


def _loss_types(args: Any) -> list[str]:
    loss = getattr(args, "loss_type", None)
    if loss is None:
        return []
    return [str(x) for x in loss] if isinstance(loss, list | tuple) else [str(loss)]


def tokenizer_for(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
