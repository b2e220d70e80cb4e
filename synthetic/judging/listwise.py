"""The listwise method: persona + prompt + K labelled responses -> one ranking (pure parts).

The engine decodes under a constraint (`RankingSpec`), so answers are valid rankings by
construction; parsing still validates, and anything unparseable becomes a failure record.
"""

from __future__ import annotations

from socialchoice import Profile, aggregate
from synthetic.backends.base import Conversation, GenerationOutput, RankingSpec
from synthetic.backends.ranking_grammar import RankingParseError, default_labels, parse_ranking
from synthetic.judging.prompts import PromptTemplate
from synthetic.judging.types import JudgeItem, JudgeOptions, WeakOrder


def example_ranking(labels: tuple[str, ...], allow_ties: bool) -> str:
    """A format example that is not the identity order (to not suggest one)."""
    shown = list(reversed(labels))
    if allow_ties and len(shown) >= 3:
        return f"{shown[0]} > {shown[1]} = {shown[2]}" + "".join(f" > {x}" for x in shown[3:])
    return " > ".join(shown)


def listwise_conversation(
    template: PromptTemplate,
    item: JudgeItem,
    order: list[str],
    persona_description: str,
    options: JudgeOptions,
) -> Conversation:
    """The judge prompt: instructions, prompt, responses in `order`, answer format, persona."""
    labels = default_labels(len(order))
    texts = {r.id: r.text for r in item.responses}
    responses = "\n\n".join(
        template.render("response", label=label, text=texts[rid])
        for label, rid in zip(labels, order, strict=True)
    )
    user = template.render(
        "user",
        k=len(labels),
        labels=", ".join(labels),
        prompt=item.prompt,
        responses=responses,
        answer_format=_answer_format(template, labels, options),
        persona=persona_description,
    )
    return [{"role": "user", "content": user}, *template.answer_prefix(options.reasoning)]


def _answer_format(template: PromptTemplate, labels: tuple[str, ...], options: JudgeOptions) -> str:
    example = example_ranking(labels, options.allow_ties)
    if options.reasoning:
        ties_hint = ' (or "=" for equally good)' if options.allow_ties else ""
        return template.render(
            "answer_reasoning", k=len(labels), example=example, ties_hint=ties_hint
        )
    section = "answer_ties" if options.allow_ties else "answer_strict"
    return template.render(section, k=len(labels), example=example)


def ranking_spec(k: int, options: JudgeOptions) -> RankingSpec:
    return RankingSpec(
        labels=default_labels(k),
        allow_ties=options.allow_ties,
        reasoning=options.reasoning,
        max_reasoning_tokens=options.max_reasoning_tokens,
    )


def labels_to_ids(ranking: WeakOrder, order: list[str]) -> WeakOrder:
    """Map a ranking over labels back to response ids (label i names `order[i]`)."""
    by_label = dict(zip(default_labels(len(order)), order, strict=True))
    return [[by_label[label] for label in group] for group in ranking]


def parse_listwise(
    output: GenerationOutput, order: list[str], allow_ties: bool
) -> tuple[WeakOrder | None, str | None]:
    """(ranking of response ids, None) or (None, why it failed)."""
    if output.error:
        return None, output.error
    try:
        ranking = parse_ranking(output.text, default_labels(len(order)), allow_ties)
    except RankingParseError as exc:
        return None, f"unparseable ranking: {exc}"
    return labels_to_ids(ranking, order), None


def combine_permutations(ids: list[str], rankings: list[WeakOrder], allow_ties: bool) -> WeakOrder:
    """One weak order from a judgment's rankings under several permutations: Borda count
    (`socialchoice`, rule "borda"). Equal Borda scores stay tied where ties are allowed;
    otherwise they are broken by the first ranking given (the judgment's first permutation)."""
    if len(rankings) == 1:
        return rankings[0]
    result = aggregate(Profile.from_weak_orders(ids, rankings), "borda")
    if allow_ties:
        return result.order
    first = {rid: g for g, group in enumerate(rankings[0]) for rid in group}
    strict = sorted(ids, key=lambda rid: (-result.scores[rid], first[rid], ids.index(rid)))
    return [[rid] for rid in strict]
