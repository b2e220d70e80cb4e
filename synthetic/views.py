"""Researcher pages of the synthetic app: persona panels, starting runs, run summaries.

Every page fetches its project through `researcher_project`: outsiders get 404 (the project's
existence is not revealed), annotator members get 403. A run's live status, log, cancel and
resume are the jobs app's run page (`jobs-run-detail`); the summary here adds the judgments.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation.models import Membership, Project, Ranking
from synthetic import forms, services
from synthetic.model_choices import model_choices
from synthetic.models import GenerationRun, PersonaPanel, SyntheticRun

JUDGMENTS_PER_PAGE = 50


# ---------------------------------------------------------------- access


def researcher_project(request: HttpRequest, public_id: UUID) -> Project:
    membership = (
        Membership.objects.select_related("project").filter(project__public_id=public_id, user=request.user).first()
    )
    if membership is None:
        raise Http404("No such project.")
    if membership.role != Membership.Role.RESEARCHER:
        raise PermissionDenied("Only researchers of this project can open this page.")
    return membership.project


def project_panels(project: Project, user: Any) -> QuerySet[PersonaPanel]:
    """Panels usable in `project`: the project's own, and the user's panels without a project."""
    return PersonaPanel.objects.filter(Q(project=project) | Q(owner=user, project__isnull=True))


# ---------------------------------------------------------------- panels


@login_required
def panel_list(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    panels = project_panels(project, request.user).select_related("owner").annotate(n=Count("personas"))
    return render(request, "synthetic/panel_list.html", {"project": project, "panels": panels})


@login_required
def panel_detail(request: HttpRequest, public_id: UUID, panel_id: int) -> HttpResponse:
    project = researcher_project(request, public_id)
    panel = get_object_or_404(project_panels(project, request.user), pk=panel_id)
    versions = PersonaPanel.objects.filter(owner=panel.owner, name=panel.name).order_by("-version")
    context = {"project": project, "panel": panel, "personas": panel.personas.all(), "versions": versions}
    return render(request, "synthetic/panel_detail.html", context)


def _panel_form_page(request: HttpRequest, project: Project, form: Any, title: str, intro: str) -> HttpResponse:
    context = {"project": project, "form": form, "title": title, "intro": intro}
    return render(request, "synthetic/panel_form.html", context, status=400 if form.errors else 200)


def _created(request: HttpRequest, project: Project, panel: PersonaPanel) -> HttpResponse:
    messages.success(request, f"Panel {panel} stored with {panel.personas.count()} personas.")
    return redirect("synthetic-panel-detail", public_id=project.public_id, panel_id=panel.pk)


@login_required
@require_http_methods(["GET", "POST"])
def panel_import(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.PanelImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            panel = services.import_panel(
                owner=request.user, name=data["name"], text=data["jsonl"], project=project,
                description=data["description"], filename=data["filename"],
            )
        except services.PanelError as exc:
            form.add_error(None, str(exc))
        else:
            return _created(request, project, panel)
    return _panel_form_page(request, project, form, "Import personas", "JSONL; every bad line is reported.")


@login_required
@require_http_methods(["GET", "POST"])
def panel_generate(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.PanelGenerateForm(request.POST or None, model_choices=model_choices(project, request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            panel = services.generate_panel(
                owner=request.user, name=data["name"], size=data["size"], seed=data["seed"], project=project,
                match_annotators=data["match_annotators"], description=data["description"],
                describe_with=form.describe_with(),
            )
        except services.PanelError as exc:
            form.add_error(None, str(exc))
        else:
            _warn_template_fallbacks(request, panel)
            return _created(request, project, panel)
    intro = "Seeded; quotas optional. Descriptions come from a template, or from a model for small panels."
    return _panel_form_page(request, project, form, "Generate a stratified panel", intro)


def _warn_template_fallbacks(request: HttpRequest, panel: PersonaPanel) -> None:
    described = panel.recipe.get("descriptions") or {}
    if described.get("fallbacks"):
        messages.warning(
            request,
            f"{described['fallbacks']} persona(s) kept the template description: {described['model']} gave "
            "no usable text (the reason is in each persona's description_fallback attribute).",
        )


@login_required
@require_http_methods(["GET", "POST"])
def panel_twins(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.TwinPanelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            panel = services.twin_panel(
                owner=request.user, project=project, name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except services.PanelError as exc:
            form.add_error(None, str(exc))
        else:
            return _created(request, project, panel)
    intro = "One persona per annotator who consented to share demographics, from consented fields only."
    return _panel_form_page(request, project, form, "Twins of annotators", intro)


# ---------------------------------------------------------------- runs


@login_required
def run_list(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    synthetic = SyntheticRun.objects.filter(project=project).select_related("run", "panel").order_by("-run__created_at")
    generation = GenerationRun.objects.filter(project=project).select_related("run").order_by("-run__created_at")
    context = {"project": project, "synthetic_runs": synthetic, "generation_runs": generation}
    return render(request, "synthetic/run_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def run_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.SyntheticRunForm(request.POST or None, panels=project_panels(project, request.user),
                                  model_choices=model_choices(project, request.user))
    if request.method == "POST" and form.is_valid():
        try:
            srun = _start_synthetic(request, project, form)
        except services.SyntheticRunError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Synthetic run queued.")
            return redirect("jobs-run-detail", public_id=srun.run.public_id)
    return render(request, "synthetic/run_form.html", {"project": project, "form": form,
                                                       "title": "Start a synthetic run"},
                  status=400 if form.errors else 200)


def _start_synthetic(request: HttpRequest, project: Project, form: forms.SyntheticRunForm) -> SyntheticRun:
    data = form.cleaned_data
    return services.start_synthetic_run(
        owner=request.user, project=project, panel=data["panel"], engine=data["engine"], model=data["model"],
        backend_options=form.backend_options(), method=data["method"], items=data["items"],
        item_ids=data["item_ids"], sample_size=data["sample_size"], sample_seed=data["sample_seed"],
        allow_ties=data["allow_ties"], reasoning=data["reasoning"], both_orders=data["both_orders"],
        tie_margin=data["tie_margin"], temperature=data["temperature"], seed=data["seed"], name=data["name"],
        permutations=data["permutations"], score_margin=data["score_margin"],
        label_mass_threshold=data["label_mass_threshold"], registered_model=data["registered_model"],
    )


@login_required
@require_http_methods(["GET", "POST"])
def generation_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.GenerationRunForm(request.POST or None, request.FILES or None,
                                   model_choices=model_choices(project, request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grun = services.start_generation_run(
                owner=request.user, project=project, prompts=services.parse_prompts_jsonl(data["jsonl"]),
                models=[{**form.model_spec(), **form.backend_options()}],
                k=data["k"], temperature=data["temperature"], top_p=data["top_p"],
                max_new_tokens=data["max_new_tokens"], seed=data["seed"], name=data["name"],
            )
        except services.SyntheticRunError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Generation run queued.")
            return redirect("jobs-run-detail", public_id=grun.run.public_id)
    return render(request, "synthetic/run_form.html", {"project": project, "form": form,
                                                       "title": "Generate candidate responses"},
                  status=400 if form.errors else 200)


@login_required
def run_summary(request: HttpRequest, public_id: UUID, run_id: int) -> HttpResponse:
    project = researcher_project(request, public_id)
    srun = get_object_or_404(SyntheticRun.objects.select_related("run", "panel"), project=project, pk=run_id)
    judgments = srun.judgments.select_related("item", "persona").order_by("id")
    failures_only = request.GET.get("failures") == "1"
    if failures_only:
        judgments = judgments.filter(Q(parsed_ranking__isnull=True) | Q(ranking__isnull=True))
    page = Paginator(judgments, JUDGMENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "project": project, "srun": srun, "page": page, "failures_only": failures_only,
        "bias": _bias_figure(srun), "run_url": reverse("jobs-run-detail", args=[srun.run.public_id]),
        "signal": signal_context(srun.signal or {}),
        "rankings_in_project": Ranking.objects.filter(judgments__run=srun).count(),
    }
    return render(request, "synthetic/run_summary.html", context)


@login_required
@require_POST
def run_delete_rankings(request: HttpRequest, public_id: UUID, run_id: int) -> HttpResponse:
    project = researcher_project(request, public_id)
    srun = get_object_or_404(SyntheticRun.objects.select_related("run"), project=project, pk=run_id)
    try:
        deleted = services.delete_run_rankings(srun=srun)
    except services.SyntheticRunError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{deleted} ranking(s) of this run deleted from the project; its judgments are kept.")
    return redirect("synthetic-run-summary", public_id=project.public_id, run_id=srun.pk)


def _percent(interval: dict[str, Any] | None) -> dict[str, Any] | None:
    if not interval:
        return None
    return {k: round(100 * interval[k], 1) for k in ("value", "low", "high")} | {"n": interval["n"]}


def signal_context(signal: dict[str, Any]) -> dict[str, Any]:
    """The stored signal report (JSON) as percentages and table rows for the summary page."""
    if not signal:
        return {}
    matrices = []
    for k, matrix in sorted(signal.get("position_distribution", {}).items(), key=lambda kv: int(kv[0])):
        rows = [{"position": p + 1, "cells": [round(100 * c, 1) for c in row]} for p, row in enumerate(matrix)]
        matrices.append({"k": int(k), "ranks": range(1, int(k) + 1), "rows": rows,
                         "decisions": signal.get("position_decisions", {}).get(k, 0), "uniform": round(100 / int(k), 1)})
    figures = {name: _percent(signal.get(name)) for name in (
        "shown_or_reverse", "order_flips", "position_flips", "between_personas", "within_persona", "all_tied",
        "low_confidence", "reference",
    )}
    chance = signal.get("shown_or_reverse_chance")
    return {"matrices": matrices, "degenerate": signal.get("degenerate", []), "reference_items": signal.get("reference_items", 0),
            "shown_or_reverse_chance": round(100 * chance, 1) if chance is not None else None, **figures}


def _bias_figure(srun: SyntheticRun) -> dict[str, float] | None:
    """Bar widths (percent) for the first-shown win rate and the unbiased rate."""
    if srun.first_shown_win_rate is None or srun.expected_first_rate is None:
        return None
    return {"observed": round(100 * srun.first_shown_win_rate, 1), "expected": round(100 * srun.expected_first_rate, 1)}
