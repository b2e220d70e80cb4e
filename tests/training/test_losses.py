"""Pluralistic losses against hand-computed values, and against TRL's own DPO loss where they reduce to it."""
from __future__ import annotations

import math

import pytest
import torch

from training.recipes import losses

BETA = 0.5
CHOSEN = torch.tensor([1.0, -0.5, 2.0])
REJECTED = torch.tensor([0.0, 0.5, 1.0])


def trl_sigmoid_loss(chosen: torch.Tensor, rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """TRL 1.16's sigmoid DPO loss. The formula is pinned to the installed trainer's source, so a
    TRL upgrade that changes it fails here; the trainer-level equality is in test_trainers.py."""
    import inspect

    from trl import DPOTrainer

    source = inspect.getsource(DPOTrainer._compute_loss)
    assert "per_sequence_loss = -F.logsigmoid(self.beta * delta_score)" in source
    assert "loss += per_sequence_loss.mean() * loss_weight" in source
    return -torch.nn.functional.logsigmoid(beta * (chosen - rejected)).mean()


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_weighted_dpo_hand_computed() -> None:
    weights = torch.tensor([1.0, 0.5, 0.8])
    got = losses.weighted_dpo_loss(CHOSEN, REJECTED, weights, BETA)
    # delta = [1, -1, 1]; beta*delta = [0.5, -0.5, 0.5]
    expected = -(1.0 * log_sigmoid(0.5) + 0.5 * log_sigmoid(-0.5) + 0.8 * log_sigmoid(0.5)) / 3
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_weighted_dpo_with_unit_weights_is_trl_dpo() -> None:
    got = losses.weighted_dpo_loss(CHOSEN, REJECTED, torch.ones(3), BETA)
    assert got.item() == pytest.approx(trl_sigmoid_loss(CHOSEN, REJECTED, BETA).item(), rel=1e-6)


def test_group_robust_hand_computed_and_weight_update() -> None:
    per = torch.tensor([1.0, 3.0, 2.0, 6.0])
    groups = torch.tensor([0, 0, 1, 2])
    weights = torch.tensor([0.5, 0.25, 0.25])
    loss, group_losses, present = losses.group_robust_dpo_loss(per, groups, weights)
    assert group_losses.tolist() == [2.0, 2.0, 6.0]
    assert present.tolist() == [True, True, True]
    assert loss.item() == pytest.approx(0.5 * 2 + 0.25 * 2 + 0.25 * 6, rel=1e-6)
    new = losses.update_group_weights(torch.tensor([0.5, 0.25, 0.25]), group_losses, present, step_size=0.1)
    raw = [0.5 * math.exp(0.2), 0.25 * math.exp(0.2), 0.25 * math.exp(0.6)]
    assert new.tolist() == pytest.approx([w / sum(raw) for w in raw], rel=1e-6)
    # the worst group gains weight
    assert new[2] > 0.25


def test_group_robust_absent_group_keeps_weight_and_is_left_out_of_the_loss() -> None:
    per = torch.tensor([1.0, 3.0])
    groups = torch.tensor([0, 0])
    w = torch.tensor([0.5, 0.5])
    loss, group_losses, present = losses.group_robust_dpo_loss(per, groups, w)
    assert present.tolist() == [True, False]
    assert loss.item() == pytest.approx(2.0)
    new = losses.update_group_weights(w, group_losses, present, step_size=1.0)
    e2 = math.exp(2.0)
    assert new.tolist() == pytest.approx([0.5 * e2 / (0.5 * e2 + 0.5), 0.5 / (0.5 * e2 + 0.5)])


def test_group_robust_with_one_group_is_trl_dpo() -> None:
    per = losses.dpo_per_example(CHOSEN, REJECTED, BETA)
    loss, _, _ = losses.group_robust_dpo_loss(per, torch.zeros(3, dtype=torch.long), torch.ones(1))
    assert loss.item() == pytest.approx(trl_sigmoid_loss(CHOSEN, REJECTED, BETA).item(), rel=1e-6)


def test_plackett_luce_hand_computed_with_ties() -> None:
    # r0 > r1 = r2 > r3 ; scores s
    s = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    levels = torch.tensor([[0, 1, 1, 2]])
    got = losses.plackett_luce_loss(s, levels)
    e = [math.exp(x) for x in (2.0, 1.0, 0.0, -1.0)]
    expected = (
        -math.log(e[0] / sum(e))  # r0 against all
        - math.log(e[1] / (e[1] + e[2] + e[3]))  # r1 against its group and below
        - math.log(e[2] / (e[1] + e[2] + e[3]))  # r2 likewise
    )
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_plackett_luce_padding_is_ignored() -> None:
    s = torch.tensor([[2.0, 1.0, 0.0, 99.0]])
    padded = losses.plackett_luce_loss(s, torch.tensor([[0, 1, 2, -1]]))
    plain = losses.plackett_luce_loss(s[:, :3], torch.tensor([[0, 1, 2]]))
    assert padded.item() == pytest.approx(plain.item(), rel=1e-6)


def test_plackett_luce_with_two_responses_is_trl_dpo() -> None:
    scores = torch.stack([BETA * CHOSEN, BETA * REJECTED], dim=1)
    levels = torch.tensor([[0, 1]] * 3)
    got = losses.plackett_luce_loss(scores, levels).mean()
    assert got.item() == pytest.approx(trl_sigmoid_loss(CHOSEN, REJECTED, BETA).item(), rel=1e-6)


def test_plackett_luce_all_tied_carries_no_loss() -> None:
    assert losses.plackett_luce_loss(torch.tensor([[1.0, 5.0]]), torch.tensor([[0, 0]])).item() == 0.0


def test_welfare_rules_hand_computed() -> None:
    r = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    assert losses.welfare(r, "utilitarian").tolist() == [2.0, -1.0]
    assert losses.welfare(r, "egalitarian").tolist() == [1.0, -2.0]
    nash = losses.welfare(r, "nash").tolist()
    assert nash == pytest.approx([log_sigmoid(1) + log_sigmoid(3), log_sigmoid(-2) + log_sigmoid(0)])
    with pytest.raises(ValueError, match="unknown welfare rule 'x'"):
        losses.welfare(r, "x")


def test_welfare_of_one_group_is_its_reward() -> None:
    r = torch.tensor([[0.3, -1.2]])
    assert losses.welfare(r, "utilitarian").tolist() == pytest.approx([0.3, -1.2])
    assert losses.welfare(r, "egalitarian").tolist() == pytest.approx([0.3, -1.2])
