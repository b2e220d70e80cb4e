"""The researcher's import page (upload items) and the raw-ranking export download.

Both fetch the project through `_researcher_project`: outsiders get 404, annotator members 403.
An upload is all or nothing; a failed one re-renders the form with every error found (line,
field, message) and nothing is stored.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from annotation import exporters, services_io
from annotation.importers import ImportFailed, ImportSource, RowError
from annotation.models import Project
from annotation.permissions import is_researcher, member_project

AUTO = ""


class ImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL (or .jsonl.gz), CSV or Parquet.")
    format = forms.ChoiceField(
        choices=[(AUTO, "From the file name"), ("jsonl", "JSONL"), ("csv", "CSV"), ("parquet", "Parquet")],
        required=False,
    )
    skip_existing = forms.BooleanField(
        required=False, label="Skip items whose id is already in the project (otherwise that is an error)"
    )
    skip_invalid = forms.BooleanField(
        required=False, label="Skip rows that are not valid items and report them (otherwise one stops the import)"
    )


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f, f) for f in exporters.FORMATS], initial="jsonl")
    rater_kind = forms.ChoiceField(choices=[(k, k) for k in exporters.RATER_KINDS], initial="all")
    since = forms.CharField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.CharField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    versions = forms.ChoiceField(
        choices=[("current", "current rankings only"), ("all", "every version")], initial="current"
    )


def _researcher_project(request: HttpRequest, public_id: UUID) -> Project:
    project = member_project(request.user, public_id)
    if not is_researcher(project):
        raise PermissionDenied("Only researchers of this project can import and export.")
    return project


def _page(request: HttpRequest, project: Project, form: ImportForm, *, errors: ImportFailed | None = None,
          export_error: str = "", status: int = 200) -> HttpResponse:
    context: dict[str, Any] = {
        # Unbound, with what was asked as its initial values: the exporter's own check is the one
        # error shown (a bound form would repeat it in its words); ids apart from the import form's.
        "project": project, "form": form, "export_form": ExportForm(initial=request.GET.dict(), auto_id="export_%s"),
        "errors": errors.errors if errors else [], "truncated": bool(errors and errors.truncated),
        "export_error": export_error,
    }
    template = "annotation/import.html#import-form" if request.htmx else "annotation/import.html"
    return render(request, template, context, status=200 if request.htmx else status)


def _run_import(project: Project, form: ImportForm) -> services_io.ImportReport:
    upload = form.cleaned_data["file"]
    try:
        source = ImportSource.from_file(upload, name=upload.name, format=form.cleaned_data["format"] or None)
    except RowError as exc:
        raise ImportFailed([exc]) from None
    return services_io.import_items(project=project, source=source, skip_existing=form.cleaned_data["skip_existing"],
                                    skip_invalid=form.cleaned_data["skip_invalid"])


@login_required
@require_http_methods(["GET", "POST"])
def import_items(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = _researcher_project(request, public_id)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method != "POST":
        return _page(request, project, form)
    if not form.is_valid():
        return _page(request, project, form, status=400)
    try:
        report = _run_import(project, form)
    except ImportFailed as exc:
        return _page(request, project, form, errors=exc, status=400)
    messages.success(request, f"Imported {report.created} items from {form.cleaned_data['file'].name}{report.summary()}.")
    url = reverse("annotation-import-items", kwargs={"public_id": project.public_id})
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


@login_required
@require_GET
def export_rankings(request: HttpRequest, public_id: UUID) -> HttpResponseBase:
    project = _researcher_project(request, public_id)
    if not request.GET:
        return _page(request, project, ImportForm())
    try:
        fmt = exporters.check_format(request.GET.get("format"))
        flt = exporters.ExportFilter.from_params(request.GET)
        return exporters.download_response(project, fmt, flt)
    except exporters.ExportError as exc:
        return _page(request, project, ImportForm(), export_error=str(exc), status=400)


urlpatterns: list[URLPattern] = [
    path("projects/<uuid:public_id>/import/", import_items, name="annotation-import-items"),
    path("projects/<uuid:public_id>/export/", export_rankings, name="annotation-export-rankings"),
]
