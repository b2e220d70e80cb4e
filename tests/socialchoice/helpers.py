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


def monotonicity_counterexamples(
    rule: str, n: int, seed: int, k: int = 4, max_voters: int = 10, **params: object
) -> np.ndarray:
    """A batched random search for monotonicity failures; returns the failing item numbers.

    ``n`` random profiles (K alternatives, 2..``max_voters`` unit-weight ballots, half of them
    with ties); in each, a random top-group alternative is raised in a random ballot to a random
    strictly better place (into a better tie group, or a new group between two). Counterexamples
    like the default Ranked Pairs' need many equal margins, which few voters give: about one
    profile in a thousand, so the search runs whole batches rather than hypothesis examples.
    """
    rng = np.random.default_rng(seed)
    v_of = rng.integers(2, max_voters + 1, size=n)
    item = np.repeat(np.arange(n), v_of)
    ties = rng.random(n) < 0.5
    g = np.where(ties[item][:, None], rng.integers(0, k, size=(len(item), k)),
                 np.argsort(rng.random((len(item), k)), axis=1))
    before = _batch_levels(2 * g + 2, item, n, k, rule, params)
    a = np.argmax(np.where(before == 0, rng.random((n, k)), -1.0), axis=1)
    starts = np.concatenate(([0], np.cumsum(v_of)[:-1]))
    row = starts + rng.integers(0, v_of)
    raised = 2 * g + 2
    old = raised[row, a]
    raised[row, a] = rng.integers(0, old - 1) + 1  # odd or even, always below the old value
    after = _batch_levels(raised, item, n, k, rule, params)
    return np.flatnonzero(after[np.arange(n), a] != 0)


def _batch_levels(g: np.ndarray, item: np.ndarray, n: int, k: int, rule: str,
                  params: dict[str, object]) -> np.ndarray:
    from socialchoice import BatchProfile, aggregate_batch

    batch = BatchProfile.from_rank_arrays(g, item, np.full(n, k))
    out = aggregate_batch(batch, rule, **params).outputs[0]
    levels = np.empty_like(out.levels)
    levels[batch.groups[0].items] = out.levels
    return levels


def clone_counterexamples(rule: str, n: int, seed: int, k: int = 4, max_voters: int = 8
                          ) -> np.ndarray:
    """A batched random search for failures of independence of clones; returns failing items.

    ``n`` random linear profiles; in each a random alternative gets a clone (column K) placed
    right above or right below it in every ballot. A failure: the top group's other
    alternatives change, or the original was on top and neither it nor its clone is (or the
    reverse)."""
    rng = np.random.default_rng(seed)
    v_of = rng.integers(1, max_voters + 1, size=n)
    item = np.repeat(np.arange(n), v_of)
    ranks = np.argsort(np.argsort(rng.random((len(item), k)), axis=1), axis=1)
    c = rng.integers(0, k, size=n)
    side = np.where(rng.random(len(item)) < 0.5, -1, 1)
    doubled = np.column_stack([2 * ranks, 2 * ranks[np.arange(len(item)), c[item]] + side])
    cloned = np.argsort(np.argsort(doubled, axis=1), axis=1)
    before = _batch_levels(ranks, item, n, k, rule, {}) == 0
    after = _batch_levels(cloned, item, n, k + 1, rule, {}) == 0
    rows = np.arange(n)
    others = np.ones((n, k), dtype=bool)
    others[rows, c] = False
    bad = np.any((before != after[:, :k]) & others, axis=1)
    bad |= before[rows, c] != (after[rows, c] | after[:, k])
    return np.flatnonzero(bad)
