"""Every registered rule on the named profiles, with the expected collective orders."""

from __future__ import annotations

import pytest

from socialchoice import REGISTRY, Profile, aggregate

from .helpers import canonical, linear

RULES = sorted(REGISTRY)
CONDORCET_RULES = sorted(name for name, info in REGISTRY.items() if info.condorcet)


def _order(profile: Profile, rule: str) -> list[frozenset[str]]:
    return canonical(aggregate(profile, rule).order)


@pytest.mark.parametrize("rule", RULES)
def test_condorcet_cycle_ties_everything(rule: str) -> None:
    cycle = linear("abc", ["abc", "bca", "cab"])
    assert _order(cycle, rule) == [frozenset("abc")]


@pytest.mark.parametrize("rule", RULES)
def test_all_tied_ballots_give_one_group(rule: str) -> None:
    tied = Profile.from_weak_orders(list("abc"), [[["a", "b", "c"]]] * 4)
    assert _order(tied, rule) == [frozenset("abc")]


@pytest.mark.parametrize("rule", RULES)
def test_unanimous_linear_profile(rule: str) -> None:
    unanimous = linear("abcd", ["abcd"] * 5)
    expected = [frozenset(c) for c in "abcd"]
    if rule in ("plurality", "instant_runoff", "minimax"):
        # each of b, c, d has zero first places and loses 5-0 to a: the rule cannot tell them apart
        expected = [frozenset("a"), frozenset("bcd")]
    assert _order(unanimous, rule) == expected


@pytest.mark.parametrize("rule", RULES)
def test_one_voter_with_ties_is_reproduced(rule: str) -> None:
    ballot = [["b"], ["a", "c"], ["d"]]
    one = Profile.from_weak_orders(list("abcd"), [ballot])
    expected = canonical(ballot)
    if rule in ("plurality", "instant_runoff", "minimax"):
        expected = [frozenset("b"), frozenset("acd")]
    assert _order(one, rule) == expected


# 3 voters a > b > c, 2 voters b > c > a: a beats b and c 3-2, but Borda puts b first (7 vs 6).
CONDORCET_VS_BORDA = linear("abc", ["abc", "bca"], weights=[3, 2])


@pytest.mark.parametrize("rule", CONDORCET_RULES)
def test_condorcet_winner_that_borda_misses(rule: str) -> None:
    assert _order(CONDORCET_VS_BORDA, rule)[0] == frozenset("a")


def test_borda_misses_the_condorcet_winner() -> None:
    result = aggregate(CONDORCET_VS_BORDA, "borda")
    assert result.order == [["b"], ["a"], ["c"]]
    assert result.scores == {"a": 6.0, "b": 7.0, "c": 2.0}


# a beats b 3-2; adding b2, a clone of b, makes Borda pick b ("teaming").
WITHOUT_CLONE = linear("ab", ["ab", "ba"], weights=[3, 2])
WITH_CLONE = linear("abx", ["abx", "bxa"], weights=[3, 2])


@pytest.mark.parametrize("rule", sorted(n for n, i in REGISTRY.items() if i.clone_independent))
def test_clone_independent_rules_ignore_the_clone(rule: str) -> None:
    assert _order(WITHOUT_CLONE, rule)[0] == frozenset("a")
    assert _order(WITH_CLONE, rule)[0] == frozenset("a")


def test_borda_rewards_the_clone() -> None:
    assert aggregate(WITHOUT_CLONE, "borda").order[0] == ["a"]
    assert aggregate(WITH_CLONE, "borda").order[0] == ["b"]


def test_default_rule_is_clone_independent_condorcet() -> None:
    from socialchoice import DEFAULT_RULE

    info = REGISTRY[DEFAULT_RULE]
    assert DEFAULT_RULE in ("ranked_pairs", "schulze")
    assert info.condorcet and info.clone_independent


def test_random_tie_policy_is_recorded_and_reproducible() -> None:
    cycle = linear("abc", ["abc", "bca", "cab"])
    first = aggregate(cycle, "schulze", tie_policy="random", seed=7)
    again = aggregate(cycle, "schulze", tie_policy="random", seed=7)
    assert first.tie_break is not None and first.tie_break["seed"] == 7
    assert [g[0] for g in first.order] == first.tie_break["priority"]
    assert first.order == again.order and len(first.order) == 3
    unseeded = aggregate(cycle, "schulze", tie_policy="random")
    assert unseeded.tie_break is not None
    replay = aggregate(cycle, "schulze", tie_policy="random", seed=unseeded.tie_break["seed"])
    assert replay.order == unseeded.order


def test_random_tie_break_keeps_strict_preferences() -> None:
    profile = Profile.from_weak_orders(list("abcd"), [[["a"], ["b", "c"], ["d"]]])
    for seed in range(10):
        order = aggregate(profile, "borda", tie_policy="random", seed=seed).order
        assert order[0] == ["a"] and order[-1] == ["d"] and len(order) == 4


def test_kept_ties_record_no_tie_break() -> None:
    assert aggregate(linear("ab", ["ab"]), "borda").tie_break is None


def test_copeland_tie_credit_changes_scores() -> None:
    profile = Profile.from_weak_orders(list("abc"), [[["a", "b"], ["c"]]])
    assert aggregate(profile, "copeland", tie_credit=0.0).scores == {"a": 1, "b": 1, "c": 0}
    assert aggregate(profile, "copeland", tie_credit=1.0).scores == {"a": 2, "b": 2, "c": 0}


def test_kemeny_reports_number_of_optimal_rankings() -> None:
    cycle = linear("abc", ["abc", "bca", "cab"])
    result = aggregate(cycle, "kemeny")
    assert result.extra["n_optimal"] == 3.0 and result.extra["objective"] == 1.0


def test_exact_rules_refuse_large_k_instead_of_approximating() -> None:
    alts = [f"r{i}" for i in range(17)]
    profile = Profile.from_weak_orders(alts, [[[a] for a in alts]])
    with pytest.raises(ValueError, match="exact only up to K = 16"):
        aggregate(profile, "kemeny")
    with pytest.raises(ValueError, match="exact only up to K = 8"):
        aggregate(Profile.from_weak_orders(alts[:9], [[[a] for a in alts[:9]]]), "egalitarian")


def test_egalitarian_protects_the_minority_group() -> None:
    # Majority group g1 (3 voters): a > b > c; minority g2 (2 voters): b > c > a.
    # Kemeny follows the majority (g2's agreement with a > b > c is tau -1/3); the max-min
    # ranking b > a > c gives both groups tau +1/3.
    profile = Profile.from_weak_orders(
        list("abc"),
        [[["a"], ["b"], ["c"]]] * 3 + [[["b"], ["c"], ["a"]]] * 2,
        groups=["g1"] * 3 + ["g2"] * 2,
    )
    assert aggregate(profile, "kemeny").order == [["a"], ["b"], ["c"]]
    assert aggregate(profile, "egalitarian").order == [["b"], ["a"], ["c"]]


def test_ranked_pairs_tie_breaker_gives_a_linear_order() -> None:
    cycle = linear("abc", ["abc", "bca", "cab"])
    result = aggregate(cycle, "ranked_pairs", tie_breaker=["c", "a", "b"])
    assert sorted(len(g) for g in result.order) == [1, 1, 1]
