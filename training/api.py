"""REST API of the training app: what the training pages do, scriptable (the project's researchers
only; everyone else 404, as on the pages).

    GET/POST   /api/v1/projects/{id}/models/             registered models; register a base model
    GET        /api/v1/models/{model_id}/                with its files
    GET        /api/v1/models/{model_id}/download/       its HF directory as a zip
    GET/POST   /api/v1/projects/{id}/training-runs/      training runs; check and queue one
    GET        /api/v1/training-runs/{run_id}/           status, progress, metrics, rows summary, log tail
    POST       /api/v1/training-runs/{run_id}/cancel/    (and resume/)
    GET/POST   /api/v1/projects/{id}/experiments/        experiments; create one (queues its conditions)
    GET        /api/v1/experiments/{experiment_id}/      with its conditions

A POST body is the page's form as JSON (the same form validates it, through config.api_forms):
a field left out takes the value the page pre-fills, models are named by their public id. A
refusal answers 400 naming the field, and nothing is stored.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Project
from annotation.permissions import researched_projects
from config import api_forms
from jobs.models import Run
from jobs.services import RunError, cancel_run, resume_run
from training import forms, services
from training.models import Experiment, RegisteredModel, TrainingRun
from training.serializers import (
    ExperimentDetailSerializer,
    ExperimentInputSerializer,
    ExperimentSerializer,
    RegisteredModelDetailSerializer,
    RegisteredModelSerializer,
    RegisterModelInputSerializer,
    TrainingRunDetailSerializer,
    TrainingRunInputSerializer,
    TrainingRunSerializer,
)
from training.views import model_zip_response

MODEL_KEY = "public_id"  # the API names models by their public id (the page's form by primary key)
REFUSED = OpenApiResponse(description="The field at fault and why; nothing was stored.")
NOT_NOW = OpenApiResponse(description="The run's state does not allow it (e.g. already finished).")


def _refused(errors: dict[str, list[str]]) -> Response:
    return Response(errors, status=status.HTTP_400_BAD_REQUEST)


class ProjectScopedViewSet(viewsets.GenericViewSet):
    """Objects of projects the user researches (everything else 404); lists and creates are nested
    under one project (`public_id` in the URL). The evaluation API narrows `projects()`."""

    project_field = "project"

    def projects(self) -> QuerySet[Project]:
        return researched_projects(self.request.user)

    def project(self) -> Project:
        return get_object_or_404(self.projects(), public_id=self.kwargs["public_id"])

    def scoped(self) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return self.scoped().none()
        rows = self.scoped().filter(**{f"{self.project_field}__in": self.projects()})
        if self.action == "list":
            rows = rows.filter(**{self.project_field: self.project()})
        return rows

    def bound(self, form_class: type[Any], project: Project) -> Any:
        """The page's form bound to the body, for `project` (a 400 when it cannot be)."""
        return api_forms.bind(form_class, self.request.data, models=services.project_models(project),
                              project=project, model_key=MODEL_KEY)


def act_on_run(run: Run, verb: Callable[[Run, Any], Run], user: Any) -> Response | None:
    """Cancel or resume `run` (jobs.services); a 409 saying why when its state does not allow it."""
    try:
        verb(run, user)
    except RunError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return None


# ---------------------------------------------------------------- models


@extend_schema_view(
    list=extend_schema(summary="Registered models of a project (base and trained), newest first"),
    retrieve=extend_schema(summary="One registered model with its lineage and files"),
)
class RegisteredModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    lookup_field = "public_id"
    lookup_url_kwarg = "model_id"

    def scoped(self) -> QuerySet[RegisteredModel]:
        return RegisteredModel.objects.select_related("project", "training_run__run", "fetch_run")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return RegisteredModelDetailSerializer if self.action == "retrieve" else RegisteredModelSerializer

    @extend_schema(request=RegisterModelInputSerializer, responses={201: RegisteredModelDetailSerializer, 400: REFUSED},
                   summary="Register a base model from a directory under the model roots, or a hub id",
                   description="Give `path` or `hub_id`. A hub id is downloaded by a worker (`fetch_run`); "
                   "the model's status is `fetching` until then.")
    def create(self, request: Request, public_id: str) -> Response:
        project = self.project()
        form = api_forms.bind(forms.RegisterModelForm, request.data)
        if not form.is_valid() or (model := form.register(owner=request.user, project=project)) is None:
            return _refused(api_forms.errors(form))
        model = self.scoped().get(pk=model.pk)
        return Response(RegisteredModelDetailSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY},
                   summary="The model's HF directory as a zip (checkpoints left out)")
    @action(detail=True, methods=["get"])
    def download(self, request: Request, model_id: str) -> HttpResponseBase:
        return model_zip_response(self.get_object())


# ---------------------------------------------------------------- training runs


@extend_schema_view(
    list=extend_schema(summary="Training runs of a project, newest first"),
    retrieve=extend_schema(summary="One training run: status, progress, metrics, rows summary, log tail, config"),
)
class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    lookup_field = "run__public_id"
    lookup_url_kwarg = "run_id"

    def scoped(self) -> QuerySet[TrainingRun]:
        return (TrainingRun.objects.select_related("run", "project", "base_model", "ref_model", "result_model")
                .prefetch_related("reward_models"))

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return TrainingRunSerializer if self.action == "list" else TrainingRunDetailSerializer

    def _present(self, training: TrainingRun, code: int = status.HTTP_200_OK) -> Response:
        return Response(TrainingRunDetailSerializer(self.scoped().get(pk=training.pk)).data, status=code)

    @extend_schema(request=TrainingRunInputSerializer, responses={201: TrainingRunDetailSerializer, 400: REFUSED},
                   summary="Check a training run completely and queue it (the run form's fields)",
                   description="Models by public id (`base_model`, `ref_model`, `reward_models`); a field left out "
                   "takes the form's default; hyperparameters a recipe does not take are left out as on the page.")
    def create(self, request: Request, public_id: str) -> Response:
        project = self.project()
        form = self.bound(forms.TrainingRunForm, project)
        if not form.is_valid() or (training := form.start(owner=request.user, project=project)) is None:
            return _refused(api_forms.errors(form))
        return self._present(training, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TrainingRunDetailSerializer, 409: NOT_NOW},
                   summary="Stop the run (its whole accelerate process group, or its Slurm job)")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, run_id: str) -> Response:
        return self._act(cancel_run)

    @extend_schema(request=None, responses={200: TrainingRunDetailSerializer, 409: NOT_NOW},
                   summary="Queue a stopped run again; it continues from its newest checkpoint")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, run_id: str) -> Response:
        return self._act(resume_run)

    def _act(self, verb: Callable[[Run, Any], Run]) -> Response:
        training = self.get_object()
        return act_on_run(training.run, verb, self.request.user) or self._present(training)


# ---------------------------------------------------------------- experiments


@extend_schema_view(
    list=extend_schema(summary="Experiments of a project, newest first"),
    retrieve=extend_schema(summary="One experiment with its conditions, their runs and models"),
)
class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    lookup_field = "public_id"
    lookup_url_kwarg = "experiment_id"

    def scoped(self) -> QuerySet[Experiment]:
        rows = Experiment.objects.select_related("project", "base_model")
        if self.action != "list":
            rows = rows.prefetch_related("conditions__model", "conditions__training_run__run",
                                         "conditions__training_run__result_model")
        return rows

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return ExperimentSerializer if self.action == "list" else ExperimentDetailSerializer

    @extend_schema(request=ExperimentInputSerializer, responses={201: ExperimentDetailSerializer, 400: REFUSED},
                   summary="Create matched DPO conditions in one action and queue their runs",
                   description="Base, RLHF baseline, RLCHF humans / synthetic / both (and one per extra objective): "
                   "same base model, hyperparameters and seed; the three snapshots must share their item split.")
    def create(self, request: Request, public_id: str) -> Response:
        project = self.project()
        form = self.bound(forms.ExperimentForm, project)
        if not form.is_valid() or (experiment := form.create(owner=request.user, project=project)) is None:
            return _refused(api_forms.errors(form))
        return Response(ExperimentDetailSerializer(self.scoped().get(pk=experiment.pk)).data,
                        status=status.HTTP_201_CREATED)
