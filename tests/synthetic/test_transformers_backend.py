from __future__ import annotations

import math

import pytest

from synthetic.backends import GenerationParams, RankingSpec
from synthetic.backends.ranking_grammar import default_labels, parse_ranking

CONVERSATIONS = [
    [{"role": "user", "content": f"Question {i}: which answer is best? A, B, C, D, E or F."}]
    for i in range(12)
]


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("ties", [False, True])
def test_constrained_ranking_is_valid_even_from_random_weights(
    tiny_backend, k: int, ties: bool
) -> None:
    labels = default_labels(k)
    spec = RankingSpec(labels, allow_ties=ties)
    greedy = tiny_backend.rank(CONVERSATIONS, spec, GenerationParams())
    # Sampling at a high temperature walks all over the grammar: still valid.
    hot = tiny_backend.rank(CONVERSATIONS, spec, GenerationParams(temperature=3.0, seed=k))
    answers = [out.text for out in greedy + hot]
    for out in greedy + hot:
        ranking = parse_ranking(out.text, labels, ties)
        assert sorted(x for group in ranking for x in group) == list(labels)
        assert out.finish_reason == "stop"
    assert len(answers) == 2 * len(CONVERSATIONS)
    if not ties:
        assert not any("=" in a for a in answers)


def test_ties_do_appear_when_allowed(tiny_backend) -> None:
    spec = RankingSpec(default_labels(5), allow_ties=True)
    outs = tiny_backend.rank(CONVERSATIONS * 3, spec, GenerationParams(temperature=5.0, seed=3))
    assert any("=" in out.text for out in outs)


def test_rank_with_reasoning_first(tiny_backend) -> None:
    spec = RankingSpec(default_labels(3), reasoning=True, max_reasoning_tokens=6)
    outs = tiny_backend.rank(CONVERSATIONS[:3], spec, GenerationParams(temperature=1.0, seed=0))
    for out in outs:
        parse_ranking(out.text, spec.labels, False)
        assert out.reasoning is not None
        assert "Final ranking:" in out.raw


def test_results_keep_input_order_across_length_sorted_batches(tiny_backend) -> None:
    convs = [[{"role": "user", "content": "x" * n}] for n in (40, 1, 25, 3, 60, 7)]
    batched = tiny_backend.score(convs, ["A", "B"])
    single = [tiny_backend.score([c], ["A", "B"])[0] for c in convs]
    for got, want in zip(batched, single, strict=True):
        assert got["A"] == pytest.approx(want["A"], abs=1e-4)


def test_score_returns_log_probabilities(tiny_backend) -> None:
    (scores,) = tiny_backend.score(CONVERSATIONS[:1], ["A", "B", "A > B"])
    assert set(scores) == {"A", "B", "A > B"}
    assert all(v < 0 for v in scores.values())
    single = tiny_backend.score(CONVERSATIONS[:1], ["A", "B"])[0]
    assert math.exp(single["A"]) + math.exp(single["B"]) < 1


def test_generate_free_text_respects_budget_and_stop(tiny_backend) -> None:
    outs = tiny_backend.generate(CONVERSATIONS[:2], GenerationParams(max_new_tokens=5))
    assert len(outs) == 2
    assert all(out.num_tokens <= 5 for out in outs)


def test_prompt_comes_from_the_chat_template(tiny_backend) -> None:
    text = tiny_backend.render([{"role": "user", "content": "hi"}])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    cont = tiny_backend.render(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Because"}]
    )
    assert cont.endswith("<|im_start|>assistant\nBecause")
