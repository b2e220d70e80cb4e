"""socialchoice: weak-order profiles, social welfare functions, agreement and preference pairs.

A pure library (numpy and scipy only; nothing from the project, no Django). The apps call:

* :class:`Profile` / :class:`BatchProfile`: one item's ballots, or a whole project's as arrays;
* :func:`aggregate` / :func:`aggregate_batch`: run a registered rule (``rules.REGISTRY``,
  :func:`describe`); the default is ``DEFAULT_RULE`` (Schulze);
* :mod:`socialchoice.agreement`: Kendall tau-b, Kendall's W, Krippendorff's alpha, bootstrap CIs;
* :mod:`socialchoice.pairs`: collective orders (or each rater's ballot) to preference pairs.

Input and output for a whole project (the aggregation app), fastest first; no path builds a
Python list per ballot except the last:

* :meth:`BatchProfile.from_ranking_entries`: long-form database rows, one per (stored ranking,
  response): ranking row, the response's column in its item, its tie group; plus each ranking's
  item. E.g. ``SELECT ranking.id, response.position, g.ord - 1 FROM ranking,
  jsonb_array_elements(ranking.order) WITH ORDINALITY AS g(grp, ord),
  jsonb_array_elements_text(g.grp) AS rid JOIN response ON response.public_id = rid``.
* :meth:`BatchProfile.from_rank_arrays`: one row per stored ranking, ``group_indices [R, K_max]``
  (tie group per alternative, -1 = unranked) and ``item_index [R]``.
  (One item: :meth:`Profile.from_group_indices` with ``[V, K]``.)
* :meth:`BatchProfile.from_weak_orders` / :meth:`Profile.from_weak_orders`: contract-form lists
  of ids (C-level passes where items share alternatives; otherwise a loop per ballot).

Results: :meth:`BatchResult.level_matrix` gives every item's collective order as one integer
array (no Python object per item, for bulk writes); :meth:`BatchResult.orders` decodes weak
orders (a few microseconds per item: decode what is shown or stored as JSON, not more);
:meth:`BatchResult.result` one item's full :class:`Result` with margins. A profile or batch keeps
its pairwise margins after the first rule, so running several rules on it computes them once;
profiles, groups and their arrays are immutable.
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
