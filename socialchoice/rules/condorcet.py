"""Margin-based Condorcet rules: Copeland, Minimax, Schulze, Split Cycle.

All read the weighted margin matrix ``M[a, b]`` (see :mod:`socialchoice.pairwise`) and are
vectorised over the items of a group: path computations are Floyd-Warshall sweeps of K numpy
operations on ``[n, K, K]`` arrays.
"""

from __future__ import annotations

import numpy as np

from ..checks import unit_interval
from ..orders import below_counts, levels_from_defeats, levels_from_scores
from ..pairwise import margins
from ..profiles import ProfileGroup
from .registry import RuleOutput, register

CONDORCET_AXIOMS = (
    "anonymity", "neutrality", "pareto", "condorcet_winner", "condorcet_loser", "monotonicity",
)


def widest_paths(m: np.ndarray) -> np.ndarray:
    """Strongest-path strengths ``[n, K, K]`` over the majority graph (edges with positive margin,
    weighted by the margin; a path's strength is its weakest edge; 0 when there is no path)."""
    p = np.where(m > 0, m, 0.0)
    for k in range(m.shape[1]):
        np.maximum(p, np.minimum(p[:, :, k, None], p[:, None, k, :]), out=p)
    return p


def _from_defeats(defeats: np.ndarray, extra: dict[str, np.ndarray]) -> RuleOutput:
    levels = levels_from_defeats(defeats)
    return RuleOutput(below_counts(levels), levels, extra)


@register("copeland", axioms=CONDORCET_AXIOMS, condorcet=True)
def copeland(group: ProfileGroup, tie_credit: float = 0.5) -> RuleOutput:
    """Copeland.

    Definition: score(a) = number of alternatives a beats by a positive margin plus ``tie_credit``
    (default 0.5, settable in [0, 1]) per alternative with zero margin against a. Higher score
    ranks higher.
    Ties: equal scores are tied in the collective order.
    Complexity: O(V K^2) for the margins, O(K^2) after.
    Axioms: anonymity, neutrality, Pareto, Condorcet winner and loser, monotonicity; NOT
    independent of clones (cloning an alternative changes everyone's win counts).
    Reference: A. H. Copeland (1951), "A reasonable social welfare function"; Saari and Merlin,
    "The Copeland method I", Econ. Theory 8 (1996).
    """
    tie_credit = unit_interval("tie_credit", tie_credit)
    m = margins(group)
    off = ~np.eye(group.k, dtype=bool)
    scores = np.sum((m > 0) + tie_credit * ((m == 0) & off), axis=2).astype(np.float64)
    return RuleOutput(scores, levels_from_scores(scores), {"margins": m})


@register("minimax", axioms=("anonymity", "neutrality", "condorcet_winner", "monotonicity"),
          condorcet=True)
def minimax(group: ProfileGroup) -> RuleOutput:
    """Minimax (Simpson-Kramer), margins variant.

    Definition: score(a) = minus the largest margin by which any alternative beats a (0 when
    nobody beats a). Higher score (smaller worst defeat) ranks higher.
    Ties: equal scores are tied; in particular all alternatives nobody beats share the top group.
    Complexity: O(V K^2) for the margins, O(K^2) after.
    Axioms: anonymity, neutrality, Condorcet winner, monotonicity; only weak Pareto (alternatives
    that lose their worst contest by the same margin tie even if everyone prefers one of them);
    fails the Condorcet loser criterion and independence of clones.
    Reference: P. B. Simpson (1969); G. H. Kramer (1977), "A dynamical model of political
    equilibrium", J. Econ. Theory 16.
    """
    m = margins(group)
    worst = np.max(np.maximum(m, 0.0), axis=1)
    scores = 0.0 - worst
    return RuleOutput(scores, levels_from_scores(scores), {"margins": m})


@register("schulze", axioms=CONDORCET_AXIOMS + ("clone_independence",), condorcet=True)
def schulze(group: ProfileGroup) -> RuleOutput:
    """Schulze (beat path), margins as link strengths.

    Definition: p[a, b] = strength of the strongest path from a to b in the majority graph (a
    path's strength is its smallest margin). a defeats b when p[a, b] > p[b, a]; this relation is
    transitive (Schulze 2011). The collective order takes the undefeated alternatives (the Schulze
    winners) as group 0, the undefeated among the rest as group 1, and so on. Score = number of
    alternatives in strictly worse groups.
    Ties: pairs with p[a, b] = p[b, a] are not defeats, so such alternatives can share a group;
    nothing is broken by label or input order.
    Complexity: O(V K^2 + K^3) per item; batched as K vectorised sweeps over [n, K, K].
    Axioms: anonymity, neutrality, Pareto, Condorcet winner and loser, monotonicity, independence
    of clones, Smith criterion.
    Reference: M. Schulze, "A new monotonic, clone-independent, reversal symmetric, and
    Condorcet-consistent single-winner election method", Soc. Choice Welf. 36 (2011).
    """
    m = margins(group)
    p = widest_paths(m)
    return _from_defeats(p > p.transpose(0, 2, 1), {"margins": m, "paths": p})


@register("split_cycle", axioms=CONDORCET_AXIOMS + ("clone_independence",), condorcet=True)
def split_cycle(group: ProfileGroup) -> RuleOutput:
    """Split Cycle.

    Definition: a defeats b when margin(a, b) > 0 and margin(a, b) exceeds the splitting number
    (smallest margin) of every majority cycle through the edge a -> b, i.e. margin(a, b) > p[b, a]
    with p the strongest-path strengths. The defeat relation is acyclic; the collective order
    takes the undefeated alternatives (the Split Cycle winners) as group 0, then the undefeated
    among the rest, and so on. Score = number of alternatives in strictly worse groups.
    Ties: alternatives neither of which defeats the other can share a group (a cycle whose
    margins are all equal leaves all its members tied); no label order is ever used.
    Complexity: O(V K^2 + K^3) per item; batched as K vectorised sweeps over [n, K, K].
    Axioms: anonymity, neutrality, Pareto, Condorcet winner and loser, monotonicity, independence
    of clones, spoiler-proofness, immunity to stealers.
    Reference: W. H. Holliday and E. Pacuit, "Split Cycle: a new Condorcet-consistent voting
    method independent of clones and immune to spoilers", Public Choice 197 (2023).
    """
    m = margins(group)
    p = widest_paths(m)
    defeats = (m > 0) & (m > p.transpose(0, 2, 1))
    return _from_defeats(defeats, {"margins": m, "paths": p})
