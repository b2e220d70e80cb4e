"""Training pages: models (registry), runs (form, live page with logs and charts), experiments.

Every view fetches its project through `researcher_project`: only the project's researchers see
training; everyone else (annotators included) gets 404. Live status and log come from the jobs
app's websocket fragment; the charts poll `run_metrics` (the recipe's metrics.jsonl).
"""
from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
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
    """The model's HF directory as a zip (checkpoints left out; lineage.json added where the
    directory has none), streamed: a real model is gigabytes and is never held in memory."""
    project = researcher_project(request, public_id)
    model = get_object_or_404(_models(project), public_id=model_id)
    files = services.model_files(model)
    if not files:
        raise Http404("This model has no files on this server.")
    folder = _archive_folder(model.name)
    entries = [(Path(model.path) / f["name"], f"{folder}/{f['name']}") for f in files]
    extra = {} if any(f["name"] == "lineage.json" for f in files) else {
        f"{folder}/lineage.json": json.dumps(model.lineage, indent=2).encode()}
    response = StreamingHttpResponse(_zip_chunks(entries, extra), content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=f"{folder}.zip")
    return response


def _archive_folder(name: str) -> str:
    """The zip's top folder: the model's name with nothing that could leave the folder (no `/`, `..`)."""
    return re.sub(r"[^\w.-]+", "-", name).strip(".-") or "model"


class _ZipStream:
    """A write-only file for zipfile that hands on what was written so far (it cannot seek, so
    zipfile writes each entry's sizes after its data)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")  # incompressible: stored as they are
CHUNK_BYTES = 1 << 20


def _zip_chunks(entries: list[tuple[Path, str]], extra: dict[str, bytes]) -> Iterator[bytes]:
    return (chunk for chunk in _zip_parts(entries, extra) if chunk)


def _zip_parts(entries: list[tuple[Path, str]], extra: dict[str, bytes]) -> Iterator[bytes]:
    stream = _ZipStream()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, arcname in entries:
            info = zipfile.ZipInfo.from_file(source, arcname)
            info.compress_type = zipfile.ZIP_STORED if source.suffix in WEIGHT_SUFFIXES else zipfile.ZIP_DEFLATED
            with open(source, "rb") as src, archive.open(info, "w") as dst:
                while chunk := src.read(CHUNK_BYTES):
                    dst.write(chunk)
                    yield stream.take()
        for arcname, data in extra.items():
            archive.writestr(arcname, data)
    yield stream.take()


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
