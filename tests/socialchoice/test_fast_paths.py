"""The speed paths agree exactly with the general implementations they short-cut."""

from __future__ import annotations

import numpy as np
import pytest

from socialchoice import BatchProfile, Profile
from socialchoice.orders import levels_from_defeats, levels_from_scores
from socialchoice.pairwise import (
    _exact_margins,
    counted_margins,
    margins,
    snap,
    total_weight,
    win_counts,
)
from socialchoice.profiles import (
    ProfileGroup,
    _all_permutations,
    _fractional_chunk,
    fractional_ranks,
)
from socialchoice.rules.likelihood import bradley_terry
from socialchoice.rules.ranked_pairs import (
    _dense_levels,
    _lock_in_order,
    _lock_levels_masks,
    _lock_masks,
    _lock_tie_breaker,
    _lock_together,
)
from socialchoice.rules.runoff import (
    _linear_order,
    _runoff_general,
    _runoff_linear,
    _runoff_one,
    instant_runoff,
)


def random_group(n: int, v: int, k: int, seed: int, ties: bool) -> ProfileGroup:
    rng = np.random.default_rng(seed)
    high = k // 2 if ties else k
    g = rng.integers(0, max(high, 1), size=(n * v, k)) if ties else np.argsort(
        rng.random((n * v, k)), axis=1)
    item = rng.integers(0, n, size=n * v)
    return BatchProfile.from_rank_arrays(g, item, np.full(n, k)).groups[0]


@pytest.mark.parametrize(("v", "ties"), [(7, True), (40, False), (300, True), (600, False)])
def test_counted_margins_equal_float_margins(v: int, ties: bool) -> None:
    grp = random_group(60, v, 6, seed=v, ties=ties)
    approx = np.zeros((grp.ranks.shape[0], grp.k, grp.k))
    upper = _exact_margins(grp, approx)
    expected = snap(upper - upper.transpose(0, 2, 1), total_weight(grp))
    np.testing.assert_array_equal(margins(grp), expected)
    wins = win_counts(grp.ranks, grp.weights > 0)
    np.testing.assert_array_equal(wins - wins.transpose(0, 2, 1), expected)


def test_counted_margins_skip_weight_zero_voters() -> None:
    grp = random_group(30, 50, 5, seed=1, ties=True)
    w = grp.weights.copy()
    w[:, ::3] = 0.0
    dropped = ProfileGroup(grp.items, grp.ranks, w, grp.partial)
    approx = np.zeros((30, 5, 5))
    upper = _exact_margins(dropped, approx)
    np.testing.assert_array_equal(margins(dropped), upper - upper.transpose(0, 2, 1))


@pytest.mark.parametrize("k", [2, 5, 8])
def test_mask_locking_equals_boolean_locking(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 400
    edge = rng.random((n, k * k)) < 0.6
    edge[:, np.arange(k) * (k + 1)] = False
    order = np.argsort(np.where(edge, rng.random((n, k * k)), 2.0), axis=1)
    steps = int(edge.sum(axis=1).max())
    np.testing.assert_array_equal(
        _lock_masks(edge, order[:, :steps], k), _lock_in_order(edge, order[:, :steps], k))


@pytest.mark.parametrize(("n", "v"), [(1, 1000), (3, 70), (1, 1)])
def test_packed_margins_equal_float_margins(n: int, v: int) -> None:
    grp = random_group(n, v, 8, seed=n + v, ties=True)
    upper = _exact_margins(grp, np.zeros((grp.ranks.shape[0], 8, 8)))
    np.testing.assert_array_equal(margins(grp), upper - upper.transpose(0, 2, 1))


def test_linear_ballots_take_the_permutation_shortcut() -> None:
    rng = np.random.default_rng(5)
    g = np.argsort(rng.random((50, 6)), axis=1)
    np.testing.assert_array_equal(fractional_ranks(g), _fractional_chunk(g, "bottom"))
    g[3, 1] = g[3, 0]  # a tie: no longer a permutation
    assert not _all_permutations(g)
    np.testing.assert_array_equal(fractional_ranks(g), _fractional_chunk(g, "bottom"))


@pytest.mark.parametrize(("n", "v", "k"), [(1, 1000, 8), (1, 5, 4), (200, 9, 5), (50, 40, 7)])
def test_linear_runoff_equals_general_runoff(n: int, v: int, k: int) -> None:
    grp = random_group(n, v, k, seed=n * v + k, ties=False)
    rng = np.random.default_rng(k)
    w = grp.weights * rng.integers(0, 3, size=grp.weights.shape)
    for weights in (grp.weights, w):
        g = ProfileGroup(grp.items, grp.ranks, weights, grp.partial)
        linear = _linear_order(g)
        assert linear is not None
        expected = _runoff_general(g)
        got = _runoff_one(linear[0], weights[0])[None] if n == 1 else _runoff_linear(
            linear, weights)
        np.testing.assert_array_equal(got, expected)
    tied = random_group(n, v, k, seed=1, ties=True)
    assert _linear_order(tied) is None or k <= 2


@pytest.mark.parametrize("k", [3, 8])
def test_single_item_locking_equals_batch_locking(k: int) -> None:
    rng = np.random.default_rng(k + 100)
    edge = rng.random((30, k * k)) < 0.6
    edge[:, np.arange(k) * (k + 1)] = False
    order = np.argsort(np.where(edge, rng.random((30, k * k)), 2.0), axis=1)
    batch = _lock_masks(edge, order, k)
    for i in range(30):
        np.testing.assert_array_equal(_lock_masks(edge[i : i + 1], order[i : i + 1], k)[0],
                                      batch[i])


@pytest.mark.parametrize(("v", "k"), [(3, 5), (6, 8), (40, 6), (1, 4)])
def test_mask_group_locking_equals_boolean_group_locking(v: int, k: int) -> None:
    grp = random_group(300, v, k, seed=v * k, ties=True)
    m = margins(grp)
    n = m.shape[0]
    level = _dense_levels(m.reshape(n, -1), (m > 0).reshape(n, -1)).reshape(n, k, k)
    reach = np.broadcast_to(np.eye(k, dtype=bool), (n, k, k)).copy()
    for t in range(int(level.max(initial=-1)) + 1):
        cand = (level == t) & ~reach.transpose(0, 2, 1)
        reach = _lock_together(reach, cand)
    np.testing.assert_array_equal(_lock_levels_masks(level, k), reach)


def test_single_item_levels_equal_batch_levels() -> None:
    rng = np.random.default_rng(9)
    k = 7
    perm = np.argsort(rng.random((200, k)), axis=1)
    pos = np.argsort(perm, axis=1)
    defeats = (pos[:, :, None] < pos[:, None, :]) & (rng.random((200, k, k)) < 0.3)
    batch = levels_from_defeats(defeats)
    for i in range(200):
        np.testing.assert_array_equal(levels_from_defeats(defeats[i : i + 1])[0], batch[i])
    with pytest.raises(ValueError, match="cycle"):
        levels_from_defeats(np.ones((1, 3, 3), dtype=bool))


@pytest.mark.parametrize("n", [1, 40, 400])
def test_ranks_that_are_not_fractional_ranks_count_right(n: int) -> None:
    grp = random_group(n, 300, 5, seed=n, ties=False)
    odd = grp.ranks + np.float32(0.3) * (np.arange(5, dtype=np.float32) % 2)
    odd[0, 0, 0] = np.nan
    weird = ProfileGroup(grp.items, odd, grp.weights, "ignore")
    assert n * 300 * 25 <= 1 << 20 or counted_margins(weird) is None  # int8 path declines
    upper = _exact_margins(weird, np.zeros((n, 5, 5)))
    expected = snap(upper - upper.transpose(0, 2, 1), total_weight(weird))
    np.testing.assert_array_equal(margins(weird), expected)


@pytest.mark.parametrize("tol", [0.0, 0.25])
def test_single_item_score_levels_equal_batch_levels(tol: float) -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random((300, 6)) * 4) / 2  # many exact ties and near ties
    scores[0] = np.nan
    scores[1, 2] = np.nan
    batch = levels_from_scores(scores, tol)
    for i in range(300):
        np.testing.assert_array_equal(levels_from_scores(scores[i : i + 1], tol)[0], batch[i])


def test_permutation_check_rejects_out_of_range_values() -> None:
    assert _all_permutations(np.array([[0, 1, 2], [2, 0, 1]]))
    assert not _all_permutations(np.array([[-1, 1, 2]]))
    assert not _all_permutations(np.array([[0, 1, 3]]))
    assert not _all_permutations(np.array([[0, 0, 2]], dtype=np.int8))
    assert not _all_permutations(np.array([[127, 1, 2]], dtype=np.int8))


@pytest.mark.parametrize(("v", "k"), [(4, 6), (101, 8), (1, 3)])
def test_single_item_tie_breaker_locking_equals_batch(v: int, k: int) -> None:
    grp = random_group(150, v, k, seed=v + k, ties=True)
    m = margins(grp)
    position = np.argsort(np.random.default_rng(v).permutation(k))
    batch = _lock_tie_breaker(m, position)
    for i in range(150):
        np.testing.assert_array_equal(_lock_tie_breaker(m[i : i + 1], position)[0], batch[i])


@pytest.mark.parametrize(("v", "k"), [(1000, 8), (7, 1), (30, 3), (200, 10), (60, 6)])
def test_single_item_ballot_type_runoff_equals_general(v: int, k: int) -> None:
    rng = np.random.default_rng(v + k)
    g = np.argsort(rng.random((v, k)), axis=1)[rng.integers(0, max(v // 4, 1), size=v)]
    alts = [f"a{i}" for i in range(k)]
    for weights in (None, rng.integers(0, 4, size=v).astype(float)):
        profile = Profile.from_group_indices(alts, g, weights)
        assert profile.linear
        grp = profile.as_group()
        out = instant_runoff(grp)
        slow = ProfileGroup(grp.items, grp.ranks, grp.weights, grp.partial)
        assert not slow.linear
        np.testing.assert_array_equal(out.scores, instant_runoff(slow).scores)
        np.testing.assert_array_equal(out.scores, _runoff_general(slow))
        np.testing.assert_array_equal(out.extra["margins"], margins(slow))


@pytest.mark.parametrize(("v", "k", "partial"), [(1000, 8, "bottom"), (40, 5, "bottom"),
                                                 (40, 5, "ignore")])
def test_single_item_bradley_terry_equals_batch(v: int, k: int, partial: str) -> None:
    grp = random_group(3, v, k, seed=v + k, ties=True)
    grp = ProfileGroup(grp.items, grp.ranks, grp.weights, partial)  # type: ignore[arg-type]
    batch = bradley_terry(grp)
    for i in range(3):
        one = bradley_terry(grp.take(np.array([i])))
        np.testing.assert_allclose(one.scores[0], batch.scores[i], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(one.levels[0], batch.levels[i])


@pytest.mark.parametrize("v", [1, 63, 1000])
def test_linear_flag_margins_equal_float_margins(v: int) -> None:
    rng = np.random.default_rng(v)
    g = np.argsort(rng.random((v, 8)), axis=1)
    weights = rng.integers(0, 2, size=v).astype(float)
    profile = Profile.from_group_indices([f"a{i}" for i in range(8)], g, weights)
    grp = profile.as_group()
    assert grp.linear
    plain = ProfileGroup(grp.items, grp.ranks, grp.weights, grp.partial)
    np.testing.assert_array_equal(margins(grp), margins(plain))


@pytest.mark.parametrize(("v", "k", "ties"), [(1000, 8, False), (9, 5, True), (30, 7, True)])
def test_single_item_fixed_order_ranked_pairs_equals_batch(v: int, k: int, ties: bool) -> None:
    from socialchoice.rules.ranked_pairs import ranked_pairs

    grp = random_group(2, v, k, seed=v * k, ties=ties)
    tie_breaker = list(np.random.default_rng(k).permutation(k + 1))
    batch = ranked_pairs(grp, tie_breaker)
    for i in range(2):
        one = ranked_pairs(grp.take(np.array([i])), tie_breaker)
        np.testing.assert_array_equal(one.levels[0], batch.levels[i])
        np.testing.assert_array_equal(one.scores[0], batch.scores[i])
        np.testing.assert_array_equal(one.extra["locked"][0], batch.extra["locked"][i])


@pytest.mark.parametrize(("v", "k", "ties"), [(1000, 8, False), (4, 5, True), (6, 6, False),
                                              (30, 7, True), (3, 4, True)])
def test_single_item_default_ranked_pairs_equals_batch(v: int, k: int, ties: bool) -> None:
    """Few voters give many equal margins, so the group locking and its cycle skipping run."""
    from socialchoice.rules.ranked_pairs import ranked_pairs

    grp = random_group(200, v, k, seed=v * k + 1, ties=ties)
    batch = ranked_pairs(grp)
    for i in range(200):
        one = ranked_pairs(grp.take(np.array([i])))
        np.testing.assert_array_equal(one.levels[0], batch.levels[i])
        np.testing.assert_array_equal(one.scores[0], batch.scores[i])
        np.testing.assert_array_equal(one.extra["locked"][0], batch.extra["locked"][i])


@pytest.mark.parametrize("rule", ["plurality", "borda", "instant_runoff", "ranked_pairs",
                                  "copeland"])
@pytest.mark.parametrize(("v", "weighted"), [(1, False), (40, True), (1000, False)])
def test_linear_flag_gives_the_general_result(rule: str, v: int, weighted: bool) -> None:
    from socialchoice import aggregate

    rng = np.random.default_rng(v)
    g = np.argsort(rng.random((v, 6)), axis=1)
    weights = rng.integers(1, 4, size=v).astype(float) if weighted else None
    flagged = Profile.from_group_indices(list("abcdef"), g, weights)
    assert flagged.linear
    plain = Profile(flagged.alternatives, flagged.ranks, flagged.weights)
    a, b = aggregate(flagged, rule), aggregate(plain, rule)
    assert a.order == b.order and a.scores == b.scores


def _plackett_luce_by_hand(ranks: np.ndarray, weights: np.ndarray, reg: float) -> np.ndarray:
    """One item's ridge-regularised Plackett-Luce theta, written out ballot by ballot (Breslow
    ties: a ranked alternative is chosen from every ranked one not above it) and maximised by
    scipy's BFGS: an independent reference for the vectorised Newton fit."""
    from scipy.optimize import minimize

    events = []
    for r, w in zip(ranks, weights / weights.sum(), strict=True):
        ranked = [a for a in range(len(r)) if not np.isnan(r[a])]
        for a in ranked:
            events.append((w, a, [b for b in ranked if r[b] >= r[a]]))

    def minus_loglik(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = -reg / 2 * theta @ theta, -reg * theta
        for w, a, chosen_from in events:
            z = theta[chosen_from]
            p = np.exp(z - z.max())
            p /= p.sum()
            value += w * (theta[a] - z.max() - np.log(np.exp(z - z.max()).sum()))
            grad[a] += w
            grad[chosen_from] -= w * p
        return -value, -grad

    fit = minimize(minus_loglik, np.zeros(ranks.shape[1]), jac=True, method="BFGS",
                   options={"gtol": 1e-11, "maxiter": 10_000})
    return fit.x - fit.x.mean()


@pytest.mark.parametrize(("partial", "reg"), [("bottom", 0.01), ("ignore", 0.01), ("bottom", 0.5)])
def test_plackett_luce_equals_a_ballot_by_ballot_fit(partial: str, reg: float) -> None:
    from socialchoice.rules.likelihood import plackett_luce

    rng = np.random.default_rng(7)
    groups = rng.integers(-1, 3, size=(6, 9, 4))  # ties and unranked responses
    ranks = fractional_ranks(groups, partial)  # type: ignore[arg-type]
    weights = rng.integers(1, 4, size=(6, 9)).astype(float)
    group = ProfileGroup(np.arange(6), ranks, weights, partial)  # type: ignore[arg-type]
    out = plackett_luce(group, reg)
    for i in range(6):
        expected = _plackett_luce_by_hand(ranks[i], weights[i], reg)
        np.testing.assert_allclose(out.scores[i], expected, atol=1e-6)


def test_plackett_luce_layouts_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense layouts (choice sets counted by one bincount, events padded per item) give what
    the sorted event list and per-item segment sums give; an item with 50x the voters of the
    others takes the latter by itself."""
    from socialchoice.rules import likelihood

    skewed = BatchProfile.from_rank_arrays(
        np.random.default_rng(3).integers(-1, 5, size=(40 * 3 + 2000, 6)),
        np.r_[np.repeat(np.arange(40), 3), np.full(2000, 40)], np.full(41, 6),
    ).groups[0]
    rows = likelihood._choice_events(skewed)[0]
    assert len(skewed.items) * np.bincount(rows).max() > likelihood._DENSE_FACTOR * len(rows)
    unranked = fractional_ranks(np.random.default_rng(4).integers(-1, 3, (8, 5, 3)), "ignore")
    for grp in (random_group(50, 20, 4, seed=1, ties=True),
                random_group(30, 12, 6, seed=2, ties=False),
                ProfileGroup(np.arange(8), unranked, np.ones((8, 5)), "ignore"), skewed):
        dense, events = likelihood.plackett_luce(grp), likelihood._choice_events(grp)
        with monkeypatch.context() as m:
            m.setattr(likelihood, "_DENSE_KEYS", 0)
            m.setattr(likelihood, "_DENSE_FACTOR", 0)
            sparse, sparse_events = likelihood.plackett_luce(grp), likelihood._choice_events(grp)
        for a, b in zip(events, sparse_events, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(dense.scores, sparse.scores, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(dense.levels, sparse.levels)
