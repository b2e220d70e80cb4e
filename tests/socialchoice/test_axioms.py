"""Property tests (hypothesis) of the axioms each registered rule claims in its registration.

Axioms are checked on complete weak orders (ties allowed) with integer weights; clone
independence on linear orders. Results are compared with tie groups as sets.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from socialchoice import REGISTRY, Profile, aggregate

from .helpers import canonical, condorcet_loser, condorcet_winner, profiles, top

SETTINGS = settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def claiming(axiom: str) -> list[str]:
    return sorted(name for name, info in REGISTRY.items() if axiom in info.axioms)


def _same(a: Profile, b: Profile, rule: str) -> None:
    ra, rb = aggregate(a, rule), aggregate(b, rule)
    assert canonical(ra.order) == canonical(rb.order)
    for alt in a.alternatives:
        assert ra.scores[alt] == pytest.approx(rb.scores[alt], abs=1e-6)


def _reorder_voters(p: Profile, perm: list[int]) -> Profile:
    groups = None if p.groups is None else tuple(p.groups[i] for i in perm)
    return Profile(p.alternatives, p.ranks[perm], p.weights[perm], p.partial, groups)


@pytest.mark.parametrize("rule", claiming("anonymity"))
@SETTINGS
@given(data=st.data())
def test_anonymity(rule: str, data: st.DataObject) -> None:
    p = data.draw(profiles(grouped=True))
    perm = data.draw(st.permutations(range(p.n_voters)))
    _same(p, _reorder_voters(p, perm), rule)


@pytest.mark.parametrize("rule", claiming("neutrality"))
@SETTINGS
@given(data=st.data())
def test_neutrality(rule: str, data: st.DataObject) -> None:
    p = data.draw(profiles(grouped=True))
    perm = data.draw(st.permutations(range(p.n_alternatives)))
    moved = Profile(tuple(p.alternatives[i] for i in perm), p.ranks[:, perm], p.weights,
                    p.partial, p.groups)
    _same(p, moved, rule)


@pytest.mark.parametrize("rule", claiming("pareto"))
@SETTINGS
@given(p=profiles(grouped=True))
def test_pareto(rule: str, p: Profile) -> None:
    order = aggregate(p, rule).order
    level = {a: i for i, g in enumerate(order) for a in g}
    for i, a in enumerate(p.alternatives):
        for j, b in enumerate(p.alternatives):
            if np.all(p.ranks[:, i] < p.ranks[:, j]):
                assert level[a] < level[b], (a, b, order)


@pytest.mark.parametrize("rule", claiming("condorcet_winner"))
@SETTINGS
@given(p=profiles())
def test_condorcet_winner_alone_on_top(rule: str, p: Profile) -> None:
    winner = condorcet_winner(p)
    assume(winner is not None)
    assert aggregate(p, rule).order[0] == [winner]


@pytest.mark.parametrize("rule", claiming("condorcet_loser"))
@SETTINGS
@given(p=profiles())
def test_condorcet_loser_never_on_top(rule: str, p: Profile) -> None:
    loser = condorcet_loser(p)
    assume(loser is not None)
    assert loser not in top(p, rule)


@pytest.mark.parametrize("rule", claiming("monotonicity"))
@SETTINGS
@given(data=st.data())
def test_monotonicity(rule: str, data: st.DataObject) -> None:
    p = data.draw(profiles())
    winners = sorted(top(p, rule))
    a = p.alternatives.index(data.draw(st.sampled_from(winners)))
    voter = data.draw(st.integers(0, p.n_voters - 1))
    ranks = p.ranks.copy()
    ranks[voter, a] = -1.0  # strictly above everything in that ballot: a is raised
    raised = Profile(p.alternatives, ranks, p.weights, p.partial)
    assert p.alternatives[a] in top(raised, rule)


@st.composite
def cloned(draw: st.DrawFn) -> tuple[Profile, Profile, str, str]:
    """A linear profile and the same with a clone of one alternative inserted next to it."""
    p = draw(profiles(ties=False, max_k=4))
    c = draw(st.integers(0, p.n_alternatives - 1))
    k = p.n_alternatives
    above = np.array(draw(st.lists(st.booleans(), min_size=p.n_voters, max_size=p.n_voters)))
    pos = p.ranks.astype(np.float64) * 2
    clone_pos = pos[:, c] + np.where(above, -1.0, 1.0)
    ranks = np.argsort(np.argsort(np.column_stack([pos, clone_pos]), axis=1), axis=1)
    alts = p.alternatives + ("z",)
    assert k < 8
    return p, Profile(alts, ranks.astype(np.float32), p.weights), p.alternatives[c], "z"


@pytest.mark.parametrize("rule", claiming("clone_independence"))
@SETTINGS
@given(case=cloned())
def test_independence_of_clones(rule: str, case: tuple[Profile, Profile, str, str]) -> None:
    before, after, original, clone = case
    top_before, top_after = top(before, rule), top(after, rule)
    others = set(before.alternatives) - {original}
    assert top_before & others == top_after & others
    assert (original in top_before) == bool({original, clone} & top_after)


def test_every_rule_claims_anonymity_and_neutrality() -> None:
    for name, info in REGISTRY.items():
        assert {"anonymity", "neutrality"} <= set(info.axioms), name
