"""Judge quality: does a synthetic rater's method agree with known human preferences?

    .venv/bin/python benchmarks/judge_quality.py [--pairs 200] [--methods pairwise-both,pointwise]
        [--model-dir DIR] [--device cpu] [--batch-size 8]

On the first N valid pairs of the shipped hh-rlhf test file (data/hh-rlhf, harmlessness; the
human-chosen response is known), one neutral persona judges every pair with each method, on the
default model (SmolLM2-135M-Instruct, var/models/smollm2-135m-instruct):

- `listwise`           one order (constrained ranking, no debiasing: permutations = 1)
- `listwise-debiased`  both orders, combined by Borda (permutations = 2)
- `pairwise-both`      P(A) vs P(B) of the next token, the two orders averaged
- `pairwise`           the same, one seeded order per pair
- `pointwise`          each response's expected 1-5 rating, alone

`--methods` picks a subset (comma-separated, run in this order). The model is loaded once for all
methods; each method's line is printed as soon as it finishes, with progress lines in between.
A one-order pair is one of the two both-order requests, word for word, so when both pairwise
methods run, the second reuses the first's answers instead of recomputing them; its judgments
per second still charge every request it needed at the engine time measured when it was computed.

Per method it prints: accuracy against the human label (chosen ranked above rejected; a tie
counts 1/2) with a 95% normal interval; the share of ties (no decision); the share of
position-driven answers (both-order methods: the answer flipped with the order; one-order
methods: the first-shown response won, 50% by chance); the share of low-confidence judgments
(label mass below 0.5); failures; and judgments per second (engine time, this machine, noisy
when it is shared). The prompt is the conversation's last human turn (earlier turns are left out).

Threads: torch's OpenMP threads spin while they wait for each other. On a small machine that is
busy with other work, a thread that spins for one that is not running made every method three
times slower (2 cores, load 3: 137 s against 40 s on 5 pairs). So idle threads sleep here
(OMP_WAIT_POLICY=PASSIVE unless set), and `--threads 1` is the safe choice on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch starts OpenMP (see the docstring)
os.environ.setdefault("TQDM_DISABLE", "1")  # no weight-loading progress bar between the result lines
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import django  # noqa: E402

django.setup()

from annotation.importers import load_hh_rlhf_sample  # noqa: E402
from synthetic.backends import (  # noqa: E402
    BackendConfig,
    Conversation,
    GenerationOutput,
    GenerationParams,
    RankingSpec,
    load_backend,
)
from synthetic.backends.base import Backend  # noqa: E402
from synthetic.judging import (  # noqa: E402
    JudgeItem,
    JudgeOptions,
    JudgmentRecord,
    Method,
    ResponseText,
    iter_judgments,
)
from synthetic.judging.signal import order_flip  # noqa: E402
from synthetic.personas import Persona  # noqa: E402

logger = logging.getLogger("judge_quality")
DATA = REPO / "data" / "hh-rlhf" / "harmless-base_test.jsonl.gz"
PERSONA = Persona(
    "neutral", "You are a thoughtful adult who values answers that are helpful, honest and harmless.", {}
)
# Judgments per engine call: large enough that batches are length-sorted over many prompts (little
# padding) and the shared prompt prefix is computed rarely, small enough for a progress line
# every minute or so on a small CPU.
CHUNK = 50
# By key, in the order they run (both-order pairs before one-order ones, whose requests they hold).
METHODS: dict[str, tuple[str, JudgeOptions]] = {
    "listwise": ("listwise, one order", JudgeOptions(permutations=1, chunk_size=CHUNK)),
    "listwise-debiased": (
        "listwise, debiased (2 orders, Borda)", JudgeOptions(permutations=2, allow_ties=True, chunk_size=CHUNK)
    ),
    "pairwise-both": (
        "pairwise, both orders",
        JudgeOptions(method=Method.PAIRWISE_LOGPROB, both_orders=True, tie_margin=0.0, chunk_size=CHUNK),
    ),
    "pairwise": (
        "pairwise, one order",
        JudgeOptions(method=Method.PAIRWISE_LOGPROB, both_orders=False, tie_margin=0.0, chunk_size=CHUNK),
    ),
    "pointwise": (
        "pointwise (expected 1-5)",
        JudgeOptions(method=Method.POINTWISE, allow_ties=True, score_margin=0.0, chunk_size=CHUNK),
    ),
}


class SharedScores(Backend):
    """The engine with its scores remembered per (conversation, options) across methods, and the
    engine seconds each method's requests cost, a remembered request charged at its measured cost."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.memo: dict[str, tuple[dict[str, float], float]] = {}
        self.charged = 0.0

    @property
    def model_label(self) -> str:
        return self.inner.model_label

    def score(self, conversations: list[Conversation], options: list[str]) -> list[dict[str, float]]:
        keys = [json.dumps([c, options], sort_keys=True) for c in conversations]
        todo = list(dict.fromkeys(k for k in keys if k not in self.memo))
        if todo:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            start = time.perf_counter()
            scores = self.inner.score([conversations[first[k]] for k in todo], options)
            each = (time.perf_counter() - start) / len(todo)
            self.memo.update({k: (s, each) for k, s in zip(todo, scores, strict=True)})
        self.charged += sum(self.memo[k][1] for k in keys)
        return [self.memo[k][0] for k in keys]

    def rank(
        self, conversations: list[Conversation], spec: RankingSpec, params: GenerationParams
    ) -> list[GenerationOutput]:
        return self._timed(self.inner.rank, conversations, spec, params)

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[GenerationOutput]:
        return self._timed(self.inner.generate, conversations, params)

    def _timed(self, call: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.charged += time.perf_counter() - start


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


def judge_with_progress(backend: SharedScores, name: str, options: JudgeOptions,
                        items: list[JudgeItem]) -> tuple[list[JudgmentRecord], float]:
    """Every item judged by the one persona, a progress line per chunk; (records, engine seconds)."""
    records: list[JudgmentRecord] = []
    before, start = backend.charged, time.perf_counter()
    for chunk in iter_judgments(backend, items, [PERSONA], options, seed=0):
        records.extend(chunk)
        logger.info("  %s: %d/%d judged, %.0f s", name, len(records), len(items), time.perf_counter() - start)
    return records, backend.charged - before


def evaluate(backend: SharedScores, name: str, options: JudgeOptions, items: list[JudgeItem],
             chosen: dict[str, str]) -> Row:
    records, seconds = judge_with_progress(backend, name, options, items)
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


def method_keys(text: str) -> list[str]:
    """The keys of `--methods` in run order; argparse's error for an unknown one."""
    wanted = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in METHODS]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}"
        )
    return [k for k in METHODS if k in wanted]


def describe(row: Row) -> str:
    return (
        f"{row.method:<38} accuracy {row.accuracy:.3f} ± {row.half_width:.3f}  ties {100 * row.ties:.1f}%  "
        f"position-driven {100 * row.position_driven:.1f}% ({row.position_label})  "
        f"low-confidence {100 * row.low_confidence:.1f}%  failures {row.failures}  {row.per_second:.2f} judgments/s"
    )


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--methods", type=method_keys, default=list(METHODS),
                        help=f"comma-separated subset of: {', '.join(METHODS)} (default: all)")
    parser.add_argument("--model-dir", default=str(REPO / "var" / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)  # flushed after every line
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # Django's logging setup sends the root logger to stderr
    logging.getLogger("synthetic").setLevel(logging.WARNING)  # the runner's own chunk lines
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    items, chosen = load_pairs(args.pairs)
    config = BackendConfig(engine="transformers", model=args.model_dir, device=args.device, batch_size=args.batch_size)
    backend = SharedScores(load_backend(config))
    logger.info("%d hh-rlhf pairs, model %s on %s (loaded in %.0f s); methods: %s", len(items), config.label,
                backend.inner.device, time.perf_counter() - started, ", ".join(args.methods))  # type: ignore[attr-defined]
    rows = []
    for key in args.methods:
        name, options = METHODS[key]
        rows.append(evaluate(backend, name, options, items, chosen))
        logger.info("%s", describe(rows[-1]))
    logger.info("\nall methods (%.0f s in all):", time.perf_counter() - started)
    for row in rows:
        logger.info("%s", describe(row))
    logger.info("%s", verdict(rows))
    return rows


def degenerate(row: Row) -> bool:
    """Over half of its answers follow the shown positions (issue 10's definition of a degenerate
    run): both orders, the answer flipped with the order in over half of the pairs; one order, the
    first-shown response won (or lost) so often that position explains over half of the answers
    (|2 x share - 1| > 0.5; a judge blind to position sits at 0.5). Pointwise has no positions."""
    share = row.position_driven
    if math.isnan(share):
        return False
    if row.position_label.startswith("first shown won"):
        return abs(2 * share - 1) > 0.5
    return share > 0.5


def verdict(rows: list[Row]) -> str:
    """The default to choose: the most accurate method whose answers are not position-driven. A
    degenerate method's accuracy only says how often the human's choice happened to sit where the
    model looks (the first or last shown), so it does not compete."""
    fair = [r for r in rows if not degenerate(r)]
    if not fair:
        return "best: none (every method's answers follow the shown positions)"
    best = max(fair, key=lambda r: r.accuracy)
    signal = ("above chance" if best.accuracy - best.half_width > 0.5
              else "NOT above chance: its 95% interval includes 0.5")
    left = [r.method for r in rows if degenerate(r)]
    return (f"best: {best.method} ({best.accuracy:.3f} ± {best.half_width:.3f}, n = {best.n}; {signal})"
            + (f"; position-driven, left out: {', '.join(left)}" if left else ""))


if __name__ == "__main__":
    main()
