"""Data shapes of judging: items in, judgment records out (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

WeakOrder = list[list[str]]


class Method(StrEnum):
    LISTWISE = "listwise"
    PAIRWISE_LOGPROB = "pairwise_logprob"


DEFAULT_PROMPT_VERSIONS = {Method.LISTWISE: "listwise_v1", Method.PAIRWISE_LOGPROB: "pairwise_v1"}


@dataclass(frozen=True)
class ResponseText:
    id: str
    text: str


@dataclass(frozen=True)
class JudgeItem:
    """A prompt and the K responses raters rank."""

    id: str
    prompt: str
    responses: tuple[ResponseText, ...]

    @property
    def response_ids(self) -> list[str]:
        return [r.id for r in self.responses]


@dataclass(frozen=True)
class JudgeOptions:
    """How a run judges.

    `tie_margin`: pairwise only; a pair is a tie when |P(a better) - 0.5| <= tie_margin.
    `both_orders`: pairwise only; ask each pair in both orders and average (cancels position
    bias per pair, doubles the work).
    `orders_per_item`: None shuffles every judgment independently; n draws each judgment's order
    from n seeded rotations of one per-item permutation (a Latin-square design: positions stay
    balanced while the engine's prefix cache sees only n distinct prefixes per item).
    `chunk_size`: judgments sent to the engine per call (large, for throughput).
    """

    method: Method = Method.LISTWISE
    allow_ties: bool = False
    reasoning: bool = False
    max_reasoning_tokens: int = 256
    both_orders: bool = False
    tie_margin: float = 0.05
    orders_per_item: int | None = None
    temperature: float = 0.0
    prompt_version: str | None = None
    chunk_size: int = 256

    @property
    def version(self) -> str:
        return self.prompt_version or DEFAULT_PROMPT_VERSIONS[Method(self.method)]


@dataclass(frozen=True)
class PairProbability:
    """One pair as shown: P(the first-shown response is better), from the A/B log-probs."""

    first: str
    second: str
    p_first: float
    logprobs: dict[str, float] = field(default_factory=dict)


@dataclass
class JudgmentRecord:
    """One persona's judgment of one item: what was shown, what came back, what it means.

    Exactly one of `ranking` (a complete weak order of response ids) and `failure` is set.
    For pairwise judgments `pairs` holds every pair as shown.
    """

    item_id: str
    persona_id: str
    model: str
    method: str
    prompt_version: str
    seed: int
    shown_order: list[str]
    raw_output: str
    ranking: WeakOrder | None = None
    failure: str | None = None
    reasoning: str | None = None
    pairs: list[PairProbability] = field(default_factory=list)
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.ranking is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
