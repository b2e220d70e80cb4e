from __future__ import annotations

import pytest

from synthetic.backends import BackendConfig, GenerationParams, load_backend
from synthetic.backends.base import Backend, GenerationOutput
from synthetic.judging import (
    JudgeItem,
    JudgeOptions,
    Method,
    ResponseText,
    generate_candidates,
    iter_judgments,
    judge_batch,
    position_bias,
)
from synthetic.judging.types import JudgmentRecord
from synthetic.personas import PanelSpec, generate_panel

ITEMS = [
    JudgeItem(
        f"i{n}",
        f"Prompt {n}?",
        tuple(ResponseText(f"r{j}", f"answer {j} to {n}") for j in range(1, k + 1)),
    )
    for n, k in enumerate([2, 3, 4, 4, 5])
]
PERSONAS = generate_panel(PanelSpec(size=6, seed=3))


def fake(**options: object) -> Backend:
    return load_backend(BackendConfig(engine="fake", model="fake-judge", options=dict(options)))


def assert_complete(record: JudgmentRecord, item: JudgeItem) -> None:
    assert record.ranking is not None and record.failure is None
    flat = [rid for group in record.ranking for rid in group]
    assert sorted(flat) == sorted(item.response_ids)


@pytest.mark.parametrize(
    "options",
    [
        JudgeOptions(),
        JudgeOptions(allow_ties=True, reasoning=True, chunk_size=7),
        JudgeOptions(method=Method.PAIRWISE_LOGPROB),
        JudgeOptions(
            method=Method.PAIRWISE_LOGPROB, both_orders=True, reasoning=True, chunk_size=4
        ),
    ],
)
def test_every_persona_item_pair_gets_one_complete_record(options: JudgeOptions) -> None:
    records = judge_batch(fake(), ITEMS, PERSONAS, options, seed=11)
    assert len(records) == len(ITEMS) * len(PERSONAS)
    assert {(r.item_id, r.persona_id) for r in records} == {
        (i.id, p.id) for i in ITEMS for p in PERSONAS
    }
    items = {i.id: i for i in ITEMS}
    for record in records:
        assert_complete(record, items[record.item_id])
        assert record.model == "fake:fake-judge"
        assert record.prompt_version == options.version
        assert record.seed == 11
        assert sorted(record.shown_order) == sorted(items[record.item_id].response_ids)
        assert record.raw_output
    if options.method == Method.PAIRWISE_LOGPROB:
        k = len(items[records[0].item_id].responses)
        assert len(records[0].pairs) == k * (k - 1) // 2 * (2 if options.both_orders else 1)


def test_parse_failures_are_records_not_drops() -> None:
    options = JudgeOptions(permutations=1)
    records = judge_batch(fake(invalid_every=3), ITEMS, PERSONAS, options, seed=1)
    failures = [r for r in records if not r.ok]
    assert len(records) == len(ITEMS) * len(PERSONAS)
    assert failures, "the fake engine answers every third conversation with junk"
    assert all(r.raw_output == "I cannot decide." and "unparseable" in r.failure for r in failures)


def test_every_permutation_is_kept_raw_and_failed_ones_do_not_vote() -> None:
    options = JudgeOptions(permutations=3)
    records = judge_batch(fake(invalid_every=3), ITEMS, PERSONAS, options, seed=1)
    partial = [r for r in records if r.ok and any(p.ranking is None for p in r.permutations)]
    assert partial, "some judgments have one junk permutation and usable others"
    for record in records:
        assert len(record.permutations) == 3
        assert [p.shown_order for p in record.permutations][0] == record.shown_order
        k = len(record.shown_order)
        assert len({tuple(p.shown_order) for p in record.permutations}) == min(3, k)
        assert all(p.raw_output for p in record.permutations)
        # A judgment fails only when every permutation failed.
        assert record.ok == any(p.ranking is not None for p in record.permutations)
    for record in partial:
        assert_complete(record, {i.id: i for i in ITEMS}[record.item_id])


def test_runs_are_reproducible_and_resumable() -> None:
    options = JudgeOptions(allow_ties=True, chunk_size=5)
    full = judge_batch(fake(), ITEMS, PERSONAS, options, seed=5)
    done = {(r.item_id, r.persona_id) for r in full[:13]}
    rest = judge_batch(fake(), ITEMS, PERSONAS, options, seed=5, skip=done)
    assert len(rest) == len(full) - 13
    by_key = {(r.item_id, r.persona_id): r for r in full}
    for record in rest:
        same = by_key[(record.item_id, record.persona_id)]
        assert (record.shown_order, record.ranking) == (same.shown_order, same.ranking)


def test_chunks_are_item_major_with_shared_prefixes_adjacent() -> None:
    options = JudgeOptions(chunk_size=4, orders_per_item=2)
    chunks = list(iter_judgments(fake(), ITEMS, PERSONAS, options, seed=2))
    assert [len(c) for c in chunks] == [4] * 7 + [2]
    flat = [r for c in chunks for r in c]
    assert [r.item_id for r in flat] == sorted(r.item_id for r in flat)
    orders = [tuple(r.shown_order) for r in flat if r.item_id == "i3"]
    assert orders == sorted(orders) and len(set(orders)) <= 2


def test_position_bias_detects_a_rater_that_always_picks_the_first_shown() -> None:
    biased = position_bias(
        judge_batch(fake(prefer_first=True), ITEMS, PERSONAS * 3, JudgeOptions(), seed=0)
    )
    fair = position_bias(judge_batch(fake(), ITEMS, PERSONAS * 3, JudgeOptions(), seed=0))
    assert biased is not None and fair is not None
    assert biased.first_shown_win_rate == 1.0
    assert biased.expected_rate == pytest.approx(
        sum(1 / len(i.responses) for i in ITEMS) / len(ITEMS)
    )
    assert biased.z > 5
    assert abs(fair.z) < 3


def test_pairwise_position_bias_counts_pairs_against_one_half() -> None:
    options = JudgeOptions(method=Method.PAIRWISE_LOGPROB, both_orders=True)
    bias = position_bias(judge_batch(fake(), ITEMS, PERSONAS, options, seed=0), tie_margin=0.05)
    assert bias is not None and bias.expected_rate == 0.5
    assert bias.decisions == len(PERSONAS) * sum(
        len(i.responses) * (len(i.responses) - 1) for i in ITEMS
    )


class _NoLogprobs(Backend):
    engine = "none"

    def generate(self, conversations, params):  # noqa: ANN001, ANN201
        return [GenerationOutput(text="") for _ in conversations]

    def score(self, conversations, options):  # noqa: ANN001, ANN201
        return [{} for _ in conversations]

    def rank(self, conversations, spec, params):  # noqa: ANN001, ANN201
        return [GenerationOutput(text="", error="no ranking") for _ in conversations]


def test_pairwise_without_option_logprobs_fails_explicitly() -> None:
    engine = _NoLogprobs(BackendConfig(engine="none", model="m"))
    records = judge_batch(
        engine, ITEMS[:1], PERSONAS[:2], JudgeOptions(method=Method.PAIRWISE_LOGPROB), seed=0
    )
    assert [r.ok for r in records] == [False, False]
    assert all("no log-probability" in r.failure for r in records)


def test_judging_through_the_tiny_real_model(tiny_backend) -> None:
    for options in (
        JudgeOptions(allow_ties=True),
        JudgeOptions(method=Method.PAIRWISE_LOGPROB, tie_margin=0.0),
    ):
        records = judge_batch(tiny_backend, ITEMS[:3], PERSONAS[:3], options, seed=4)
        items = {i.id: i for i in ITEMS}
        for record in records:
            assert_complete(record, items[record.item_id])
            assert record.model.startswith("transformers:")


def test_generate_candidates_gives_k_distinct_ids_per_prompt() -> None:
    sets = generate_candidates(fake(), ["a?", "b?"], 3, GenerationParams(temperature=1.0), seed=9)
    assert [s.prompt for s in sets] == ["a?", "b?"]
    assert [c.id for c in sets[0].responses] == ["r1", "r2", "r3"]
    assert len({c.text for c in sets[0].responses}) == 3
    assert sets[0].responses[0].source == "fake:fake-judge"
