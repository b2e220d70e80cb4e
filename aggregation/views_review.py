"""The researcher's review pages: the project's agreement review and one item's rankings.

Only the project's researchers reach them; annotators and outsiders get 404 (the page does not
say that the project exists). A rule switcher (plain GET, enhanced by htmx) changes the rule the
collective-based numbers use; every chart's data downloads as CSV (`?csv=<chart>`).
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from typing import Any
from uuid import UUID

import numpy as np
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET

import socialchoice
from annotation.models import Item, Project, Ranking, Rater
from annotation.permissions import researched_project as researcher_project
from socialchoice.agreement import rater_distances

from . import review, review_data
from .ballots import load_ballots, load_items
from .pools import project_raters

FARTHEST = 5


def _rule(request: HttpRequest) -> tuple[str, str]:
    """(rule, error): the requested rule, or the default and a message naming the bad value."""
    rule = request.GET.get("rule") or socialchoice.DEFAULT_RULE
    known = {r["name"] for r in socialchoice.describe()} - {"egalitarian"}
    if rule not in known:
        return socialchoice.DEFAULT_RULE, f"Unknown rule “{rule}”; known rules: {', '.join(sorted(known))}."
    return rule, ""


def _rule_choices() -> list[dict[str, Any]]:
    return [r for r in socialchoice.describe() if r["name"] != "egalitarian"]


ChartBuilder = Callable[[Project, review_data.ProjectData, str], review_data.Chart]
BUILDERS: dict[str, ChartBuilder] = {
    "rules": lambda p, d, r: review_data.rule_chart(d),
    "agreement": lambda p, d, r: review_data.agreement_chart(d, review_data.agreement_rows(d), review_data.between_kinds(d, r)),
    "groups": lambda p, d, r: review_data.group_agreement_chart(d),
    "heatmap": lambda p, d, r: review_data.heatmap_chart(d, r),
    "twins": lambda p, d, r: review_data.twin_chart(d),
    "position": lambda p, d, r: review_data.position_chart(p, d.ballots.items.k_max),
    "scorecard": lambda p, d, r: review_data.scorecard_chart(d, r)[0],
}


def _csv(chart: review_data.Chart, project: Project, rule: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="review-{chart.key}-{rule}-{project.public_id}.csv"'
    writer = csv.writer(response)
    writer.writerow(chart.columns)
    writer.writerows(["" if v is None else v for v in row] for row in chart.rows)
    return response


def _project_context(project: Project, data: review_data.ProjectData, rule: str) -> dict[str, Any]:
    agreement = review_data.agreement_rows(data)
    between = review_data.between_kinds(data, rule)
    card_chart, card = review_data.scorecard_chart(data, rule)
    charts = {
        "rules": review_data.rule_chart(data),
        "agreement": review_data.agreement_chart(data, agreement, between),
        "groups": review_data.group_agreement_chart(data),
        "heatmap": review_data.heatmap_chart(data, rule),
        "twins": review_data.twin_chart(data),
        "position": review_data.position_chart(project, data.ballots.items.k_max),
        "scorecard": card_chart,
    }
    b = data.ballots
    return {
        "charts": charts, "agreement": agreement, "between": between, "card": card,
        "counts": {"items": len(b.items), "rankings": len(b), "humans": len(np.unique(b.rater_ids[b.human])),
                   "synthetic": len(np.unique(b.rater_ids[~b.human]))},
        "hidden_groups": data.hidden, "min_group": review_data.min_group(),
        "skipped_rules": charts["rules"].extra["skipped"],
        "contested": charts["rules"].extra["contested"],
        "position_summary": charts["position"].extra["summary"],
    }


@login_required
@require_GET
def project_review(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    rule, error = _rule(request)
    key = request.GET.get("csv")
    if key is not None and key not in BUILDERS:
        return HttpResponseBadRequest(f"Unknown chart “{key}”; charts: {', '.join(BUILDERS)}.")
    data = review_data.project_data(project)
    if key is not None:
        return _csv(BUILDERS[key](project, data, rule), project, rule)
    context = {"project": project, "rule": rule, "error": error, "rules": _rule_choices()}
    if len(data.ballots):
        context |= _project_context(project, data, rule)
    template = "aggregation/review.html#body" if request.htmx else "aggregation/review.html"
    return render(request, template, context, status=400 if error else 200)


# ---------------------------------------------------------------- one item


def _visible_groups(project: Project, demographics: dict[str, str], large: set[review.Group]) -> dict[str, str]:
    """A human's consented fields as the page may show them: all of them where the project
    exports demographics per ranking, else only values whose group is above the threshold."""
    if project.demographics_export == Project.DemographicsExport.INDIVIDUAL:
        return demographics
    return {f: v for f, v in demographics.items() if (f, v) in large}


def _ranking_rows(project: Project, item: Item) -> list[dict[str, Any]]:
    infos = {r.pk: r for r in project_raters(project)}
    large = set(review.group_members({pk: r.demographics for pk, r in infos.items() if r.human},
                                     review_data.min_group()))
    rankings = item.rankings.filter(is_current=True).select_related("rater__user").order_by("rater__kind", "id")
    rows = []
    for r in rankings:
        info = infos.get(r.rater_id)
        human = r.rater.kind == Rater.Kind.HUMAN
        rows.append({
            "ranking": r, "human": human,
            "rater": r.rater.user.get_username() if human and r.rater.user else (r.rater.persona or {}).get("id", "?"),
            "model": r.rater.model, "persona": None if human else (r.rater.persona or {}),
            "groups": _visible_groups(project, info.demographics, large) if (human and info) else {},
            "cannot_judge": Ranking.Flag.CANNOT_JUDGE.value in (r.flags or []),
        })
    return rows


def _collectives(profile: socialchoice.Profile, rules: list[str]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        result = socialchoice.aggregate(profile, rule)
        out.append({"rule": rule, "order": result.order, "scores": result.scores})
    return out


def _item_profiles(project: Project, item: Item) -> tuple[Any, dict[str, socialchoice.Profile]]:
    ballots = load_ballots(project, items=load_items(project, (item.pk, item.pk)), drop_cannot_judge=True)
    parts = {"everyone": ballots, "humans": ballots.take(ballots.human), "synthetic": ballots.take(~ballots.human)}
    return ballots, {name: b.profile(0) for name, b in parts.items() if len(b)}


@login_required
@require_GET
def item_review(request: HttpRequest, public_id: UUID, item_id: int) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    item = get_object_or_404(project.items.prefetch_related("responses"), pk=item_id)
    rule, error = _rule(request)
    ballots, profiles = _item_profiles(project, item)
    context: dict[str, Any] = {
        "project": project, "item": item, "rule": rule, "error": error, "rules": _rule_choices(),
        "rows": _ranking_rows(project, item), "responses": item.responses.all(),
    }
    if "everyone" in profiles:
        everyone = profiles["everyone"]
        usable, skipped = review.usable_rules(ballots)
        context["collectives"] = _collectives(everyone, usable)
        context["skipped_rules"] = skipped
        context["by_kind"] = [{"name": name, "raters": p.n_voters, "order": socialchoice.aggregate(p, rule).order,
                               "condorcet": review.condorcet(p)} for name, p in profiles.items()]
        context["farthest"] = _farthest(ballots, everyone, rule)
    return render(request, "aggregation/review_item.html", context, status=400 if error else 200)


def _farthest(ballots: Any, profile: socialchoice.Profile, rule: str) -> list[dict[str, Any]]:
    collective = socialchoice.aggregate(profile, rule).order
    dist = rater_distances(profile, collective)
    labels = review_data.rater_labels_of(ballots.rater_ids)
    order = np.argsort(-dist.distance, kind="stable")[:FARTHEST]
    return [{"rater": labels.get(int(ballots.rater_ids[i]), "?"), "human": bool(ballots.human[i]),
             "distance": float(dist.distance[i]), "tau_b": float(dist.tau_b[i])} for i in order]


urlpatterns: list[URLPattern] = [
    path("<uuid:public_id>/review/", project_review, name="aggregation-project-review"),
    path("<uuid:public_id>/review/items/<int:item_id>/", item_review, name="aggregation-item-review"),
]
