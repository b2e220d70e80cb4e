"""Position bias: how often the first-shown response wins, against the unbiased rate (pure).

Listwise: every permutation a judgment ranked (or its one shown order) credits the first-shown
response 1/|top group| when it is in the top tie group, else 0. Without position bias the expected credit is 1/K (the K positions' credits sum to
1 and are exchangeable), so the unbiased rate is the mean of 1/K.
Pairwise: each pair as shown credits its first response 1 for a win (P > 0.5 + margin), 0.5 for
a tie, 0 for a loss; the unbiased rate is 0.5.
`z` is (observed - expected) / its standard error under no bias (binomial approximation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from synthetic.judging.types import JudgmentRecord, Method, WeakOrder


@dataclass(frozen=True)
class PositionBias:
    method: str
    decisions: int
    first_shown_win_rate: float
    expected_rate: float
    z: float

    @property
    def excess(self) -> float:
        return self.first_shown_win_rate - self.expected_rate


def position_bias(
    records: Iterable[JudgmentRecord], tie_margin: float = 0.05
) -> PositionBias | None:
    """The run's position-bias statistic over successful judgments, or None if there are none."""
    ok = [r for r in records if r.ok]
    if not ok:
        return None
    method = ok[0].method
    if method == Method.POINTWISE:
        return None  # each response is rated alone: there is no position to win from
    if method == Method.PAIRWISE_LOGPROB:
        credits, expected = _pairwise_credits(ok, tie_margin), [0.5]
    else:
        shown = [(order, ranking) for r in ok for order, ranking in shown_rankings(r)]
        credits = [_listwise_credit(order, ranking) for order, ranking in shown]
        expected = [1 / len(order) for order, _ in shown]
    if not credits:
        return None
    rate, exp = sum(credits) / len(credits), sum(expected) / len(expected)
    se = math.sqrt(exp * (1 - exp) / len(credits))
    return PositionBias(method, len(credits), rate, exp, (rate - exp) / se if se else 0.0)


def shown_rankings(record: JudgmentRecord) -> list[tuple[list[str], WeakOrder]]:
    """(shown order, ranking given under it) for each successful permutation of a listwise
    judgment; a judgment without permutations is its own shown order and final ranking."""
    if record.permutations:
        return [(p.shown_order, p.ranking) for p in record.permutations if p.ranking is not None]
    return [(record.shown_order, record.ranking)] if record.ranking is not None else []


def _listwise_credit(order: list[str], ranking: WeakOrder) -> float:
    top = ranking[0] if ranking else []
    return 1 / len(top) if order[0] in top else 0.0


def _pairwise_credits(records: list[JudgmentRecord], margin: float) -> list[float]:
    credits = []
    for record in records:
        for pair in record.pairs:
            if abs(pair.p_first - 0.5) <= margin:
                credits.append(0.5)
            else:
                credits.append(1.0 if pair.p_first > 0.5 else 0.0)
    return credits
