"""Review computations over ballots as arrays: rule disagreement, agreement within and between rater
kinds and groups, twins, position bias, and the synthetic-validity scorecard.

Every function takes a `Ballots` (the loader's arrays, built in tests without a database) and plain
dictionaries; the views fetch, these compute. Collective rankings are ``levels [n_items, K_max]``
arrays (0 = top tie group, -1 = padding or no ballot), so comparisons are numpy expressions.

Groups of people (a demographic field's value among human raters, a persona attribute's value
among synthetic raters) with fewer than ``min_group`` raters are left out of every result here,
so no per-group number can show one person's answers.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

import socialchoice
from socialchoice.agreement import (
    Interval,
    bootstrap_items,
    kendall_w_batch,
    mean_pairwise_tau_b,
)

from .ballots import Ballots

N_BOOT = 200
SPLITS = 10
Group = tuple[str, str]  # (field, value)


# ---------------------------------------------------------------- collectives as level arrays


def collective_levels(ballots: Ballots, rule: str, params: dict | None = None) -> np.ndarray:
    """``levels [n_items, K_max]`` of ``rule`` over ``ballots``; items without a ballot are -1."""
    n, k_max = len(ballots.items), ballots.items.k_max
    levels = np.full((n, k_max), -1, dtype=np.int64)
    has = has_ballot(ballots)
    if not has.any():
        return levels
    result = socialchoice.aggregate_batch(ballots.batch(), rule, **(params or {}))
    for grp, out in zip(result.batch.groups, result.outputs, strict=True):
        levels[grp.items, : grp.k] = out.levels
    levels[~has] = -1
    return levels


def has_ballot(ballots: Ballots) -> np.ndarray:
    """Whether each item has at least one ballot of positive weight ``[n_items]``."""
    counts = np.bincount(ballots.item_index[ballots.weights > 0], minlength=len(ballots.items))
    return counts > 0


def _pair_signs(levels: np.ndarray) -> np.ndarray:
    """``[n, P]`` signs over column pairs a < b: +1 a above b, -1 below, 0 tied, padding or
    unranked (a partial ballot's unranked responses take part in no pair)."""
    iu, ju = np.triu_indices(levels.shape[1], 1)
    a, b = levels[:, iu], levels[:, ju]
    valid = (a >= 0) & (b >= 0)
    return np.where(valid, np.sign(b - a), 0).astype(np.float64)


def tau_b_rows(levels_a: np.ndarray, levels_b: np.ndarray) -> np.ndarray:
    """Kendall tau-b between row i of two level arrays, per row (NaN where either side ties all
    or has no ballot). Equal to `socialchoice.agreement.kendall_tau_b` on the decoded orders."""
    sa, sb = _pair_signs(levels_a), _pair_signs(levels_b)
    den = np.sqrt(np.count_nonzero(sa, axis=1) * np.count_nonzero(sb, axis=1).astype(np.float64))
    missing = (levels_a.max(axis=1) < 0) | (levels_b.max(axis=1) < 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(den > 0, (sa * sb).sum(axis=1) / den, np.nan)
    return np.where(missing, np.nan, tau)


def top_groups(levels: np.ndarray) -> np.ndarray:
    """Boolean ``[n, K_max]``: the alternatives in each item's top tie group."""
    return levels == 0


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class RuleMatrix:
    """``differ[i, j]``: share of items where rules i and j have different top groups, over
    ``n_items`` items that have ballots; ``skipped`` names rules that cannot run here, with why."""

    rules: list[str]
    differ: np.ndarray
    n_items: int
    skipped: dict[str, str]


def usable_rules(ballots: Ballots, rules: Iterable[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Rules that run on every item of ``ballots`` without extra inputs, and why the others do not."""
    described = {r["name"]: r for r in socialchoice.describe()}
    names = sorted(described) if rules is None else list(rules)
    k_max = int(ballots.items.k.max()) if len(ballots.items) else 0
    usable, skipped = [], {}
    for name in names:
        limit = described[name]["max_k"]
        if name == "egalitarian":
            skipped[name] = "needs rater groups (a pool with groups); not comparable here"
        elif limit is not None and k_max > limit:
            skipped[name] = f"exact only up to K = {limit}; this project has items with K = {k_max}"
        else:
            usable.append(name)
    return usable, skipped


def rule_levels(ballots: Ballots, rules: Sequence[str]) -> dict[str, np.ndarray]:
    return {rule: collective_levels(ballots, rule) for rule in rules}


def rule_disagreement(levels_by_rule: dict[str, np.ndarray], has: np.ndarray,
                      skipped: dict[str, str] | None = None) -> RuleMatrix:
    """How often each pair of rules picks a different winner (top tie group)."""
    rules = list(levels_by_rule)
    tops = np.stack([top_groups(levels_by_rule[r])[has] for r in rules]) if rules else np.zeros((0, 0, 0))
    n = int(has.sum())
    differ = np.zeros((len(rules), len(rules)))
    if n:
        different = (tops[:, None] != tops[None, :]).any(axis=3)
        differ = different.mean(axis=2)
    return RuleMatrix(rules, differ, n, dict(skipped or {}))


# ---------------------------------------------------------------- agreement


@dataclass(frozen=True)
class Agreement:
    """Agreement of a set of raters, over the items where at least two of them ranked:
    Krippendorff's alpha (ordinal), mean pairwise Kendall tau-b, mean Kendall's W with the mean
    and range of panel sizes n, each with a bootstrap interval over items."""

    label: str
    n_raters: int
    n_items: int
    alpha: Interval | None
    tau_b: Interval | None
    kendall_w: Interval | None
    w_n_mean: float | None
    w_n_min: int | None
    w_n_max: int | None


def _per_item(ballots: Ballots, stat: Callable[[socialchoice.ProfileGroup], np.ndarray]) -> np.ndarray:
    out = np.full(len(ballots.items), np.nan)
    for grp in ballots.batch().groups:
        out[grp.items] = stat(grp)
    return out


def _at_least_two(ballots: Ballots) -> Ballots:
    counts = np.bincount(ballots.item_index, minlength=len(ballots.items))
    return ballots.take(counts[ballots.item_index] >= 2).ranked_items()


def agreement(ballots: Ballots, label: str, *, n_boot: int = N_BOOT, seed: int = 0) -> Agreement:
    """Agreement within ``ballots`` (every row a rater's ballot on an item)."""
    sub = _at_least_two(ballots)
    raters = len(np.unique(ballots.rater_ids))
    if not len(sub):
        return Agreement(label, raters, 0, None, None, None, None, None, None)
    tau = _per_item(sub, mean_pairwise_tau_b)
    w = _per_item(sub, lambda g: kendall_w_batch(g)[0])
    n = np.bincount(sub.item_index, minlength=len(sub.items))
    return Agreement(
        label, raters, len(sub.items), alpha_interval(sub, n_boot=n_boot, seed=seed),
        bootstrap_items(tau, n_boot, seed=seed), bootstrap_items(w, n_boot, seed=seed),
        float(n.mean()), int(n.min()), int(n.max()),
    )


def alpha_interval(ballots: Ballots, *, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> Interval:
    """Krippendorff's alpha (ordinal; units are (item, response) cells, values 1-based mid-ranks)
    over all items, with a percentile bootstrap over items.

    Alpha depends on the data only through the coincidence matrix, which is a sum of one matrix per
    item, so a resample of items is a weighted sum of those matrices: the bootstrap costs one small
    matrix product per resample instead of a recomputation. The estimate equals
    `socialchoice.agreement.krippendorff_alpha(..., "ordinal")` (tested)."""
    per_item, cats = _item_coincidences(ballots)
    estimate = _alpha_from(per_item.sum(axis=0), cats)
    if not len(per_item):
        return Interval(estimate, float("nan"), float("nan"), level, n_boot)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_item), size=(n_boot, len(per_item)))
    weights = np.stack([np.bincount(p, minlength=len(per_item)) for p in picks]).astype(np.float64)
    resampled = np.tensordot(weights, per_item, axes=(1, 0))
    values = _alphas_from(resampled, cats)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return Interval(estimate, float("nan"), float("nan"), level, n_boot)
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate, float(low), float(high), level, n_boot)


def _item_coincidences(ballots: Ballots) -> tuple[np.ndarray, np.ndarray]:
    """Per item, its coincidence matrix ``[n_items, C, C]`` over the value categories ``cats``."""
    groups = list(ballots.batch().groups)
    values = [np.where((g.weights > 0)[:, :, None], g.ranks + 1.0, np.nan) for g in groups]
    cats = np.unique(np.concatenate([v[~np.isnan(v)] for v in values])) if values else np.zeros(0)
    out = np.zeros((len(ballots.items), len(cats), len(cats)))
    for g, v in zip(groups, values, strict=True):
        n, voters, k = v.shape
        counts = np.zeros((n, k, len(cats)))
        ok = ~np.isnan(v)
        item, _, alt = np.nonzero(ok)
        np.add.at(counts, (item, alt, np.searchsorted(cats, v[ok])), 1.0)
        m = counts.sum(axis=2)
        scale = np.where(m > 1, 1.0 / np.maximum(m - 1, 1), 0.0)
        pairs = counts[..., :, None] * counts[..., None, :]
        pairs -= counts[..., :, None] * np.eye(len(cats))
        out[g.items] = (pairs * scale[..., None, None]).sum(axis=1)
    return out, cats


def _alpha_from(o: np.ndarray, cats: np.ndarray) -> float:
    """Alpha from a coincidence matrix with Krippendorff's ordinal distance."""
    return float(_alphas_from(o[None], cats)[0])


def _alphas_from(o: np.ndarray, cats: np.ndarray) -> np.ndarray:
    """Alpha for each coincidence matrix of ``o [B, C, C]`` (NaN where it is undefined)."""
    n_c = o.sum(axis=2)
    n = n_c.sum(axis=1)
    cum = np.concatenate([np.zeros((len(o), 1)), np.cumsum(n_c, axis=1)], axis=1)
    idx = np.arange(o.shape[1])
    lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
    delta = (cum[:, hi + 1] - cum[:, lo] - (n_c[:, :, None] + n_c[:, None, :]) / 2.0) ** 2
    d_o = (o * delta).sum(axis=(1, 2)) / np.maximum(n, 1e-300)
    d_e = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2)) / np.maximum(n * (n - 1), 1e-300)
    ok = (n > 1) & (np.count_nonzero(n_c, axis=1) >= 2) & (d_e > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, 1.0 - d_o / np.where(ok, d_e, 1.0), np.nan)


def cross_tau_b(ballots: Ballots, side_a: np.ndarray) -> np.ndarray:
    """Per item: mean tau-b over pairs of one ballot from side A and one from side B
    (``side_a`` a boolean mask over ballots); NaN where a side has no ballot."""
    signs = _pair_signs(ballots.group_indices.astype(np.int64))
    untied = np.count_nonzero(signs, axis=1).astype(np.float64)
    out = np.full(len(ballots.items), np.nan)
    for item in np.unique(ballots.item_index):
        rows = ballots.item_index == item
        a, b = rows & side_a, rows & ~side_a
        if not a.any() or not b.any():
            continue
        num = signs[a] @ signs[b].T
        den = np.sqrt(np.outer(untied[a], untied[b]))
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = np.where(den > 0, num / den, np.nan)
        out[item] = np.nanmean(tau) if np.isfinite(tau).any() else np.nan
    return out


# ---------------------------------------------------------------- groups


def group_members(attributes: dict[int, dict[str, str]], min_group: int) -> dict[Group, np.ndarray]:
    """(field, value) -> rater ids, for groups of at least ``min_group`` raters (sorted)."""
    members: dict[Group, list[int]] = {}
    for rater, fields in attributes.items():
        for key, value in fields.items():
            if value not in (None, ""):
                members.setdefault((str(key), str(value)), []).append(rater)
    return {g: np.array(sorted(ids), dtype=np.int64) for g, ids in sorted(members.items()) if len(ids) >= min_group}


def hidden_groups(attributes: dict[int, dict[str, str]], min_group: int) -> int:
    """How many (field, value) groups are below the threshold (a count, never their names)."""
    counts: dict[Group, int] = {}
    for fields in attributes.values():
        for key, value in fields.items():
            if value not in (None, ""):
                counts[(str(key), str(value))] = counts.get((str(key), str(value)), 0) + 1
    return sum(1 for n in counts.values() if n < min_group)


def mean_tau(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


def group_heatmap(ballots: Ballots, rule: str, human_groups: dict[Group, np.ndarray],
                  persona_groups: dict[Group, np.ndarray]) -> np.ndarray:
    """``[human groups, persona groups]``: mean over items of tau-b between the human group's
    collective and the persona group's collective (items both groups ranked)."""
    h_levels = [collective_levels(ballots.take(np.isin(ballots.rater_ids, ids)), rule) for ids in human_groups.values()]
    p_levels = [collective_levels(ballots.take(np.isin(ballots.rater_ids, ids)), rule) for ids in persona_groups.values()]
    out = np.full((len(h_levels), len(p_levels)), np.nan)
    for i, hl in enumerate(h_levels):
        for j, pl in enumerate(p_levels):
            value = mean_tau(tau_b_rows(hl, pl))
            out[i, j] = np.nan if value is None else value
    return out


# ---------------------------------------------------------------- raters against raters


def rater_pair_tau(ballots: Ballots, rater_a: int, rater_b: int) -> tuple[float | None, int]:
    """Mean tau-b between two raters' ballots over the items both ranked, and how many."""
    a = ballots.take(ballots.rater_ids == rater_a)
    b = ballots.take(ballots.rater_ids == rater_b)
    common = np.intersect1d(a.item_index, b.item_index)
    if not len(common):
        return None, 0
    la = _levels_by_item(a, common)
    lb = _levels_by_item(b, common)
    return mean_tau(tau_b_rows(la, lb)), len(common)


def _levels_by_item(ballots: Ballots, items: np.ndarray) -> np.ndarray:
    """One rater's ballots on ``items`` (each ranked once) as a level array in that item order."""
    order = np.argsort(ballots.item_index)
    pos = np.searchsorted(ballots.item_index[order], items)
    return ballots.group_indices[order[pos]].astype(np.int64)


@dataclass(frozen=True)
class TwinRow:
    annotator: str
    twin_tau: float | None
    twin_items: int
    random_tau: float | None
    random_items: int


def twin_rows(ballots: Ballots, twins: dict[int, int], labels: dict[int, str], personas: Sequence[int],
              *, seed: int = 0) -> list[TwinRow]:
    """Each annotator (rater id) against their twin (rater id) and against one persona drawn at
    random (seeded) from the personas that are not their twin."""
    rng = np.random.default_rng(seed)
    rows = []
    for human, twin in sorted(twins.items(), key=lambda kv: labels.get(kv[0], "")):
        others = [p for p in personas if p != twin]
        twin_tau, twin_n = rater_pair_tau(ballots, human, twin)
        random_tau, random_n = (None, 0)
        if others:
            random_tau, random_n = rater_pair_tau(ballots, human, int(others[rng.integers(len(others))]))
        rows.append(TwinRow(labels.get(human, str(human)), twin_tau, twin_n, random_tau, random_n))
    return rows


# ---------------------------------------------------------------- position bias


@dataclass(frozen=True)
class PositionBias:
    """How often the response shown at each position is in the top tie group (credited 1/|top|),
    against 1/K without bias; ``first_z`` tests the first position (binomial approximation)."""

    label: str
    rankings: int
    top_rate: list[float]
    expected: list[float]
    first_z: float | None


def position_bias(label: str, shown_orders: Sequence[Sequence[str]], orders: Sequence[Sequence[Sequence[str]]],
                  k_max: int) -> PositionBias:
    credit = np.zeros(k_max)
    expected = np.zeros(k_max)
    seen = np.zeros(k_max)
    for shown, order in zip(shown_orders, orders, strict=True):
        top = set(order[0]) if order else set()
        for pos, rid in enumerate(shown[:k_max]):
            credit[pos] += 1 / len(top) if rid in top else 0.0
            expected[pos] += 1 / len(shown)
            seen[pos] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        rate, exp = credit / seen, expected / seen
    z = None
    if seen[0]:
        se = np.sqrt(exp[0] * (1 - exp[0]) / seen[0])
        z = float((rate[0] - exp[0]) / se) if se > 0 else None
    cut = int((seen > 0).sum())
    return PositionBias(label, len(shown_orders), [float(x) for x in rate[:cut]], [float(x) for x in exp[:cut]], z)


# ---------------------------------------------------------------- synthetic validity


@dataclass(frozen=True)
class Scorecard:
    """Does the synthetic panel stand in for people?

    ``ceiling``: tau-b between the collectives of two random halves of the human raters (mean over
    items, then over ``SPLITS`` splits; the interval is the spread over splits), the best any
    other panel can expect to match a half of the humans. ``synthetic_vs_half``: the synthetic
    collective against the same halves. ``synthetic_vs_humans``: against all humans.
    ``matched`` / ``baseline``: per human group, the collective of the personas that portray that
    group (same attribute value) against the group, versus one overall synthetic collective that
    ignores personas against the group; ``persona_gain`` their mean difference, and
    ``gain_interval`` a bootstrap interval over items of the per-item difference (mean over
    groups), which says whether the gain is more than noise."""

    ceiling: Interval | None
    synthetic_vs_half: Interval | None
    synthetic_vs_humans: Interval | None
    groups: list[dict[str, object]]
    matched_mean: float | None
    baseline_mean: float | None
    persona_gain: float | None
    gain_interval: Interval | None = None


def split_half(ballots: Ballots, human: np.ndarray, rule: str, *, splits: int = SPLITS,
               seed: int = 0) -> tuple[Interval | None, Interval | None]:
    """(human half vs other half, synthetic vs a human half), over random splits of the humans."""
    human_ids = np.unique(ballots.rater_ids[human])
    if len(human_ids) < 2:
        return None, None
    synthetic = ballots.take(~human)
    syn_levels = collective_levels(synthetic, rule) if len(synthetic) else None
    rng = np.random.default_rng(seed)
    halves, versus = [], []
    for _ in range(splits):
        first = rng.permutation(human_ids)[: len(human_ids) // 2]
        in_first = np.isin(ballots.rater_ids, first)
        la = collective_levels(ballots.take(human & in_first), rule)
        lb = collective_levels(ballots.take(human & ~in_first), rule)
        halves.append(mean_tau(tau_b_rows(la, lb)))
        if syn_levels is not None:
            versus.append(mean_tau(tau_b_rows(syn_levels, la)))
    return _spread(halves), _spread(versus)


def _spread(values: list[float | None], level: float = 0.95) -> Interval | None:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return None
    low, high = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(v.mean()), float(low), float(high), level, len(v))


def scorecard(ballots: Ballots, human: np.ndarray, rule: str, human_groups: dict[Group, np.ndarray],
              persona_groups: dict[Group, np.ndarray], *, seed: int = 0) -> Scorecard:
    ceiling, versus_half = split_half(ballots, human, rule, seed=seed)
    syn = ballots.take(~human)
    hum = ballots.take(human)
    overall = collective_levels(syn, rule) if len(syn) else None
    vs_humans = None
    if overall is not None and len(hum):
        vs_humans = bootstrap_items(tau_b_rows(overall, collective_levels(hum, rule)), N_BOOT, seed=seed)
    rows, diffs = [], []
    for group, ids in human_groups.items():
        matched_ids = persona_groups.get(group)
        if matched_ids is None or overall is None:
            continue
        target = collective_levels(ballots.take(np.isin(ballots.rater_ids, ids)), rule)
        matched = collective_levels(ballots.take(np.isin(ballots.rater_ids, matched_ids)), rule)
        m_tau, b_tau = tau_b_rows(matched, target), tau_b_rows(overall, target)
        diffs.append(m_tau - b_tau)
        rows.append({"group": group, "humans": len(ids), "personas": len(matched_ids),
                     "matched": mean_tau(m_tau), "baseline": mean_tau(b_tau)})
    pairs = [(r["matched"], r["baseline"]) for r in rows if r["matched"] is not None and r["baseline"] is not None]
    matched_mean = float(np.mean([m for m, _ in pairs])) if pairs else None
    baseline_mean = float(np.mean([b for _, b in pairs])) if pairs else None
    gain = float(np.mean([m - b for m, b in pairs])) if pairs else None  # type: ignore[operator]
    interval = None
    if diffs and np.isfinite(np.stack(diffs)).any():
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # items no group could compare: NaN
            per_item = np.nanmean(np.stack(diffs), axis=0)
        interval = bootstrap_items(per_item, N_BOOT, seed=seed)
    return Scorecard(ceiling, versus_half, vs_humans, rows, matched_mean, baseline_mean, gain, interval)


# ---------------------------------------------------------------- one item


@dataclass(frozen=True)
class Condorcet:
    """The item's majority relation: a Condorcet winner, or a majority cycle (as a list of ids,
    first repeated at the end), or neither (ties in the majority relation)."""

    winner: str | None
    cycle: list[str] | None


def condorcet(profile: socialchoice.Profile) -> Condorcet:
    margins = socialchoice.aggregate(profile, "borda").margins
    alts = list(profile.alternatives)
    beats = np.asarray(margins) > 1e-12
    k = len(alts)
    for i in range(k):
        if all(beats[i, j] for j in range(k) if j != i):
            return Condorcet(alts[i], None)
    cycle = _find_cycle(beats)
    return Condorcet(None, [alts[i] for i in cycle] if cycle else None)


def _find_cycle(beats: np.ndarray) -> list[int] | None:
    """A directed cycle in the strict majority relation (depth-first search), or None."""
    k = beats.shape[0]
    state = [0] * k
    stack: list[int] = []

    def visit(v: int) -> list[int] | None:
        state[v] = 1
        stack.append(v)
        for w in range(k):
            if not beats[v, w]:
                continue
            if state[w] == 1:
                return [*stack[stack.index(w):], w]
            if state[w] == 0 and (found := visit(w)):
                return found
        stack.pop()
        state[v] = 2
        return None

    for v in range(k):
        if state[v] == 0 and (found := visit(v)):
            return found
    return None
