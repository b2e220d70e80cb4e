"""The pointwise method (pure parts): each response rated alone for the persona.

The engine scores the next token after the rating prompt; the rating is the expected value of
the digits 1-5 under the next-token distribution renormalised over those digits, and the share of
mass the digits had before renormalising is the judgment's label mass. A response shown alone has
no position to be biased by. Responses whose ratings differ by at most the margin are tied (only
where ties are allowed; otherwise the order is by rating alone).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from socialchoice.orders import levels_from_scores
from synthetic.backends.base import Conversation
from synthetic.judging.prompts import PromptTemplate
from synthetic.judging.types import JudgeItem, JudgeOptions, WeakOrder

# Single tokens in common tokenizers once the cue ends with a space (" 1" is often two tokens).
RATINGS = ("1", "2", "3", "4", "5")
ANSWER_CUE = "\n\nRating: "


def rating_conversation(
    template: PromptTemplate,
    item: JudgeItem,
    response_id: str,
    persona_description: str,
    options: JudgeOptions,
) -> Conversation:
    text = {r.id: r.text for r in item.responses}[response_id]
    section = "answer_reasoning" if options.reasoning else "answer_plain"
    user = template.render(
        "user",
        prompt=item.prompt,
        text=text,
        answer_format=template.render(section),
        persona=persona_description,
    )
    return [{"role": "user", "content": user}, *template.answer_prefix(options.reasoning)]


def label_mass(logprobs: Mapping[str, float], labels: tuple[str, ...]) -> float:
    """Share of the next-token probability on `labels` (0 when none was scored)."""
    return float(sum(math.exp(logprobs[o]) for o in labels if logprobs.get(o, -math.inf) > -math.inf))


def expected_rating(logprobs: Mapping[str, float], labels: tuple[str, ...]) -> float | None:
    """E[rating] over the digits, renormalised over `labels` (label i means rating i + 1)."""
    values = [logprobs.get(o, -math.inf) for o in labels]
    top = max(values)
    if top == -math.inf:
        return None
    weights = [math.exp(v - top) for v in values]
    return sum((i + 1) * w for i, w in enumerate(weights)) / sum(weights)


def scores_weak_order(ids: list[str], scores: Mapping[str, float], margin: float) -> WeakOrder:
    """Weak order by score (higher first): a response within `margin` of the next higher one
    joins its group (chained, as `socialchoice.orders.levels_from_scores`); ids keep item order
    inside a group."""
    levels = levels_from_scores(np.array([[scores[i] for i in ids]]), tol=margin)[0].tolist()
    return [[i for i, level in zip(ids, levels, strict=True) if level == g] for g in range(max(levels) + 1)]
