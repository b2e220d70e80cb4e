"""Oracle tests: our rules against pref-voting (a test-only dependency) on random profiles.

Semantics compared (documented differences in brackets):

* Copeland: full ranking vs ``copeland_ranking`` (its wins-minus-losses scores order exactly like
  our default tie credit of 1/2).
* Borda, plurality, instant runoff: full rankings vs ``borda_ranking``, ``plurality_ranking``,
  ``instant_runoff_ranking`` on linear ballots [pref-voting's SWFs take linear orders only; its IRV
  also eliminates all lowest tallies at once]; Borda's top group vs ``borda_for_profile_with_ties``
  (symmetric Borda) on weak orders.
* Schulze, Split Cycle, Minimax: our top group vs the winner sets of ``beat_path``,
  ``split_cycle``, ``minimax`` on weak orders [pref-voting's voting methods return winners only].
* Ranked Pairs: our fixed-order variant (``tie_breaker``) vs ``ranked_pairs_tb`` with the same
  order, on weak orders with many equal margins; our default (equal margins locked as a group) vs
  ``ranked_pairs`` on profiles whose margins are all distinct, where no tie policy applies
  [pref-voting's default Ranked Pairs enumerates every tie-breaking order and can run for minutes
  on tiny profiles, so it is only called when margins are distinct].
* Kemeny-Young: full collective order and number of optimal rankings vs
  ``kemeny_young_rankings`` (brute force over all K! rankings) on linear ballots.
"""

from __future__ import annotations

import numpy as np
import pytest

pv_ties = pytest.importorskip("pref_voting.profiles_with_ties")
from pref_voting.c1_methods import copeland_ranking  # noqa: E402
from pref_voting.iterative_methods import instant_runoff_ranking  # noqa: E402
from pref_voting.margin_based_methods import (  # noqa: E402
    beat_path,
    minimax,
    ranked_pairs,
    ranked_pairs_tb,
    split_cycle,
)
from pref_voting.other_methods import kemeny_young_rankings  # noqa: E402
from pref_voting.profiles import Profile as PVProfile  # noqa: E402
from pref_voting.scoring_methods import (  # noqa: E402
    borda_for_profile_with_ties,
    borda_ranking,
    plurality_ranking,
)

from socialchoice import BatchProfile, aggregate_batch  # noqa: E402
from socialchoice.orders import levels_from_defeats  # noqa: E402

N_DEFAULT, N_SLOW = 300, 4000


def random_profiles(n: int, seed: int, ties: bool, max_weight: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                            np.ndarray, np.ndarray]:
    """n profiles: K in 3..6, 1..9 ballots each, integer weights 1..max_weight."""
    rng = np.random.default_rng(seed)
    k_of = rng.integers(3, 7, size=n)
    v_of = rng.integers(1, 10, size=n)
    item = np.repeat(np.arange(n), v_of)
    k_max = 6
    if ties:
        groups = rng.integers(0, rng.integers(1, k_max + 1, size=(len(item), 1)), (len(item), k_max))
    else:
        groups = np.argsort(rng.random((len(item), k_max)), axis=1)
    groups = np.where(np.arange(k_max)[None, :] < k_of[item][:, None], groups, -1)
    if not ties:  # make each row a permutation of 0..K-1 on its first K columns
        groups = np.argsort(np.argsort(np.where(groups < 0, 99, groups), axis=1), axis=1)
    weights = rng.integers(1, max_weight + 1, size=len(item)).astype(np.float64)
    return groups, item, k_of, weights, v_of


def pv_profile(groups: np.ndarray, weights: np.ndarray, k: int, linear: bool) -> object:
    if linear:
        return PVProfile([list(np.argsort(g[:k])) for g in groups], [int(w) for w in weights])
    rankings = [{c: int(g[c]) + 1 for c in range(k)} for g in groups]
    return pv_ties.ProfileWithTies(rankings, [int(w) for w in weights], candidates=list(range(k)))


def levels_to_sets(levels: np.ndarray) -> list[frozenset[int]]:
    return [frozenset(np.flatnonzero(levels == lv).tolist()) for lv in np.unique(levels)]


def pv_ranking_sets(ranking: object, k: int) -> list[frozenset[int]]:
    rmap = ranking.rmap  # type: ignore[attr-defined]
    return [frozenset(c for c in range(k) if rmap[c] == r) for r in sorted(set(rmap.values()))]


class Oracle:
    """Our batched results for every profile, plus accessors to build pref-voting's side."""

    def __init__(self, n: int, seed: int, ties: bool, max_weight: int = 3) -> None:
        self.groups, self.item, self.k_of, self.weights, _ = random_profiles(
            n, seed, ties, max_weight
        )
        self.batch = BatchProfile.from_rank_arrays(self.groups, self.item, self.k_of, self.weights)
        self.rows = np.split(np.arange(len(self.item)), np.cumsum(np.bincount(self.item))[:-1])
        self.linear = not ties

    def levels(self, rule: str, **params: object) -> list[np.ndarray]:
        res = aggregate_batch(self.batch, rule, **params)
        out: list[np.ndarray] = [np.zeros(0)] * self.batch.n_items
        for grp, o in zip(self.batch.groups, res.outputs, strict=True):
            for row, i in enumerate(grp.items.tolist()):
                out[i] = o.levels[row]
        return out

    def pv(self, i: int, linear: bool = False) -> object:
        """Item i for pref-voting: a ``ProfileWithTies`` (pure Python in pref-voting), or with
        ``linear=True`` its numba-backed ``Profile`` (first use of some methods JIT-compiles for
        ~15 s, so only the methods that need it get it)."""
        rows = self.rows[i]
        k = int(self.k_of[i])
        return pv_profile(self.groups[rows], self.weights[rows], k, linear)


def _top(levels: np.ndarray) -> list[int]:
    return sorted(np.flatnonzero(levels == 0).tolist())


def check_winners(oracle: Oracle, rule: str, method: object) -> None:
    ours = oracle.levels(rule)
    for i in range(oracle.batch.n_items):
        assert _top(ours[i]) == method(oracle.pv(i)), (rule, i)  # type: ignore[operator]


def check_rankings(oracle: Oracle, rule: str, swf: object, linear: bool = False) -> None:
    ours = oracle.levels(rule)
    for i in range(oracle.batch.n_items):
        k = int(oracle.k_of[i])
        theirs = swf(oracle.pv(i, linear))  # type: ignore[operator]
        assert levels_to_sets(ours[i]) == pv_ranking_sets(theirs, k), (rule, i)


def check_kemeny(oracle: Oracle, max_k: int) -> None:
    res = aggregate_batch(oracle.batch, "kemeny")
    for grp, out in zip(oracle.batch.groups, res.outputs, strict=True):
        if grp.k > max_k:
            continue
        for row, i in enumerate(grp.items.tolist()):
            k = int(oracle.k_of[i])
            rankings, _ = kemeny_young_rankings(oracle.pv(i, linear=True))
            pos = np.argsort(np.array(rankings), axis=1)
            always = np.all(pos[:, :, None] < pos[:, None, :], axis=0)
            expected = levels_from_defeats(always[None])[0]
            assert levels_to_sets(out.levels[row]) == levels_to_sets(expected), i
            assert out.extra["n_optimal"][row] == len(set(rankings)), i
            assert k == grp.k


def run_weak_order_sweep(n: int, seed: int) -> None:
    oracle = Oracle(n, seed, ties=True)
    check_rankings(oracle, "copeland", copeland_ranking)
    check_winners(oracle, "schulze", beat_path)
    check_winners(oracle, "split_cycle", split_cycle)
    check_winners(oracle, "minimax", minimax)
    check_winners(oracle, "borda", borda_for_profile_with_ties)
    ours = oracle.levels("ranked_pairs", tie_breaker=np.arange(6))
    for i in range(n):
        k = int(oracle.k_of[i])
        assert _top(ours[i]) == ranked_pairs_tb(oracle.pv(i), tie_breaker=list(range(k))), i


def run_linear_sweep(n: int, seed: int, kemeny_max_k: int) -> None:
    oracle = Oracle(n, seed, ties=False)
    check_rankings(oracle, "borda", borda_ranking)
    check_rankings(oracle, "plurality", plurality_ranking)
    check_rankings(oracle, "instant_runoff", instant_runoff_ranking, linear=True)
    check_rankings(oracle, "copeland", copeland_ranking)
    check_winners(oracle, "schulze", beat_path)
    check_winners(oracle, "split_cycle", split_cycle)
    check_kemeny(oracle, kemeny_max_k)


def run_distinct_margin_sweep(n: int, seed: int) -> None:
    """Ranked Pairs' default policy where margins are all distinct (pref-voting is then fast)."""
    oracle = Oracle(n, seed, ties=False, max_weight=10_000)
    m = aggregate_batch(oracle.batch, "copeland").outputs
    ours = oracle.levels("ranked_pairs")
    checked = 0
    for grp, out in zip(oracle.batch.groups, m, strict=True):
        for row, i in enumerate(grp.items.tolist()):
            margins = out.extra["margins"][row][np.triu_indices(grp.k, 1)]
            if len(set(np.abs(margins).tolist())) < len(margins) or np.any(margins == 0):
                continue
            assert _top(ours[i]) == ranked_pairs(oracle.pv(i)), i
            checked += 1
    assert checked > n // 8  # one- and two-ballot profiles always repeat margins


def test_oracle_weak_orders() -> None:
    run_weak_order_sweep(N_DEFAULT, seed=1)


def test_oracle_linear_orders() -> None:
    run_linear_sweep(N_DEFAULT // 2, seed=2, kemeny_max_k=5)


def test_oracle_ranked_pairs_distinct_margins() -> None:
    run_distinct_margin_sweep(N_DEFAULT, seed=3)


@pytest.mark.slow
def test_oracle_sweep_thousands() -> None:
    run_weak_order_sweep(N_SLOW, seed=11)
    run_linear_sweep(N_SLOW // 2, seed=12, kemeny_max_k=6)
    run_distinct_margin_sweep(N_SLOW, seed=13)
