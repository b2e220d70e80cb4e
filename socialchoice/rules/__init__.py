"""Social welfare functions, each registered under a stable name (see :mod:`.registry`).

Importing this package registers every rule. ``DEFAULT_RULE`` is Ranked Pairs: a
Condorcet-consistent rule that is independent of clones (Conitzer et al. 2024 single out clone
independence because a model can produce near-duplicate responses).
"""

from __future__ import annotations

from . import condorcet, egalitarian, kemeny, likelihood, positional, ranked_pairs, runoff
from .registry import (
    AXIOMS,
    REGISTRY,
    RuleDescription,
    RuleInfo,
    RuleOutput,
    call_rule,
    describe,
    get_rule,
)

DEFAULT_RULE = "ranked_pairs"

__all__ = [
    "AXIOMS",
    "DEFAULT_RULE",
    "REGISTRY",
    "RuleDescription",
    "RuleInfo",
    "RuleOutput",
    "call_rule",
    "condorcet",
    "describe",
    "egalitarian",
    "get_rule",
    "kemeny",
    "likelihood",
    "positional",
    "ranked_pairs",
    "runoff",
]
