"""The rule registry: every social welfare function under a stable name, with its facts.

A rule is a function ``rule(group: ProfileGroup, **params) -> RuleOutput`` working on a dense
batch group (one item is a group of one). Its docstring is the specification and must have the
sections ``Definition:``, ``Ties:``, ``Complexity:``, ``Axioms:`` and ``Reference:``;
:func:`describe` serves them to the UI. The machine-readable ``axioms`` tuple names the properties
the test-suite checks for the rule (see ``AXIOMS``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from ..profiles import ProfileGroup

AXIOMS: dict[str, str] = {
    "anonymity": "permuting the voters (with their weights) does not change the result",
    "neutrality": "permuting the alternatives' labels permutes the result accordingly",
    "pareto": "if every voter ranks a strictly above b, so does the collective order",
    "condorcet_winner": "an alternative beating every other by a majority is alone on top",
    "condorcet_loser": "an alternative beaten by every other by a majority is never on top",
    "monotonicity": "raising a top-group alternative in one ballot keeps it in the top group",
    "clone_independence": (
        "adding a clone (an alternative no voter separates from its original) does not change "
        "which of the other alternatives are on top"
    ),
}

SECTIONS = ("Definition", "Ties", "Complexity", "Axioms", "Reference")
_SECTION_RE = re.compile(r"^(" + "|".join(SECTIONS) + r"):\s*(.*)$")


@dataclass(frozen=True)
class RuleOutput:
    """A rule's answer for a group: ``scores float64 [n, K]`` (higher is better) and
    ``levels int64 [n, K]`` (tie group, 0 = best); ``extra`` holds rule-specific arrays."""

    scores: np.ndarray
    levels: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


RuleFn = Callable[..., RuleOutput]


@dataclass(frozen=True)
class RuleInfo:
    """A registered rule and the facts the UI shows about it."""

    name: str
    title: str
    fn: RuleFn
    axioms: tuple[str, ...]
    sections: dict[str, str]
    condorcet: bool
    max_k: int | None = None
    params: tuple[str, ...] = ()

    @property
    def clone_independent(self) -> bool:
        """Whether the rule claims independence of clones."""
        return "clone_independence" in self.axioms


class RuleDescription(TypedDict):
    """One row of :func:`describe`."""

    name: str
    title: str
    definition: str
    ties: str
    complexity: str
    axioms: str
    axiom_keys: list[str]
    clone_independent: bool
    condorcet: bool
    reference: str
    max_k: int | None


REGISTRY: dict[str, RuleInfo] = {}


def parse_sections(doc: str) -> tuple[str, dict[str, str]]:
    """Split a rule docstring into its title line and its named sections."""
    lines = [ln.strip() for ln in doc.strip().splitlines()]
    title = lines[0].rstrip(".")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[1:]:
        m = _SECTION_RE.match(line)
        if m:
            current = sections.setdefault(m.group(1), [m.group(2)])
        elif current is not None:
            current.append(line)
    return title, {k: " ".join(" ".join(v).split()) for k, v in sections.items()}


def register(
    name: str, axioms: tuple[str, ...], condorcet: bool = False, max_k: int | None = None
) -> Callable[[RuleFn], RuleFn]:
    """Decorator: register ``fn`` under ``name``; its docstring must carry every section."""

    def wrap(fn: RuleFn) -> RuleFn:
        unknown = set(axioms) - set(AXIOMS)
        if unknown or name in REGISTRY:
            raise ValueError(f"bad registration {name!r}: {unknown or 'duplicate name'}")
        title, sections = parse_sections(fn.__doc__ or "")
        missing = [s for s in SECTIONS if not sections.get(s)]
        if missing:
            raise ValueError(f"rule {name!r} docstring lacks sections {missing}")
        params = tuple(inspect.signature(fn).parameters)[1:]
        REGISTRY[name] = RuleInfo(name, title, fn, axioms, sections, condorcet, max_k, params)
        return fn

    return wrap


def get_rule(name: str) -> RuleInfo:
    """The registered rule ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown rule {name!r}; known: {sorted(REGISTRY)}") from None


def describe() -> list[RuleDescription]:
    """Every registered rule with its definition, ties, complexity, axioms and reference."""
    return [_description(info) for _, info in sorted(REGISTRY.items())]


def _description(info: RuleInfo) -> RuleDescription:
    s = info.sections
    return RuleDescription(
        name=info.name,
        title=info.title,
        definition=s["Definition"],
        ties=s["Ties"],
        complexity=s["Complexity"],
        axioms=s["Axioms"],
        axiom_keys=list(info.axioms),
        clone_independent=info.clone_independent,
        condorcet=info.condorcet,
        reference=s["Reference"],
        max_k=info.max_k,
    )


def call_rule(info: RuleInfo, group: ProfileGroup, params: dict[str, Any]) -> RuleOutput:
    """Run a rule on a group, enforcing its K limit (exact rules never approximate) and its
    parameter names (a misspelt parameter is an error, not a silently ignored default)."""
    unknown = sorted(set(params) - set(info.params))
    if unknown:
        accepted = ", ".join(info.params) or "none"
        raise ValueError(f"rule {info.name!r} has no parameter {', '.join(unknown)} "
                         f"(accepted: {accepted})")
    if info.max_k is not None and group.k > info.max_k:
        raise ValueError(
            f"rule {info.name!r} is exact only up to K = {info.max_k}; this item has K = {group.k}"
        )
    return info.fn(group, **params)
