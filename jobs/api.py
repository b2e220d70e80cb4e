"""REST API of the jobs app: any run the user may see on the run pages (its owner, the researchers
of its project; everyone else 404), for runs whose own app has no endpoint of its own, such as a
blind comparison's generation or a model's download.

    GET   /api/v1/runs/{run_id}/           status, progress, log tail
    POST  /api/v1/runs/{run_id}/cancel/    (and resume/); 409 when the run's state does not allow it
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from jobs.models import Run
from jobs.serializers import RunDetailSerializer
from jobs.services import RunError, cancel_run, resume_run, visible_runs

NOT_NOW = OpenApiResponse(description="The run's state does not allow it (e.g. already finished).")


@extend_schema_view(retrieve=extend_schema(summary="One run of any kind: status, progress, log tail"))
class RunViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RunDetailSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "run_id"

    def get_queryset(self) -> QuerySet[Run]:
        return visible_runs(self.request.user).select_related("project")

    @extend_schema(request=None, responses={200: RunDetailSerializer, 409: NOT_NOW}, summary="Stop the run")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, run_id: str) -> Response:
        return self._act(cancel_run)

    @extend_schema(request=None, responses={200: RunDetailSerializer, 409: NOT_NOW},
                   summary="Queue a stopped run again; it skips the work it already stored")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, run_id: str) -> Response:
        return self._act(resume_run)

    def _act(self, verb: Callable[[Run, Any], Run]) -> Response:
        run = self.get_object()
        try:
            run = verb(run, self.request.user)
        except RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RunDetailSerializer(run).data)
