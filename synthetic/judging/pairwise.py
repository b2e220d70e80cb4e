"""The pairwise log-prob method (pure parts).

For each pair of responses the engine scores the next token after the judge prompt: P(first
shown is better) = softmax over the log-probabilities of "A" and "B". Optionally both orders are
asked and averaged: P(a > b) = (P_first(a, b) + 1 - P_first(b, a)) / 2.

The rater's weak order comes from Copeland-style counting over the pairwise probabilities
(`copeland_weak_order`): a response scores 1 for each pair it wins (P > 0.5 + margin),
0.5 for each tie (|P - 0.5| <= margin) and 0 for each loss; responses with equal scores form one
tie group, groups ordered by score (best first), ids inside a group in the item's order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

from synthetic.backends.base import Conversation
from synthetic.judging.prompts import PromptTemplate
from synthetic.judging.types import JudgeItem, JudgeOptions, WeakOrder

PLAIN_OPTIONS = ("A", "B")
# After "Final answer:" the natural next token carries its leading space.
REASONING_OPTIONS = (" A", " B")
ANSWER_CUE = "\n\nFinal answer:"


def answer_options(reasoning: bool, prefixed: bool = False) -> tuple[str, str]:
    """The two answer tokens: after a cue ("Final answer:", or the template's answer prefix
    "Answer:") the natural next token carries a leading space."""
    return REASONING_OPTIONS if reasoning or prefixed else PLAIN_OPTIONS


def pair_conversation(
    template: PromptTemplate,
    item: JudgeItem,
    first: str,
    second: str,
    persona_description: str,
    options: JudgeOptions,
) -> Conversation:
    """The judge prompt for one pair as shown: `first` is "A", `second` is "B"."""
    texts = {r.id: r.text for r in item.responses}
    section = "answer_reasoning" if options.reasoning else "answer_plain"
    user = template.render(
        "user",
        prompt=item.prompt,
        text_a=texts[first],
        text_b=texts[second],
        answer_format=template.render(section),
        persona=persona_description,
    )
    return [{"role": "user", "content": user}, *template.answer_prefix(options.reasoning)]


def shown_pairs(
    order: list[str], first_of: Mapping[tuple[str, str], bool], both: bool
) -> list[tuple[str, str]]:
    """Every pair of responses as shown (first, second): one order per pair, or both."""
    pairs = []
    for a, b in itertools.combinations(order, 2):
        if both:
            pairs.extend([(a, b), (b, a)])
        else:
            pairs.append((a, b) if first_of[(a, b)] else (b, a))
    return pairs


def p_first(logprobs: Mapping[str, float], options: tuple[str, str]) -> float | None:
    """P(first shown is better), renormalised over the two options; None if neither scored."""
    a, b = (logprobs.get(o, -math.inf) for o in options)
    if a == -math.inf and b == -math.inf:
        return None
    top = max(a, b)
    ea, eb = math.exp(a - top), math.exp(b - top)
    return ea / (ea + eb)


def preference_matrix(shown: list[tuple[str, str, float]]) -> dict[tuple[str, str], float]:
    """P(a > b) for both key orders from (first, second, P_first) rows, averaging repeats."""
    sums: dict[tuple[str, str], list[float]] = {}
    for first, second, p in shown:
        sums.setdefault((first, second), []).append(p)
        sums.setdefault((second, first), []).append(1.0 - p)
    return {pair: sum(ps) / len(ps) for pair, ps in sums.items()}


def copeland_weak_order(
    ids: list[str], prefs: Mapping[tuple[str, str], float], margin: float
) -> WeakOrder:
    """Weak order from pairwise P(a > b) by Copeland counting (see the module docstring)."""
    scores = dict.fromkeys(ids, 0.0)
    for a, b in itertools.combinations(ids, 2):
        p = prefs[(a, b)]
        if abs(p - 0.5) <= margin:
            scores[a] += 0.5
            scores[b] += 0.5
        elif p > 0.5:
            scores[a] += 1.0
        else:
            scores[b] += 1.0
    levels = sorted(set(scores.values()), reverse=True)
    return [[i for i in ids if scores[i] == level] for level in levels]
