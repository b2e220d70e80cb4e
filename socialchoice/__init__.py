"""socialchoice: weak-order profiles, social welfare functions, agreement and preference pairs.

A pure library (numpy and scipy only; nothing from the project, no Django). The apps call:

* :class:`Profile` / :class:`BatchProfile`: one item's ballots, or a whole project's as arrays;
* :func:`aggregate` / :func:`aggregate_batch`: run a registered rule (``rules.REGISTRY``,
  :func:`describe`); the default is ``DEFAULT_RULE`` (Schulze);
* :mod:`socialchoice.agreement`: Kendall tau-b, Kendall's W, Krippendorff's alpha, bootstrap CIs;
* :mod:`socialchoice.pairs`: collective orders (or each rater's ballot) to preference pairs.
"""

from __future__ import annotations

from . import rules
from .aggregate import BatchResult, Result, TieBreak, aggregate, aggregate_batch, break_ties
from .batch import BatchProfile
from .profiles import Profile, ProfileGroup, WeakOrder
from .rules import DEFAULT_RULE, REGISTRY, describe

__all__ = [
    "DEFAULT_RULE",
    "REGISTRY",
    "BatchProfile",
    "BatchResult",
    "Profile",
    "ProfileGroup",
    "Result",
    "TieBreak",
    "WeakOrder",
    "aggregate",
    "aggregate_batch",
    "break_ties",
    "describe",
    "rules",
]
