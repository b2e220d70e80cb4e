"""Pluralistic preference objectives: pure torch, no TRL, no Django.

Every function takes the policy's log-ratios against the reference (log pi(y|x) - log ref(y|x),
summed over the completion's tokens, as TRL's DPOTrainer computes them) and returns losses.
Each reduces to TRL's sigmoid DPO loss, -log sigmoid(beta * (chosen - rejected)) averaged over
the batch, in the degenerate case named in its docstring (tests/training/test_losses.py checks it).

Objectives:
- `weighted_dpo_loss`: vote-share weighted DPO; each pair counts as much as the pool agreed.
- `group_robust_dpo_loss` + `update_group_weights`: group-robust DPO (Ramesh et al. 2024,
  "Group Robust Preference Optimization in Reward-free RLHF", arXiv:2405.20304).
- `plackett_luce_loss`: listwise DPO (Rafailov et al. 2023, appendix A.3; Plackett-Luce), ties
  handled as groups the way Breslow's approximation handles tied event times.
- `welfare`: social welfare of per-group rewards for RL: utilitarian mean, egalitarian min
  (MaxMin-RLHF, Chakraborty et al. 2024, arXiv:2402.08925), Nash product.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

OBJECTIVES = ("weighted", "group_robust", "listwise")
WELFARE_RULES = ("utilitarian", "egalitarian", "nash")


def dpo_per_example(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> torch.Tensor:
    """TRL's sigmoid DPO loss of each pair (before the batch mean)."""
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))


def weighted_dpo_loss(
    chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, weights: torch.Tensor, beta: float
) -> torch.Tensor:
    """Vote-share weighted DPO: mean over the batch of w_i * DPO loss_i.

    `weights` is each pair's vote share (the weighted share of the pool that ranks chosen above
    rejected), so a pair the pool split on pulls less than a unanimous one. The mean (not a
    normalised sum) keeps that absolute: a batch of contested pairs moves the model less.
    With every weight 1 this is TRL's sigmoid DPO loss.
    """
    return (weights * dpo_per_example(chosen_logratios, rejected_logratios, beta)).mean()


def group_means(per_example: torch.Tensor, group_ids: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss of each group in the batch and a mask of the groups present in it."""
    sums = torch.zeros(num_groups, dtype=per_example.dtype, device=per_example.device)
    sums = sums.index_add(0, group_ids, per_example)
    counts = torch.zeros(num_groups, dtype=per_example.dtype, device=per_example.device)
    counts = counts.index_add(0, group_ids, torch.ones_like(per_example))
    present = counts > 0
    return sums / counts.clamp(min=1), present


def update_group_weights(
    weights: torch.Tensor, group_losses: torch.Tensor, present: torch.Tensor, step_size: float
) -> torch.Tensor:
    """One exponentiated-gradient (mirror ascent) step on the simplex, as in GRPO's Algorithm 1:
    alpha_g <- alpha_g * exp(step_size * loss_g) for the groups in the batch, then renormalise.
    Groups absent from the batch keep their unnormalised weight."""
    step = torch.where(present, step_size * group_losses.detach(), torch.zeros_like(group_losses))
    raised = weights * torch.exp(step)
    return raised / raised.sum()


def group_robust_dpo_loss(
    per_example: torch.Tensor, group_ids: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group-robust DPO: sum over the groups in the batch of alpha_g * (mean loss of group g),
    with alpha renormalised over those groups. Returns (loss, group losses, present mask).

    With one group (or every weight equal and every group the same size) it is the batch mean
    of the per-example loss, i.e. TRL's DPO loss.
    """
    losses, present = group_means(per_example, group_ids, weights.numel())
    alpha = torch.where(present, weights, torch.zeros_like(weights))
    alpha = alpha / alpha.sum().clamp(min=torch.finfo(alpha.dtype).tiny)
    return (alpha.detach() * losses).sum(), losses, present


def plackett_luce_loss(scores: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Listwise (Plackett-Luce) DPO loss of each ranking; returns one loss per row.

    scores: [B, K] implicit rewards beta * log-ratio of each response.
    levels: [B, K] integer tie-group of each response, 0 = best group; -1 marks padding.

    For every response i outside the last group, the term is
        -(s_i - logsumexp_{j : level_j >= level_i} s_j),
    i.e. i is "chosen" against every response not ranked above its group, tied ones included
    (Breslow's approximation for ties). The last group has nothing below it and adds nothing.
    With two responses and no tie this is -log sigmoid(s_chosen - s_rejected): DPO's loss.
    """
    valid = levels >= 0
    neg_inf = torch.finfo(scores.dtype).min
    last = torch.where(valid, levels, torch.full_like(levels, -1)).max(dim=1, keepdim=True).values
    # at_or_below[b, i, j]: response j is in i's group or below it.
    at_or_below = (levels.unsqueeze(1) >= levels.unsqueeze(2)) & valid.unsqueeze(1)
    masked = scores.unsqueeze(1).expand(-1, scores.size(1), -1).masked_fill(~at_or_below, neg_inf)
    log_denominator = torch.logsumexp(masked, dim=2)
    counts = valid & (levels < last)
    terms = torch.where(counts, log_denominator - scores, torch.zeros_like(scores))
    return terms.sum(dim=1)


def welfare(group_rewards: torch.Tensor, rule: str) -> torch.Tensor:
    """Social welfare of per-group rewards: group_rewards is [G, N] (G groups, N completions).

    - utilitarian: mean over groups;
    - egalitarian: min over groups (MaxMin-RLHF);
    - nash: log of the Nash product of utilities u_g = sigmoid(r_g), i.e. sum_g log sigmoid(r_g).
      A Nash product needs positive utilities; sigmoid(r) is the Bradley-Terry probability that
      the completion beats one the group's reward model scores 0.
    With one group, utilitarian and egalitarian return that group's reward.
    """
    if rule == "utilitarian":
        return group_rewards.mean(dim=0)
    if rule == "egalitarian":
        return group_rewards.min(dim=0).values
    if rule == "nash":
        return F.logsigmoid(group_rewards).sum(dim=0)
    raise ValueError(f"unknown welfare rule {rule!r} (known: {', '.join(WELFARE_RULES)})")
