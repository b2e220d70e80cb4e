"""Profiles and batches: construction, partial-ranking policies, batch vs single-item results."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialchoice import BatchProfile, Profile, aggregate, aggregate_batch
from socialchoice.profiles import _encode_slow, encode_weak_orders


def test_ties_get_equal_fractional_ranks() -> None:
    p = Profile.from_weak_orders(["r1", "r2", "r3", "r4"], [[["r3"], ["r1", "r4"], ["r2"]]])
    assert p.ranks.tolist() == [[1.5, 3.0, 0.0, 1.5]]
    assert p.weak_orders() == [[["r3"], ["r1", "r4"], ["r2"]]]


def test_partial_bottom_ties_unranked_below() -> None:
    p = Profile.from_weak_orders(list("abcd"), [[["c"], ["a"]]], partial="bottom")
    assert p.ranks.tolist() == [[1.0, 2.5, 0.0, 2.5]]
    assert aggregate(p, "borda").order == [["c"], ["a"], ["b", "d"]]


def test_partial_ignore_skips_unranked_pairs() -> None:
    # Voter 1 ranks only a > b; voter 2 ranks c > b > a. Under "ignore" voter 1 says nothing
    # about c, so c vs a is decided by voter 2 alone.
    orders = [[["a"], ["b"]], [["c"], ["b"], ["a"]]]
    p = Profile.from_weak_orders(list("abc"), orders, partial="ignore")
    assert np.isnan(p.ranks[0, 2])
    result = aggregate(p, "copeland")
    assert result.margin("c", "a") == pytest.approx(0.5)
    assert result.margin("a", "b") == 0.0
    bottom = aggregate(Profile.from_weak_orders(list("abc"), orders), "copeland")
    assert bottom.margin("c", "a") == 0.0


def test_invalid_ballots_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown alternative"):
        Profile.from_weak_orders(["a", "b"], [[["a"], ["z"]]])
    with pytest.raises(ValueError, match="listed twice"):
        Profile.from_weak_orders(["a", "b"], [[["a"], ["a", "b"]]])
    with pytest.raises(ValueError, match="non-negative"):
        Profile.from_weak_orders(["a", "b"], [[["a"], ["b"]]], weights=[-1])
    with pytest.raises(ValueError, match="partial"):
        Profile.from_weak_orders(["a", "b"], [[["a"], ["b"]]], partial="top")  # type: ignore[arg-type]


def test_weights_count_like_repeated_ballots() -> None:
    weighted = Profile.from_weak_orders(list("abc"), [[["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]]],
                                        weights=[2, 1])
    repeated = Profile.from_weak_orders(list("abc"), [[["a"], ["b"], ["c"]]] * 2
                                        + [[["c"], ["b"], ["a"]]])
    for rule in ("borda", "schulze", "kemeny", "plackett_luce"):
        assert aggregate(weighted, rule).order == aggregate(repeated, rule).order


def _mixed_items() -> tuple[list[list[str]], list[list[list[list[str]]]]]:
    rng = np.random.default_rng(5)
    alts, orders = [], []
    for i in range(30):
        k = int(rng.integers(2, 6))
        ids = [f"i{i}r{j}" for j in range(k)]
        ballots = []
        for _ in range(int(rng.integers(1, 6))):
            g = rng.integers(0, k, size=k)
            ballots.append([[ids[j] for j in np.flatnonzero(g == lv)] for lv in np.unique(g)])
        alts.append(ids)
        orders.append(ballots)
    return alts, orders


@pytest.mark.parametrize("rule", ["borda", "copeland", "ranked_pairs", "kemeny", "instant_runoff",
                                  "bradley_terry", "split_cycle"])
def test_batch_with_mixed_k_matches_single_items(rule: str) -> None:
    alts, orders = _mixed_items()
    batch = BatchProfile.from_weak_orders(alts, orders)
    results = aggregate_batch(batch, rule).results()
    for ids, ballots, res in zip(alts, orders, results, strict=True):
        single = aggregate(Profile.from_weak_orders(ids, ballots), rule)
        assert res.order == single.order
        assert res.scores == pytest.approx(single.scores)


def test_rank_arrays_fast_path_matches_contract_form() -> None:
    groups = np.array([[0, 1, 1], [2, 0, 1], [0, -1, -1], [1, 0, -1]])
    item = np.array([0, 0, 1, 1])
    fast = BatchProfile.from_rank_arrays(groups, item, [3, 2], alternatives=[list("abc"), ["x", "y"]])
    slow = BatchProfile.from_weak_orders(
        [list("abc"), ["x", "y"]],
        [[[["a"], ["b", "c"]], [["b"], ["c"], ["a"]]], [[["x"]], [["y"], ["x"]]]],
    )
    assert aggregate_batch(fast, "borda").orders() == aggregate_batch(slow, "borda").orders()
    assert fast.profile(1).ranks.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_batch_random_tie_policy_records_seed_per_item() -> None:
    batch = BatchProfile.from_weak_orders([list("abc")] * 3, [[[["a", "b", "c"]]]] * 3)
    res = aggregate_batch(batch, "borda", tie_policy="random", seed=11)
    again = aggregate_batch(batch, "borda", tie_policy="random", seed=11)
    assert res.orders() == again.orders()
    first = res.result(0)
    assert first.tie_break is not None and first.tie_break["seed"] == 11
    assert [g[0] for g in first.order] == first.tie_break["priority"]


@st.composite
def weak_order_lists(draw: st.DrawFn) -> tuple[list[str], list[list[list[str]]]]:
    """Contract-form ballots: linear, tied or partial, over short or long ids."""
    k = draw(st.integers(1, 7))
    alts = [f"r{i}" for i in range(k)] if draw(st.booleans()) else list("abcdefg"[:k])
    orders = []
    for _ in range(draw(st.integers(0, 12))):
        listed = draw(st.permutations(alts))[: draw(st.integers(0, k))]
        cuts = sorted(draw(st.sets(st.integers(1, max(len(listed) - 1, 1)), max_size=k)))
        bounds = [0, *[c for c in cuts if c < len(listed)], len(listed)]
        orders.append([listed[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a])
    return alts, orders


@settings(max_examples=60, deadline=None)
@given(case=weak_order_lists())
def test_fast_encoding_equals_the_per_ballot_loop(case: tuple[list[str], list[list[list[str]]]]
                                                  ) -> None:
    alts, orders = case
    slow = _encode_slow({a: i for i, a in enumerate(alts)}, orders)
    np.testing.assert_array_equal(encode_weak_orders(alts, orders), slow)
    as_tuples = [tuple(tuple(g) for g in o) for o in orders]
    np.testing.assert_array_equal(encode_weak_orders(alts, as_tuples), slow)
    built = Profile.from_weak_orders(alts, orders)
    np.testing.assert_array_equal(built.ranks, Profile.from_group_indices(alts, slow).ranks)


@pytest.mark.parametrize(("n", "k", "rule"), [(300, 3, "borda"), (300, 4, "schulze"),
                                             (40, 6, "copeland"), (1, 1, "borda")])
def test_batch_orders_and_level_matrix_decode_like_single_results(n: int, k: int, rule: str
                                                                  ) -> None:
    rng = np.random.default_rng(n * k)
    v = 3
    g = rng.integers(0, k, size=(n * v, k))
    alts = [[f"{i}.{j}" for j in range(k)] for i in range(n)]
    batch = BatchProfile.from_rank_arrays(g, np.repeat(np.arange(n), v), [k] * n, alternatives=alts)
    res = aggregate_batch(batch, rule)
    matrix = res.level_matrix()
    for i, order in enumerate(res.orders()):
        assert order == res.result(i).order == aggregate(batch.profile(i), rule).order
        assert [[alts[i][j] for j in np.flatnonzero(matrix[i] == lv)]
                for lv in range(matrix[i].max() + 1)] == order


def test_ranking_entries_build_the_same_batch_as_weak_orders() -> None:
    """Long-form rows (ranking, column, level), as a database query returns them, shuffled."""
    rng = np.random.default_rng(3)
    alternatives = [list("abc"), list("abcde"), list("ab")]
    orders = [[[["a"], ["b", "c"]], [["c"], ["a"], ["b"]]], [[["e"], ["a"]]], [[["b", "a"]]] * 3]
    ranking, column, level, item_of_ranking = [], [], [], []
    for i, (alts, ballots) in enumerate(zip(alternatives, orders, strict=True)):
        for ballot in ballots:
            for lv, group in enumerate(ballot):
                for alt in group:
                    ranking.append(len(item_of_ranking))
                    column.append(alts.index(alt))
                    level.append(lv)
            item_of_ranking.append(i)
    shuffle = rng.permutation(len(ranking))
    weights = rng.integers(1, 4, size=len(item_of_ranking)).astype(float)
    from_rows = BatchProfile.from_ranking_entries(
        np.array(ranking)[shuffle], np.array(column)[shuffle], np.array(level)[shuffle],
        np.array(item_of_ranking), [3, 5, 2], weights, alternatives)
    per_item = np.split(weights, np.cumsum([len(o) for o in orders])[:-1])
    from_lists = BatchProfile.from_weak_orders(alternatives, orders, per_item)
    for i in range(3):
        a, b = from_rows.profile(i), from_lists.profile(i)
        np.testing.assert_array_equal(a.ranks, b.ranks)
        np.testing.assert_array_equal(a.weights, b.weights)
    assert aggregate_batch(from_rows, "borda").orders() == aggregate_batch(from_lists,
                                                                           "borda").orders()
