"""HTML views of the evaluation app: evaluation runs (list, start), the comparison report of a
run's models with its exports, and blind human comparisons. Researchers of the project only:
everyone else gets 404, on every page and every creating endpoint."""
from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation.models import Project
from evaluation import report as reports
from evaluation.blind import blind_results
from evaluation.models import BlindComparison, EvaluationRun
from evaluation.permissions import evaluation_project
from evaluation.services import (
    MAX_PER_CATEGORY,
    evaluate_experiment,
    reward_models,
    start_blind_comparison,
    start_evaluation,
    with_reward_model,
)
from jobs.services import RunError
from training.models import Experiment

EXPORTS = {
    "csv": ("text/csv", "csv", reports.to_csv),
    "json": ("application/json", "json", reports.to_json),
    "md": ("text/markdown; charset=utf-8", "md", reports.to_markdown),
}


def researcher_project(request: HttpRequest, public_id: UUID) -> Project:
    """The project if the user is one of its researchers (and may create projects); else 404."""
    return evaluation_project(request.user, public_id)


def default_config() -> dict[str, Any]:
    model = settings.MODELS_DIR / "smollm2-135m-instruct"
    return {
        "models": [{"name": "smollm2-135m-instruct", "path": str(model)}],
        "benchmarks": [{"name": "bbq", "per_category": 50}, {"name": "crows_pairs", "limit": 200}],
        "chunk_size": 256, "device": "auto",
    }


@login_required
def run_list(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    runs = EvaluationRun.objects.filter(project=project).select_related("run")
    blind = BlindComparison.objects.filter(source_project=project).select_related("project", "run")
    experiments = Experiment.objects.filter(project=project)
    context = {"project": project, "runs": runs, "blind": blind, "experiments": experiments}
    return render(request, "evaluation/run_list.html", context)


def _parse_config(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"config is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if not isinstance(config, dict):
        return None, "config must be a JSON object with models and benchmarks"
    return config, None


@login_required
@require_http_methods(["GET", "POST"])
def run_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The run's config as JSON; "Add to the config" appends a registered reward model to it
    (and re-renders the form), "Queue the run" validates and queues it."""
    project = researcher_project(request, public_id)
    text = request.POST.get("config") or json.dumps(default_config(), indent=2)
    name = request.POST.get("name", "")
    offered = reward_models(project)
    error, notes = None, []
    if request.method == "POST":
        config, error = _parse_config(text)
        if config is not None and "add_reward_model" in request.POST:
            chosen = next((m for m in offered if str(m.public_id) == request.POST.get("reward_model", "")), None)
            if chosen is None:
                error = "reward_model: choose one of this project's registered reward models"
            else:
                config, notes = with_reward_model(config, chosen)
                text = json.dumps(config, indent=2)
        elif config is not None:
            try:
                erun = start_evaluation(owner=request.user, project=project, config=config, name=name)
            except RunError as exc:
                error = str(exc)
            else:
                messages.success(request, "Evaluation run queued.")
                return redirect("jobs-run-detail", public_id=erun.run.public_id)
    context = {"project": project, "config": text, "name": name, "error": error, "notes": notes, "reward_models": offered}
    return render(request, "evaluation/run_form.html", context, status=400 if error else 200)


@login_required
def run_report(request: HttpRequest, public_id: UUID, run_id: int) -> HttpResponse:
    project = researcher_project(request, public_id)
    erun = get_object_or_404(EvaluationRun.objects.select_related("run"), project=project, pk=run_id)
    report = reports.build_report(erun)
    fmt = request.GET.get("format", "")
    if fmt in EXPORTS:
        content_type, ext, render_export = EXPORTS[fmt]
        response = HttpResponse(render_export(report), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="evaluation-{erun.run.public_id}.{ext}"'
        return response
    if fmt == "html":
        response = HttpResponse(reports.to_html(report))
        response["Content-Disposition"] = f'attachment; filename="evaluation-{erun.run.public_id}.html"'
        return response
    context = {"project": project, "erun": erun, "report": report, "figures": reports.figures(report),
               "standalone": False, "plotly_js": ""}
    return render(request, "evaluation/report.html", context)


# ---------------------------------------------------------------- blind human comparisons


def default_blind_config() -> dict[str, Any]:
    model = str(settings.MODELS_DIR / "smollm2-135m-instruct")
    return {"name": "Blind comparison", "models": [{"name": "model-a", "path": model}, {"name": "model-b", "path": model}],
            "limit": 20, "max_new_tokens": 128, "seed": 0}


@login_required
@require_http_methods(["GET", "POST"])
def blind_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    text = request.POST.get("config") or json.dumps(default_blind_config(), indent=2)
    error = None
    if request.method == "POST":
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            error = f"config is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        else:
            try:
                run = start_blind_comparison(owner=request.user, project=project, config=config)
            except RunError as exc:
                error = str(exc)
            else:
                messages.success(request, "Generation for the blind comparison queued.")
                return redirect("jobs-run-detail", public_id=run.public_id)
    context = {"project": project, "config": text, "error": error}
    return render(request, "evaluation/blind_form.html", context, status=400 if error else 200)


@login_required
def blind_detail(request: HttpRequest, public_id: UUID, comparison_id: int) -> HttpResponse:
    project = researcher_project(request, public_id)
    comparison = get_object_or_404(BlindComparison.objects.select_related("project"), source_project=project, pk=comparison_id)
    results = blind_results(comparison)
    names = comparison.model_names
    overall = results["overall"]
    table = sorted(({"model": m, "bt": overall["bt"][m], "ci": overall["bt_ci"][m], "win_rate": overall["win_rate"][m]}
                    for m in names), key=lambda r: -r["bt"])
    matrix = [{"model": m, "wins": overall["win_matrix"][i], "battles": overall["battle_matrix"][i]} for i, m in enumerate(names)]
    groups = [{"name": g, "rows": sorted(({"model": m, "bt": r["bt"][m], "win_rate": r["win_rate"][m]} for m in names),
                                          key=lambda x: -x["bt"]), "rankings": r["rankings"]} for g, r in results["groups"].items()]
    context = {"project": project, "comparison": comparison, "results": results, "table": table, "matrix": matrix,
               "names": names, "groups": groups}
    return render(request, "evaluation/blind_detail.html", context)


# ---------------------------------------------------------------- experiments


@login_required
def experiment_evaluations(request: HttpRequest, public_id: UUID, experiment_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    experiment = get_object_or_404(Experiment, project=project, public_id=experiment_id)
    runs = experiment.evaluations.select_related("run")
    context = {"project": project, "experiment": experiment, "runs": runs,
               "conditions": experiment.conditions.select_related("model")}
    return render(request, "evaluation/experiment.html", context)


@login_required
@require_POST
def experiment_evaluate(request: HttpRequest, public_id: UUID, experiment_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    experiment = get_object_or_404(Experiment, project=project, public_id=experiment_id)
    try:
        per_category = int(request.POST.get("per_category", "50"))
        if not 1 <= per_category <= MAX_PER_CATEGORY:
            raise ValueError
    except ValueError:
        messages.error(request, f"Examples per BBQ category must be a whole number from 1 to {MAX_PER_CATEGORY}.")
        return redirect("evaluation-experiment", public_id=project.public_id, experiment_id=experiment.public_id)
    try:
        erun = evaluate_experiment(owner=request.user, experiment=experiment, per_category=per_category)
    except RunError as exc:
        messages.error(request, str(exc))
        return redirect("evaluation-experiment", public_id=project.public_id, experiment_id=experiment.public_id)
    messages.success(request, "Evaluation of every condition queued.")
    return redirect("jobs-run-detail", public_id=erun.run.public_id)
