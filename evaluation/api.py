"""REST API of the evaluation app: what the evaluation pages do, scriptable. Only the project's
researchers who may create projects reach it, as on the pages (evaluation.permissions); everyone
else gets 404.

    GET/POST  /api/v1/projects/{id}/evaluation-runs/           evaluation runs; start one ({name, config})
    GET       /api/v1/evaluation-runs/{run_id}/                status, log tail, config, every result
    GET       /api/v1/evaluation-runs/{run_id}/report/?format=json|csv|md|html   the comparison report
    POST      /api/v1/evaluation-runs/{run_id}/cancel/         (and resume/)
    GET/POST  /api/v1/experiments/{experiment_id}/evaluations/ an experiment's evaluation runs; evaluate it
    GET/POST  /api/v1/projects/{id}/blind-comparisons/         blind comparisons; queue one's generation
    GET       /api/v1/blind-comparisons/{comparison_id}/       (and results/: win rates, Bradley-Terry)

A run's config is checked by the run kind's validator (evaluation.runs.clean_config, or
evaluation.blind.clean_blind_config) before anything is stored; a refusal answers 400 under
`config`, naming the place in it (`models[0].path: ...`).
"""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Project
from evaluation import report as reports
from evaluation import services
from evaluation.blind import blind_results
from evaluation.models import BlindComparison, EvaluationRun
from evaluation.permissions import evaluation_projects
from evaluation.serializers import (
    BlindComparisonInputSerializer,
    BlindComparisonSerializer,
    BlindResultsSerializer,
    EvaluationRunDetailSerializer,
    EvaluationRunInputSerializer,
    EvaluationRunSerializer,
    ExperimentEvaluateSerializer,
    ReportSerializer,
)
from jobs.serializers import RunSerializer
from jobs.services import RunError, cancel_run, resume_run
from training.api import ProjectScopedViewSet, act_on_run
from training.models import Experiment

REFUSED = OpenApiResponse(description="The field at fault and why; nothing was stored.")
NOT_NOW = OpenApiResponse(description="The run's state does not allow it (e.g. already finished).")
# ?format= of the report: the page's exports (text ones) besides the JSON data.
EXPORTS = {"csv": ("text/csv", reports.to_csv), "md": ("text/markdown; charset=utf-8", reports.to_markdown),
           "html": ("text/html; charset=utf-8", reports.to_html)}
REPORT_FORMATS = ["json", *EXPORTS]


def config_refused(exc: RunError) -> Response:
    """A run kind's validator refused the config: 400 under `config`, naming the place in it."""
    message = str(exc)
    if message.startswith("invalid config for "):
        message = message.split(" run: ", 1)[-1]
    return Response({"config": [message]}, status=status.HTTP_400_BAD_REQUEST)


class EvaluationScopedViewSet(ProjectScopedViewSet):
    def projects(self) -> QuerySet[Project]:
        return evaluation_projects(self.request.user)


# ---------------------------------------------------------------- evaluation runs


@extend_schema_view(
    list=extend_schema(summary="Evaluation runs of a project, newest first"),
    retrieve=extend_schema(summary="One evaluation run: status, log tail, config and every stored number"),
)
class EvaluationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, EvaluationScopedViewSet):
    lookup_field = "run__public_id"
    lookup_url_kwarg = "run_id"

    def scoped(self) -> QuerySet[EvaluationRun]:
        rows = EvaluationRun.objects.select_related("run", "project", "experiment")
        return rows.prefetch_related("results") if self.action == "retrieve" else rows

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return EvaluationRunSerializer if self.action == "list" else EvaluationRunDetailSerializer

    def _present(self, erun: EvaluationRun, code: int = status.HTTP_200_OK) -> Response:
        fresh = EvaluationRun.objects.select_related("run", "project", "experiment").get(pk=erun.pk)
        return Response(EvaluationRunDetailSerializer(fresh).data, status=code)

    @extend_schema(request=EvaluationRunInputSerializer, responses={201: EvaluationRunDetailSerializer, 400: REFUSED},
                   summary="Check an evaluation run's config (models x benchmarks) and queue it")
    def create(self, request: Request, public_id: str) -> Response:
        project = self.project()
        body = EvaluationRunInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            erun = services.start_evaluation(owner=request.user, project=project, **body.validated_data)
        except RunError as exc:
            return config_refused(exc)
        return self._present(erun, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=REPORT_FORMATS, description="default json")],
        responses={(200, "application/json"): ReportSerializer, (200, "text/csv"): OpenApiTypes.STR,
                   (200, "text/markdown"): OpenApiTypes.STR, (200, "text/html"): OpenApiTypes.STR, 400: REFUSED},
        summary="The comparison report of the run's models (an experiment's comparison, for its run)",
        description="Every number side by side with its interval, lineage, benchmark version and config hash, "
        "and the welfare view; `csv`, `md` and `html` are the report page's exports.",
    )
    @action(detail=True, methods=["get"])
    def report(self, request: Request, run_id: str) -> HttpResponseBase:
        erun = self.get_object()
        fmt = request.query_params.get("format", "json")
        if fmt not in REPORT_FORMATS:
            return Response({"format": [f"one of {', '.join(REPORT_FORMATS)}"]}, status=status.HTTP_400_BAD_REQUEST)
        report = reports.build_report(erun)
        if fmt == "json":
            return Response(reports.report_data(report))
        content_type, render = EXPORTS[fmt]
        response = HttpResponse(render(report), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="evaluation-{erun.run.public_id}.{fmt}"'
        return response

    @extend_schema(request=None, responses={200: EvaluationRunDetailSerializer, 409: NOT_NOW},
                   summary="Stop the run between chunks (scores stored so far are kept)")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, run_id: str) -> Response:
        erun = self.get_object()
        return act_on_run(erun.run, cancel_run, request.user) or self._present(erun)

    @extend_schema(request=None, responses={200: EvaluationRunDetailSerializer, 409: NOT_NOW},
                   summary="Queue a stopped run again; it resumes where it stopped")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, run_id: str) -> Response:
        erun = self.get_object()
        return act_on_run(erun.run, resume_run, request.user) or self._present(erun)


@extend_schema_view(list=extend_schema(summary="Evaluation runs of an experiment's conditions, newest first"))
class ExperimentEvaluationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = EvaluationRunSerializer

    def experiment(self) -> Experiment:
        return get_object_or_404(Experiment.objects.select_related("project"),
                                 project__in=evaluation_projects(self.request.user),
                                 public_id=self.kwargs["experiment_id"])

    def get_queryset(self) -> QuerySet[EvaluationRun]:
        if getattr(self, "swagger_fake_view", False):
            return EvaluationRun.objects.none()
        return EvaluationRun.objects.filter(experiment=self.experiment()).select_related("run", "project", "experiment")

    @extend_schema(request=ExperimentEvaluateSerializer,
                   responses={201: EvaluationRunDetailSerializer, 400: REFUSED,
                              409: OpenApiResponse(description="No condition has a ready model yet.")},
                   summary="Evaluate every condition with a ready model in one run",
                   description="A seeded BBQ subset, and held-out preference accuracy on the conditions' snapshots.")
    def create(self, request: Request, experiment_id: str) -> Response:
        experiment = self.experiment()
        body = ExperimentEvaluateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            erun = services.evaluate_experiment(owner=request.user, experiment=experiment, **body.validated_data)
        except RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        fresh = EvaluationRun.objects.select_related("run", "project", "experiment").get(pk=erun.pk)
        return Response(EvaluationRunDetailSerializer(fresh).data, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------- blind comparisons


@extend_schema_view(
    list=extend_schema(summary="Blind comparisons made from a project's prompts, newest first"),
    retrieve=extend_schema(summary="One blind comparison: its models and its ranking project"),
)
class BlindComparisonViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, EvaluationScopedViewSet):
    serializer_class = BlindComparisonSerializer
    project_field = "source_project"
    lookup_url_kwarg = "comparison_id"

    def scoped(self) -> QuerySet[BlindComparison]:
        return BlindComparison.objects.select_related("project", "source_project", "run")

    @extend_schema(request=BlindComparisonInputSerializer, responses={202: RunSerializer, 400: REFUSED},
                   summary="Queue the generation of a blind comparison",
                   description="Each model answers the project's prompts; when the run succeeds, the comparison "
                   "(a ranking project with the project's annotators) appears in the list with this `run`.")
    def create(self, request: Request, public_id: str) -> Response:
        project = self.project()
        body = BlindComparisonInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = services.start_blind_comparison(owner=request.user, project=project, **body.validated_data)
        except RunError as exc:
            return config_refused(exc)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=BlindResultsSerializer,
                   summary="Win rates, win and battle matrices, Bradley-Terry scores with intervals, per group")
    @action(detail=True, methods=["get"])
    def results(self, request: Request, comparison_id: str) -> Response:
        return Response(blind_results(self.get_object()))
