"""The engine on the real SmolLM2-135M-Instruct (slow): batched BBQ answers equal one-at-a-time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.benchmarks import bbq

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_batched_bbq_on_smollm2_equals_one_at_a_time() -> None:
    from evaluation.engine import ScoringEngine
    from synthetic.model_store import prepare_default_model

    engine = ScoringEngine(prepare_default_model(REPO / "var" / "models" / "smollm2-135m-instruct"), device="cpu")
    examples = bbq.load_bbq(per_category=1, seed=5)
    requests = [(bbq.prompt(e), c) for e in examples for c in bbq.continuations(e)]
    batched = np.array(engine.loglikelihood(requests)).reshape(-1, 3)
    single = np.array(engine.loglikelihood_one_at_a_time(requests)).reshape(-1, 3)
    np.testing.assert_allclose(batched, single, atol=1e-3)
    assert bbq.choose(batched) == bbq.choose(single)
