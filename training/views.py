"""Training pages: models (registry), runs (form, live page with logs and charts), experiments.

Every view fetches its project through `researcher_project`: only the project's researchers see
training; everyone else (annotators included) gets 404. Live status and log come from the jobs
app's websocket fragment; the charts poll `run_metrics` (the recipe's metrics.jsonl).
"""
from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from annotation.models import Project
from annotation.permissions import researched_project
from training import forms, services
from training.models import Experiment, RegisteredModel, TrainingRun


def researcher_project(request: HttpRequest, public_id: UUID) -> Project:
    """The project if the user is one of its researchers; 404 for everyone else."""
    return researched_project(request.user, public_id)


def _models(project: Project) -> Any:
    return services.project_models(project)


def _run(project: Project, run_id: UUID) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("run", "base_model"), project=project,
                             run__public_id=run_id)


# ---------------------------------------------------------------- overview and models


@login_required
@require_GET
def project_training(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    context = {
        "project": project,
        "models": _models(project)[:50],
        "runs": TrainingRun.objects.filter(project=project).select_related("run", "base_model")[:50],
        "experiments": Experiment.objects.filter(project=project)[:50],
        "form": forms.RegisterModelForm(),
    }
    return render(request, "training/project.html", context)


@login_required
@require_http_methods(["POST"])
def model_register(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.RegisterModelForm(request.POST)
    if form.is_valid() and (model := form.register(owner=request.user, project=project)) is not None:
        messages.success(request, f"Model {model.name} registered.")
        return redirect("training-model-detail", public_id=project.public_id, model_id=model.public_id)
    context = {"project": project, "models": _models(project)[:50], "runs": [], "experiments": [], "form": form}
    return render(request, "training/project.html", context, status=400)


@login_required
@require_GET
def model_detail(request: HttpRequest, public_id: UUID, model_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    model = get_object_or_404(_models(project), public_id=model_id)
    context = {"project": project, "model": model, "files": services.model_files(model),
               "lineage": json.dumps(model.lineage, indent=2)}
    return render(request, "training/model_detail.html", context)


@login_required
@require_GET
def model_download(request: HttpRequest, public_id: UUID, model_id: UUID) -> HttpResponse:
    """The model's HF directory as a zip (checkpoints left out; lineage.json added where the
    directory has none), streamed: a real model is gigabytes and is never held in memory."""
    project = researcher_project(request, public_id)
    return model_zip_response(get_object_or_404(_models(project), public_id=model_id))


def model_zip_response(model: RegisteredModel) -> StreamingHttpResponse:
    """The streamed zip of `model`'s directory (services.model_zip), for the page and the API; 404 without files."""
    found = services.model_zip(model)
    if found is None:
        raise Http404("This model has no files on this server.")
    stream, filename = found
    response = StreamingHttpResponse(stream, content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response


# ---------------------------------------------------------------- runs


@login_required
@require_http_methods(["GET", "POST"])
def run_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.TrainingRunForm(request.POST or None, models=_models(project), project=project)
    if request.method == "POST" and form.is_valid():
        training = form.start(owner=request.user, project=project)
        if training is not None:
            return redirect("training-run-detail", public_id=project.public_id, run_id=training.run.public_id)
    status = 400 if form.errors else 200
    return render(request, "training/run_form.html", {"project": project, "form": form}, status=status)


@login_required
@require_GET
def run_detail(request: HttpRequest, public_id: UUID, run_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    training = _run(project, run_id)
    model = RegisteredModel.objects.filter(training_run=training).first()
    context = {"project": project, "training": training, "run": training.run, "model": model,
               "summary": services.run_summary(training)}
    return render(request, "training/run_detail.html", context)


@login_required
@require_GET
def run_metrics(request: HttpRequest, public_id: UUID, run_id: UUID) -> JsonResponse:
    """Logged metrics by name: {"loss": {"step": [...], "value": [...]}, ...}; group weights included."""
    project = researcher_project(request, public_id)
    training = _run(project, run_id)
    return JsonResponse({"status": training.run.status, "series": services.metric_series(training)})


# ---------------------------------------------------------------- experiments


@login_required
@require_http_methods(["GET", "POST"])
def experiment_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.ExperimentForm(request.POST or None, models=_models(project), project=project)
    if request.method == "POST" and form.is_valid():
        experiment = form.create(owner=request.user, project=project)
        if experiment is not None:
            return redirect("training-experiment-detail", public_id=project.public_id, experiment_id=experiment.public_id)
    status = 400 if form.errors else 200
    return render(request, "training/experiment_form.html", {"project": project, "form": form}, status=status)


@login_required
@require_GET
def experiment_detail(request: HttpRequest, public_id: UUID, experiment_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    experiment = get_object_or_404(Experiment.objects.select_related("base_model"), project=project,
                                   public_id=experiment_id)
    conditions = experiment.conditions.select_related("training_run__run", "model")
    return render(request, "training/experiment_detail.html",
                  {"project": project, "experiment": experiment, "conditions": conditions})
