"""Judge quality: does a synthetic rater's method agree with known human preferences?

    .venv/bin/python benchmarks/judge_quality.py [--pairs 200] [--model-dir DIR] [--device cpu]

On the first N valid pairs of the shipped hh-rlhf test file (data/hh-rlhf, harmlessness; the
human-chosen response is known), one neutral persona judges every pair with each method, on the
default model (SmolLM2-135M-Instruct, var/models/smollm2-135m-instruct):

- listwise, one order         (constrained ranking, no debiasing: permutations = 1)
- listwise, debiased          (both orders, combined by Borda: permutations = 2)
- pairwise, one order         (P(A) vs P(B) of the next token, one seeded order per pair)
- pairwise, both orders       (the two orders averaged)
- pointwise                   (each response's expected 1-5 rating, alone)

Per method it prints: accuracy against the human label (chosen ranked above rejected; a tie
counts 1/2) with a 95% normal interval; the share of ties (no decision); the share of
position-driven answers (both-order methods: the answer flipped with the order; one-order
methods: the first-shown response won, 50% by chance); the share of low-confidence judgments
(label mass below 0.5); failures; and judgments per second (wall clock, this machine, noisy
when it is shared). The prompt is the conversation's last human turn (earlier turns are left out).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import django  # noqa: E402

django.setup()

from annotation.importers import load_hh_rlhf_sample  # noqa: E402
from synthetic.backends import BackendConfig, load_backend  # noqa: E402
from synthetic.backends.base import Backend  # noqa: E402
from synthetic.judging import (  # noqa: E402
    JudgeItem,
    JudgeOptions,
    JudgmentRecord,
    Method,
    ResponseText,
    judge_batch,
)
from synthetic.judging.signal import order_flip  # noqa: E402
from synthetic.personas import Persona  # noqa: E402

logger = logging.getLogger("judge_quality")
DATA = REPO / "data" / "hh-rlhf" / "harmless-base_test.jsonl.gz"
PERSONA = Persona(
    "neutral", "You are a thoughtful adult who values answers that are helpful, honest and harmless.", {}
)
# Large chunks: this measures quality and throughput, not progress reporting.
CHUNK = 64
METHODS = {
    "listwise, one order": JudgeOptions(permutations=1, chunk_size=CHUNK),
    "listwise, debiased (2 orders, Borda)": JudgeOptions(permutations=2, allow_ties=True, chunk_size=CHUNK),
    "pairwise, one order": JudgeOptions(
        method=Method.PAIRWISE_LOGPROB, both_orders=False, tie_margin=0.0, chunk_size=CHUNK
    ),
    "pairwise, both orders": JudgeOptions(
        method=Method.PAIRWISE_LOGPROB, both_orders=True, tie_margin=0.0, chunk_size=CHUNK
    ),
    "pointwise (expected 1-5)": JudgeOptions(
        method=Method.POINTWISE, allow_ties=True, score_margin=0.0, chunk_size=CHUNK
    ),
}


@dataclass
class Row:
    method: str
    n: int
    accuracy: float
    half_width: float
    ties: float
    position_driven: float
    position_label: str
    low_confidence: float
    failures: int
    per_second: float


def load_pairs(n: int) -> tuple[list[JudgeItem], dict[str, str]]:
    """N items (r1 chosen, r2 rejected as imported) and each item's chosen response id."""
    items, chosen = [], {}
    for parsed in load_hh_rlhf_sample(DATA, limit=n):
        responses = tuple(ResponseText(r.id, r.text) for r in parsed.responses)
        items.append(JudgeItem(parsed.external_id, parsed.prompt, responses))
        chosen[parsed.external_id] = parsed.metadata["pairwise"]["chosen"]
    return items, chosen


def credit(record: JudgmentRecord, chosen: str) -> float:
    if record.ranking is None:
        return 0.5  # a failure decides nothing; counted as a coin flip, and reported
    top = record.ranking[0]
    return 0.5 if len(top) > 1 else (1.0 if top == [chosen] else 0.0)


def position_driven(records: list[JudgmentRecord], options: JudgeOptions) -> tuple[float, str]:
    two_orders = options.method == Method.PAIRWISE_LOGPROB and options.both_orders
    two_orders = two_orders or (options.method == Method.LISTWISE and options.permutations >= 2)
    if options.method == Method.POINTWISE:
        return math.nan, "n/a (no positions)"
    if two_orders:
        flips = [f for f in (order_flip(r) for r in records) if f is not None]
        return (sum(flips) / len(flips) if flips else math.nan), "answer flipped with the order"
    wins = []
    for r in records:
        if options.method == Method.PAIRWISE_LOGPROB:
            wins += [1.0 if p.p_first > 0.5 else 0.5 if p.p_first == 0.5 else 0.0 for p in r.pairs]
        elif r.ranking is not None:
            top = r.ranking[0]
            wins.append(1 / len(top) if r.shown_order[0] in top else 0.0)
    return (sum(wins) / len(wins) if wins else math.nan), "first shown won (chance 50%)"


def evaluate(backend: Backend, name: str, options: JudgeOptions, items: list[JudgeItem], chosen: dict[str, str]) -> Row:
    start = time.perf_counter()
    records = judge_batch(backend, items, [PERSONA], options, seed=0)
    seconds = time.perf_counter() - start
    credits = [credit(r, chosen[r.item_id]) for r in records]
    n = len(credits)
    mean = sum(credits) / n
    sd = math.sqrt(sum((c - mean) ** 2 for c in credits) / (n - 1)) if n > 1 else 0.0
    ties = sum(1 for r in records if r.ranking is not None and len(r.ranking[0]) > 1) / n
    masses = [r.label_mass for r in records if r.label_mass is not None]
    low = sum(1 for m in masses if m < 0.5) / len(masses) if masses else math.nan
    driven, label = position_driven(records, options)
    return Row(name, n, mean, 1.96 * sd / math.sqrt(n), ties, driven, label, low,
               sum(1 for r in records if not r.ok), n / seconds)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--model-dir", default=str(REPO / "var" / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    items, chosen = load_pairs(args.pairs)
    config = BackendConfig(engine="transformers", model=args.model_dir, device=args.device, batch_size=args.batch_size)
    backend = load_backend(config)
    logger.info("%d hh-rlhf pairs, model %s on %s", len(items), config.label, backend.device)  # type: ignore[attr-defined]
    rows = []
    for name, options in METHODS.items():
        row = evaluate(backend, name, options, items, chosen)
        rows.append(row)
        logger.info(
            "%-38s accuracy %.3f ± %.3f  ties %.1f%%  position-driven %.1f%% (%s)  low-confidence %.1f%%  "
            "failures %d  %.2f judgments/s",
            row.method, row.accuracy, row.half_width, 100 * row.ties, 100 * row.position_driven, row.position_label,
            100 * row.low_confidence, row.failures, row.per_second,
        )
    best = max(rows, key=lambda r: r.accuracy)
    logger.info("best by accuracy: %s (%.3f ± %.3f, n = %d)", best.method, best.accuracy, best.half_width, best.n)
    return rows


if __name__ == "__main__":
    main()
