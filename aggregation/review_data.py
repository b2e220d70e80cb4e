"""What the review pages show, fetched from the database and computed by `aggregation.review`.

Nothing is cached: every page load reads the current rankings (a revision shows at once). Each
chart is a `Chart`: a Plotly figure (plain JSON, drawn by static/js/review_charts.js) and the
table behind it, which the page offers as CSV. Groups below ``min_group()`` raters never appear.

Everything is computed for one resolved pool: its ballots (its raters, its weights, its
"cannot judge" setting) are the ones `services.collective` aggregates for the same pool, so the
review shows what a snapshot of that pool would freeze. Groups are counted among the pool's
raters, so a group that the pool thins below the threshold is hidden too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings

import socialchoice
from annotation.models import Project, Ranking, Rater

from . import review
from .ballots import Ballots, load_ballots
from .pools import RaterInfo, ResolvedPool

HUMAN, SYNTHETIC, EVERYONE = "humans", "synthetic raters", "everyone"


def min_group() -> int:
    return int(getattr(settings, "AGGREGATE_MIN_GROUP", 5))


@dataclass
class Chart:
    """One figure and its data: ``columns`` and ``rows`` are the CSV download."""

    key: str
    title: str
    figure: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # what the page shows beside the figure


@dataclass
class ProjectData:
    """Everything the project review page needs for one pool (any rule)."""

    pool: ResolvedPool
    ballots: Ballots
    human_groups: dict[review.Group, np.ndarray]
    persona_groups: dict[review.Group, np.ndarray]
    hidden: int
    labels: dict[int, str]
    twins: dict[int, int]
    synthetic_ids: list[int]


def rater_labels(project: Project) -> tuple[dict[int, str], dict[int, int]]:
    """Rater id -> label (username, or persona id · model) and annotator rater id -> twin rater id."""
    from synthetic.models import Persona

    raters = Rater.objects.filter(rankings__item__project=project, rankings__is_current=True).distinct()
    labels, by_persona, by_user = {}, {}, {}
    for r in raters.select_related("user"):
        if r.user is not None:
            labels[r.pk] = r.user.get_username()
            by_user[r.user_id] = r.pk
        else:
            pid = str((r.persona or {}).get("id", "?"))
            labels[r.pk] = f"{pid} · {r.model}"
            by_persona.setdefault(pid, []).append(r.pk)
    twins = {}
    for pid, attributes in Persona.objects.filter(panel__project=project).values_list("persona_id", "attributes"):
        twin_of = (attributes or {}).get("twin_of")
        human = by_user.get(int(twin_of)) if str(twin_of).isdigit() else None
        if human is not None and by_persona.get(pid):
            twins[human] = by_persona[pid][0]
    return labels, twins


def pool_ballots(project: Project, pool: ResolvedPool, items: Any = None) -> Ballots:
    """The pool's current rankings with their weights, as `services.collective` loads them (only
    rankings of positive weight; ``items``: only these items, else every ranked item)."""
    ballots = load_ballots(project, items=items, raters=pool.raters, drop_cannot_judge=pool.spec.drop_cannot_judge)
    return ballots.take(ballots.weights > 0) if items is not None else ballots.ranked_items()


def project_data(project: Project, pool: ResolvedPool, raters: list[RaterInfo]) -> ProjectData:
    """The pool's ballots and its raters' groups (``raters``: `pools.project_raters(project)`)."""
    ballots = pool_ballots(project, pool)
    counted = set(np.unique(ballots.rater_ids).tolist())
    infos = [r for r in raters if r.pk in counted]
    human_attrs = {r.pk: r.demographics for r in infos if r.human}
    persona_attrs = {r.pk: r.attributes for r in infos if not r.human}
    labels, twins = rater_labels(project)
    twins = {h: t for h, t in twins.items() if h in counted and t in counted}
    limit = min_group()
    return ProjectData(
        pool, ballots, review.group_members(human_attrs, limit), review.group_members(persona_attrs, limit),
        review.hidden_groups(human_attrs, limit) + review.hidden_groups(persona_attrs, limit),
        labels, twins, sorted(persona_attrs),
    )


# ---------------------------------------------------------------- charts


def _num(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def _group_label(group: review.Group) -> str:
    return f"{group[0]} = {group[1]}"


def rule_chart(data: ProjectData) -> Chart:
    rules, skipped = review.usable_rules(data.ballots)
    levels = review.rule_levels(data.ballots, rules)
    matrix = review.rule_disagreement(levels, review.has_ballot(data.ballots), skipped)
    z = [[_num(v) for v in row] for row in matrix.differ.tolist()]
    figure = {
        "data": [{"type": "heatmap", "z": z, "x": matrix.rules, "y": matrix.rules, "zmin": 0, "zmax": 1,
                  "colorscale": [[0, "#f7fbff"], [1, "#08306b"]], "hovertemplate": "%{y} vs %{x}: %{z:.0%} of items<extra></extra>"}],
        # One row per rule, each labelled (dtick 1): Plotly thins the labels of a short heatmap.
        "layout": {"title": {"text": f"Share of {matrix.n_items} items where two rules pick different winners"},
                   "margin": {"l": 110, "b": 110}, "height": 220 + 26 * len(matrix.rules),
                   "xaxis": {"dtick": 1}, "yaxis": {"autorange": "reversed", "dtick": 1}},
    }
    rows = [[a, b, z[i][j]] for i, a in enumerate(matrix.rules) for j, b in enumerate(matrix.rules) if i < j]
    chart = Chart("rules", "Rules that pick different winners", figure, ["rule_a", "rule_b", "share_of_items_differ"], rows)
    chart.extra["skipped"] = skipped
    chart.extra["contested"] = contested_items(data.ballots, levels)
    return chart


def contested_items(ballots: Ballots, levels: dict[str, np.ndarray], limit: int = 10) -> list[dict[str, Any]]:
    """The items whose winners differ most across rules (worth opening), most contested first."""
    if not levels:
        return []
    tops = np.stack([review.top_groups(lv) for lv in levels.values()])  # [rules, items, K]
    distinct = np.array([len({t.tobytes() for t in tops[:, i]}) for i in range(tops.shape[1])])
    order = np.argsort(-distinct, kind="stable")[:limit]
    return [{"external_id": ballots.items.external_ids[i], "pk": int(ballots.items.pks[i]),
             "winners": int(distinct[i])} for i in order if distinct[i] > 1]


def _interval_cells(interval: Any) -> list[float | None]:
    if interval is None:
        return [None, None, None]
    return [_num(interval.estimate), _num(interval.low), _num(interval.high)]


def agreement_rows(data: ProjectData) -> list[review.Agreement]:
    b = data.ballots
    return [review.agreement(b.take(b.human), HUMAN), review.agreement(b.take(~b.human), SYNTHETIC),
            review.agreement(b, EVERYONE)]


def agreement_chart(data: ProjectData, rows: list[review.Agreement], between: dict[str, Any]) -> Chart:
    metrics = (("alpha", "Krippendorff's alpha"), ("tau_b", "mean Kendall tau-b"), ("kendall_w", "Kendall's W"))
    traces = []
    shown = [a for a in rows if a.n_items]  # a kind the pool has none of gets no empty slot
    for key, name in metrics:
        values = [getattr(a, key) for a in shown]
        traces.append({
            "type": "bar", "name": name, "x": [a.label for a in shown],
            "y": [_num(v.estimate) if v else None for v in values],
            "error_y": {"type": "data", "symmetric": False,
                        "array": [_num(v.high - v.estimate) if v else None for v in values],
                        "arrayminus": [_num(v.estimate - v.low) if v else None for v in values]},
        })
    if between["items"]:
        traces.append(_between_trace(between))
    figure = {"data": traces, "layout": {"barmode": "group", "yaxis": {"range": [-1, 1]},
                                          "title": {"text": "Agreement with 95% bootstrap intervals over items"}}}
    columns = ["raters", "n_raters", "n_items", "alpha", "alpha_low", "alpha_high", "tau_b", "tau_b_low",
               "tau_b_high", "kendall_w", "w_low", "w_high", "w_n_mean", "w_n_min", "w_n_max"]
    table = [[a.label, a.n_raters, a.n_items, *_interval_cells(a.alpha), *_interval_cells(a.tau_b),
              *_interval_cells(a.kendall_w), _num(a.w_n_mean, 2), a.w_n_min, a.w_n_max] for a in rows]
    table.append(["between: human x synthetic rater pairs (tau-b)", None, between["items"], None, None, None,
                  *between["cross"], None, None, None, None, None, None])
    return Chart("agreement", "Agreement within and between rater kinds", figure, columns, table)


def _between_trace(between: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bar", "name": "tau-b, human x synthetic pairs", "x": ["between"], "y": [between["cross"][0]],
            "error_y": {"type": "data", "symmetric": False,
                        "array": [_diff(between["cross"][2], between["cross"][0])],
                        "arrayminus": [_diff(between["cross"][0], between["cross"][1])]}}


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else _num(a - b)


def between_kinds(data: ProjectData, rule: str) -> dict[str, Any]:
    b = data.ballots
    cross = review.cross_tau_b(b, b.human)
    collective = review.tau_b_rows(review.collective_levels(b.take(b.human), rule),
                                   review.collective_levels(b.take(~b.human), rule))
    items = int(np.isfinite(cross).sum())
    ci = socialchoice.agreement.bootstrap_items(cross, review.N_BOOT)
    cci = socialchoice.agreement.bootstrap_items(collective, review.N_BOOT)
    return {"items": items, "cross": _interval_cells(ci if items else None),
            "collective": _interval_cells(cci if np.isfinite(collective).any() else None)}


def group_agreement_chart(data: ProjectData) -> Chart:
    rows = []
    for kind, groups in ((HUMAN, data.human_groups), (SYNTHETIC, data.persona_groups)):
        for group, ids in groups.items():
            a = review.agreement(data.ballots.take(np.isin(data.ballots.rater_ids, ids)), _group_label(group))
            rows.append([kind, group[0], group[1], len(ids), a.n_items, *_interval_cells(a.tau_b),
                         *_interval_cells(a.kendall_w)])
    figure = {
        "data": [{"type": "bar", "orientation": "h", "name": kind,
                  "y": [f"{'personas' if kind == SYNTHETIC else 'humans'}: {r[1]} = {r[2]} (n={r[3]})"
                        for r in rows if r[0] == kind],
                  "x": [r[5] for r in rows if r[0] == kind],
                  "error_x": {"type": "data", "symmetric": False,
                              "array": [_diff(r[7], r[5]) for r in rows if r[0] == kind],
                              "arrayminus": [_diff(r[5], r[6]) for r in rows if r[0] == kind]}}
                 for kind in (HUMAN, SYNTHETIC)],
        "layout": {"title": {"text": "Mean tau-b within each group (groups of at least "
                                     f"{min_group()} raters)"},
                   "xaxis": {"range": [-1, 1]}, "margin": {"l": 220}, "height": 160 + 22 * len(rows)},
    }
    columns = ["kind", "field", "value", "raters", "items", "tau_b", "tau_b_low", "tau_b_high",
               "kendall_w", "w_low", "w_high"]
    return Chart("groups", "Agreement within demographic groups and persona attribute values", figure, columns, rows)


def heatmap_chart(data: ProjectData, rule: str) -> Chart:
    matrix = review.group_heatmap(data.ballots, rule, data.human_groups, data.persona_groups)
    ys = [f"{_group_label(g)} (n={len(i)})" for g, i in data.human_groups.items()]
    xs = [f"{_group_label(g)} (n={len(i)})" for g, i in data.persona_groups.items()]
    z = [[_num(v) for v in row] for row in matrix.tolist()]
    figure = {
        "data": [{"type": "heatmap", "z": z, "x": xs, "y": ys, "zmin": -1, "zmax": 1, "colorscale": [[0, "#b2182b"], [0.5, "#f7f7f7"], [1, "#2166ac"]],
                  "hovertemplate": "humans %{y}<br>personas %{x}<br>tau-b %{z:.2f}<extra></extra>"}],
        "layout": {"title": {"text": f"Tau-b between group collectives ({rule}), mean over items"},
                   "margin": {"l": 220, "b": 160}, "height": 260 + 24 * len(ys)},
    }
    rows = [[hg[0], hg[1], pg[0], pg[1], z[i][j]] for i, hg in enumerate(data.human_groups)
            for j, pg in enumerate(data.persona_groups)]
    return Chart("heatmap", "Human groups against persona attribute values", figure,
                 ["human_field", "human_value", "persona_attribute", "persona_value", "tau_b"], rows)


def twin_chart(data: ProjectData) -> Chart:
    rows = review.twin_rows(data.ballots, data.twins, data.labels, data.synthetic_ids)
    names = [r.annotator for r in rows]
    figure = {
        "data": [{"type": "bar", "name": "own twin", "x": names, "y": [_num(r.twin_tau) for r in rows]},
                 {"type": "bar", "name": "a random other persona", "x": names, "y": [_num(r.random_tau) for r in rows]}],
        "layout": {"barmode": "group", "yaxis": {"range": [-1, 1], "title": {"text": "mean tau-b"}},
                   "title": {"text": "Each annotator against their synthetic twin and a random persona"}},
    }
    table = [[r.annotator, _num(r.twin_tau), r.twin_items, _num(r.random_tau), r.random_items] for r in rows]
    return Chart("twins", "Annotators against their twins", figure,
                 ["annotator", "twin_tau_b", "twin_items", "random_persona_tau_b", "random_persona_items"], table)


def position_sources(project: Project, ranking_ids: np.ndarray) -> dict[str, tuple[list[list[str]], list[Any]]]:
    """Shown orders and orders of the current rankings ``ranking_ids`` (a pool's), by source:
    humans, then each synthetic run (rankings from a judgment) or model (rankings stored otherwise)."""
    from synthetic.models import Judgment

    run_of = dict(Judgment.objects.filter(item__project=project, ranking__isnull=False)
                  .values_list("ranking_id", "run_id"))
    counted = set(ranking_ids.tolist())
    sources: dict[str, tuple[list[list[str]], list[Any]]] = {}
    rows = Ranking.objects.filter(item__project=project, is_current=True).values_list(
        "pk", "rater__kind", "rater__model", "shown_order", "order")
    for pk, kind, model, shown, order in rows.iterator(chunk_size=5000):
        if pk not in counted:
            continue
        if kind == Rater.Kind.HUMAN:
            label = "humans"
        elif pk in run_of:
            label = f"synthetic run {run_of[pk]} ({model})"
        else:
            label = f"synthetic, {model}"
        shown_list, orders = sources.setdefault(label, ([], []))
        shown_list.append(shown)
        orders.append(order)
    return sources


def position_chart(project: Project, ballots: Ballots) -> Chart:
    biases = [review.position_bias(label, shown, orders, ballots.items.k_max)
              for label, (shown, orders) in sorted(position_sources(project, ballots.ranking_ids).items())]
    traces = [{"type": "scatter", "mode": "lines+markers", "name": f"{b.label} ({b.rankings})",
               "x": list(range(1, len(b.top_rate) + 1)), "y": [_num(v) for v in b.top_rate]} for b in biases]
    if biases:
        longest = max(biases, key=lambda b: len(b.expected))
        traces.append({"type": "scatter", "mode": "lines", "name": "no position bias", "line": {"dash": "dot"},
                       "x": list(range(1, len(longest.expected) + 1)), "y": [_num(v) for v in longest.expected]})
    figure = {"data": traces, "layout": {
        "title": {"text": "How often the response shown at each position is ranked on top"},
        "xaxis": {"title": {"text": "shown position"}, "dtick": 1},
        "yaxis": {"title": {"text": "top-group rate"}, "rangemode": "tozero"}}}
    rows = [[b.label, b.rankings, pos + 1, _num(rate), _num(exp), _num(b.first_z, 2) if pos == 0 else None]
            for b in biases for pos, (rate, exp) in enumerate(zip(b.top_rate, b.expected, strict=True))]
    chart = Chart("position", "Position bias", figure,
                  ["source", "rankings", "shown_position", "top_rate", "expected_without_bias", "first_position_z"], rows)
    chart.extra["summary"] = [{"label": b.label, "rankings": b.rankings, "z": _num(b.first_z, 2),
                                "first": _num(b.top_rate[0]) if b.top_rate else None,
                                "expected": _num(b.expected[0]) if b.expected else None} for b in biases]
    return chart


def scorecard_chart(data: ProjectData, rule: str) -> tuple[Chart, review.Scorecard]:
    b = data.ballots
    card = review.scorecard(b, b.human, rule, data.human_groups, data.persona_groups)
    bars = [("human split-half ceiling", card.ceiling), ("synthetic vs a human half", card.synthetic_vs_half),
            ("synthetic vs all humans", card.synthetic_vs_humans)]
    # Two-line tick labels: five long one-line labels run into each other below 1,000 px.
    labels = ["human split-half<br>ceiling", "synthetic vs<br>a human half", "synthetic vs<br>all humans",
              "personas of the group<br>vs the group", "overall synthetic<br>vs the group"]
    values = [_num(v.estimate) if v else None for _, v in bars] + [_num(card.matched_mean), _num(card.baseline_mean)]
    figure = {"data": [{"type": "bar", "x": labels, "y": values,
                        "marker": {"color": ["#5d6678", "#3454d1", "#3454d1", "#1f8a4c", "#b3261e"]},
                        "error_y": {"type": "data", "symmetric": False,
                                    "array": [_diff(v.high, v.estimate) if v else None for _, v in bars] + [None, None],
                                    "arrayminus": [_diff(v.estimate, v.low) if v else None for _, v in bars] + [None, None]}}],
              "layout": {"title": {"text": f"Synthetic validity ({rule}): mean tau-b of collectives"},
                         "yaxis": {"range": [-1, 1]}, "margin": {"b": 120}}}
    rows = [[name, *_interval_cells(v)] for name, v in bars]
    rows += [[f"group {_group_label(r['group'])}: its personas (n={r['personas']})", _num(r["matched"]), None, None]
             for r in card.groups]
    rows += [[f"group {_group_label(r['group'])}: overall synthetic", _num(r["baseline"]), None, None]
             for r in card.groups]
    rows.append(["persona gain (matched minus overall, mean over groups)", _num(card.persona_gain), None, None])
    rows.append(["persona gain per item (bootstrap over items)", *_interval_cells(card.gain_interval)])
    return Chart("scorecard", "Synthetic-validity scorecard", figure, ["measure", "tau_b", "low", "high"], rows), card


def rater_labels_of(rater_ids: np.ndarray) -> dict[int, str]:
    """Labels of the given raters (username, or persona id · model)."""
    labels = {}
    for r in Rater.objects.filter(pk__in=[int(x) for x in np.unique(rater_ids)]).select_related("user"):
        labels[r.pk] = r.user.get_username() if r.user else f"{(r.persona or {}).get('id', '?')} · {r.model}"
    return labels
