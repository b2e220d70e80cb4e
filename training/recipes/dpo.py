"""DPO on a snapshot's collective pairs, with TRL's loss types or one of our pluralistic objectives.

    accelerate launch training/recipes/dpo.py --config var/artifacts/training/<run>/run.yaml

The YAML holds TRL's DPOConfig and ModelConfig fields plus ours (`common.RlchfArguments`):

    model_name_or_path: var/models/smollm2-135m-instruct
    snapshot_dir: var/snapshots/3f9a0c1d2e4b5a69
    objective: trl            # trl (loss_type below) | weighted | group_robust | listwise
    loss_type: [sigmoid]
    output_dir: var/models/trained/my-dpo
    max_steps: 100
    learning_rate: 5.0e-7
    gradient_checkpointing: false

Objectives (training/recipes/losses.py): `weighted` = vote-share weighted DPO on pairs.jsonl;
`group_robust` = group-robust DPO (Ramesh et al. 2024) on baseline_pairs.jsonl, groups from each
rater's `group`; `listwise` = Plackett-Luce DPO on rankings.jsonl, ties as groups.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.recipes import common  # noqa: E402


def load_data(rlchf: common.RlchfArguments, split: str) -> tuple[Any, list[str]]:
    """The split as a datasets.Dataset in the objective's shape, and the group names."""
    from datasets import Dataset

    from training.recipes.trainers import group_key

    if rlchf.objective == "listwise":
        rows = common.split_rows(rlchf, "rankings", split)
        shaped = []
        for row in rows:
            responses, levels = common.ranking_levels(row)
            shaped.append({"prompt": row["prompt"], "responses": responses, "levels": levels})
        return Dataset.from_list(shaped), []
    if rlchf.objective == "group_robust":
        rows = common.split_rows(rlchf, "baseline_pairs", split)
        keys = [group_key(r.get("group"), rlchf.group_by) for r in rows]
        names = sorted(set(keys))
        for row, key in zip(rows, keys, strict=True):
            row["group_id"] = names.index(key)
        return common.pair_dataset(rows, extras=("group_id",)), names
    rows = common.split_rows(rlchf, rlchf.dataset_file, split)
    extras = ("vote_share",) if rlchf.objective == "weighted" else ()
    if rlchf.objective == "weighted":
        for row in rows:
            row["vote_share"] = float(row.get("vote_share", 1.0))
    return common.pair_dataset(rows, extras=extras), []


def build_trainer(rlchf: common.RlchfArguments, args: Any, model_args: Any) -> tuple[Any, int]:
    """The trainer, and how many training rows were given to it."""
    from transformers import AutoModelForCausalLM
    from trl import DPOTrainer, get_peft_config

    from training.recipes.trainers import PluralisticDPOTrainer

    args.model_init_kwargs = {"dtype": model_args.dtype, **(args.model_init_kwargs or {})}
    train, groups = load_data(rlchf, "train")
    evaluation = load_data(rlchf, "validation")[0] if args.eval_strategy != "no" else None
    kwargs: dict[str, Any] = {
        "model": model_args.model_name_or_path, "args": args, "train_dataset": train,
        "eval_dataset": evaluation if evaluation is not None and len(evaluation) else None,
        "processing_class": common.tokenizer_for(model_args.model_name_or_path),
        "peft_config": get_peft_config(model_args),
        "callbacks": [common.metrics_callback(args.output_dir)],
    }
    if rlchf.ref_model_path:
        kwargs["ref_model"] = AutoModelForCausalLM.from_pretrained(rlchf.ref_model_path, dtype=model_args.dtype)
    if rlchf.objective == "trl":
        return DPOTrainer(**kwargs), len(train)
    trainer = PluralisticDPOTrainer(
        **kwargs, objective=rlchf.objective, group_names=groups, group_step_size=rlchf.group_step_size
    )
    return trainer, len(train)


def _longest(row: dict[str, Any]) -> int:
    if "completions_ids" in row:
        return len(row["prompt_ids"]) + max(len(c) for c in row["completions_ids"])
    return len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"]))


def main(rlchf: common.RlchfArguments, args: Any, model_args: Any) -> None:
    trainer, given = build_trainer(rlchf, args, model_args)
    truncated = common.count_longer(trainer.train_dataset, args.max_length, _longest)
    rows = common.report_rows(given, len(trainer.train_dataset), truncated, args.max_length)
    trainer.train(resume_from_checkpoint=common.last_checkpoint(args))
    common.finish(trainer, rlchf, args, model_args, recipe="dpo", rows=rows)


if __name__ == "__main__":
    from trl import DPOConfig

    common.setup_logging()
    main(*common.parse(DPOConfig))
