"""Review computations against hand-computed cases and independent implementations (no database)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aggregation import review
from aggregation.ballots import Ballots, Items
from socialchoice import Profile
from socialchoice.agreement import kendall_tau_b, kendall_w, krippendorff_alpha


def make_ballots(items: dict[str, list[str]], rows: list[tuple[str, int, list[list[str]], bool]]) -> Ballots:
    """Ballots as the loader builds them: rows of (item id, rater id, weak order, is human)."""
    names = list(items)
    k_max = max(len(a) for a in items.values())
    pks = np.arange(1, len(names) + 1, dtype=np.int64)
    rpks = np.full((len(names), k_max), -1, dtype=np.int64)
    for i, alts in enumerate(items.values()):
        rpks[i, : len(alts)] = 100 * (i + 1) + np.arange(len(alts))
    its = Items(pks, tuple(names), tuple(tuple(a) for a in items.values()), rpks)
    groups = np.full((len(rows), k_max), -1, dtype=np.int16)
    for r, (item, _, order, _) in enumerate(rows):
        col = {a: j for j, a in enumerate(items[item])}
        for level, tie in enumerate(order):
            for a in tie:
                groups[r, col[a]] = level
    return Ballots(
        its, np.arange(len(rows), dtype=np.int64), np.array([names.index(x[0]) for x in rows], dtype=np.int64),
        np.array([x[1] for x in rows], dtype=np.int64), groups, np.ones(len(rows)),
        np.array([x[3] for x in rows], dtype=bool), np.zeros(len(rows), dtype=bool),
    )


ABC = ["a", "b", "c"]


def test_tau_b_rows_matches_scipy_on_ties_and_reversals():
    b = make_ballots({"x": ABC, "y": ABC}, [
        ("x", 1, [["a"], ["b", "c"]], True), ("y", 1, [["a"], ["b"], ["c"]], True),
        ("x", 2, [["a"], ["b"], ["c"]], True), ("y", 2, [["a"], ["c"], ["b"]], True),
    ])
    la, lb = b.group_indices[[0, 1]].astype(int), b.group_indices[[2, 3]].astype(int)
    tau = review.tau_b_rows(la, lb)
    # x: a > b = c against a > b > c: (2 concordant) / sqrt(2 * 3); y: (2 - 1) / 3.
    assert tau[0] == pytest.approx(2 / np.sqrt(6))
    assert tau[1] == pytest.approx(1 / 3)
    assert tau[0] == pytest.approx(stats.kendalltau([0, 1, 1], [0, 1, 2]).statistic)
    assert tau[1] == pytest.approx(kendall_tau_b([["a"], ["b"], ["c"]], [["a"], ["c"], ["b"]]))


def test_tau_b_rows_is_nan_for_an_item_without_ballot_or_all_tied():
    levels = np.array([[0, 0, 0], [-1, -1, -1]])
    other = np.array([[0, 1, 2], [0, 1, 2]])
    assert np.isnan(review.tau_b_rows(levels, other)).all()


def test_rule_matrix_counts_items_where_winners_differ():
    # Item x: plurality picks a (3 first places), Borda picks b (7 points against a's 6).
    rows = [("x", v, [["a"], ["b"], ["c"]], True) for v in range(3)]
    rows += [("x", 3 + v, [["b"], ["c"], ["a"]], True) for v in range(2)]
    rows += [("y", v, [["c"], ["a"], ["b"]], True) for v in range(5)]  # unanimous: every rule agrees
    b = make_ballots({"x": ABC, "y": ABC}, rows)
    levels = review.rule_levels(b, ["borda", "plurality", "copeland"])
    matrix = review.rule_disagreement(levels, review.has_ballot(b))
    assert matrix.n_items == 2
    i, j = matrix.rules.index("borda"), matrix.rules.index("plurality")
    assert matrix.differ[i, j] == pytest.approx(0.5) and matrix.differ[j, i] == pytest.approx(0.5)
    assert np.allclose(np.diag(matrix.differ), 0)
    # a beats b and c 3-2 each: the Condorcet winner, so Copeland agrees with plurality.
    assert matrix.differ[matrix.rules.index("copeland"), j] == 0


def test_usable_rules_skip_kemeny_beyond_its_limit_and_egalitarian():
    alts = [f"r{i}" for i in range(17)]
    b = make_ballots({"big": alts}, [("big", 1, [[a] for a in alts], True)])
    usable, skipped = review.usable_rules(b)
    assert "kemeny" in skipped and "K = 16" in skipped["kemeny"] and "kemeny" not in usable
    assert "egalitarian" in skipped and "borda" in usable


def test_condorcet_winner_cycle_and_neither():
    cyc = Profile.from_weak_orders(ABC, [[["a"], ["b"], ["c"]], [["b"], ["c"], ["a"]], [["c"], ["a"], ["b"]]])
    found = review.condorcet(cyc)
    assert found.winner is None and found.cycle is not None
    assert found.cycle[0] == found.cycle[-1] and set(found.cycle) == {"a", "b", "c"}
    win = Profile.from_weak_orders(ABC, [[["b"], ["a"], ["c"]], [["b"], ["c"], ["a"]], [["a"], ["b"], ["c"]]])
    assert review.condorcet(win) == review.Condorcet("b", None)
    tie = Profile.from_weak_orders(["a", "b"], [[["a"], ["b"]], [["b"], ["a"]]])
    assert review.condorcet(tie) == review.Condorcet(None, None)


def test_agreement_of_unanimous_raters_is_one_and_matches_socialchoice():
    order = [["a"], ["b"], ["c"]]
    b = make_ballots({"x": ABC, "y": ABC}, [(i, v, order, True) for i in ("x", "y") for v in range(4)])
    a = review.agreement(b, "humans", n_boot=20)
    assert a.n_items == 2 and a.n_raters == 4
    assert a.tau_b.estimate == pytest.approx(1) and a.kendall_w.estimate == pytest.approx(1)
    assert a.alpha.estimate == pytest.approx(1)
    assert (a.w_n_mean, a.w_n_min, a.w_n_max) == (4.0, 4, 4)


def test_agreement_against_direct_calls_on_a_mixed_profile():
    rng = np.random.default_rng(5)
    rows, per_item = [], {}
    for item in ("x", "y", "z"):
        for v in range(5):
            perm = [[ABC[j]] for j in rng.permutation(3)]
            rows.append((item, v, perm, True))
            per_item.setdefault(item, []).append(perm)
    b = make_ballots({i: ABC for i in per_item}, rows)
    a = review.agreement(b, "humans", n_boot=20)
    profiles = [Profile.from_weak_orders(ABC, orders) for orders in per_item.values()]
    assert a.kendall_w.estimate == pytest.approx(np.mean([kendall_w(p).w for p in profiles]))
    assert a.alpha.estimate == pytest.approx(krippendorff_alpha(profiles, "ordinal"))
    taus = []
    for orders in per_item.values():
        taus.append(np.mean([kendall_tau_b(orders[i], orders[j], ABC) for i in range(5) for j in range(5) if i != j]))
    assert a.tau_b.estimate == pytest.approx(np.mean(taus))
    assert a.tau_b.low <= a.tau_b.estimate <= a.tau_b.high


def test_items_with_one_rater_do_not_count_for_agreement():
    b = make_ballots({"x": ABC, "y": ABC}, [
        ("x", 1, [["a"], ["b"], ["c"]], True), ("x", 2, [["a"], ["b"], ["c"]], True),
        ("y", 1, [["c"], ["b"], ["a"]], True),
    ])
    assert review.agreement(b, "h", n_boot=5).n_items == 1


def test_cross_tau_b_between_humans_and_synthetic():
    b = make_ballots({"x": ABC}, [
        ("x", 1, [["a"], ["b"], ["c"]], True), ("x", 2, [["a"], ["b"], ["c"]], True),
        ("x", 3, [["a"], ["b"], ["c"]], False), ("x", 4, [["c"], ["b"], ["a"]], False),
    ])
    # Each human: tau 1 with rater 3, -1 with rater 4: mean 0.
    assert review.cross_tau_b(b, b.human)[0] == pytest.approx(0.0)


def test_groups_below_the_threshold_are_left_out():
    attrs = {i: {"gender": "female" if i < 5 else "male", "country": "DE"} for i in range(9)}
    groups = review.group_members(attrs, 5)
    assert set(groups) == {("gender", "female"), ("country", "DE")}
    assert review.hidden_groups(attrs, 5) == 1
    assert ("gender", "male") in review.group_members(attrs, 4)


def test_twins_against_twin_and_random_persona():
    order, reverse = [["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]]
    b = make_ballots({"x": ABC, "y": ABC}, [
        ("x", 1, order, True), ("y", 1, order, True),
        ("x", 11, order, False), ("y", 11, order, False),      # the twin agrees
        ("x", 12, reverse, False), ("y", 12, reverse, False),  # the only other persona disagrees
    ])
    [row] = review.twin_rows(b, {1: 11}, {1: "ann"}, [11, 12])
    assert (row.annotator, row.twin_tau, row.twin_items) == ("ann", 1.0, 2)
    assert (row.random_tau, row.random_items) == (-1.0, 2)


def test_position_bias_by_shown_position():
    shown = [["a", "b"], ["b", "a"], ["a", "b"], ["a", "b"]]
    orders = [[["a"], ["b"]], [["a"], ["b"]], [["a", "b"]], [["b"], ["a"]]]
    bias = review.position_bias("humans", shown, orders, 2)
    # First position: a wins (1), a is shown second (0), tie (1/2), b wins shown second (0).
    assert bias.top_rate == pytest.approx([1.5 / 4, 2.5 / 4])
    assert bias.expected == pytest.approx([0.5, 0.5])
    assert bias.first_z == pytest.approx((0.375 - 0.5) / np.sqrt(0.25 / 4))


def test_scorecard_ceiling_personas_and_baseline():
    order, reverse = [["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]]
    rows = []
    for item in ("x", "y"):
        rows += [(item, h, order, True) for h in range(1, 5)]          # group A humans: order
        rows += [(item, h, reverse, True) for h in range(5, 9)]        # group B humans: reverse
        rows += [(item, p, order, False) for p in (11, 12)]            # personas of A agree with A
        rows += [(item, p, reverse, False) for p in (15, 16, 17)]      # personas of B agree with B
    b = make_ballots({"x": ABC, "y": ABC}, rows)
    humans = {("g", "A"): np.arange(1, 5), ("g", "B"): np.arange(5, 9)}
    personas = {("g", "A"): np.array([11, 12]), ("g", "B"): np.array([15, 16, 17])}
    card = review.scorecard(b, b.human, "borda", humans, personas)
    by_group = {r["group"]: r for r in card.groups}
    assert by_group[("g", "A")]["matched"] == 1.0 and by_group[("g", "B")]["matched"] == 1.0
    # One overall synthetic collective (borda, 3 reverse vs 2 order): the reverse order.
    assert by_group[("g", "A")]["baseline"] == -1.0 and by_group[("g", "B")]["baseline"] == 1.0
    assert card.persona_gain == pytest.approx(1.0)
    assert card.ceiling is not None and -1 <= card.ceiling.estimate <= 1


def test_alpha_over_items_of_different_sizes_with_ties_matches_socialchoice():
    rng = np.random.default_rng(9)
    items = {"x": ABC, "y": ["a", "b", "c", "d"], "z": ["a", "b", "c", "d", "e"]}
    rows, per_item = [], {}
    for item, alts in items.items():
        for v in range(4 + len(alts)):
            perm = [alts[j] for j in rng.permutation(len(alts))]
            order = [perm[:2], *[[a] for a in perm[2:]]] if rng.random() < 0.4 else [[a] for a in perm]
            rows.append((item, v, order, True))
            per_item.setdefault(item, []).append(order)
    b = make_ballots(items, rows)
    alpha = review.alpha_interval(b, n_boot=50)
    expected = krippendorff_alpha([Profile.from_weak_orders(items[i], o) for i, o in per_item.items()], "ordinal")
    assert alpha.estimate == pytest.approx(expected, abs=1e-12)
    assert alpha.low <= alpha.high and alpha.n_boot == 50


def test_persona_gain_interval_excludes_zero_only_with_a_real_gain():
    order, reverse = [["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]]
    rows = []
    for item in ("x", "y", "z"):
        rows += [(item, h, order, True) for h in range(1, 5)] + [(item, h, reverse, True) for h in range(5, 9)]
        rows += [(item, p, order, False) for p in (11, 12)] + [(item, p, reverse, False) for p in (15, 16, 17)]
    b = make_ballots({"x": ABC, "y": ABC, "z": ABC}, rows)
    humans = {("g", "A"): np.arange(1, 5), ("g", "B"): np.arange(5, 9)}
    personas = {("g", "A"): np.array([11, 12]), ("g", "B"): np.array([15, 16, 17])}
    card = review.scorecard(b, b.human, "borda", humans, personas)
    # Per item: group A gains 1 - (-1) = 2, group B gains 1 - 1 = 0; mean 1 on every item.
    assert card.gain_interval.estimate == pytest.approx(1.0) and card.gain_interval.low == pytest.approx(1.0)
    swapped = review.scorecard(b, b.human, "borda", humans, {("g", "A"): personas[("g", "B")],
                                                            ("g", "B"): personas[("g", "A")]})
    assert swapped.gain_interval.high < 0
