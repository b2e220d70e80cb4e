"""Benchmark: socialchoice against pref-voting on the same profiles, side by side.

Run: ``.venv/bin/python benchmarks/socialchoice.py`` (add ``--quick`` for a sub-minute run).
Everything runs on one core (BLAS/OpenMP threads pinned to 1 before numpy is imported).

Sections: one item (K = 8, 1000 linear ballots) per rule, end to end and rule only; exact
Kemeny at K = 8, 10, 12 (16 ours only); whole-project batches (100,000 items x 20 voters x K = 4
and 10,000 items x 200 voters x K = 8) in items per second, with pref-voting timed on a sample of
items and extrapolated; rankings -> batch arrays. pref-voting's Kemeny enumerates all K!
rankings: it is timed at K = 8 and 9 and extrapolated to K = 10 and 12 by the K! K^2 cost of its
algorithm (marked "extrapolated"). Every time is the best of a few runs in this one process.

What each timer includes (one item):

* ours e2e: ``aggregate(Profile.from_group_indices(alts, groups), rule)``: validating and
  encoding the ballots (tie-group index array [V, K], as stored next to the JSON) into the rank
  matrix, the rule, the margins and the ``Result`` (contract-form order, scores, margins).
* ours from contract form: the same from ``Profile.from_weak_orders(alts, orders)``, ballots as
  lists of tie groups of string ids (a Python loop over ids; shown for honesty, not the target).
* pv e2e: ``fn(pref_voting.profiles.Profile(ballots))`` with ballots as lists of candidate ints,
  i.e. pref-voting's Profile construction (where it computes its margins) and its function.
* rule only: both sides on a prebuilt profile (ours: ``aggregate(profile, rule)``).

Batches: ours times ``aggregate_batch`` on a prebuilt :class:`BatchProfile` (conversion is
timed on its own as rankings -> batch arrays); pv items/s builds each item's Profile and runs
the function, 'pv rule-only' reuses prebuilt Profiles.

Targets (issue): one item >= 100x pref-voting e2e for every shared rule; exact Kemeny < 10 ms at
K = 10 and < 100 ms at K = 16; Borda and Copeland >= 1,000,000 items/s (100,000 x 20 x K = 4);
Schulze, Ranked Pairs, Split Cycle >= 50,000 items/s (10,000 x 200 x K = 8); rankings -> batch
arrays >= 1,000,000 rankings/s. The last column says whether each holds in this run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from socialchoice import BatchProfile, Profile, aggregate, aggregate_batch  # noqa: E402


def best_time(fn: Callable[[], object], repeat: int = 3, budget: float = 5.0) -> float:
    """Best wall time of up to ``repeat`` runs (stops early once ``budget`` seconds are used)."""
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget:
            break
    return min(times)


def linear_groups(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """Random linear ballots as tie-group indices (a permutation of 0..K-1 per row)."""
    return np.argsort(np.argsort(rng.random((rows, k)), axis=1), axis=1)


def pv_methods() -> dict[str, tuple[Callable[..., object], str]]:
    """Our rule name -> (pref-voting function, what it returns)."""
    from pref_voting.c1_methods import copeland_ranking
    from pref_voting.iterative_methods import instant_runoff_ranking
    from pref_voting.margin_based_methods import beat_path, minimax, ranked_pairs_tb, split_cycle
    from pref_voting.other_methods import bradley_terry_ranking
    from pref_voting.scoring_methods import borda_ranking, plurality_ranking

    return {
        "borda": (borda_ranking, "ranking"),
        "copeland": (copeland_ranking, "ranking"),
        "plurality": (plurality_ranking, "ranking"),
        "instant_runoff": (instant_runoff_ranking, "ranking"),
        "bradley_terry": (bradley_terry_ranking, "ranking"),
        "schulze": (beat_path, "winners"),
        "split_cycle": (split_cycle, "winners"),
        "minimax": (minimax, "winners"),
        "ranked_pairs": (ranked_pairs_tb, "winners"),
    }


def _ours_sets(result_order: list[list[str]]) -> list[frozenset[int]]:
    return [frozenset(int(a) for a in g) for g in result_order]


def _same(rule: str, ours: list[list[str]], theirs: object, kind: str) -> str:
    if kind == "winners":
        return "yes" if sorted(int(a) for a in ours[0]) == list(theirs) else "NO"  # type: ignore[call-overload]
    rmap = theirs.rmap  # type: ignore[attr-defined]
    sets = [frozenset(c for c in rmap if rmap[c] == r) for r in sorted(set(rmap.values()))]
    if rule == "bradley_terry":  # pref-voting: unregularised MLE, ties within 1e-5
        return "yes" if sets == _ours_sets(ours) else "order differs (regulariser/threshold)"
    return "yes" if sets == _ours_sets(ours) else "NO"


def _verdict(ok: bool) -> str:
    return "holds" if ok else "MISSES"


def one_item(quick: bool) -> None:
    from pref_voting.profiles import Profile as PVProfile

    rng = np.random.default_rng(0)
    k, v = 8, 1000
    groups = linear_groups(rng, v, k)
    alts = [str(i) for i in range(k)]
    ballots = [list(np.argsort(g)) for g in groups]
    orders = [[[alts[a]] for a in b] for b in ballots]
    print(f"\n## One item: K = {k}, {v} linear ballots (times in ms; ratio = pref-voting / ours)")
    print(f"{'rule':15} {'ours e2e':>9} {'pv e2e':>8} {'ratio':>6} {'>=100x':>7} "
          f"{'contract':>9} {'ratio':>6} {'ours rule':>9} {'pv rule':>8} {'ratio':>6}  same")
    pv_profile = PVProfile(ballots)
    for rule, (fn, kind) in pv_methods().items():
        _one_rule(rule, fn, kind, alts, groups, orders, ballots, pv_profile)


def _one_rule(rule: str, fn: Callable[..., object], kind: str, alts: list[str],
              groups: np.ndarray, orders: list[list[list[str]]], ballots: list[list[int]],
              pv_profile: object) -> None:
    from pref_voting.profiles import Profile as PVProfile

    params = {"tie_breaker": list(range(len(alts)))} if rule == "ranked_pairs" else {}
    fn(pv_profile)  # numba JIT warm-up, not timed
    prof = Profile.from_group_indices(alts, groups)
    ours_e2e = best_time(lambda: aggregate(Profile.from_group_indices(alts, groups), rule,
                                           **params), 30)
    contract = best_time(lambda: aggregate(Profile.from_weak_orders(alts, orders), rule,
                                           **params), 10)
    ours_rule = best_time(lambda: aggregate(prof, rule, **params), 30)
    pv_e2e = best_time(lambda: fn(PVProfile(ballots)), 5)
    pv_rule = best_time(lambda: fn(pv_profile), 5)
    same = _same(rule, aggregate(prof, rule, **params).order, fn(pv_profile), kind)
    ratio = pv_e2e / ours_e2e
    print(f"{rule:15} {ours_e2e * 1e3:9.3f} {pv_e2e * 1e3:8.2f} {ratio:6.0f} "
          f"{_verdict(ratio >= 100):>7} {contract * 1e3:9.3f} {pv_e2e / contract:6.0f} "
          f"{ours_rule * 1e3:9.3f} {pv_rule * 1e3:8.2f} {pv_rule / ours_rule:6.0f}  {same}")


def kemeny_section(quick: bool) -> None:
    from pref_voting.other_methods import kemeny_young
    from pref_voting.profiles import Profile as PVProfile

    print("\n## Exact Kemeny-Young, 1000 linear ballots (seconds)")
    rng = np.random.default_rng(1)
    cases = {k: linear_groups(rng, 1000, k) for k in (8, 9, 10, 12, 16)}
    measured: dict[int, float] = {}
    for k in (8,) if quick else (8, 9):
        pv_prof = PVProfile([list(np.argsort(g)) for g in cases[k]])
        measured[k] = best_time(lambda: kemeny_young(pv_prof), 1)  # noqa: B023
    print(f"{'K':>3} {'ours':>10} {'pref-voting':>12} {'ratio':>12} {'target':>16}  "
          f"pref-voting time is")
    limits = {10: 0.010, 16: 0.100}
    for k in (8, 10, 12, 16):
        prof = Profile.from_group_indices([str(i) for i in range(k)], cases[k])
        ours = best_time(lambda: aggregate(prof, "kemeny"), 3)  # noqa: B023
        base = max(measured)
        pv_t, note = measured.get(k, float("nan")), "measured"
        if k not in measured and k <= 12:
            scale = math.factorial(k) * k * k / (math.factorial(base) * base * base)
            pv_t, note = measured[base] * scale, f"extrapolated from K = {base} (K! K^2)"
        elif k not in measured:
            note = "not attempted"
        target = ""
        if k in limits:
            target = f"<{limits[k] * 1e3:.0f} ms {_verdict(ours < limits[k])}"
        print(f"{k:3} {ours:10.4f} {pv_t:12.2f} {pv_t / ours:12,.0f} {target:>16}  {note}")
    if 9 in measured:
        print(f"(pref-voting measured at K = 9: {measured[9]:.2f} s)")


BATCH_RULES = ("borda", "copeland", "schulze", "ranked_pairs", "rp_default", "split_cycle",
               "minimax", "plurality", "mean_rank", "instant_runoff", "kemeny", "bradley_terry",
               "plackett_luce")

BATCH_TARGETS = {(4, "borda"): 1e6, (4, "copeland"): 1e6, (8, "schulze"): 5e4,
                 (8, "ranked_pairs"): 5e4, (8, "rp_default"): 5e4, (8, "split_cycle"): 5e4}


def batch_section(n: int, v: int, k: int, pv_sample: int) -> None:
    from pref_voting.profiles import Profile as PVProfile

    rng = np.random.default_rng(2)
    groups = linear_groups(rng, n * v, k)
    item = np.repeat(np.arange(n), v)
    convert = best_time(lambda: BatchProfile.from_rank_arrays(groups, item, np.full(n, k)), 3)
    batch = BatchProfile.from_rank_arrays(groups, item, np.full(n, k))
    print(f"\n## Batch: {n:,} items x {v} voters x K = {k} (items per second, one core)")
    ballots = [[list(np.argsort(g)) for g in groups[i * v:(i + 1) * v]] for i in range(pv_sample)]
    pv_build = best_time(lambda: [PVProfile(b) for b in ballots], 1)
    rate = n * v / convert
    print(f"rankings -> batch arrays (from_rank_arrays): {rate:,.0f} rankings/s "
          f"(target 1,000,000: {_verdict(rate >= 1e6)}); pref-voting Profile construction: "
          f"{pv_sample * v / pv_build:,.0f} rankings/s, ratio {rate * pv_build / pv_sample / v:,.0f}")
    _contract_form_rate(groups, item, k, min(n, 2000), v)
    print(f"{'rule':15} {'ours items/s':>14} {'pv items/s':>12} {'ratio':>8} "
          f"{'pv rule-only':>14} {'ratio':>8}  target")
    sample = [PVProfile(b) for b in ballots]
    for label in BATCH_RULES:
        _batch_row(label, batch, k, sample, ballots)
    print(f"(pref-voting timed on {pv_sample} items and extrapolated; 'pv items/s' builds each "
          f"item's Profile from ballots (where pref-voting computes margins) and runs the rule, "
          f"'pv rule-only' reuses prebuilt Profiles; ranked_pairs is the fixed-order variant on "
          f"both sides, rp_default our default Ranked Pairs (equal margins locked together))")


def _batch_row(label: str, batch: BatchProfile, k: int, sample: list[object],
               ballots: list[list[list[int]]]) -> None:
    from pref_voting.profiles import Profile as PVProfile

    rule = "ranked_pairs" if label == "rp_default" else label
    params = {"tie_breaker": list(range(k))} if label == "ranked_pairs" else {}
    n = batch.n_items
    t = best_time(lambda: aggregate_batch(batch, rule, **params), 3, budget=20)
    pv_rate = pv_rule_rate = float("nan")
    methods = pv_methods()
    if label in methods:
        fn = methods[label][0]
        fn(sample[0])
        pv_rule = best_time(lambda: [fn(p) for p in sample], 1)
        pv_e2e = best_time(lambda: [fn(PVProfile(b)) for b in ballots], 1)
        pv_rate, pv_rule_rate = len(sample) / pv_e2e, len(sample) / pv_rule
    floor = BATCH_TARGETS.get((k, label))
    target = "" if floor is None else f"{floor:,.0f}/s {_verdict(n / t >= floor)}"
    print(f"{label:15} {n / t:14,.0f} {pv_rate:12,.0f} {n / t / pv_rate:8.0f} "
          f"{pv_rule_rate:14,.0f} {n / t / pv_rule_rate:8.1f}  {target}")


def _contract_form_rate(groups: np.ndarray, item: np.ndarray, k: int, n: int, v: int) -> None:
    alts = [[str(i) for i in range(k)] for _ in range(n)]
    orders = [[[[str(a)] for a in np.argsort(g)] for g in groups[i * v:(i + 1) * v]]
              for i in range(n)]
    t = best_time(lambda: BatchProfile.from_weak_orders(alts, orders), 2)
    print(f"contract-form weak orders -> batch arrays (from_weak_orders): {n * v / t:,.0f} "
          f"rankings/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, sub-minute run")
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f} (timings are wall-clock)")
    one_item(args.quick)
    kemeny_section(args.quick)
    if args.quick:
        batch_section(10_000, 20, 4, 50)
        batch_section(1_000, 200, 8, 20)
    else:
        batch_section(100_000, 20, 4, 300)
        batch_section(10_000, 200, 8, 100)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
