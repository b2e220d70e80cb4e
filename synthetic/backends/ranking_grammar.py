"""The listwise ranking answer format, shared by every engine's constrained decoding (pure).

RANKING_GRAMMAR: labels are single characters (`A`, `B`, ...), best first, separated by `>`
(strictly better) or `=` (tie, only when ties are allowed), with at most one space on each side
of a separator: `B > A = C > D`, `B>A=C>D`. Every label appears exactly once.

A weak order is a list of tie groups, best first: `B > A = C > D` is `[["B"], ["A", "C"], ["D"]]`
(labels inside a group in label order).
"""

from __future__ import annotations

import itertools
import json
import re
import string
from dataclasses import dataclass

RANKING_GRAMMAR = "L ( ' '? ('>' | '=') ' '? L )*, each of the K labels exactly once"

WeakOrder = list[list[str]]


class RankingParseError(ValueError):
    """Text that is not a complete ranking over the given labels."""


def default_labels(k: int) -> tuple[str, ...]:
    """`("A", "B", ...)` for K responses (K <= 26)."""
    if not 1 <= k <= 26:
        raise ValueError(f"K must be between 1 and 26, got {k}")
    return tuple(string.ascii_uppercase[:k])


@dataclass(frozen=True)
class PrefixState:
    """Where a scan of ranking text stands: the phase and the labels used so far."""

    phase: str
    used: frozenset[str]


START = PrefixState("start", frozenset())


def advance(
    state: PrefixState, char: str, labels: tuple[str, ...], allow_ties: bool
) -> PrefixState | None:
    """The state after `char`, or None when `char` cannot continue any valid ranking."""
    remaining = len(labels) - len(state.used)
    if state.phase in ("start", "after_sep", "after_sep_space"):
        if char in labels and char not in state.used:
            return PrefixState("after_label", state.used | {char})
        if char == " " and state.phase == "after_sep":
            return PrefixState("after_sep_space", state.used)
        return None
    is_sep = char == ">" or (char == "=" and allow_ties)
    if is_sep and remaining > 0:
        return PrefixState("after_sep", state.used)
    if char == " " and state.phase == "after_label" and remaining > 0:
        return PrefixState("after_label_space", state.used)
    return None


def scan(
    text: str, labels: tuple[str, ...], allow_ties: bool, state: PrefixState = START
) -> PrefixState | None:
    """The state after scanning `text` from `state`, or None if `text` leaves the grammar."""
    for char in text:
        next_state = advance(state, char, labels, allow_ties)
        if next_state is None:
            return None
        state = next_state
    return state


def is_complete(state: PrefixState | None, labels: tuple[str, ...]) -> bool:
    """True when the scanned text is a whole ranking (every label placed)."""
    return state is not None and state.phase == "after_label" and len(state.used) == len(labels)


def parse_ranking(text: str, labels: tuple[str, ...], allow_ties: bool) -> WeakOrder:
    """Parse answer text into a weak order over `labels`; raise `RankingParseError` otherwise."""
    answer = text.strip()
    if not answer:
        raise RankingParseError("empty answer")
    if not allow_ties and "=" in answer:
        raise RankingParseError(f"ties are not allowed: {answer!r}")
    if not is_complete(scan(answer, labels, allow_ties), labels):
        seps = "'>' or '='" if allow_ties else "'>'"
        raise RankingParseError(
            f"{answer!r} is not a ranking of {', '.join(labels)} (each exactly once, "
            f"separated by {seps})"
        )
    return _groups(answer, labels)


def _groups(answer: str, labels: tuple[str, ...]) -> WeakOrder:
    order = {label: i for i, label in enumerate(labels)}
    groups = [g for g in re.split(r"\s*>\s*", answer)]
    return [sorted((x.strip() for x in g.split("=")), key=order.__getitem__) for g in groups]


def format_ranking(groups: WeakOrder) -> str:
    """`[["B"], ["A", "C"]]` -> `"B > A = C"`."""
    return " > ".join(" = ".join(group) for group in groups)


def ordered_partitions(labels: tuple[str, ...]) -> list[WeakOrder]:
    """Every weak order over `labels` (ordered set partitions; Fubini number of them)."""
    if not labels:
        return [[]]
    result: list[WeakOrder] = []
    for size in range(1, len(labels) + 1):
        for first in itertools.combinations(labels, size):
            rest = tuple(x for x in labels if x not in first)
            result.extend([list(first), *tail] for tail in ordered_partitions(rest))
    return result


def all_rankings(labels: tuple[str, ...], allow_ties: bool) -> list[str]:
    """Every valid answer in canonical form (`K!` strict orders, Fubini(K) weak orders)."""
    if not allow_ties:
        return [" > ".join(p) for p in itertools.permutations(labels)]
    return [format_ranking(groups) for groups in ordered_partitions(labels)]


def count_rankings(k: int, allow_ties: bool) -> int:
    """How many answers `all_rankings` would list, without listing them."""
    if not allow_ties:
        return _factorial(k)
    fubini = [1]
    for n in range(1, k + 1):
        fubini.append(sum(_binomial(n, i) * fubini[n - i] for i in range(1, n + 1)))
    return fubini[k]


def _factorial(n: int) -> int:
    return 1 if n <= 1 else n * _factorial(n - 1)


def _binomial(n: int, r: int) -> int:
    return _factorial(n) // (_factorial(r) * _factorial(n - r))


def ranking_regex(labels: tuple[str, ...], allow_ties: bool) -> str:
    """A regex for the grammar's shape; it cannot enforce 'each label once': validate after."""
    label = "[" + "".join(re.escape(x) for x in labels) + "]"
    sep = "[>=]" if allow_ties else ">"
    return f"{label}( ?{sep} ?{label}){{{len(labels) - 1}}}"


def ranking_json_schema(labels: tuple[str, ...], allow_ties: bool, reasoning: bool) -> dict:
    """JSON schema of a structured answer `{"reasoning"?: str, "ranking": "B > A = C"}`."""
    properties: dict[str, dict] = {}
    if reasoning:
        properties["reasoning"] = {"type": "string"}
    properties["ranking"] = {"type": "string", "pattern": f"^{ranking_regex(labels, allow_ties)}$"}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def parse_json_answer(raw: str) -> tuple[str, str | None]:
    """`(ranking_text, reasoning)` from a structured answer; raise `RankingParseError`."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RankingParseError(f"answer is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("ranking"), str):
        raise RankingParseError("answer JSON has no string field 'ranking'")
    reasoning = data.get("reasoning")
    return data["ranking"], reasoning if isinstance(reasoning, str) else None


# Every character a ranking answer over labels A..Z can contain.
GRAMMAR_ALPHABET = frozenset(string.ascii_uppercase) | frozenset(" >=")
