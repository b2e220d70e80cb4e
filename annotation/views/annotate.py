"""The annotator's pages: my projects, and ranking one item after another.

Submit and skip answer an htmx request with the next item's fragment (`annotation/_item.html`)
and a plain form post with a redirect to the annotate page, so the page works without JavaScript.
A submission that is not stored re-renders the item with the reason (a plain post gets 422, or 409
when the project no longer takes rankings); the widget restores the annotator's work from
sessionStorage.
"""
from __future__ import annotations

import json
import string
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.forms import RankingForm
from annotation.markdown import render_markdown
from annotation.models import Assignment, Item, Membership, Project, Ranking
from annotation.services import (
    AssignmentError,
    annotator_progress,
    next_assignment,
    reopen_skipped,
    revise_ranking,
    skip_assignment,
    skipped_items,
    submit_ranking,
    with_annotator_progress,
)
from annotation.weak_orders import RankingError

_NOT_OPEN = {
    Project.Status.DRAFT: "This project is not open for annotation yet.",
    Project.Status.CLOSED: "This project is closed and takes no more rankings. Thank you!",
}


# ---------------------------------------------------------------- permission helpers


def _member_project(request: HttpRequest, public_id: Any) -> Project:
    """A project the user belongs to; anyone else gets 404."""
    return get_object_or_404(Project.objects.filter(memberships__user=request.user), public_id=public_id)


def _own_assignment(request: HttpRequest, public_id: Any) -> Assignment:
    """The user's own assignment in a project they still belong to; anything else is 404."""
    assignments = Assignment.objects.select_related("item__project", "rater").filter(
        rater__user=request.user, item__project__memberships__user=request.user
    )
    return get_object_or_404(assignments, public_id=public_id)


# ---------------------------------------------------------------- my projects


def _manage_url(project: Project) -> str | None:
    """The researcher's project page, once that view exists."""
    try:
        return reverse("annotation-project-detail", args=[project.public_id])
    except NoReverseMatch:
        return None


def _project_rows(user: Any) -> list[dict[str, Any]]:
    """The user's projects with their own progress: one query, however many projects."""
    roles = dict(Membership.objects.filter(user=user).values_list("project_id", "role"))
    projects = with_annotator_progress(Project.objects.filter(pk__in=roles), user).order_by("-created_at")
    rows = []
    for project in projects:
        is_researcher = roles[project.pk] == Membership.Role.RESEARCHER
        if project.status == Project.Status.DRAFT and not is_researcher:
            continue
        rows.append({
            "project": project,
            "is_researcher": is_researcher,
            "progress": {"done": project.my_done, "remaining": project.my_remaining, "skipped": project.my_skipped},
            "manage_url": _manage_url(project) if is_researcher else None,
        })
    return rows


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/home.html", {"rows": _project_rows(request.user)})


# ---------------------------------------------------------------- ranking


def _label(position: int) -> str:
    """A response's label by its place in the shown order: A, B, C..."""
    return string.ascii_uppercase[position] if position < len(string.ascii_uppercase) else str(position + 1)


def _cards(item: Item, shown_order: list[str], texts: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The responses in the order this annotator is shown them, labelled A, B, C..."""
    if texts is None:
        texts = dict(item.responses.values_list("response_id", "text"))
    return [
        {"id": rid, "label": _label(i), "text": texts[rid]}
        for i, rid in enumerate(shown_order)
        if rid in texts
    ]


EXCERPT_CHARS = 80


def _as_seen(ranking: Ranking) -> list[list[dict[str, str]]]:
    """The ranking's tie groups, best first, each response as the annotator saw it: its letter in
    their shown order and the start of its text (ids are internal and mean nothing to them)."""
    texts = {r.response_id: r.text for r in ranking.item.responses.all()}
    cards = {card["id"]: card for card in _cards(ranking.item, ranking.shown_order, texts)}
    return [
        [{"label": cards[rid]["label"], "excerpt": _excerpt(cards[rid]["text"])} for rid in group if rid in cards]
        for group in ranking.order
    ]


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1].rstrip() + "…"


def _item_context(request: HttpRequest, project: Project, assignment: Assignment | None, **extra: Any) -> dict:
    context: dict[str, Any] = {
        "project": project,
        "assignment": assignment,
        "progress": annotator_progress(project=project, user=request.user),
        "form": extra.pop("form", None) or RankingForm(),
        "error": None,
        "announce": "",
    }
    if assignment is not None:
        context["cards"] = _cards(assignment.item, assignment.shown_order)
    context.update(extra)
    return context


def _render_item(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """The fragment for htmx, else the whole page around it."""
    project = context["project"]
    if request.htmx:
        return render(request, "annotation/_item.html", context, status=status)
    context["guidelines_html"] = render_markdown(project.guidelines)
    return render(request, "annotation/annotate.html", context, status=status)


def _current_item(request: HttpRequest, project: Project, announce: str = "") -> HttpResponse:
    """The item leased to the user (leasing the next one if needed), or why there is none."""
    if project.status != Project.Status.ACTIVE:
        context = _item_context(request, project, None, not_open=_NOT_OPEN[project.status], announce=announce)
        return _render_item(request, context)
    assignment = next_assignment(project=project, user=request.user)
    return _render_item(request, _item_context(request, project, assignment, announce=announce))


def _next_item(request: HttpRequest, project: Project, announce: str) -> HttpResponse:
    if not request.htmx:
        return redirect("annotation-annotate", public_id=project.public_id)
    return _current_item(request, project, announce)


@login_required
@require_GET
def annotate(request: HttpRequest, public_id: Any) -> HttpResponse:
    return _current_item(request, _member_project(request, public_id))


def _refuse(request: HttpRequest, assignment: Assignment, form: RankingForm, message: str,
            field: str, status: int = 422) -> HttpResponse:
    """Re-render the same item with the reason nothing was stored.

    htmx gets 200, so it swaps the fragment in and Chromium logs no failed request in the console;
    a plain form post gets the error status.
    """
    project = assignment.item.project
    context = _item_context(request, project, assignment, form=form, error=message, error_field=field)
    return _render_item(request, context, status=200 if request.htmx else status)


@login_required
@require_POST
def submit(request: HttpRequest, public_id: Any) -> HttpResponse:
    assignment = _own_assignment(request, public_id)
    project = assignment.item.project
    form = RankingForm(request.POST)
    if project.status != Project.Status.ACTIVE:
        return _refuse(request, assignment, form, f"Not saved: {_NOT_OPEN[project.status]}", "project", 409)
    if not form.is_valid():
        field, message = form.first_error()
        return _refuse(request, assignment, form, f"Not saved: {message}", field)
    data = form.cleaned_data
    try:
        submit_ranking(
            user=request.user, assignment=assignment, order=data["ranking"], rationale=data["rationale"],
            flags=data["flags"], seconds=data["seconds"], submission_id=data["submission_id"],
        )
    except RankingError as error:
        return _refuse(request, assignment, form, f"Not saved: {error.field}: {error}", error.field)
    return _next_item(request, project, announce="Ranking saved. Next item loaded.")


@login_required
@require_POST
def skip(request: HttpRequest, public_id: Any) -> HttpResponse:
    assignment = _own_assignment(request, public_id)
    skip_assignment(assignment=assignment, user=request.user)
    return _next_item(request, assignment.item.project, announce="Item skipped. Next item loaded.")


# ---------------------------------------------------------------- my rankings, and revising one

RANKINGS_PER_PAGE = 50


@login_required
@require_GET
def my_rankings(request: HttpRequest, public_id: Any) -> HttpResponse:
    """The user's own current rankings in a project, newest first, each with a link to revise it,
    and the items they skipped, each with a way to reopen it."""
    project = _member_project(request, public_id)
    rankings = (
        Ranking.objects.filter(item__project=project, rater__user=request.user, is_current=True)
        .select_related("item").prefetch_related("item__responses").order_by("-created_at", "-pk")
    )
    page = Paginator(rankings, RANKINGS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [{"ranking": ranking, "tiers": _as_seen(ranking)} for ranking in page]
    skipped = skipped_items(project=project, user=request.user)[:RANKINGS_PER_PAGE]
    context = {"project": project, "page": page, "rows": rows, "skipped": skipped}
    return render(request, "annotation/my_rankings.html", context)


@login_required
@require_POST
def reopen(request: HttpRequest, public_id: Any) -> HttpResponse:
    """Take back a skip: the item returns to the annotator's pool while it still needs rankings."""
    assignment = _own_assignment(request, public_id)
    project = assignment.item.project
    try:
        reopen_skipped(assignment=assignment, user=request.user)
    except AssignmentError as error:
        messages.error(request, f"Not reopened: {error}.")
        return redirect(reverse("annotation-my-rankings", args=[project.public_id]) + "#skipped")
    messages.success(request, "Item reopened: it is back among the items you will be given.")
    return redirect("annotation-annotate", public_id=project.public_id)


def _own_ranking(request: HttpRequest, pk: int) -> Ranking:
    """The user's own current ranking in a project they still belong to; anything else is 404."""
    rankings = Ranking.objects.select_related("item__project", "rater").filter(
        rater__user=request.user, is_current=True, item__project__memberships__user=request.user
    )
    return get_object_or_404(rankings, pk=pk)


def _revise_page(request: HttpRequest, ranking: Ranking, form: RankingForm, error: str = "", field: str = "",
                 status: int = 200) -> HttpResponse:
    project = ranking.item.project
    context = {
        "project": project, "ranking": ranking, "item": ranking.item, "form": form, "error": error,
        "error_field": field, "cards": _cards(ranking.item, ranking.shown_order),
        "not_open": _NOT_OPEN.get(project.status),
    }
    return render(request, "annotation/revise.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def revise(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-rank an item already submitted: the stored order is the starting point; saving adds a
    version (the earlier one is kept)."""
    ranking = _own_ranking(request, pk)
    if request.method == "GET":
        initial = {"ranking": json.dumps(ranking.order), "rationale": ranking.rationale, "flags": ranking.flags,
                   "submission_id": uuid.uuid4()}
        return _revise_page(request, ranking, RankingForm(initial=initial))
    form = RankingForm(request.POST)
    if not form.is_valid():
        field, message = form.first_error()
        return _revise_page(request, ranking, form, f"Not saved: {message}", field, 422)
    data = form.cleaned_data
    try:
        stored = revise_ranking(
            user=request.user, ranking=ranking, order=data["ranking"], rationale=data["rationale"],
            flags=data["flags"], seconds=data["seconds"], submission_id=data["submission_id"],
        )
    except RankingError as error:
        return _revise_page(request, ranking, form, f"Not saved: {error.field}: {error}", error.field, 422)
    except AssignmentError as error:
        return _revise_page(request, ranking, form, f"Not saved: {error}", "project", 409)
    messages.success(request, f"Ranking revised (version {stored.version}).")
    return redirect("annotation-my-rankings", public_id=ranking.item.project.public_id)


urlpatterns = [
    path("", home, name="annotation-home"),
    path("annotate/<uuid:public_id>/", annotate, name="annotation-annotate"),
    path("assignments/<uuid:public_id>/submit/", submit, name="annotation-submit-ranking"),
    path("assignments/<uuid:public_id>/skip/", skip, name="annotation-skip-assignment"),
    path("assignments/<uuid:public_id>/reopen/", reopen, name="annotation-reopen-assignment"),
    path("annotate/<uuid:public_id>/mine/", my_rankings, name="annotation-my-rankings"),
    path("rankings/<int:pk>/revise/", revise, name="annotation-revise-ranking"),
]
