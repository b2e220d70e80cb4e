"""Does a run's rankings carry signal? Figures for the run summary (pure: no Django).

- `position_distribution`: for each number of responses K, where each shown position ends up:
  row p (shown position, 0 = first), column r (final rank, 0 = best), the share of decisions.
  A tie group spanning ranks s..s+g-1 credits each of those ranks 1/g. Without position bias
  every row is close to uniform (1/K each).
- `shown_or_reverse_share`: listwise rankings (per permutation) that are exactly the shown order
  or its reverse. Only for K >= 3 (with K = 2 every strict ranking is one of the two); by chance
  2/K! of strict rankings are.
- `order_flip`: how often a judgment's answer changed when only the order of the responses
  changed (listwise permutations, pairwise both orders). A rater that reads the content keeps its
  answer; one that follows positions flips it. Over two-way decisions (pairs, K = 2) a flip can
  only mean the position decided (`position_flips`).
- persona sensitivity: how often two personas' rankings of the same item differ
  (`between_personas`) against how often one persona's rankings under two permutations differ
  (`within_persona`). Persona differences are only meaningful when the first is clearly larger.
- `reference_agreement`: against a reference order per item (imported chosen/rejected, or the
  human collective), the share of the reference's strict pairs each judgment orders the same way
  (a tie counts 1/2), with a 95% normal interval over judgments.

A run is flagged degenerate (`degenerate_reasons`) when over half its listwise rankings are the
shown order or its reverse, when over half its two-way answers flip with the order, when over half its
pointwise judgments tie every response, or when over half its judgments are low-confidence.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from synthetic.judging.bias import shown_rankings
from synthetic.judging.types import JudgmentRecord, Method, WeakOrder

DEGENERATE_SHARE = 0.5


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    n: int


@dataclass
class SignalReport:
    judgments: int
    position_distribution: dict[int, list[list[float]]] = field(default_factory=dict)
    position_decisions: dict[int, int] = field(default_factory=dict)
    shown_or_reverse: Interval | None = None
    shown_or_reverse_chance: float | None = None
    order_flips: Interval | None = None
    # The same over two-way decisions only (pairwise pairs, listwise K = 2), where a flip can
    # only mean that the position decided.
    position_flips: Interval | None = None
    between_personas: Interval | None = None
    within_persona: Interval | None = None
    all_tied: Interval | None = None
    low_confidence: Interval | None = None
    reference: Interval | None = None
    reference_items: int = 0
    degenerate: list[str] = field(default_factory=list)


def proportion(successes: float, n: int) -> Interval | None:
    """A share with its 95% Wilson interval (None for n = 0)."""
    if n <= 0:
        return None
    p, z = successes / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean_interval(values: Sequence[float]) -> Interval | None:
    """A mean with its 95% normal interval (None for no values)."""
    n = len(values)
    if not n:
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def rank_credits(order: list[str], ranking: WeakOrder) -> list[list[float]]:
    """Row p: how shown position p's response spreads over the final ranks (sums to 1)."""
    k = len(order)
    span: dict[str, tuple[int, int]] = {}
    start = 0
    for group in ranking:
        for rid in group:
            span[rid] = (start, len(group))
        start += len(group)
    rows = []
    for rid in order:
        first, size = span[rid]
        rows.append([1 / size if first <= r < first + size else 0.0 for r in range(k)])
    return rows


def position_distribution(records: Sequence[JudgmentRecord]) -> tuple[dict[int, list[list[float]]], dict[int, int]]:
    """Per K: the shown-position x final-rank share matrix, and the number of decisions."""
    sums: dict[int, list[list[float]]] = {}
    counts: dict[int, int] = {}
    for record in records:
        for order, ranking in _positioned(record):
            k = len(order)
            total = sums.setdefault(k, [[0.0] * k for _ in range(k)])
            for p, row in enumerate(rank_credits(order, ranking)):
                for r, credit in enumerate(row):
                    total[p][r] += credit
            counts[k] = counts.get(k, 0) + 1
    shares = {k: [[c / counts[k] for c in row] for row in m] for k, m in sums.items()}
    return shares, counts


def _positioned(record: JudgmentRecord) -> list[tuple[list[str], WeakOrder]]:
    """(shown order, ranking under it) decisions of a judgment; pairwise pairs count as K = 2."""
    if record.method == Method.PAIRWISE_LOGPROB:
        return [
            ([p.first, p.second], [[p.first], [p.second]] if p.p_first >= 0.5 else [[p.second], [p.first]])
            for p in record.pairs
        ]
    if record.method == Method.POINTWISE:
        return []
    return shown_rankings(record)


def is_shown_or_reverse(order: list[str], ranking: WeakOrder) -> bool:
    as_shown = [[rid] for rid in order]
    return ranking == as_shown or ranking == as_shown[::-1]


def order_flip(record: JudgmentRecord) -> float | None:
    """Share of this judgment's order changes that changed its answer (None: none to compare)."""
    if record.method == Method.PAIRWISE_LOGPROB:
        asked: dict[tuple[str, str], bool] = {}
        flips = []
        for pair in record.pairs:
            key = (min(pair.first, pair.second), max(pair.first, pair.second))
            prefers_low = (pair.p_first >= 0.5) == (pair.first == key[0])
            if key in asked:
                flips.append(1.0 if asked[key] != prefers_low else 0.0)
            asked[key] = prefers_low
        return sum(flips) / len(flips) if flips else None
    rankings = [_canonical(r) for _, r in shown_rankings(record)]
    pairs = list(itertools.combinations(rankings, 2))
    return sum(1.0 for a, b in pairs if a != b) / len(pairs) if pairs else None


def _canonical(order: WeakOrder) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(sorted(group)) for group in order)


def between_personas(records: Sequence[JudgmentRecord]) -> tuple[float, int]:
    """(pairs of personas whose final rankings of one item differ, pairs compared)."""
    by_item: dict[str, list[tuple[tuple[str, ...], ...]]] = {}
    for record in records:
        if record.ranking is not None:
            by_item.setdefault(record.item_id, []).append(_canonical(record.ranking))
    differ = compared = 0
    for rankings in by_item.values():
        for a, b in itertools.combinations(rankings, 2):
            compared += 1
            differ += a != b
    return differ, compared


def pair_agreement(ranking: WeakOrder, reference: WeakOrder) -> float | None:
    """Share of `reference`'s strict pairs that `ranking` orders the same way (tie: 1/2)."""
    ref = {rid: g for g, group in enumerate(reference) for rid in group}
    got = {rid: g for g, group in enumerate(ranking) for rid in group}
    scores = []
    for a, b in itertools.combinations(sorted(ref), 2):
        if ref[a] == ref[b] or a not in got or b not in got:
            continue
        better, worse = (a, b) if ref[a] < ref[b] else (b, a)
        scores.append(1.0 if got[better] < got[worse] else 0.5 if got[better] == got[worse] else 0.0)
    return sum(scores) / len(scores) if scores else None


def signal_report(
    records: Sequence[JudgmentRecord],
    references: Mapping[str, WeakOrder] | None = None,
    label_mass_threshold: float = 0.5,
) -> SignalReport:
    """Every figure of the module docstring over a run's judgments."""
    ok = [r for r in records if r.ok]
    report = SignalReport(judgments=len(records))
    report.position_distribution, report.position_decisions = position_distribution(ok)
    _shown_or_reverse(report, ok)
    flips = [(r, f) for r, f in ((r, order_flip(r)) for r in ok) if f is not None]
    report.order_flips = mean_interval([f for _, f in flips])
    report.position_flips = mean_interval(
        [f for r, f in flips if r.method == Method.PAIRWISE_LOGPROB or len(r.shown_order) == 2]
    )
    differ, compared = between_personas(ok)
    report.between_personas = proportion(differ, compared)
    report.within_persona = report.order_flips if ok and ok[0].method != Method.PAIRWISE_LOGPROB else None
    pointwise = [r for r in ok if r.method == Method.POINTWISE and r.ranking is not None]
    report.all_tied = proportion(sum(1 for r in pointwise if len(r.ranking or []) == 1), len(pointwise))
    masses = [r.label_mass for r in records if r.label_mass is not None]
    report.low_confidence = proportion(sum(1 for m in masses if m < label_mass_threshold), len(masses))
    _reference(report, ok, references or {})
    report.degenerate = degenerate_reasons(report)
    return report


def _shown_or_reverse(report: SignalReport, ok: Sequence[JudgmentRecord]) -> None:
    decisions = [
        (order, ranking)
        for r in ok
        if r.method == Method.LISTWISE
        for order, ranking in shown_rankings(r)
        if len(order) >= 3
    ]
    if decisions:
        hits = sum(1 for order, ranking in decisions if is_shown_or_reverse(order, ranking))
        report.shown_or_reverse = proportion(hits, len(decisions))
        report.shown_or_reverse_chance = sum(2 / math.factorial(len(o)) for o, _ in decisions) / len(decisions)


def _reference(report: SignalReport, ok: Sequence[JudgmentRecord], references: Mapping[str, WeakOrder]) -> None:
    scores = []
    items = set()
    for record in ok:
        reference = references.get(record.item_id)
        score = pair_agreement(record.ranking or [], reference) if reference else None
        if score is not None:
            scores.append(score)
            items.add(record.item_id)
    report.reference, report.reference_items = mean_interval(scores), len(items)


def degenerate_reasons(report: SignalReport) -> list[str]:
    """Plain sentences for each way the run's rankings look like they carry no signal."""
    reasons = []
    if report.shown_or_reverse and report.shown_or_reverse.value > DEGENERATE_SHARE:
        reasons.append(
            f"{report.shown_or_reverse.value:.0%} of the rankings are exactly the shown order or its "
            f"reverse (by chance: {report.shown_or_reverse_chance or 0:.0%}): the model follows positions, "
            "not content."
        )
    if report.position_flips and report.position_flips.value > DEGENERATE_SHARE:
        reasons.append(
            f"{report.position_flips.value:.0%} of the two-way answers change when only the order of the "
            "two responses changes: the model follows positions, not content."
        )
    if report.all_tied and report.all_tied.value > DEGENERATE_SHARE:
        reasons.append(f"{report.all_tied.value:.0%} of the ratings tie every response: the scores do not separate them.")
    if report.low_confidence and report.low_confidence.value > DEGENERATE_SHARE:
        reasons.append(
            f"{report.low_confidence.value:.0%} of the judgments are low-confidence: the model put little "
            "probability on the allowed answers."
        )
    return reasons
