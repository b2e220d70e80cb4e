"""Agreement statistics and preference pairs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from socialchoice import Profile, aggregate
from socialchoice.agreement import (
    _coincidence_alpha,
    _ordinal_delta,
    bootstrap,
    bootstrap_items,
    kendall_tau_b,
    kendall_w,
    krippendorff_alpha,
    mean_pairwise_tau_b,
    pool_agreement,
    rater_distances,
)
from socialchoice.pairs import per_rater_pairs, preference_pairs

from .helpers import linear


def _order(groups: np.ndarray) -> list[list[str]]:
    return [[str(i) for i in np.flatnonzero(groups == lv)] for lv in np.unique(groups)]


def test_tau_b_matches_scipy_on_weak_orders() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(3, 8))
        a, b = rng.integers(0, 4, size=k), rng.integers(0, 4, size=k)
        expected = stats.kendalltau(a, b).statistic
        ours = kendall_tau_b(_order(a), _order(b), [str(i) for i in range(k)])
        assert ours == pytest.approx(expected, nan_ok=True)


def test_kendall_w_perfect_agreement_and_panel_size() -> None:
    same = linear("abcd", ["abcd"] * 4)
    result = kendall_w(same)
    assert result.w == pytest.approx(1.0) and result.n_raters == 4
    assert result.p_value < 0.05


def test_kendall_w_tie_correction_against_formula() -> None:
    p = Profile.from_weak_orders(list("abcd"), [[["a"], ["b", "c"], ["d"]], [["b"], ["a"], ["c", "d"]],
                                                [["a", "b", "c", "d"]]])
    r = p.ranks + 1.0
    s = ((r.sum(axis=0) - 3 * 5 / 2) ** 2).sum()
    t = (2**3 - 2) + (2**3 - 2) + (4**3 - 4)
    assert kendall_w(p).w == pytest.approx(12 * s / (9 * (64 - 4) - 3 * t))


def test_krippendorff_ordinal_reference_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units;
    # the published ordinal alpha is 0.815.
    nan = np.nan
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ])
    assert _coincidence_alpha(data.T, _ordinal_delta) == pytest.approx(0.815, abs=5e-4)


def test_krippendorff_alpha_for_rankings() -> None:
    agree = linear("abcd", ["abcd"] * 5)
    noise = linear("abcd", ["abcd", "dcba", "badc", "cdab"])
    for metric in ("ordinal", "kendall"):
        assert krippendorff_alpha([agree], metric) == pytest.approx(1.0)
        assert krippendorff_alpha([noise], metric) < 0.1
        assert krippendorff_alpha([agree, noise], metric) < 1.0


def test_mean_pairwise_tau_b_and_rater_distances() -> None:
    p = linear("abcd", ["abcd", "abcd", "dcba"])
    assert mean_pairwise_tau_b(p)[0] == pytest.approx((1 - 1 - 1) / 3)
    d = rater_distances(p, [["a"], ["b"], ["c"], ["d"]])
    assert d.distance.tolist() == [0.0, 0.0, 1.0]
    assert d.tau_b.tolist() == [1.0, 1.0, -1.0]


def test_pool_agreement_and_bootstrap() -> None:
    humans = linear("abc", ["abc", "abc", "acb"])
    synthetic = linear("abc", ["cba", "cba"])
    res = pool_agreement(humans, synthetic, [["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]])
    assert res.collective_tau_b == -1.0 and res.within_b == 1.0 and res.mean_cross_tau_b < 0
    ci = bootstrap(humans, lambda p: kendall_w(p).w, n_boot=200)
    assert ci.low <= ci.estimate <= ci.high
    items = bootstrap_items([0.2, 0.4, np.nan, 0.6], n_boot=200)
    assert items.estimate == pytest.approx(0.4) and items.low <= 0.4 <= items.high


def test_pairs_by_strategy_skip_ties() -> None:
    order = [["a"], ["b", "c"], ["d"]]
    scores = {"a": 3.0, "b": 1.0, "c": 1.0, "d": 0.0}
    def names(strategy: str) -> list[tuple[str, str]]:
        return [(p.chosen, p.rejected) for p in preference_pairs(order, scores, strategy)]  # type: ignore[arg-type]
    assert names("all") == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]
    assert names("best_vs_rest") == [("a", "b"), ("a", "c"), ("a", "d")]
    assert names("best_vs_worst") == [("a", "d")]
    assert names("adjacent") == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert preference_pairs([["a", "b"]], {"a": 1, "b": 1}) == []
    with pytest.raises(ValueError, match="unknown strategy"):
        preference_pairs(order, scores, "random")  # type: ignore[arg-type]


def test_pair_margins_from_scores_or_support() -> None:
    result = aggregate(linear("abc", ["abc", "abc", "bca"]), "borda")
    by_score = preference_pairs(result, strategy="best_vs_worst")
    assert by_score[0].margin == result.scores["a"] - result.scores["c"]
    by_support = preference_pairs(result, strategy="best_vs_worst", margin="support")
    assert by_support[0].margin == pytest.approx(1 / 3)


def test_per_rater_pairs_keep_every_ballot() -> None:
    p = Profile.from_weak_orders(list("abc"), [[["a"], ["b", "c"]], [["c"], ["b"], ["a"]]],
                                 weights=[1, 0.5])
    pairs = per_rater_pairs(p)
    assert [(x.rater, x.chosen, x.rejected, x.weight) for x in pairs] == [
        (0, "a", "b", 1.0), (0, "a", "c", 1.0),
        (1, "b", "a", 0.5), (1, "c", "a", 0.5), (1, "c", "b", 0.5),
    ]
