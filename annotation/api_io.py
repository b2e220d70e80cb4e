"""API endpoints for importing items and exporting raw rankings (researchers of the project only).

    POST /api/v1/projects/{public_id}/import/   multipart `file` (+ `format`, `skip_existing`, `skip_invalid`)
                                                or a JSON body: a list of items, or {"items": [...]}
    GET  /api/v1/projects/{public_id}/export/?format=jsonl|parquet|datasets&rater_kind=&since=&until=&versions=

Outsiders get 404, annotator members 403 (see annotation/permissions.py). A failed import answers
400 with every error found (line, field, message) and changes nothing. Importing from a hub id is
left to `manage.py import_items`: a web request should not make the server download a dataset of
any size.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, content_negotiation_class, parser_classes
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from annotation import exporters, services_io
from annotation.importers import ImportFailed, ImportSource, RowError
from annotation.permissions import researcher_project

UPLOAD_FORMATS = ("jsonl", "csv", "parquet")

# The project's JSON parser (settings' DEFAULT_PARSER_CLASSES: a body nested too deeply is a 400).
_JSON_PARSERS = [p for p in api_settings.DEFAULT_PARSER_CLASSES if issubclass(p, JSONParser)]


class IgnoreFormatParameter(DefaultContentNegotiation):
    """`?format=` here picks the export file format, not a DRF renderer."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


def failed(exc: ImportFailed) -> Response:
    return Response(
        {"detail": str(exc), "errors": [e.as_dict() for e in exc.errors], "truncated": exc.truncated},
        status=status.HTTP_400_BAD_REQUEST,
    )


def _truthy(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _source(request: Request) -> ImportSource:
    upload = request.FILES.get("file")
    if upload is not None:
        fmt = request.data.get("format") or None
        if fmt is not None and fmt not in UPLOAD_FORMATS:
            raise ImportFailed([RowError(f"unknown format {fmt!r}; use one of {', '.join(UPLOAD_FORMATS)}",
                                         field="format")])
        try:
            return ImportSource.from_file(upload, name=upload.name or "upload", format=fmt)
        except RowError as exc:  # unknown file type
            raise ImportFailed([exc]) from None
    body = request.data
    items = body.get("items") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ImportFailed([RowError("send a multipart 'file', or a JSON list of items (or {\"items\": [...]})",
                                     field="items")])
    return ImportSource.from_records(items)


@extend_schema(
    request={"multipart/form-data": OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
    responses={201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    description="Import items (all or nothing). Duplicated ids are errors unless skip_existing is true; invalid "
    "rows are errors unless skip_invalid is true (then they are left out and listed in `invalid`).",
)
@api_view(["POST"])
@parser_classes([MultiPartParser, *_JSON_PARSERS])
def import_items(request: Request, public_id: UUID) -> Response:
    project = researcher_project(request.user, public_id)
    options = request.data if isinstance(request.data, dict) else {}
    skip, skip_invalid = (_truthy(options.get(name, False)) for name in ("skip_existing", "skip_invalid"))
    try:
        report = services_io.import_items(project=project, source=_source(request), skip_existing=skip,
                                          skip_invalid=skip_invalid)
    except ImportFailed as exc:
        return failed(exc)
    return Response(report.as_dict(), status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[
        OpenApiParameter("format", str, enum=list(exporters.FORMATS), description="default jsonl"),
        OpenApiParameter("rater_kind", str, enum=list(exporters.RATER_KINDS)),
        OpenApiParameter("since", str, description="ISO-8601 date or datetime, inclusive"),
        OpenApiParameter("until", str, description="ISO-8601 datetime (exclusive) or date (that whole day)"),
        OpenApiParameter("versions", str, enum=["current", "all"]),
    ],
    responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY, 400: OpenApiTypes.OBJECT},
    description="Raw rankings, one judgment per record (see ARCHITECTURE.md, raw ranking export).",
)
@api_view(["GET"])
@content_negotiation_class(IgnoreFormatParameter)
def export_rankings(request: Request, public_id: UUID) -> HttpResponseBase:
    project = researcher_project(request.user, public_id)
    try:
        fmt = exporters.check_format(request.query_params.get("format"))
        flt = exporters.ExportFilter.from_params(request.query_params)
        return exporters.download_response(project, fmt, flt)
    except exporters.ExportError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
