"""DPOTrainer subclasses for the pluralistic objectives of `losses.py`.

TRL 1.16's DPOTrainer computes its loss inline in `_compute_loss` and takes no per-example
weight or group, so the subclass overrides `_compute_loss`: the policy and reference log-probs
are computed exactly as TRL computes them (the fused LM head's `log_probs`, summed over the
completion), then the objective's loss; the metrics keep TRL's names (rewards/chosen, ...) so
that every DPO run charts the same way. Imported only inside a recipe's `main()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from accelerate.utils import is_peft_model
from trl import DPOTrainer
from trl.data_utils import common_prefix_length
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import use_adapter

from training.recipes import losses

EXTRA_COLUMNS = ("vote_share", "group_id")


@dataclass
class PreferenceCollatorWithExtras(DataCollatorForPreference):
    """TRL's preference collator, passing our per-pair columns (vote share, group) through as tensors."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        extras = {k: [ex[k] for ex in examples] for k in EXTRA_COLUMNS if k in examples[0]}
        batch = super().torch_call([{k: v for k, v in ex.items() if k not in EXTRA_COLUMNS} for ex in examples])
        if "vote_share" in extras:
            batch["vote_share"] = torch.tensor(extras["vote_share"], dtype=torch.float)
        if "group_id" in extras:
            batch["group_id"] = torch.tensor(extras["group_id"], dtype=torch.long)
        return batch


@dataclass
class RankingCollator:
    """Listwise batches: each ranking's K responses become K sequences (prompt + response), padded
    to the largest K of the batch with empty rows whose level is -1."""

    pad_token_id: int
    max_length: int | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        k = max(len(ex["completions_ids"]) for ex in examples)
        seqs, masks, levels = [], [], []
        for ex in examples:
            row_levels = list(ex["levels"]) + [-1] * (k - len(ex["levels"]))
            completions = list(ex["completions_ids"]) + [[self.pad_token_id]] * (k - len(ex["completions_ids"]))
            for completion in completions:
                ids = list(ex["prompt_ids"]) + list(completion)
                mask = [0] * len(ex["prompt_ids"]) + [1] * len(completion)
                if self.max_length is not None:
                    ids, mask = ids[: self.max_length], mask[: self.max_length]
                seqs.append(ids)
                masks.append(mask)
            levels.append(row_levels)
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        completion = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (ids, mask) in enumerate(zip(seqs, masks, strict=True)):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
            completion[i, : len(mask)] = torch.tensor(mask)
        return {
            "input_ids": input_ids, "attention_mask": attention, "completion_mask": completion,
            "levels": torch.tensor(levels, dtype=torch.long),
        }


class PluralisticDPOTrainer(DPOTrainer):
    """DPO with objective `weighted`, `group_robust` or `listwise` (see `losses`)."""

    def __init__(self, *args: Any, objective: str, group_names: list[str] | None = None,
                 group_step_size: float = 0.01, **kwargs: Any) -> None:
        if objective not in losses.OBJECTIVES:
            raise ValueError(f"objective: unknown {objective!r} (known: {', '.join(losses.OBJECTIVES)})")
        self.objective = objective
        self.group_names = group_names or ["all"]
        self.group_step_size = group_step_size
        self.group_weights = torch.full((len(self.group_names),), 1.0 / len(self.group_names))
        train_args = kwargs.get("args") or args[1]
        if objective == "listwise":
            train_args.precompute_ref_log_probs = False
            tokenizer = kwargs["processing_class"]
            kwargs["data_collator"] = RankingCollator(tokenizer.pad_token_id, train_args.max_length)
        elif kwargs.get("data_collator") is None:
            tokenizer = kwargs["processing_class"]
            kwargs["data_collator"] = PreferenceCollatorWithExtras(
                pad_token_id=tokenizer.pad_token_id, max_length=train_args.max_length,
                truncation_mode=train_args.truncation_mode,
            )
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------ data

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
        if self.objective != "listwise":
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        return dataset.map(
            _tokenize_ranking, fn_kwargs={"tokenizer": processing_class},
            remove_columns=[c for c in dataset.column_names if c not in ("levels",)],
        )

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            if self.objective == "listwise":
                self._signature_columns = ["prompt_ids", "completions_ids", "levels"]
            else:
                super()._set_signature_columns_if_needed()
                self._signature_columns = [*self._signature_columns, *EXTRA_COLUMNS]

    # ------------------------------------------------------------ loss

    def _sequence_logps(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy, reference) log-probs of each sequence's completion, as TRL computes them."""
        completion_mask = inputs["completion_mask"]
        model_kwargs = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "use_cache": False}
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        seq_len = completion_mask.size(1) - 1
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        logps = outputs.log_probs[:, -seq_len:].sum(dim=1)
        if self.precompute_ref_logps and "ref_chosen_logps" in inputs:
            return logps, torch.cat([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]])
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            if is_peft_model(self.model) and self.ref_model is None:
                unwrapped = self.accelerator.unwrap_model(self.model)
                name = "ref" if "ref" in unwrapped.peft_config else None
                with use_adapter(unwrapped, adapter_name=name):
                    ref = self.model(**model_kwargs, labels=labels, fused_lm_head=True)
            else:
                ref = self.ref_model(**model_kwargs, labels=labels, fused_lm_head=True)
        return logps, ref.log_probs[:, -seq_len:].sum(dim=1)

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        mode = "train" if self.model.training else "eval"
        logps, ref_logps = self._sequence_logps(model, inputs)
        if self.objective == "listwise":
            loss, best, worst = self._listwise_loss(logps, ref_logps, inputs["levels"])
        else:
            chosen, rejected = (logps - ref_logps).chunk(2, dim=0)
            loss = self._pairwise_loss(chosen, rejected, inputs, mode)
            best, worst = self.beta * chosen.detach(), self.beta * rejected.detach()
        self._log_rewards(mode, best, worst)
        if return_outputs:
            return loss, {}
        return loss

    def _pairwise_loss(self, chosen: torch.Tensor, rejected: torch.Tensor, inputs: dict[str, Any], mode: str) -> torch.Tensor:
        if self.objective == "weighted":
            return losses.weighted_dpo_loss(chosen, rejected, inputs["vote_share"].to(chosen.dtype), self.beta)
        per_example = losses.dpo_per_example(chosen, rejected, self.beta)
        weights = self.group_weights.to(per_example.device, per_example.dtype)
        loss, group_losses, present = losses.group_robust_dpo_loss(per_example, inputs["group_id"], weights)
        # Across processes the groups' losses are averaged before the weight step, so every rank
        # keeps the same weights.
        group_losses = self.accelerator.reduce(torch.where(present, group_losses, 0.0).detach(), "mean")
        present = self.accelerator.reduce(present.float(), "sum") > 0
        if mode == "train" and self.model.training:
            self.group_weights = losses.update_group_weights(weights, group_losses, present, self.group_step_size).cpu()
        metrics = self._metrics[mode]
        metrics["worst_group_loss"].append(group_losses[present].max().item())
        for name, weight in zip(self.group_names, self.group_weights.tolist(), strict=True):
            metrics[f"group_weight/{name}"].append(weight)
        return loss

    def _listwise_loss(self, logps: torch.Tensor, ref_logps: torch.Tensor, levels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        scores = (self.beta * (logps - ref_logps)).view(levels.shape)
        loss = losses.plackett_luce_loss(scores, levels).mean()
        detached = scores.detach()
        last = levels.max(dim=1, keepdim=True).values
        top = (levels == 0).float()
        bottom = ((levels == last) & (levels >= 0)).float()
        best = (detached * top).sum(1) / top.sum(1).clamp(min=1)
        worst = (detached * bottom).sum(1) / bottom.sum(1).clamp(min=1)
        return loss, best, worst

    def _log_rewards(self, mode: str, chosen: torch.Tensor, rejected: torch.Tensor) -> None:
        metrics = self._metrics[mode]
        chosen, rejected = self.accelerator.gather(chosen), self.accelerator.gather(rejected)
        metrics["rewards/chosen"].append(chosen.mean().item())
        metrics["rewards/rejected"].append(rejected.mean().item())
        metrics["rewards/accuracies"].append((chosen > rejected).float().mean().item())
        metrics["rewards/margins"].append((chosen - rejected).mean().item())


def _tokenize_ranking(example: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """prompt_ids and each response's completion ids, split where prompt and prompt+response diverge."""
    prompt_ids = tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, tokenize=True)
    prompt_ids = _ids(prompt_ids)
    completions = []
    for response in example["responses"]:
        full = _ids(tokenizer.apply_chat_template(
            example["prompt"] + [{"role": "assistant", "content": response["content"]}], tokenize=True
        ))
        completions.append(full)
    common = min(common_prefix_length(prompt_ids, full) for full in completions)
    return {"prompt_ids": prompt_ids[:common], "completions_ids": [full[common:] for full in completions]}


def _ids(value: Any) -> list[int]:
    if isinstance(value, dict) or hasattr(value, "keys"):
        return list(value["input_ids"])
    return list(value)


def group_key(group: Any, group_by: str) -> str:
    """The name of a baseline pair's group: one attribute's value, or every attribute."""
    if not isinstance(group, dict) or not group:
        return "unknown"
    if group_by:
        return str(group.get(group_by, "unknown"))
    return ",".join(f"{k}={group[k]}" for k in sorted(group))

