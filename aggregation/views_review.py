"""The researcher's review pages: the project's agreement review and one item's rankings.

Only the project's researchers reach them; annotators and outsiders get 404 (the page does not
say that the project exists). Two selectors (plain GET, enhanced by htmx) choose the pool whose
rankings count (`?pool=<name or id>`, default the built-in `all`) and the rule the collective-based
numbers use (`?rule=`); every chart's data downloads as CSV for the same choice (`?csv=<chart>`).
A pool id that is not one of this project's pools is a 404 (as for any object outside the
project); an unknown pool name, or a saved pool that no longer resolves (its raters changed), is
named in a message and nothing is computed.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import numpy as np
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET

import socialchoice
from annotation.models import Item, Project, Ranking, Rater
from annotation.permissions import researched_project as researcher_project
from socialchoice.agreement import rater_distances

from . import review, review_data, services
from .ballots import Ballots, load_items
from .models import Pool
from .pools import ALL_POOL, PoolError, PoolSpec, RaterInfo, ResolvedPool, project_raters, resolve
from .views.snapshots import pool_names

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


@dataclass(frozen=True)
class PoolChoice:
    """The pool a review page is computed for: ``name`` (as the selector shows it), the project's
    raters, and the resolved pool (None when the project has no rankings or ``error`` says why)."""

    name: str
    raters: list[RaterInfo]
    resolved: ResolvedPool | None
    error: str = ""


def _pool_spec(project: Project, value: str) -> PoolSpec:
    """The pool called ``value`` in the project, or numbered ``value`` (a name wins: names may be
    digits); `Http404` for a number that is no pool of this project, `PoolError` for an unknown name."""
    try:
        return services.pool_spec(project, value)
    except PoolError:
        if not (value.isascii() and value.isdigit()):
            raise
    if len(value) > 18:  # beyond any primary key
        raise Http404("No such pool in this project.")
    return PoolSpec.from_pool(get_object_or_404(Pool, project=project, pk=int(value)))


def _pool(request: HttpRequest, project: Project) -> PoolChoice:
    value = (request.GET.get("pool") or "").strip() or ALL_POOL
    raters = project_raters(project)
    try:
        spec = _pool_spec(project, value)
    except PoolError as exc:
        return PoolChoice(value, raters, None, f"Unknown pool: {exc.message}.")
    if not raters:
        return PoolChoice(spec.name, raters, None)
    try:
        return PoolChoice(spec.name, raters, resolve(project, spec, raters))
    except PoolError as exc:  # saved when it resolved; the project's raters have changed since
        return PoolChoice(spec.name, raters, None,
                          f"The pool “{spec.name}” cannot be used now ({exc.field}: {exc.message}); edit it or choose another.")


def _selection(project: Project, choice: PoolChoice, rule: str, error: str) -> dict[str, Any]:
    """What both pages need to show and keep the selection (selectors, links, CSV links)."""
    return {
        "project": project, "rule": rule, "rules": _rule_choices(), "pool": choice.name,
        "pools": pool_names(project), "error": " ".join(e for e in (choice.error, error) if e),
        "query": urlencode({"pool": choice.name, "rule": rule}),
        "pool_summary": choice.resolved.summary() if choice.resolved else None,
        "pool_drops_cannot_judge": bool(choice.resolved and choice.resolved.spec.drop_cannot_judge),
    }


ChartBuilder = Callable[[Project, review_data.ProjectData, str], review_data.Chart]
BUILDERS: dict[str, ChartBuilder] = {
    "rules": lambda p, d, r: review_data.rule_chart(d),
    "agreement": lambda p, d, r: review_data.agreement_chart(d, review_data.agreement_rows(d), review_data.between_kinds(d, r)),
    "groups": lambda p, d, r: review_data.group_agreement_chart(d),
    "heatmap": lambda p, d, r: review_data.heatmap_chart(d, r),
    "twins": lambda p, d, r: review_data.twin_chart(d),
    "position": lambda p, d, r: review_data.position_chart(p, d.ballots),
    "scorecard": lambda p, d, r: review_data.scorecard_chart(d, r)[0],
}


def _csv(chart: review_data.Chart, project: Project, pool: ResolvedPool, rule: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    # The pool's id (or `all`), not its name: a name is free text and has no place in a header.
    pool_id = Pool.objects.filter(project=project, name=pool.spec.name).values_list("pk", flat=True).first()
    pool_part = f"pool{pool_id}" if pool_id is not None else ALL_POOL
    response["Content-Disposition"] = (
        f'attachment; filename="review-{chart.key}-{pool_part}-{rule}-{project.public_id}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(chart.columns)
    writer.writerows(["" if v is None else v for v in row] for row in chart.rows)
    return response


def _refuse(message: str) -> HttpResponse:
    # Plain text: the message repeats what the request said, which must never be read as HTML.
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


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
        "position": review_data.position_chart(project, data.ballots),
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
        return _refuse(f"Unknown chart “{key}”; charts: {', '.join(BUILDERS)}.")
    choice = _pool(request, project)
    if key is not None:
        # A download never falls back to another selection than the one asked for.
        if choice.error or error:
            return _refuse(choice.error or error)
        if choice.resolved is None:
            return _refuse("No rankings yet: there is nothing to download.")
        data = review_data.project_data(project, choice.resolved, choice.raters)
        return _csv(BUILDERS[key](project, data, rule), project, choice.resolved, rule)
    context = _selection(project, choice, rule, error)
    if choice.resolved is not None:
        data = review_data.project_data(project, choice.resolved, choice.raters)
        if len(data.ballots):
            context |= _project_context(project, data, rule)
    template = "aggregation/review.html#body" if request.htmx else "aggregation/review.html"
    return render(request, template, context, status=400 if context["error"] else 200)


# ---------------------------------------------------------------- one item


def _visible_groups(project: Project, demographics: dict[str, str], large: set[review.Group]) -> dict[str, str]:
    """A human's consented fields as the page may show them: all of them where the project
    exports demographics per ranking, else only values whose group is above the threshold."""
    if project.demographics_export == Project.DemographicsExport.INDIVIDUAL:
        return demographics
    return {f: v for f, v in demographics.items() if (f, v) in large}


def _ranking_rows(project: Project, item: Item, choice: PoolChoice, counted: Ballots | None) -> list[dict[str, Any]]:
    """Every current ranking of the item, with the weight it has in the pool (None: not counted)."""
    infos = {r.pk: r for r in choice.raters}
    large = set(review.group_members({pk: r.demographics for pk, r in infos.items() if r.human},
                                     review_data.min_group()))
    weights = {} if counted is None else dict(zip(counted.ranking_ids.tolist(), counted.weights.tolist(), strict=True))
    rankings = item.rankings.filter(is_current=True).select_related("rater__user").order_by("rater__kind", "id")
    rows = []
    for r in rankings:
        info = infos.get(r.rater_id)
        human = r.rater.kind == Rater.Kind.HUMAN
        rows.append({
            "ranking": r, "human": human, "weight": weights.get(r.pk),
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


def _item_profiles(ballots: Ballots) -> dict[str, socialchoice.Profile]:
    parts = {"the pool": ballots, "its humans": ballots.take(ballots.human),
             "its synthetic raters": ballots.take(~ballots.human)}
    return {name: b.profile(0) for name, b in parts.items() if len(b)}


@login_required
@require_GET
def item_review(request: HttpRequest, public_id: UUID, item_id: int) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    item = get_object_or_404(project.items.prefetch_related("responses"), pk=item_id)
    rule, error = _rule(request)
    choice = _pool(request, project)
    ballots = None
    if choice.resolved is not None:
        ballots = review_data.pool_ballots(project, choice.resolved, load_items(project, (item.pk, item.pk)))
    context = _selection(project, choice, rule, error) | {
        "item": item, "rows": _ranking_rows(project, item, choice, ballots), "responses": item.responses.all(),
    }
    if ballots is not None and len(ballots):
        profiles = _item_profiles(ballots)
        pooled = profiles["the pool"]
        usable, skipped = review.usable_rules(ballots)
        context["collectives"] = _collectives(pooled, usable)
        context["skipped_rules"] = skipped
        context["by_kind"] = [{"name": name, "raters": p.n_voters, "order": socialchoice.aggregate(p, rule).order,
                               "condorcet": review.condorcet(p)} for name, p in profiles.items()]
        context["farthest"] = _farthest(ballots, pooled, rule)
    return render(request, "aggregation/review_item.html", context, status=400 if context["error"] else 200)


def _farthest(ballots: Ballots, profile: socialchoice.Profile, rule: str) -> list[dict[str, Any]]:
    collective = socialchoice.aggregate(profile, rule).order
    dist = rater_distances(profile, collective)
    labels = review_data.rater_labels_of(ballots.rater_ids)
    order = np.argsort(-dist.distance, kind="stable")[:FARTHEST]
    return [{"rater": labels.get(int(ballots.rater_ids[i]), "?"), "human": bool(ballots.human[i]),
             "weight": float(ballots.weights[i]), "distance": float(dist.distance[i]), "tau_b": float(dist.tau_b[i])}
            for i in order]


urlpatterns: list[URLPattern] = [
    path("<uuid:public_id>/review/", project_review, name="aggregation-project-review"),
    path("<uuid:public_id>/review/items/<int:item_id>/", item_review, name="aggregation-item-review"),
]
