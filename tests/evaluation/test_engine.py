"""The batched scoring engine on a real (tiny, locally built) transformers model: every request
scores the same as a plain one-request forward pass, whatever the packing and batching."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.benchmarks import bbq
from evaluation.engine import EngineError, ScoringEngine

REQUESTS = [
    ("The quick brown fox", " jumps over the lazy dog."),
    ("The quick brown fox", " sleeps."),
    ("The quick brown fox", " jumps"),
    ("Rank the responses from best to worst:", " A > B > C = D."),
    ("", "Response A is better than response B."),
    ("", "Answer: B."),
    ("Persona: a 34-year-old teacher from Kenya", " who values clear, kind explanations."),
]


def test_batched_equals_one_at_a_time(tiny_engine) -> None:
    batched = tiny_engine.loglikelihood(REQUESTS)
    single = tiny_engine.loglikelihood_one_at_a_time(REQUESTS)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert all(v < 0 for v in batched)
    # a longer continuation of the same context is less likely than its own prefix
    assert batched[0] < batched[2]


@pytest.mark.parametrize(("batch_tokens", "max_row_tokens"), [(16, 4096), (64, 12), (100_000, 100_000)])
def test_any_packing_and_batching_gives_the_same_scores(tiny_model_dir, tiny_engine, batch_tokens, max_row_tokens) -> None:
    engine = ScoringEngine(tiny_model_dir, device="cpu", batch_tokens=batch_tokens, max_row_tokens=max_row_tokens)
    np.testing.assert_allclose(engine.loglikelihood(REQUESTS), tiny_engine.loglikelihood_one_at_a_time(REQUESTS), atol=1e-4)


def test_bbq_answers_identical_batched_and_alone(tiny_engine) -> None:
    examples = bbq.load_bbq(per_category=3)
    requests = [(bbq.prompt(e), c) for e in examples for c in bbq.continuations(e)]
    calls: list[tuple[int, int]] = []
    batched = np.array(tiny_engine.loglikelihood(requests, progress=lambda d, t: calls.append((d, t)))).reshape(-1, 3)
    single = np.array(tiny_engine.loglikelihood_one_at_a_time(requests)).reshape(-1, 3)
    assert bbq.choose(batched) == bbq.choose(single)
    assert calls[-1] == (len(requests), len(requests))


def test_continuation_tokens_follow_lm_eval_split(tiny_engine) -> None:
    ctx, cont = tiny_engine.encode("Answer:", " B.")
    whole = tiny_engine.tokenizer.encode("Answer: B.", add_special_tokens=False)
    assert ctx + cont == whole
    assert tiny_engine.encode("", "B.")[0] == [tiny_engine.start_token]


def test_errors_name_the_problem(tiny_engine, tmp_path) -> None:
    with pytest.raises(EngineError, match="not a model directory"):
        ScoringEngine(tmp_path)
    with pytest.raises(EngineError, match="empty continuation"):
        tiny_engine.loglikelihood([("context", "")])
