"""Training pages: models (registry), runs (form, live page with logs and charts), experiments.

Every view fetches its project through `researcher_project`: only the project's researchers see
training; everyone else (annotators included) gets 404. Live status and log come from the jobs
app's websocket fragment; the charts poll `run_metrics` (the recipe's metrics.jsonl).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation.models import Project
from annotation.permissions import researched_project
from training import forms, services
from training.models import Experiment, RegisteredModel, TrainingRun

CHART_KEYS = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "learning_rate",
              "worst_group_loss", "accuracy", "margin", "reward", "mean_token_accuracy")


def researcher_project(request: HttpRequest, public_id: UUID) -> Project:
    """The project if the user is one of its researchers; 404 for everyone else."""
    return researched_project(request.user, public_id)


def _models(project: Project) -> Any:
    return RegisteredModel.objects.filter(project=project)


def _run(project: Project, run_id: UUID) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("run", "base_model"), project=project,
                             run__public_id=run_id)


def _apply_error(form: Any, exc: services.TrainingError) -> None:
    """Put the service's message on the field it names ("field: ..."), else on the form."""
    message = str(exc).removeprefix("invalid config for a training run: ")
    field = message.split(":", 1)[0].split(".")[-1].strip()
    form.add_error(field if field in form.fields else None, message)


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
    if form.is_valid():
        try:
            model = services.register_base_model(owner=request.user, project=project, **form.cleaned_data)
        except services.TrainingError as exc:
            _apply_error(form, exc)
        else:
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
    """The model's HF directory as a zip (checkpoints left out)."""
    project = researcher_project(request, public_id)
    model = get_object_or_404(_models(project), public_id=model_id)
    files = services.model_files(model)
    if not files:
        raise Http404("This model has no files on this server.")
    buffer = io.BytesIO()
    folder = Path(model.path)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in files:
            archive.write(folder / entry["name"], arcname=f"{model.name}/{entry['name']}")
    buffer.seek(0)
    return FileResponse(buffer, as_attachment=True, filename=f"{model.name}.zip", content_type="application/zip")


# ---------------------------------------------------------------- runs


@login_required
@require_http_methods(["GET", "POST"])
def run_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.TrainingRunForm(request.POST or None, models=_models(project), project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            training = services.start_training(
                owner=request.user, project=project, recipe=data["recipe"], objective=data["objective"],
                base_model=data["base_model"], snapshot_id=data["snapshot_id"], hyperparameters=form.hyperparameters(),
                ref_model=data["ref_model"], reward_models=list(data["reward_models"]), gpus=data["gpus"],
                preset=data["preset"] or "", launcher=data["launcher"], name=data["name"],
            )
        except services.TrainingError as exc:
            _apply_error(form, exc)
        else:
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
               "summary": _summary(training)}
    return render(request, "training/run_detail.html", context)


def _summary(training: TrainingRun) -> dict[str, Any] | None:
    path = Path(training.output_dir) / "rlchf_run.json"
    return json.loads(path.read_text()) if path.is_file() else None


@login_required
@require_GET
def run_metrics(request: HttpRequest, public_id: UUID, run_id: UUID) -> JsonResponse:
    """Logged metrics by name: {"loss": {"step": [...], "value": [...]}, ...}; group weights included."""
    project = researcher_project(request, public_id)
    training = _run(project, run_id)
    series: dict[str, dict[str, list[float]]] = {}
    path = Path(training.output_dir) / "metrics.jsonl"
    seen: dict[tuple[str, int], int] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            for key, value in row.items():
                if (key in CHART_KEYS or key.startswith(("group_weight/", "rewards/"))) and isinstance(value, int | float):
                    entry = series.setdefault(key, {"step": [], "value": []})
                    # A resumed run logs its last steps again: keep the newest value per step.
                    index = seen.get((key, row["step"]))
                    if index is None:
                        seen[(key, row["step"])] = len(entry["step"])
                        entry["step"].append(row["step"])
                        entry["value"].append(value)
                    else:
                        entry["value"][index] = value
    return JsonResponse({"status": training.run.status, "series": series})


# ---------------------------------------------------------------- experiments


@login_required
@require_http_methods(["GET", "POST"])
def experiment_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request, public_id)
    form = forms.ExperimentForm(request.POST or None, models=_models(project), project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            experiment = services.create_experiment(
                owner=request.user, project=project, name=data["name"], base_model=data["base_model"],
                snapshots={"humans": data["snapshot_humans"], "synthetic": data["snapshot_synthetic"],
                           "both": data["snapshot_both"]},
                hyperparameters=form.hyperparameters(), seed=data["seed"], objective=data["objective"],
                extra_objectives=[o for o in data["extra_objectives"] if o != data["objective"]],
            )
        except services.TrainingError as exc:
            _apply_error(form, exc)
        else:
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
