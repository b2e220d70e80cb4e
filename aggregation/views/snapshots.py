"""Snapshot pages: list and create, detail (manifest, files), download (zip), diff, delete.

Every page fetches its project or snapshot through the `permissions` helpers: anyone but the
project's researchers gets 404.
"""
from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aggregation import snapshots
from aggregation.forms import SnapshotForm
from aggregation.models import Pool
from aggregation.permissions import researcher_snapshot
from aggregation.pools import ALL_POOL, PoolError
from aggregation.services import AggregationError
from annotation.models import Project
from annotation.permissions import researched_project as researcher_project


def pool_names(project: Project) -> list[str]:
    return [ALL_POOL, *Pool.objects.filter(project=project).values_list("name", flat=True)]


@login_required
@require_http_methods(["GET", "POST"])
def snapshot_list(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    form = SnapshotForm(request.POST or None, pools=pool_names(project))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        inputs = snapshots.SnapshotInputs(
            pool=d["pool"], rule=d["rule"], pair_strategy=d["pair_strategy"], seed=d["seed"],
            split={"train": d["train"], "validation": d["validation"], "test": d["test"]},
        )
        try:
            snap, created = snapshots.create_snapshot(project=project, user=request.user, inputs=inputs)
        except (PoolError, AggregationError) as exc:
            form.add_error(None, str(exc))
        else:
            if created:
                messages.success(request, f"Snapshot {snap.snapshot_id} frozen.")
            else:
                messages.info(request, f"The same inputs and rankings already make snapshot {snap.snapshot_id}.")
            return redirect("aggregation-snapshot-detail", snapshot_id=snap.snapshot_id)
    context = {"project": project, "form": form, "snapshots": project.snapshots.all()}
    return render(request, "aggregation/snapshot_list.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def snapshot_detail(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    snap = researcher_snapshot(request.user, snapshot_id)
    root = snap.path
    files = [(str(p.relative_to(root)), p.stat().st_size) for p in sorted(root.glob("*.jsonl"))]
    files += [(str(p.relative_to(root)), p.stat().st_size) for p in sorted((root / "groups").glob("*.jsonl"))]
    others = snap.project.snapshots.exclude(pk=snap.pk)
    context = {"project": snap.project, "snap": snap, "m": snap.manifest, "files": files, "others": others}
    return render(request, "aggregation/snapshot_detail.html", context)


@login_required
@require_GET
def snapshot_download(request: HttpRequest, snapshot_id: str) -> FileResponse:
    snap = researcher_snapshot(request.user, snapshot_id)
    return FileResponse(snapshots.zip_file(snap), as_attachment=True, filename=f"snapshot-{snap.snapshot_id}.zip",
                        content_type="application/zip")


@login_required
@require_GET
def snapshot_diff(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    snap = researcher_snapshot(request.user, snapshot_id)
    other = researcher_snapshot(request.user, request.GET.get("other", ""))
    diff = snapshots.diff_snapshots(snap, other)
    sections = [(key.replace("_", " "), diff[key]) for key in (
        "items_added", "items_removed", "pairs_flipped", "pairs_added", "pairs_removed", "margins_changed")]
    context = {"project": snap.project, "snap": snap, "other": other, "sections": sections}
    return render(request, "aggregation/snapshot_diff.html", context)


@login_required
@require_POST
def snapshot_delete(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    snap = researcher_snapshot(request.user, snapshot_id)
    project = snap.project
    snapshots.delete_snapshot(snap)
    messages.success(request, f"Snapshot {snapshot_id} and its files deleted.")
    return redirect("aggregation-snapshot-list", public_id=project.public_id)
