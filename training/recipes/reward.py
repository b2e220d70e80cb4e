"""A reward model on a snapshot's pairs, with the snapshot's margins (TRL's RewardTrainer reads `margin`).

    accelerate launch training/recipes/reward.py --config run.yaml

    model_name_or_path: var/models/smollm2-135m-instruct
    snapshot_dir: var/snapshots/3f9a0c1d2e4b5a69
    dataset_file: pairs            # or baseline_pairs with group_filter: country=DE (one RM per group)
    output_dir: var/models/trained/my-rm
    max_steps: 100
    learning_rate: 1.0e-5
    gradient_checkpointing: false

Per-group reward models for welfare-aggregated RL (rl.py) are trained on baseline_pairs.jsonl
with `group_filter: <attribute>=<value>`.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.recipes import common  # noqa: E402


def pairs(rlchf: common.RlchfArguments, split: str, *, with_margin: bool) -> Any:
    rows = common.split_rows(rlchf, rlchf.dataset_file, split)
    for row in rows:
        row["margin"] = float(row.get("margin", 0.0))
    return common.pair_dataset(rows, extras=("margin",) if with_margin else ())


def main(rlchf: common.RlchfArguments, args: Any, model_args: Any) -> None:
    from trl import RewardTrainer, get_peft_config

    args.model_init_kwargs = {"dtype": model_args.dtype, **(args.model_init_kwargs or {})}
    with_margin = rlchf.objective != "no_margin"
    train = pairs(rlchf, "train", with_margin=with_margin)
    if not len(train):
        raise ValueError(f"snapshot {rlchf.snapshot_id}: no training pairs in {rlchf.dataset_file}.jsonl"
                         + (f" for group {rlchf.group_filter}" if rlchf.group_filter else ""))
    evaluation = pairs(rlchf, "validation", with_margin=with_margin) if args.eval_strategy != "no" else None
    trainer = RewardTrainer(
        model=model_args.model_name_or_path, args=args, train_dataset=train,
        eval_dataset=evaluation if evaluation is not None and len(evaluation) else None,
        processing_class=common.tokenizer_for(model_args.model_name_or_path),
        peft_config=get_peft_config(model_args), callbacks=[common.metrics_callback(args.output_dir)],
    )
    truncated = common.count_longer(
        trainer.train_dataset, args.max_length, lambda row: max(len(row["chosen_ids"]), len(row["rejected_ids"]))
    )
    rows = common.report_rows(len(train), len(trainer.train_dataset), truncated, args.max_length)
    trainer.train(resume_from_checkpoint=common.last_checkpoint(args))
    common.finish(trainer, rlchf, args, model_args, recipe="reward", rows=rows)


if __name__ == "__main__":
    from trl import RewardConfig

    common.setup_logging()
    main(*common.parse(RewardConfig))
