"""Run pages: the researcher's run list and a live run page with cancel and resume."""
from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs import registry
from jobs.models import Run
from jobs.services import RunError, cancel_run, reap_stale_runs, resume_run, visible_runs


def _run_for(request: HttpRequest, public_id: UUID) -> Run:
    """The run if the user may see it (owner, project researcher); 404 for everyone else."""
    return get_object_or_404(visible_runs(request.user).select_related("project", "owner"), public_id=public_id)


@login_required
@require_GET
def run_list(request: HttpRequest) -> HttpResponse:
    # A worker killed while nobody ran the reaper must not leave runs "running" on this page.
    reap_stale_runs()
    runs = list(visible_runs(request.user).select_related("project", "owner")[:200])
    for run in runs:
        run.kind_label = registry.label(run.kind)
    return render(request, "jobs/run_list.html", {"runs": runs})


@login_required
@require_GET
def run_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    reap_stale_runs()
    run = _run_for(request, public_id)
    return render(request, "jobs/run_detail.html", {"run": run, "kind_label": registry.label(run.kind)})


@login_required
@require_POST
def run_cancel(request: HttpRequest, public_id: UUID) -> HttpResponse:
    run = _run_for(request, public_id)
    return _act(request, run, cancel_run)


@login_required
@require_POST
def run_resume(request: HttpRequest, public_id: UUID) -> HttpResponse:
    run = _run_for(request, public_id)
    return _act(request, run, resume_run)


def _act(request: HttpRequest, run: Run, action: object) -> HttpResponse:
    error = ""
    try:
        run = action(run, request.user)  # type: ignore[operator]
    except RunError as exc:
        error = str(exc)
        run.refresh_from_db()
    if request.htmx:
        return render(request, "jobs/_run_status.html", {"run": run, "error": error})
    if error:
        messages.error(request, error)
    return redirect("jobs-run-detail", public_id=run.public_id)
