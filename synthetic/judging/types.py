"""Data shapes of judging: items in, judgment records out (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

WeakOrder = list[list[str]]


class Method(StrEnum):
    LISTWISE = "listwise"
    PAIRWISE_LOGPROB = "pairwise_logprob"
    POINTWISE = "pointwise"


DEFAULT_PROMPT_VERSIONS = {
    Method.LISTWISE: "listwise_v2",
    Method.PAIRWISE_LOGPROB: "pairwise_v2",
    Method.POINTWISE: "pointwise_v1",
}
# Below this share of next-token probability on the allowed labels, a judgment is low-confidence:
# the model wanted to write something else, and the renormalised label probabilities say little.
DEFAULT_LABEL_MASS_THRESHOLD = 0.5
# Judgments per engine call when the run does not set one: small enough that a small run shows
# progress every few seconds and a killed run loses at most one chunk (`chunk_size_for`).
MAX_AUTO_CHUNK = 64


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
    `permutations`: listwise only; each judgment ranks the responses under this many seeded
    permutations (rotations of one per-judgment order, so with permutations = K every response is
    shown once in every position) and the rankings are combined by Borda count. 1 = no debiasing.
    `score_margin`: pointwise only; responses whose expected ratings differ by at most this are tied.
    `label_mass_threshold`: a judgment whose mean next-token mass on the allowed labels is below
    it is low-confidence.
    `chunk_size`: judgments sent to the engine per call; None adapts it to the run's size
    (`chunk_size_for`).
    """

    method: Method = Method.LISTWISE
    allow_ties: bool = False
    reasoning: bool = False
    max_reasoning_tokens: int = 256
    both_orders: bool = True
    tie_margin: float = 0.05
    orders_per_item: int | None = None
    temperature: float = 0.0
    prompt_version: str | None = None
    chunk_size: int | None = None
    permutations: int = 3
    score_margin: float = 0.1
    label_mass_threshold: float = DEFAULT_LABEL_MASS_THRESHOLD

    @property
    def version(self) -> str:
        return self.prompt_version or DEFAULT_PROMPT_VERSIONS[Method(self.method)]


def chunk_size_for(total: int, requested: int | None = None) -> int:
    """Judgments per chunk: `requested`, or about a tenth of the run (1 to MAX_AUTO_CHUNK), so
    progress moves in steps of ~10% or less and a kill loses at most that much work."""
    if requested:
        return max(1, requested)
    return max(1, min(MAX_AUTO_CHUNK, -(-total // 10)))


@dataclass(frozen=True)
class PermutationOutput:
    """One listwise permutation of a judgment as shown and answered (kept raw)."""

    shown_order: list[str]
    raw_output: str
    ranking: list[list[str]] | None = None
    failure: str | None = None
    label_mass: float | None = None


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
    For pairwise judgments `pairs` holds every pair as shown; for listwise ones `permutations`
    holds every permutation's raw output (`shown_order` is the first permutation's).
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
    permutations: list[PermutationOutput] = field(default_factory=list)
    # Pointwise: each response's expected rating (1-5).
    scores: dict[str, float] = field(default_factory=dict)
    # Mean share of next-token probability on the allowed labels (None: the engine cannot say).
    label_mass: float | None = None

    @property
    def ok(self) -> bool:
        return self.ranking is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
