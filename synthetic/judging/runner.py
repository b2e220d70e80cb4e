"""Running judgments through an engine: the entry point a synthetic run calls.

All judgments of a run go to the engine in chunks (`JudgeOptions.chunk_size`, by default
adapted to the run's size: `types.chunk_size_for`), item-major so that judgments sharing a prompt
prefix (instructions, prompt, responses; the persona comes last) are adjacent for the engine's
prefix cache. Every judgment yields a record: a ranking, or a failure with the raw output;
nothing is dropped.

Methods: listwise (every permutation ranked under constrained decoding, combined by Borda),
pairwise log-prob (each pair in one or both orders, Copeland over the probabilities) and
pointwise (each response's expected 1-5 rating, alone).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from synthetic.backends.base import Backend, GenerationParams
from synthetic.judging import listwise, pairwise, pointwise
from synthetic.judging.order import pair_shown_first, permuted_orders, shown_order
from synthetic.judging.prompts import load_template
from synthetic.judging.types import (
    JudgeItem,
    JudgeOptions,
    JudgmentRecord,
    Method,
    PairProbability,
    PermutationOutput,
    chunk_size_for,
)
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
    size = chunk_size_for(len(plan), options.chunk_size)
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
    method = Method(options.method)
    if method == Method.PAIRWISE_LOGPROB:
        return _judge_pairwise(backend, chunk, options, seed)
    if method == Method.POINTWISE:
        return _judge_pointwise(backend, chunk, options, seed)
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
    orders = [
        permuted_orders(job.order, max(1, options.permutations), seed, job.item.id, job.persona.id)
        for job in chunk
    ]
    outputs: dict[tuple[int, int], PermutationOutput] = {}
    attempts: dict[int, int] = {}
    reasonings: dict[int, list[str]] = {}
    by_k: dict[int, list[tuple[int, int]]] = {}
    for index, perms in enumerate(orders):
        for p in range(len(perms)):
            by_k.setdefault(len(perms[p]), []).append((index, p))
    for k, keys in by_k.items():
        convs = [
            listwise.listwise_conversation(
                template, chunk[i].item, orders[i][p], chunk[i].persona.description, options
            )
            for i, p in keys
        ]
        answers = backend.rank(convs, listwise.ranking_spec(k, options), params)
        for (i, p), out in zip(keys, answers, strict=True):
            ranking, failure = listwise.parse_listwise(out, orders[i][p], options.allow_ties)
            outputs[(i, p)] = PermutationOutput(
                list(orders[i][p]), out.raw or out.text, ranking, failure, out.label_mass
            )
            attempts[i] = attempts.get(i, 0) + out.attempts
            if out.reasoning:
                reasonings.setdefault(i, []).append(out.reasoning)
    records = []
    for i, job in enumerate(chunk):
        perms = [outputs[(i, p)] for p in range(len(orders[i]))]
        record = _record(backend, job, options, seed, perms[0].raw_output)
        record.permutations, record.attempts = perms, attempts.get(i, 1)
        record.reasoning = "\n\n".join(reasonings.get(i, [])) or None
        record.label_mass = _mean([q.label_mass for q in perms])
        rankings = [q.ranking for q in perms if q.ranking is not None]
        if rankings:
            record.ranking = listwise.combine_permutations(
                job.item.response_ids, rankings, options.allow_ties
            )
        else:
            record.failure = perms[0].failure
        records.append(record)
    return records


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _judge_pointwise(
    backend: Backend, chunk: list[PlannedJudgment], options: JudgeOptions, seed: int
) -> list[JudgmentRecord]:
    template = load_template(options.version)
    requests = [(i, rid) for i, job in enumerate(chunk) for rid in job.order]
    convs = [
        pointwise.rating_conversation(
            template, chunk[i].item, rid, chunk[i].persona.description, options
        )
        for i, rid in requests
    ]
    reasonings: list[str | None] = [None] * len(convs)
    if options.reasoning:
        convs, reasonings = _reason_first(backend, convs, options, seed, pointwise.ANSWER_CUE)
    labels = pointwise.RATINGS
    scored = backend.score(convs, list(labels))
    per_job: dict[int, list[tuple[str, dict[str, float], str | None]]] = {}
    for (i, rid), logprobs, reasoning in zip(requests, scored, reasonings, strict=True):
        per_job.setdefault(i, []).append((rid, logprobs, reasoning))
    return [
        _pointwise_record(backend, job, options, seed, per_job.get(i, []), labels)
        for i, job in enumerate(chunk)
    ]


def _pointwise_record(
    backend: Backend,
    job: PlannedJudgment,
    options: JudgeOptions,
    seed: int,
    answers: list[tuple[str, dict[str, float], str | None]],
    labels: tuple[str, ...],
) -> JudgmentRecord:
    raw = json.dumps([{"response": rid, "logprobs": lp} for rid, lp, _ in answers])
    record = _record(backend, job, options, seed, raw)
    reasonings = [f"[{rid}] {r.strip()}" for rid, _, r in answers if r is not None]
    record.reasoning = "\n".join(reasonings) or None
    record.label_mass = _mean([pointwise.label_mass(lp, labels) for _, lp, _ in answers])
    for rid, logprobs, _ in answers:
        rating = pointwise.expected_rating(logprobs, labels)
        if rating is None:
            record.failure = f"no log-probability for the ratings 1-5 of response {rid}"
            return record
        record.scores[rid] = rating
    margin = options.score_margin if options.allow_ties else 0.0
    record.ranking = pointwise.scores_weak_order(job.item.response_ids, record.scores, margin)
    return record


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
        convs, reasonings = _reason_first(backend, convs, options, seed, pairwise.ANSWER_CUE)
    answer_options = pairwise.answer_options(options.reasoning, template.has("answer_prefix"))
    scores = backend.score(convs, list(answer_options))
    per_job: dict[int, list[tuple[str, str, dict[str, float], str | None]]] = {}
    for (i, a, b), logprobs, reasoning in zip(requests, scores, reasonings, strict=True):
        per_job.setdefault(i, []).append((a, b, logprobs, reasoning))
    return [
        _pairwise_record(backend, job, options, seed, per_job.get(i, []), answer_options)
        for i, job in enumerate(chunk)
    ]


def _reason_first(
    backend: Backend, convs: list, options: JudgeOptions, seed: int, cue: str
) -> tuple[list, list[str | None]]:
    params = GenerationParams(
        max_new_tokens=options.max_reasoning_tokens, temperature=options.temperature, seed=seed
    )
    outputs = backend.generate(convs, params)
    continued = [
        [*conv, {"role": "assistant", "content": out.text.strip() + cue}]
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
    record.label_mass = _mean([pointwise.label_mass(lp, answer_options) for _, _, lp, _ in answers])
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
