"""Social welfare functions, each registered under a stable name (see :mod:`.registry`).

Importing this package registers every rule. ``DEFAULT_RULE`` is Schulze: Condorcet-consistent,
independent of clones (Conitzer et al. 2024 single out clone independence because a model can
produce near-duplicate responses) and monotonic, with ties decided by the margins alone (no label
order) in polynomial time. Ranked Pairs, the earlier default, has the first two but its label-free
tie policy is not monotonic (see its docstring); making it so (every tie-breaking order at once)
is NP-hard (Brill and Fischer, AAAI 2012).
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

DEFAULT_RULE = "schulze"

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
