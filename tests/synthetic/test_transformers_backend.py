from __future__ import annotations

import functools
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


# ---------------------------------------------------------------- the shared prefix, run once per call

INSTRUCTIONS = (
    "You will read a prompt and two responses to it, labelled A and B. Decide which response is better, "
    "judging as the person described at the end would."
)
SHARED = [
    [{"role": "user", "content": f"{INSTRUCTIONS}\n\n[Prompt]\n{prompt}\n\nReply with A or B."}]
    for prompt in ("Hi?", "How do I bake bread at home?", "x" * 30, "Why is the sky blue", "ok", "Name a colour.")
]


def test_shared_prefix_length_leaves_every_row_a_token_of_its_own() -> None:
    from synthetic.backends.transformers_backend import pad_after_prefix, shared_prefix_length

    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # identical rows still keep their last token
    assert shared_prefix_length([[7], [7, 8]]) == 0
    ids, mask = pad_after_prefix([[1, 2, 3], [1, 2, 4, 5, 6]], 2, 0)
    assert ids == [[1, 2, 0, 0, 3], [1, 2, 4, 5, 6]]
    assert mask == [[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]]


def _fed_shapes(backend, monkeypatch) -> list[tuple[int, int]]:  # noqa: ANN001
    """(rows, positions) of the input ids of each forward pass of the model."""
    fed: list[tuple[int, int]] = []
    forward = backend.model.forward

    @functools.wraps(forward)  # generate reads the signature (position_ids, logits_to_keep)
    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        ids = kwargs.get("input_ids")
        fed.append(tuple(ids.shape) if ids is not None else (0, 0))
        return forward(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", counting)
    return fed


def test_the_shared_prefix_is_computed_once_and_scores_match_one_by_one(tiny_backend, monkeypatch) -> None:
    singles = [tiny_backend.score([c], ["A", "B"])[0] for c in SHARED]
    fed = _fed_shapes(tiny_backend, monkeypatch)
    batched = tiny_backend.score(SHARED, ["A", "B"])
    for got, want in zip(batched, singles, strict=True):
        assert got["A"] == pytest.approx(want["A"], abs=1e-4)
        assert got["B"] == pytest.approx(want["B"], abs=1e-4)
    full = sum(len(tiny_backend.tokenizer.encode(tiny_backend.render(c))) for c in SHARED)
    computed = sum(rows * positions for rows, positions in fed)
    assert computed < 0.75 * full, (fed, full)  # the instructions ran once, not six times


def test_rankings_and_text_with_a_shared_prefix_match_one_by_one(tiny_backend, monkeypatch) -> None:
    spec = RankingSpec(default_labels(4), allow_ties=True)
    params = GenerationParams(max_new_tokens=6)
    singles = [tiny_backend.rank([c], spec, params)[0] for c in SHARED]
    texts = [tiny_backend.generate([c], params)[0].text for c in SHARED]
    fed = _fed_shapes(tiny_backend, monkeypatch)
    batched = tiny_backend.rank(SHARED, spec, params)
    assert [o.text for o in batched] == [o.text for o in singles]
    for got, want in zip(batched, singles, strict=True):
        assert got.label_mass == pytest.approx(want.label_mass, abs=1e-4)
    assert [o.text for o in tiny_backend.generate(SHARED, params)] == texts
    shortest = min(len(tiny_backend.tokenizer.encode(tiny_backend.render(c))) for c in SHARED)
    rows, prefix = fed[0]
    assert rows == 1 and prefix > 20, fed  # the prefix alone, once
    assert all(positions < shortest for _, positions in fed[1:]), fed  # then only each row's own tokens
