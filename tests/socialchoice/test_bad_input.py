"""Bad parameters and arrays fail with a ValueError naming the fault, never a silent answer.

Table-driven: each row is one bad call and a fragment its message must contain.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from socialchoice import BatchProfile, Profile, aggregate, aggregate_batch
from socialchoice.agreement import bootstrap, bootstrap_items, kendall_tau_b

ABC = ["a", "b", "c"]
UNANIMOUS = Profile.from_weak_orders(ABC, [[["a"], ["b"], ["c"]]] * 3)
BATCH = BatchProfile.from_rank_arrays(np.array([[0, 1, 2], [2, 1, 0], [0, 1, 2]]),
                                      np.array([0, 0, 1]), [3, 3])
G3 = np.array([[0, 1, 2], [1, 0, 2]])


def _profile(**kw: object) -> Callable[[], object]:
    return lambda: Profile.from_group_indices(**kw)  # type: ignore[arg-type]


def _batch(g: object = G3, item: object = (0, 1), k: object = (3, 3), **kw: object
           ) -> Callable[[], object]:
    return lambda: BatchProfile.from_rank_arrays(g, item, k, **kw)  # type: ignore[arg-type]


CASES: list[tuple[str, Callable[[], object], str]] = [
    # reg <= 0 (reg = -1 used to reverse a unanimous order), non-finite, not a number
    *[(f"{rule} reg={reg!r}", lambda rule=rule, reg=reg: aggregate(UNANIMOUS, rule, reg=reg),
       "reg must be")
      for rule in ("bradley_terry", "plackett_luce") for reg in (0, -1, -0.01, np.nan, np.inf, "1")],
    ("bradley_terry batch reg=-1", lambda: aggregate_batch(BATCH, "bradley_terry", reg=-1),
     "reg must be > 0"),
    ("plackett_luce batch reg=0", lambda: aggregate_batch(BATCH, "plackett_luce", reg=0),
     "reg must be > 0"),
    # Copeland's tie credit outside [0, 1]
    *[(f"copeland tie_credit={tc!r}", lambda tc=tc: aggregate(UNANIMOUS, "copeland", tie_credit=tc),
       "tie_credit must be") for tc in (-0.1, 1.5, np.nan, None)],
    # tie-breakers that are not a permutation of the alternatives
    ("tie_breaker repeats an id", lambda: aggregate(UNANIMOUS, "ranked_pairs",
                                                    tie_breaker=["a", "a", "b"]), "every alternative once"),
    ("tie_breaker misses an id", lambda: aggregate(UNANIMOUS, "ranked_pairs",
                                                   tie_breaker=["a", "b"]), "every alternative once"),
    ("tie_breaker unknown id", lambda: aggregate(UNANIMOUS, "ranked_pairs",
                                                 tie_breaker=["a", "b", "z"]), "unknown alternatives ['z']"),
    ("tie_breaker bare string", lambda: aggregate(UNANIMOUS, "ranked_pairs", tie_breaker="abc"),
     "list of alternative ids"),
    ("tie_breaker repeated index", lambda: aggregate(UNANIMOUS, "ranked_pairs",
                                                     tie_breaker=[0, 0, 1]), "each alternative once"),
    ("tie_breaker short", lambda: aggregate(UNANIMOUS, "ranked_pairs", tie_breaker=[0, 1]),
     "permutation of the 3"),
    ("tie_breaker too long", lambda: aggregate(UNANIMOUS, "ranked_pairs", tie_breaker=[0, 1, 2, 3]),
     "permutation of the 3"),
    ("tie_breaker negative", lambda: aggregate(UNANIMOUS, "ranked_pairs", tie_breaker=[-1, 0, 1]),
     "no negatives"),
    ("tie_breaker floats", lambda: aggregate(UNANIMOUS, "ranked_pairs", tie_breaker=[0.0, 1, 2]),
     "integer alternative indices"),
    ("batch tie_breaker short", lambda: aggregate_batch(BATCH, "ranked_pairs", tie_breaker=[0, 1]),
     "permutation of the 3"),
    ("batch tie_breaker ids", lambda: aggregate_batch(BATCH, "ranked_pairs", tie_breaker=ABC),
     "integer alternative indices"),
    # a misspelt parameter is not silently ignored
    ("unknown parameter", lambda: aggregate(UNANIMOUS, "borda", reg=1), "has no parameter reg"),
    ("unknown parameter batch", lambda: aggregate_batch(BATCH, "copeland", tiecredit=1),
     "accepted: tie_credit"),
    # bare strings where a tie group (or a ballot) is expected
    ("bare string groups", lambda: Profile.from_weak_orders(ABC, [["a", "b", "c"]]),
     "ballot 0: tie group 0 must be a list of ids, not 'a'"),
    ("one bare string group", lambda: Profile.from_weak_orders(ABC, [[["a"], ["b"]], [["a"], "bc"]]),
     "ballot 1: tie group 1 must be a list of ids, not 'bc'"),
    ("bare string ballot", lambda: Profile.from_weak_orders(ABC, ["abc"]),
     "a weak order is a list of tie groups"),
    ("long ids, bare string groups", lambda: Profile.from_weak_orders(
        ["r1", "r2"], [["r1", "r2"]]), "tie group 0 must be a list of ids"),
    ("batch bare string group", lambda: BatchProfile.from_weak_orders([ABC], [[[["a"], "bc"]]]),
     "item 0, ballot 0: tie group 1"),
    ("agreement bare string group", lambda: kendall_tau_b([["a"], "bc"], [["a"], ["b"], ["c"]],
                                                          ABC), "tie group 1"),
    ("unknown id names the ballot", lambda: Profile.from_weak_orders(ABC, [[["a"]], [["z"]]]),
     "ballot 1: unknown alternative 'z'"),
    ("duplicate id names the ballot", lambda: Profile.from_weak_orders(ABC, [[["a"], ["a"]]]),
     "ballot 0: alternative 'a' listed twice"),
    # batch item indices out of range (a negative one used to land on the last item)
    ("negative item index", _batch(item=(0, -1)), "item_index must be in 0..1"),
    ("item index past the end", _batch(item=(0, 2)), "item_index must be in 0..1"),
    ("fractional item index", _batch(item=(0, 0.5)), "item_index must hold integers"),
    # arrays of the wrong shape
    ("1-D group indices", _batch(g=np.array([0, 1, 2])), "group_indices must be a 2-D array"),
    ("too few columns", _batch(g=G3[:, :2]), "2 columns but an item has K = 3"),
    ("rows do not align", _batch(item=(0,)), "one row per ranking"),
    ("weights do not align", _batch(weights=np.ones(3)), "one row per ranking"),
    ("voter groups do not align", _batch(voter_groups=np.zeros(3, dtype=int)),
     "voter_groups must be [2]"),
    ("2-D n_alternatives", _batch(k=[[3, 3]]), "n_alternatives must be a 1-D array"),
    ("K = 0 item", _batch(k=(3, 0)), "n_alternatives must be >= 1"),
    ("non-integer group indices", _batch(g=G3 + 0.5), "group_indices must hold integers"),
    ("profile columns != K", _profile(alternatives=["a", "b"], group_indices=G3),
     "one column per alternative (2)"),
    ("profile 1-D indices", _profile(alternatives=ABC, group_indices=[0, 1, 2]),
     "group_indices must be a 2-D array"),
    ("profile weights", _profile(alternatives=ABC, group_indices=G3, weights=[1.0]),
     "expected 2 weights"),
    ("profile made directly", lambda: Profile(("a", "b"), np.zeros((2, 3), np.float32), np.ones(2)),
     "ranks must be [voters, 2]"),
    ("profile weights made directly",
     lambda: Profile(("a", "b"), np.zeros((2, 2), np.float32), np.ones(3)), "weights must be [2]"),
    # bootstrap intervals
    *[(f"bootstrap n_boot={nb!r}", lambda nb=nb: bootstrap_items([0.1, 0.2], n_boot=nb),
       "n_boot must be a positive integer") for nb in (0, -5, 2.5)],
    *[(f"bootstrap level={lv!r}", lambda lv=lv: bootstrap_items([0.1, 0.2], level=lv),
       "level must be") for lv in (0, 1, 95, np.nan)],
    ("rater bootstrap n_boot=0", lambda: bootstrap(UNANIMOUS, lambda p: 0.0, n_boot=0),
     "n_boot must be a positive integer"),
    # long-form database rows
    ("entries misaligned", lambda: BatchProfile.from_ranking_entries([0, 0], [0], [0, 1], [0], [2]),
     "one value per entry"),
    ("entry ranking out of range", lambda: BatchProfile.from_ranking_entries(
        [0, 1], [0, 1], [0, 1], [0], [2]), "ranking must be in 0..0"),
    ("entry negative ranking", lambda: BatchProfile.from_ranking_entries(
        [0, -1], [0, 1], [0, 1], [0], [2]), "ranking must be in 0..0"),
    ("entry item out of range", lambda: BatchProfile.from_ranking_entries(
        [0], [0], [0], [1], [2]), "item_of_ranking must be in 0..0"),
    ("entry column past K", lambda: BatchProfile.from_ranking_entries(
        [0, 1], [0, 2], [0, 0], [0, 1], [3, 2]), "column must be in 0..K-1"),
    ("entry negative level", lambda: BatchProfile.from_ranking_entries(
        [0], [0], [-1], [0], [2]), "level must be >= 0"),
    ("entry twice", lambda: BatchProfile.from_ranking_entries(
        [0, 0], [1, 1], [0, 1], [0], [2]), "more than one entry"),
    ("batch items vs orders", lambda: BatchProfile.from_weak_orders([ABC, ABC], [[]]),
     "2 items' alternatives but 1 items' orders"),
    ("batch weights per ballot", lambda: BatchProfile.from_weak_orders([ABC], [[[["a"]]]], [[1, 2]]),
     "one weight per ballot"),
]


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_value_error_naming_the_fault(call: Callable[[], object], message: str
                                                     ) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_valid_neighbours_of_the_bad_cases_still_work() -> None:
    """The checks reject only what is wrong: the edges of each range are accepted."""
    assert aggregate(UNANIMOUS, "bradley_terry", reg=1e-9).order == [["a"], ["b"], ["c"]]
    assert aggregate(UNANIMOUS, "plackett_luce", reg=5).order == [["a"], ["b"], ["c"]]
    for tc in (0, 1, 0.25):
        assert aggregate(UNANIMOUS, "copeland", tie_credit=tc).order[0] == ["a"]
    for tb in (["c", "b", "a"], [2, 1, 0], np.array([2, 1, 0]), ("c", "b", "a")):
        assert aggregate(UNANIMOUS, "ranked_pairs", tie_breaker=tb).order == [["a"], ["b"], ["c"]]
    assert aggregate_batch(BATCH, "ranked_pairs", tie_breaker=[3, 0, 2, 1]).orders()[1] == [
        ["0"], ["1"], ["2"]]
    assert Profile.from_weak_orders(("a", "b"), [(("a",), ("b",))]).ranks.tolist() == [[0, 1]]
    assert BatchProfile.from_rank_arrays(G3.astype(float), [1, 1], [3, 3]).n_items == 2


def test_kemeny_item_result_does_not_depend_on_its_batch() -> None:
    """A near-tie decided at the item's own tolerance stays decided beside a heavy item (the
    tolerance used to be the batch's largest)."""
    light = Profile.from_weak_orders(["a", "b"], [[["a"], ["b"]], [["b"], ["a"]]], [1.0, 1.000001])
    heavy = Profile.from_weak_orders(["a", "b"], [[["a"], ["b"]]] * 10, [1000.0] * 10)
    alone = aggregate(light, "kemeny").order
    assert alone == [["b"], ["a"]]
    both = aggregate_batch(BatchProfile.from_profiles([light, heavy]), "kemeny").orders()
    assert both == [alone, [["a"], ["b"]]]


def test_egalitarian_item_result_does_not_depend_on_its_batch() -> None:
    """Item 0: group 0 says a > b, group 1 says b > a, so both orders have the same worst group
    agreement and the total margin (a over b by 1e-6 of weight) decides; item 1 is heavy."""
    g = np.array([[0, 1], [1, 0]] + [[0, 1]] * 10)
    item = np.array([0, 0] + [1] * 10)
    weights = np.array([1.000001, 1.0] + [1000.0] * 10)
    codes = np.array([0, 1] + [0] * 10)
    light = BatchProfile.from_rank_arrays(g[:2], item[:2], [2], weights[:2], voter_groups=codes[:2])
    alone = aggregate_batch(light, "egalitarian").orders()[0]
    assert alone == [["0"], ["1"]]
    both = BatchProfile.from_rank_arrays(g, item, [2, 2], weights, voter_groups=codes)
    assert aggregate_batch(both, "egalitarian").orders() == [alone, [["0"], ["1"]]]


def test_batch_from_lists_equals_per_item_profiles() -> None:
    """Items sharing their alternatives are encoded together; ids of their own one by one."""
    rng = np.random.default_rng(5)
    alternatives, orders = [], []
    for i in range(40):
        k = int(rng.integers(2, 6))
        alts = [f"{i}-{j}" for j in range(k)] if i % 3 == 0 else list("abcde"[:k])
        n = int(rng.integers(0, 90))
        ballots = []
        for _ in range(n):
            perm = rng.permutation(k)
            cut = int(rng.integers(1, k + 1))
            ballots.append([[alts[a]] for a in perm[:cut - 1]] + [[alts[a] for a in perm[cut - 1:]]])
        alternatives.append(alts)
        orders.append(ballots)
    batch = BatchProfile.from_weak_orders(alternatives, orders)
    for i in range(40):
        if orders[i]:
            single = Profile.from_weak_orders(alternatives[i], orders[i])
            np.testing.assert_array_equal(batch.profile(i).ranks, single.ranks)


def test_batch_from_lists_names_item_and_ballot() -> None:
    alts = [list("abc")] * 3
    orders = [[[["a"], ["b"]]] * 70, [[["a"]]] * 70, [[["a"]]] * 69 + [[["a"], ["q"]]]]
    with pytest.raises(ValueError, match="item 2, ballot 69: unknown alternative 'q'"):
        BatchProfile.from_weak_orders(alts, orders)
    with pytest.raises(ValueError, match="item 0: alternative ids must be unique"):
        BatchProfile.from_weak_orders([["a", "a"]], [[[["a"]]]])
