"""SFT on a snapshot's collective winners: each ranking's top tie group, as prompt-completion pairs.

    accelerate launch training/recipes/sft.py --config run.yaml

    model_name_or_path: var/models/smollm2-135m-instruct
    snapshot_dir: var/snapshots/3f9a0c1d2e4b5a69
    output_dir: var/models/trained/my-sft
    max_steps: 100
    learning_rate: 2.0e-5
    gradient_checkpointing: false

Reads rankings.jsonl; the loss is on the completion only (TRL's prompt-completion format).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.recipes import common  # noqa: E402


def winners(rlchf: common.RlchfArguments, split: str) -> Any:
    from datasets import Dataset

    rows = []
    for row in common.split_rows(rlchf, "rankings", split):
        responses, levels = common.ranking_levels(row)
        for response, level in zip(responses, levels, strict=True):
            if level == 0:
                rows.append({"prompt": row["prompt"], "completion": [{"role": "assistant", "content": response["content"]}]})
    return Dataset.from_list(rows)


def main(rlchf: common.RlchfArguments, args: Any, model_args: Any) -> None:
    from trl import SFTTrainer, get_peft_config

    args.model_init_kwargs = {"dtype": model_args.dtype, **(args.model_init_kwargs or {})}
    train = winners(rlchf, "train")
    evaluation = winners(rlchf, "validation") if args.eval_strategy != "no" else None
    trainer = SFTTrainer(
        model=model_args.model_name_or_path, args=args, train_dataset=train,
        eval_dataset=evaluation if evaluation is not None and len(evaluation) else None,
        processing_class=common.tokenizer_for(model_args.model_name_or_path),
        peft_config=get_peft_config(model_args), callbacks=[common.metrics_callback(args.output_dir)],
    )
    truncated = common.count_longer(trainer.train_dataset, args.max_length, lambda row: len(row["input_ids"]))
    rows = common.report_rows(len(train), len(trainer.train_dataset), truncated, args.max_length)
    trainer.train(resume_from_checkpoint=common.last_checkpoint(args))
    common.finish(trainer, rlchf, args, model_args, recipe="sft", rows=rows)


if __name__ == "__main__":
    from trl import SFTConfig

    common.setup_logging()
    main(*common.parse(SFTConfig))
