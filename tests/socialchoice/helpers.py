"""Shared hypothesis strategies and helpers for the socialchoice tests (pure, no Django)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from socialchoice import Profile, aggregate
from socialchoice.pairwise import margins

ALTS = tuple("abcdefgh")


@st.composite
def profiles(
    draw: st.DrawFn,
    min_k: int = 2,
    max_k: int = 5,
    max_voters: int = 7,
    ties: bool = True,
    grouped: bool = False,
) -> Profile:
    """Small profiles of weak orders (or linear orders) with integer weights."""
    k = draw(st.integers(min_k, max_k))
    v = draw(st.integers(1, max_voters))
    if ties:
        rows = draw(st.lists(st.lists(st.integers(0, k - 1), min_size=k, max_size=k),
                             min_size=v, max_size=v))
    else:
        rows = [draw(st.permutations(range(k))) for _ in range(v)]
    weights = draw(st.lists(st.integers(1, 3), min_size=v, max_size=v))
    groups = None
    if grouped:
        groups = draw(st.lists(st.sampled_from(["g1", "g2", "g3"]), min_size=v, max_size=v))
    return Profile.from_group_indices(ALTS[:k], np.array(rows), weights, groups=groups)


def canonical(order: list[list[str]]) -> list[frozenset[str]]:
    """A weak order with tie groups as sets (so listing order inside a group is irrelevant)."""
    return [frozenset(g) for g in order]


def top(profile: Profile, rule: str) -> frozenset[str]:
    """The rule's top tie group."""
    return frozenset(aggregate(profile, rule).order[0])


def condorcet_winner(profile: Profile) -> str | None:
    """The alternative with a positive margin over every other, if any."""
    m = margins(profile.as_group())[0]
    k = profile.n_alternatives
    for a in range(k):
        if all(m[a, b] > 0 for b in range(k) if b != a):
            return profile.alternatives[a]
    return None


def condorcet_loser(profile: Profile) -> str | None:
    """The alternative every other beats by a positive margin, if any."""
    m = margins(profile.as_group())[0]
    k = profile.n_alternatives
    for a in range(k):
        if all(m[b, a] > 0 for b in range(k) if b != a):
            return profile.alternatives[a]
    return None


def linear(alts: str, orders: list[str], weights: list[float] | None = None) -> Profile:
    """Profile from linear orders written as strings, e.g. ``linear("abc", ["abc", "bca"])``."""
    return Profile.from_weak_orders(list(alts), [[[c] for c in o] for o in orders], weights)
