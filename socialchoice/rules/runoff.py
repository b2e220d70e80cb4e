"""Instant-runoff as a ranking: iterated elimination of the weakest first-choice tallies."""

from __future__ import annotations

import numpy as np

from ..orders import levels_from_scores
from ..pairwise import snap, total_weight
from ..profiles import ProfileGroup
from .positional import weighted_sum
from .registry import RuleOutput, register


def first_choice_tallies(group: ProfileGroup, remaining: np.ndarray) -> np.ndarray:
    """Weight each remaining alternative receives as a voter's top remaining choice
    (split equally among tied top choices; exhausted ballots count for nobody)."""
    ranks = np.where(remaining[:, None, :], np.nan_to_num(group.ranks, nan=np.inf), np.inf)
    best = ranks.min(axis=2, keepdims=True)
    top = (ranks == best) & np.isfinite(ranks)
    share = top / np.maximum(top.sum(axis=2, keepdims=True), 1)
    return snap(weighted_sum(share, group.weights), total_weight(group))


@register("instant_runoff", axioms=("anonymity", "neutrality"))
def instant_runoff(group: ProfileGroup) -> RuleOutput:
    """Instant-runoff voting as a ranking (iterated elimination).

    Definition: in each round every voter's weight goes to her highest-ranked remaining
    alternative (split equally over a tie group; a ballot with no ranked remaining alternative is
    exhausted). All alternatives with the lowest tally are eliminated together and form the next
    group from the bottom of the collective order; the rounds repeat until none remain, so the last
    survivors are on top. Score = the round in which the alternative was eliminated (higher is
    better).
    Ties: alternatives with equal lowest tallies leave in the same round and stay tied; this
    simultaneous elimination replaces the usual arbitrary tie-breaking. pref-voting's
    ``instant_runoff_ranking`` agrees on ballots without ties in any round.
    Complexity: O(K) rounds of O(V K) each: O(V K^2) per item, vectorised over items.
    Axioms: anonymity, neutrality; with linear ballots the Condorcet loser never wins, but with
    tied ballots split first-choice shares can tie everyone (found by the property tests), so it
    is not claimed; classic IRV is independent of
    clones (Tideman 1987), but with simultaneous elimination this holds only when no two
    alternatives tie for the lowest tally (an original and its clone can tie and leave together),
    so it is not claimed; NOT monotonic, not Condorcet-consistent.
    Reference: T. N. Tideman, "Independence of clones as a criterion for voting rules", Soc. Choice
    Welf. 4 (1987); Handbook of Computational Social Choice (2016), ch. 4.
    """
    n, _, k = group.ranks.shape
    remaining = np.ones((n, k), dtype=bool)
    eliminated_in = np.zeros((n, k))
    for round_ in range(k):
        tally = np.where(remaining, first_choice_tallies(group, remaining), np.inf)
        low = remaining & (tally == tally.min(axis=1, keepdims=True))
        eliminated_in[low] = round_
        remaining &= ~low
        if not remaining.any():
            break
    return RuleOutput(eliminated_in, levels_from_scores(eliminated_in))
