"""Online RL (TRL's GRPO, or RLOO) whose reward is a social welfare function of group reward models.

    accelerate launch training/recipes/rl.py --config run.yaml

    model_name_or_path: var/models/trained/my-sft
    snapshot_dir: var/snapshots/3f9a0c1d2e4b5a69      # prompts: the train split's items
    reward_models: [var/models/trained/rm-de, var/models/trained/rm-ke]   # one per group (or per pool)
    welfare: egalitarian      # utilitarian (mean) | egalitarian (min, MaxMin-RLHF) | nash (product)
    algorithm: grpo           # our field; grpo | rloo
    output_dir: var/models/trained/my-rl
    max_steps: 100
    num_generations: 4
    max_completion_length: 64
    learning_rate: 1.0e-6
    gradient_checkpointing: false

Each reward model was trained by reward.py on a snapshot (per group: baseline_pairs.jsonl with
`group_filter`); the RL reward of a completion is `losses.welfare` of the group rewards.
TRL 1.16 has no PPO. RLOO runs with `--algorithm rloo` (same YAML, RLOOConfig's fields).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.recipes import common  # noqa: E402


class WelfareReward:
    """A TRL reward function: scores each completion with every group's reward model, then
    aggregates the group rewards with a welfare rule. Logged by TRL as rewards/welfare_<rule>."""

    def __init__(self, model_dirs: list[str], rule: str) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        from training.recipes import losses

        if not model_dirs:
            raise ValueError("reward_models: at least one reward model directory is needed")
        if rule not in losses.WELFARE_RULES:
            raise ValueError(f"welfare: unknown rule {rule!r} (known: {', '.join(losses.WELFARE_RULES)})")
        self.rule = rule
        self.__name__ = f"welfare_{rule}"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        self.models = []
        for path in model_dirs:
            model = AutoModelForSequenceClassification.from_pretrained(path).to(self.device).eval()
            self.models.append((model, common.tokenizer_for(path)))

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        import torch

        from training.recipes import losses

        rewards = []
        with torch.no_grad():
            for model, tokenizer in self.models:
                texts = [_render(tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
                batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=1024)
                rewards.append(model(**batch.to(self.device)).logits[:, 0].float())
        return losses.welfare(torch.stack(rewards), self.rule).cpu().tolist()


def _render(tokenizer: Any, prompt: Any, completion: Any) -> str:
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    return prompt + completion


def prompts(rlchf: common.RlchfArguments, split: str) -> Any:
    """One prompt per item of the split (RL generates its own completions)."""
    from datasets import Dataset

    seen, rows = set(), []
    for row in common.split_rows(rlchf, rlchf.dataset_file, split):
        if row["item"] not in seen:
            seen.add(row["item"])
            rows.append({"prompt": row["prompt"]})
    return Dataset.from_list(rows)


def main(rlchf: common.RlchfArguments, args: Any, model_args: Any, algorithm: str = "grpo") -> None:
    from trl import GRPOTrainer, RLOOTrainer, get_peft_config

    args.model_init_kwargs = {"dtype": model_args.dtype, **(args.model_init_kwargs or {})}
    train = prompts(rlchf, "train")
    trainer_cls = GRPOTrainer if algorithm == "grpo" else RLOOTrainer
    trainer = trainer_cls(
        model=model_args.model_name_or_path, reward_funcs=WelfareReward(rlchf.reward_models, rlchf.welfare),
        args=args, train_dataset=train, processing_class=common.tokenizer_for(model_args.model_name_or_path),
        peft_config=get_peft_config(model_args), callbacks=[common.metrics_callback(args.output_dir)],
    )
    rows = common.report_rows(len(train), len(trainer.train_dataset), 0, None)
    trainer.train(resume_from_checkpoint=common.last_checkpoint(args))
    rlchf.objective = f"{algorithm}+{rlchf.welfare}"
    common.finish(trainer, rlchf, args, model_args, recipe="rl", rows=rows)


def algorithm_from(argv: list[str]) -> str:
    """Our `algorithm` field (grpo | rloo) picks TRL's config class, so it is read before parsing."""
    import yaml

    if "--algorithm" in argv:
        return argv[argv.index("--algorithm") + 1]
    if "--config" in argv:
        config = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text()) or {}
        return str(config.get("algorithm", "grpo"))
    return "grpo"


if __name__ == "__main__":
    from trl import GRPOConfig, RLOOConfig

    common.setup_logging()
    chosen = algorithm_from(sys.argv[1:])
    if chosen not in ("grpo", "rloo"):
        raise SystemExit(f"algorithm: unknown {chosen!r} (grpo | rloo)")
    rlchf, args, model_args = common.parse(GRPOConfig if chosen == "grpo" else RLOOConfig)
    main(rlchf, args, model_args, algorithm=chosen)
