"""The reward engine on tiny local reward models: batched, padded rewards equal a direct
transformers forward of each conversation alone, and a reward model whose preference is known
(it rewards "!") orders pairs and best-of-4 items as built."""
from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.benchmarks import preference, suite
from evaluation.engine import EngineError, RewardEngine

CONVERSATIONS = [
    ((("user", "Which answer is better?"),), "Response A is better than response B because it is more helpful."),
    ((("user", "Which answer is better?"),), "B"),
    ((("system", "Persona: a 34-year-old teacher from Kenya."), ("user", "Rank the responses.")), "A > B > C = D."),
    ((("user", "The quick brown fox?"), ("assistant", "jumps."), ("user", "And the dog?")), "The lazy dog sleeps."),
    ((("user", "Answer: A. Answer: B."),), "Answer: A."),
]


@pytest.fixture(scope="module")
def random_rm(reward_models_dir):
    return RewardEngine(reward_models_dir / "random", device="cpu")


@pytest.fixture(scope="module")
def exclaiming_rm(reward_models_dir):
    return RewardEngine(reward_models_dir / "exclaiming", device="cpu")


def _requests(engine: RewardEngine) -> list[tuple[str, str]]:
    return [(engine.render_chat(turns), response) for turns, response in CONVERSATIONS]


def _direct(model_dir) -> list[float]:
    """Each conversation alone through transformers: the chat template over prompt + reply, as
    TRL's RewardTrainer tokenizes its pairs, and the model's one logit."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    rewards = []
    for turns, response in CONVERSATIONS:
        messages = [{"role": r, "content": c} for r, c in turns] + [{"role": "assistant", "content": response}]
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            rewards.append(float(model(input_ids=ids).logits[0, 0]))
    return rewards


@pytest.mark.parametrize("batch_tokens", [1, 64, 100_000])  # every row alone, a few per batch, all in one
def test_batched_rewards_equal_a_direct_forward(reward_models_dir, batch_tokens) -> None:
    engine = RewardEngine(reward_models_dir / "random", device="cpu", batch_tokens=batch_tokens)
    rewards = engine.score(_requests(engine))
    direct = _direct(reward_models_dir / "random")
    np.testing.assert_allclose(rewards, direct, rtol=1e-5, atol=1e-5)
    assert len(set(np.round(direct, 4))) == len(direct)  # a random model tells these conversations apart
    assert engine.model.dtype.is_floating_point and str(engine.model.dtype) == "torch.float32"


def test_progress_and_the_one_at_a_time_reference(random_rm) -> None:
    calls: list[tuple[int, int]] = []
    requests = _requests(random_rm)
    batched = random_rm.score(requests, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_allclose(batched, random_rm.score_one_at_a_time(requests), rtol=1e-5, atol=1e-5)
    assert calls[-1] == (len(requests), len(requests))


def test_a_conversation_is_tokenized_with_the_chat_template_ending_the_reply(random_rm) -> None:
    context = random_rm.render_chat([("user", "Which answer is better?")])
    text = random_rm.tokenizer.decode(random_rm.encode(context, "Answer: A."))
    assert text == "<|im_start|>user\nWhich answer is better?<|im_end|>\n<|im_start|>assistant\nAnswer: A.<|im_end|>\n"


def test_tokens_and_rewards_are_those_of_trls_reward_trainer(reward_models_dir, random_rm, tmp_path) -> None:
    """What training/recipes/reward.py trained on: TRL's tokenization of a conversational pair and
    its model's forward on TRL's own right-padded batch."""
    import torch
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    rows = [{"prompt": [{"role": r, "content": c} for r, c in turns], "chosen": [{"role": "assistant", "content": reply}],
             "rejected": [{"role": "assistant", "content": "no"}]} for turns, reply in CONVERSATIONS]
    args = RewardConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], gradient_checkpointing=False)
    trainer = RewardTrainer(model=str(reward_models_dir / "random"), args=args, train_dataset=Dataset.from_list(rows),
                            processing_class=random_rm.tokenizer)
    requests = _requests(random_rm)
    assert [row["chosen_ids"] for row in trainer.train_dataset] == [random_rm.encode(c, r) for c, r in requests]
    batch = trainer.data_collator(list(trainer.train_dataset))
    with torch.inference_mode():
        trl_rewards = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:len(rows), 0]
    np.testing.assert_allclose(random_rm.score(requests), trl_rewards.tolist(), rtol=1e-5, atol=1e-5)


def test_the_known_reward(exclaiming_rm) -> None:
    context = exclaiming_rm.render_chat([("user", "Which answer is better?")])
    plain, one, two = exclaiming_rm.score([(context, "A plain answer."), (context, "A great answer!"), (context, "Great! Yes!")])
    assert plain == pytest.approx(0.0, abs=1e-6) and one > 0 and two > one


def test_preference_accuracy_is_one_on_pairs_built_for_the_reward_and_zero_swapped(exclaiming_rm, tmp_path) -> None:
    from tests.evaluation.snapshots import pair

    rows = [pair(f"i{n}", f"Yes, answer {n}!", f"No, answer {n}.") for n in range(4)]
    swapped = [pair(f"i{n}", f"No, answer {n}.", f"Yes, answer {n}!") for n in range(4)]
    for sid, lines in (("aaaa", rows), ("bbbb", swapped)):
        (tmp_path / sid).mkdir()
        (tmp_path / sid / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in lines))
    config = {"name": "preference", "snapshots": {"built": "aaaa", "swapped": "bbbb"}, "score": "reward"}
    task = suite.build(config, exclaiming_rm.render_chat, tmp_path)
    assert task.scorer == "reward" and not task.needs_reference
    accuracy = {r["scope_value"]: r["value"] for r in task.evaluate(exclaiming_rm.score(task.requests))
                if r["metric"] == "accuracy"}
    assert accuracy == {"built": 1.0, "swapped": 0.0}


def test_best_of_four_counts_only_when_the_chosen_scores_highest(exclaiming_rm, tmp_path) -> None:
    rows = [{"prompt": "Pick one.", "chosen": "Yes!", "rejected": ["No.", "Maybe.", "Perhaps."], "subset": "built"},
            {"prompt": "Pick again.", "chosen": "Sure!", "rejected": "Nope.", "subset": "built"},
            {"prompt": "Pick one.", "chosen": "No.", "rejected": ["Yes!", "Maybe.", "Perhaps."], "subset": "swapped"},
            {"prompt": "Pick one.", "chosen": "Maybe.", "rejected": ["No.", "Perhaps.", "Never."], "subset": "all tied"}]
    path = tmp_path / "rb.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    task = suite.build({"name": "rewardbench", "path": str(path), "score": "reward"}, exclaiming_rm.render_chat, tmp_path)
    result = {(r["metric"], r["scope_value"]): r["value"] for r in task.evaluate(exclaiming_rm.score(task.requests))}
    # a best-of-4 item whose responses all score the same is not won: the chosen must be strictly highest
    assert result[("accuracy", "built")] == 1.0 and result[("accuracy", "swapped")] == 0.0
    assert result[("accuracy", "all tied")] == 0.0 and result[("accuracy", "")] == 0.5
    assert task.version == preference.VERSION


def test_a_benchmark_refuses_a_scorer_it_cannot_use(exclaiming_rm, tmp_path) -> None:
    with pytest.raises(ValueError, match="benchmark bbq: field 'score' must be loglik, not 'reward'"):
        suite.build({"name": "bbq", "per_category": 1, "score": "reward"}, exclaiming_rm.render_chat, tmp_path)
    assert suite.reward_benchmarks() == ["distributional", "preference", "rewardbench"]


def test_errors_name_the_problem(random_rm, tiny_model_dir, tmp_path) -> None:
    with pytest.raises(EngineError, match="not a model directory"):
        RewardEngine(tmp_path)
    with pytest.raises(EngineError, match="request 0: a reward model scores conversations"):
        random_rm.score([("", "The quick brown fox.")])
    with pytest.raises(EngineError, match="outputs: a reward model has one"):
        RewardEngine(tiny_model_dir, device="cpu")  # a causal LM loads as a 2-output classifier with a fresh head
