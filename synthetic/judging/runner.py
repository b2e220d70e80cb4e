"""Running judgments through an engine: the entry point a synthetic run calls.

All judgments of a run go to the engine in large chunks (`JudgeOptions.chunk_size`), item-major
so that judgments sharing a prompt prefix (instructions, prompt, responses; the persona comes
last) are adjacent for the engine's prefix cache. Every judgment yields a record: a ranking, or
a failure with the raw output; nothing is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from synthetic.backends.base import Backend, GenerationParams
from synthetic.judging import listwise, pairwise
from synthetic.judging.order import pair_shown_first, shown_order
from synthetic.judging.prompts import load_template
from synthetic.judging.types import JudgeItem, JudgeOptions, JudgmentRecord, Method, PairProbability
from synthetic.personas import Persona

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedJudgment:
    item: JudgeItem
    persona: Persona
    order: list[str]


def plan_judgments(
    items: Sequence[JudgeItem],
    personas: Sequence[Persona],
    options: JudgeOptions,
    seed: int,
    skip: Collection[tuple[str, str]] = (),
) -> list[PlannedJudgment]:
    """Every (item, persona) judgment not in `skip` (pairs of item id, persona id), item-major,
    judgments with the same shown order adjacent."""
    plan = []
    for item in items:
        planned = [
            PlannedJudgment(item, p, shown_order(item, p.id, seed, options.orders_per_item))
            for p in personas
            if (item.id, p.id) not in skip
        ]
        plan.extend(sorted(planned, key=lambda j: j.order))
    return plan


def iter_judgments(
    backend: Backend,
    items: Sequence[JudgeItem],
    personas: Sequence[Persona],
    options: JudgeOptions,
    seed: int,
    skip: Collection[tuple[str, str]] = (),
) -> Iterator[list[JudgmentRecord]]:
    """Judge chunk by chunk; each yielded list can be stored before the next chunk starts
    (resume = call again with the stored (item, persona) pairs in `skip`)."""
    plan = plan_judgments(items, personas, options, seed, skip)
    size = max(1, options.chunk_size)
    for start in range(0, len(plan), size):
        chunk = plan[start : start + size]
        logger.info("judging %d-%d of %d", start + 1, start + len(chunk), len(plan))
        yield judge_chunk(backend, chunk, options, seed)


def judge_batch(
    backend: Backend,
    items: Sequence[JudgeItem],
    personas: Sequence[Persona],
    options: JudgeOptions,
    seed: int,
    skip: Collection[tuple[str, str]] = (),
) -> list[JudgmentRecord]:
    """Every judgment of `personas` x `items`, one record each (see `iter_judgments`)."""
    return [
        r for chunk in iter_judgments(backend, items, personas, options, seed, skip) for r in chunk
    ]


def judge_chunk(
    backend: Backend, chunk: list[PlannedJudgment], options: JudgeOptions, seed: int
) -> list[JudgmentRecord]:
    if Method(options.method) == Method.PAIRWISE_LOGPROB:
        return _judge_pairwise(backend, chunk, options, seed)
    return _judge_listwise(backend, chunk, options, seed)


def _record(
    backend: Backend, job: PlannedJudgment, options: JudgeOptions, seed: int, raw: str
) -> JudgmentRecord:
    return JudgmentRecord(
        item_id=job.item.id,
        persona_id=job.persona.id,
        model=backend.model_label,
        method=str(Method(options.method)),
        prompt_version=options.version,
        seed=seed,
        shown_order=list(job.order),
        raw_output=raw,
    )


def _judge_listwise(
    backend: Backend, chunk: list[PlannedJudgment], options: JudgeOptions, seed: int
) -> list[JudgmentRecord]:
    template = load_template(options.version)
    params = GenerationParams(temperature=options.temperature, seed=seed)
    records: list[JudgmentRecord | None] = [None] * len(chunk)
    by_k: dict[int, list[int]] = {}
    for index, job in enumerate(chunk):
        by_k.setdefault(len(job.order), []).append(index)
    for k, indices in by_k.items():
        convs = [
            listwise.listwise_conversation(
                template, chunk[i].item, chunk[i].order, chunk[i].persona.description, options
            )
            for i in indices
        ]
        outputs = backend.rank(convs, listwise.ranking_spec(k, options), params)
        for i, out in zip(indices, outputs, strict=True):
            record = _record(backend, chunk[i], options, seed, out.raw or out.text)
            record.ranking, record.failure = listwise.parse_listwise(
                out, chunk[i].order, options.allow_ties
            )
            record.reasoning, record.attempts = out.reasoning, out.attempts
            records[i] = record
    return [r for r in records if r is not None]


def _judge_pairwise(
    backend: Backend, chunk: list[PlannedJudgment], options: JudgeOptions, seed: int
) -> list[JudgmentRecord]:
    template = load_template(options.version)
    requests: list[tuple[int, str, str]] = []
    for index, job in enumerate(chunk):
        first_of = {
            (a, b): pair_shown_first(seed, job.item.id, job.persona.id, a, b)
            for a in job.order
            for b in job.order
            if a != b
        }
        requests.extend(
            (index, a, b) for a, b in pairwise.shown_pairs(job.order, first_of, options.both_orders)
        )
    convs = [
        pairwise.pair_conversation(
            template, chunk[i].item, a, b, chunk[i].persona.description, options
        )
        for i, a, b in requests
    ]
    reasonings: list[str | None] = [None] * len(convs)
    if options.reasoning:
        convs, reasonings = _reason_first(backend, convs, options, seed)
    answer_options = pairwise.answer_options(options.reasoning)
    scores = backend.score(convs, list(answer_options))
    per_job: dict[int, list[tuple[str, str, dict[str, float], str | None]]] = {}
    for (i, a, b), logprobs, reasoning in zip(requests, scores, reasonings, strict=True):
        per_job.setdefault(i, []).append((a, b, logprobs, reasoning))
    return [
        _pairwise_record(backend, job, options, seed, per_job.get(i, []), answer_options)
        for i, job in enumerate(chunk)
    ]


def _reason_first(
    backend: Backend, convs: list, options: JudgeOptions, seed: int
) -> tuple[list, list[str | None]]:
    params = GenerationParams(
        max_new_tokens=options.max_reasoning_tokens, temperature=options.temperature, seed=seed
    )
    outputs = backend.generate(convs, params)
    continued = [
        [*conv, {"role": "assistant", "content": out.text.strip() + pairwise.ANSWER_CUE}]
        for conv, out in zip(convs, outputs, strict=True)
    ]
    return continued, [out.text for out in outputs]


def _pairwise_record(
    backend: Backend,
    job: PlannedJudgment,
    options: JudgeOptions,
    seed: int,
    answers: list[tuple[str, str, dict[str, float], str | None]],
    answer_options: tuple[str, str],
) -> JudgmentRecord:
    raw = json.dumps([{"first": a, "second": b, "logprobs": lp} for a, b, lp, _ in answers])
    record = _record(backend, job, options, seed, raw)
    reasonings = [f"[{a} vs {b}] {r.strip()}" for a, b, _, r in answers if r is not None]
    record.reasoning = "\n".join(reasonings) or None
    shown: list[tuple[str, str, float]] = []
    for a, b, logprobs, _ in answers:
        p = pairwise.p_first(logprobs, answer_options)
        if p is None:
            record.failure = f"no log-probability for {answer_options} in pair ({a}, {b})"
            return record
        record.pairs.append(PairProbability(a, b, p, logprobs))
        shown.append((a, b, p))
    prefs = pairwise.preference_matrix(shown)
    record.ranking = pairwise.copeland_weak_order(job.item.response_ids, prefs, options.tie_margin)
    return record
