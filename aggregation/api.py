"""REST API of the aggregation app (the project's researchers only; everyone else 404).

    GET/POST          /api/v1/projects/{id}/pools/                  pools (the built-in `all` first)
    GET/PUT/PATCH/DEL /api/v1/projects/{id}/pools/{name}/
    GET               /api/v1/projects/{id}/aggregate/?rule=&pool=&params=&tie_policy=&seed=&offset=&limit=
    GET               /api/v1/projects/{id}/agreement/?pool=
    GET/POST          /api/v1/projects/{id}/snapshots/
    GET/DELETE        /api/v1/snapshots/{snapshot_id}/
    GET               /api/v1/snapshots/{snapshot_id}/download/     zip
    GET               /api/v1/snapshots/{snapshot_id}/diff/{other_id}/

Refusals (an impossible pool, an unknown rule, items beyond a rule's K limit) answer 400 with
the field and the cause; nothing is stored.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import FileResponse, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Project
from annotation.permissions import researched_project as researcher_project

from . import services, snapshots
from .models import Pool
from .permissions import researcher_snapshot
from .pools import ALL_POOL, PoolError, PoolSpec, RaterInfo, project_raters, resolve
from .serializers import (
    AggregateQuerySerializer,
    AggregateSerializer,
    PoolSerializer,
    SnapshotCreateSerializer,
    SnapshotDetailSerializer,
    SnapshotSerializer,
)


def _pool_error(exc: PoolError) -> Response:
    return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)


def _builtin(project: Project) -> Pool:
    pool = Pool(project=project, name=ALL_POOL, description="Every rater of the project, equal weights.")
    pool.drop_cannot_judge = False
    return pool


def _with_summary(project: Project, pool: Pool, raters: list[RaterInfo] | None = None) -> Pool:
    try:
        pool.resolved = resolve(project, PoolSpec.from_pool(pool), raters)  # type: ignore[attr-defined]
    except PoolError:
        pool.resolved = None  # type: ignore[attr-defined]  # raters changed since it was saved
    return pool


@extend_schema(methods=["GET"], responses=PoolSerializer(many=True), summary="Pools of a project, `all` first")
@extend_schema(methods=["POST"], request=PoolSerializer, responses={201: PoolSerializer},
               summary="Create a pool (refused with the cause when impossible)")
@api_view(["GET", "POST"])
def pools(request: Request, public_id: UUID) -> Response:
    project = researcher_project(request.user, public_id)
    if request.method == "GET":
        rows = [_builtin(project), *Pool.objects.filter(project=project)]
        raters = project_raters(project)
        return Response(PoolSerializer([_with_summary(project, p, raters) for p in rows], many=True).data)
    serializer = PoolSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    try:
        pool = services.save_pool(project=project, user=request.user, data=serializer.validated_data)
    except PoolError as exc:
        return _pool_error(exc)
    return Response(PoolSerializer(pool).data, status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], responses=PoolSerializer, summary="One pool with its resolved summary")
@extend_schema(methods=["PUT", "PATCH"], request=PoolSerializer, responses=PoolSerializer, summary="Change a pool")
@extend_schema(methods=["DELETE"], responses={204: None}, summary="Delete a pool (snapshots keep their copy)")
@api_view(["GET", "PUT", "PATCH", "DELETE"])
def pool_detail(request: Request, public_id: UUID, name: str) -> Response:
    project = researcher_project(request.user, public_id)
    if name == ALL_POOL:
        if request.method != "GET":
            return Response({"name": ["the built-in pool `all` cannot change"]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(PoolSerializer(_with_summary(project, _builtin(project))).data)
    pool = Pool.objects.filter(project=project, name=name).first()
    if pool is None:
        raise NotFound("No such pool.")
    if request.method == "GET":
        return Response(PoolSerializer(_with_summary(project, pool)).data)
    if request.method == "DELETE":
        pool.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
    serializer = PoolSerializer(pool, data=request.data, partial=request.method == "PATCH")
    serializer.is_valid(raise_exception=True)
    try:
        saved = services.save_pool(project=project, user=request.user, data=serializer.validated_data, pool=pool)
    except PoolError as exc:
        return _pool_error(exc)
    return Response(PoolSerializer(saved).data)


@extend_schema(parameters=[AggregateQuerySerializer], responses=AggregateSerializer,
               summary="Collective ranking of every ranked item under a rule, for a pool (paged)")
@api_view(["GET"])
def aggregate(request: Request, public_id: UUID) -> Response:
    project = researcher_project(request.user, public_id)
    query = AggregateQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    q = query.validated_data
    try:
        result = services.collective(project, pool=services.pool_spec(project, q["pool"]), rule=q["rule"],
                                     params=q["params"], tie_policy=q["tie_policy"], seed=q["seed"])
    except PoolError as exc:
        return _pool_error(exc)
    except services.AggregationError as exc:
        return Response({"rule": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    data = {"rule": q["rule"], "pool": result.pool.summary(), "tie_policy": q["tie_policy"],
            "tie_seed": result.tie_seed, "count": len(result.ballots.items), "offset": q["offset"],
            "results": result.rows(q["offset"], q["offset"] + q["limit"])}
    return Response(data)


@extend_schema(parameters=[OpenApiParameter("pool", str, default=ALL_POOL)], responses=OpenApiTypes.OBJECT,
               summary="Agreement summary: Kendall's W and mean tau-b for all, humans, synthetic")
@api_view(["GET"])
def agreement(request: Request, public_id: UUID) -> Response:
    project = researcher_project(request.user, public_id)
    try:
        spec = services.pool_spec(project, request.query_params.get("pool", ALL_POOL))
        return Response(services.agreement_summary(project, pool=spec))
    except PoolError as exc:
        return _pool_error(exc)


@extend_schema(methods=["GET"], responses=SnapshotSerializer(many=True), summary="Snapshots of a project")
@extend_schema(methods=["POST"], request=SnapshotCreateSerializer, responses={201: SnapshotDetailSerializer,
               200: SnapshotDetailSerializer}, summary="Freeze a snapshot (200 when the same one exists)")
@api_view(["GET", "POST"])
def project_snapshots(request: Request, public_id: UUID) -> Response:
    project = researcher_project(request.user, public_id)
    if request.method == "GET":
        return Response(SnapshotSerializer(project.snapshots.select_related("project"), many=True).data)
    serializer = SnapshotCreateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data: dict[str, Any] = dict(serializer.validated_data)
    data.setdefault("split", dict(snapshots.DEFAULT_SPLIT))
    try:
        snap, created = snapshots.create_snapshot(project=project, user=request.user,
                                                  inputs=snapshots.SnapshotInputs(**data))
    except PoolError as exc:
        return _pool_error(exc)
    except services.AggregationError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return Response(SnapshotDetailSerializer(snap).data, status=code)


@extend_schema(methods=["GET"], responses=SnapshotDetailSerializer, summary="One snapshot with its manifest")
@extend_schema(methods=["DELETE"], responses={204: None}, summary="Delete a snapshot and its files")
@api_view(["GET", "DELETE"])
def snapshot_detail(request: Request, snapshot_id: str) -> Response:
    snap = researcher_snapshot(request.user, snapshot_id)
    if request.method == "DELETE":
        snapshots.delete_snapshot(snap)
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(SnapshotDetailSerializer(snap).data)


@extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY}, summary="The snapshot's files as zip")
@api_view(["GET"])
def snapshot_download(request: Request, snapshot_id: str) -> HttpResponseBase:
    snap = researcher_snapshot(request.user, snapshot_id)
    return FileResponse(snapshots.zip_file(snap), as_attachment=True, filename=f"snapshot-{snap.snapshot_id}.zip",
                        content_type="application/zip")


@extend_schema(responses=OpenApiTypes.OBJECT, summary="What changed between two snapshots")
@api_view(["GET"])
def snapshot_diff(request: Request, snapshot_id: str, other_id: str) -> Response:
    a = researcher_snapshot(request.user, snapshot_id)
    b = researcher_snapshot(request.user, other_id)
    return Response(snapshots.diff_snapshots(a, b))


