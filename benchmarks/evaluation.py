"""BBQ scoring speed: our batched engine against one-example-at-a-time scoring, same model.

    .venv/bin/python benchmarks/evaluation.py [--per-category N] [--baseline-per-category M]
                                              [--model-dir DIR] [--device cpu|cuda]

Both runs use the same model (the embedded SmolLM2-135M-Instruct by default, prepared on first
use), the same tokenization and BBQ's lm-eval prompt, on all six shipped categories:

1. batched: `ScoringEngine.loglikelihood` over every answer of every example at once;
2. one at a time: `ScoringEngine.loglikelihood_one_at_a_time`, one forward pass per answer with
   full logits (what a scorer with batch size 1 does).

It prints examples per second of each, their ratio (target >= 5x), whether the chosen answers
and the accuracies are identical on the examples both scored, and the largest difference of a
log-likelihood. The baseline is slow, so it may run on fewer examples per category than the
batched run (`--baseline-per-category`); the comparison of answers uses the examples both ran.
On a shared machine timings are noisy: read the ratio, not the absolute rate.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from evaluation.benchmarks import bbq  # noqa: E402
from evaluation.engine import ScoringEngine  # noqa: E402


def _requests(examples: list[bbq.BBQExample]) -> list[tuple[str, str]]:
    return [(bbq.prompt(e), c) for e in examples for c in bbq.continuations(e)]


def _timed(fn, requests: list[tuple[str, str]]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    scores = np.array(fn(requests)).reshape(-1, 3)
    return scores, time.perf_counter() - start


def _model_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from synthetic.model_store import prepare_default_model

    return prepare_default_model(REPO / "var" / "models" / "smollm2-135m-instruct")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-category", type=int, default=50, help="BBQ examples per category, batched run")
    parser.add_argument("--baseline-per-category", type=int, default=10, help="examples per category, one-at-a-time run")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    engine = ScoringEngine(_model_dir(args.model_dir), device=args.device)
    examples = bbq.load_bbq(bbq.SHIPPED_DIR, bbq.SHIPPED_CATEGORIES, per_category=args.per_category)
    baseline_n = min(args.baseline_per_category, args.per_category)
    # the baseline's examples: the first `baseline_n` of each category's subset
    per_cat: dict[str, int] = {}
    shared_idx = []
    for i, e in enumerate(examples):
        per_cat[e.category] = per_cat.get(e.category, 0) + 1
        if per_cat[e.category] <= baseline_n:
            shared_idx.append(i)
    shared = [examples[i] for i in shared_idx]

    batched, t_batched = _timed(engine.loglikelihood, _requests(examples))
    single, t_single = _timed(engine.loglikelihood_one_at_a_time, _requests(shared))

    answers_batched = bbq.choose(batched[shared_idx])
    answers_single = bbq.choose(single)
    acc_b = bbq.score(shared, answers_batched)["overall"]
    acc_s = bbq.score(shared, answers_single)["overall"]
    full = bbq.score(examples, bbq.choose(batched))
    rate_b, rate_s = len(examples) / t_batched, len(shared) / t_single
    result = {
        "model": engine.name, "device": engine.device, "categories": list(bbq.SHIPPED_CATEGORIES),
        "batched": {"examples": len(examples), "seconds": round(t_batched, 2), "examples_per_s": round(rate_b, 3)},
        "one_at_a_time": {"examples": len(shared), "seconds": round(t_single, 2), "examples_per_s": round(rate_s, 3)},
        "speedup": round(rate_b / rate_s, 2),
        "identical_answers": answers_batched == answers_single,
        "identical_accuracies": all(acc_b[k] == acc_s[k] for k in ("accuracy", "accuracy_ambig", "accuracy_disambig")),
        "max_abs_loglik_diff": float(np.abs(batched[shared_idx] - single).max()),
        "bbq_batched_run": {k: full["overall"][k] for k in ("accuracy", "accuracy_ambig", "accuracy_disambig", "bias_ambig", "bias_disambig")},
    }
    print(f"model {result['model']} on {result['device']}, BBQ six shipped categories")
    print(f"batched:        {len(examples):5d} examples in {t_batched:8.1f} s = {rate_b:7.2f} examples/s")
    print(f"one at a time:  {len(shared):5d} examples in {t_single:8.1f} s = {rate_s:7.2f} examples/s")
    print(f"speedup:        {result['speedup']:.1f}x (target >= 5x)")
    print(f"same answers on the {len(shared)} shared examples: {result['identical_answers']}; "
          f"same accuracies: {result['identical_accuracies']}; max |loglik diff| {result['max_abs_loglik_diff']:.2e}")
    print("BBQ (batched run): " + ", ".join(
        f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in result["bbq_batched_run"].items()))
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
