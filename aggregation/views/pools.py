"""Pool pages: list (with each pool's raters and effective size), create, edit, delete.

Every page fetches its project through `researcher_project`: anyone but the project's researchers
gets 404. An impossible pool re-renders the form with the cause on its field; nothing is saved.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aggregation import services
from aggregation.forms import PoolForm
from aggregation.models import Pool
from aggregation.pools import ALL, PoolError, PoolSpec, RaterInfo, project_raters, resolve
from annotation.models import Project, Rater
from annotation.permissions import researched_project as researcher_project


def _choices(project: Project) -> dict[str, Any]:
    from synthetic.models import PersonaPanel

    panels = PersonaPanel.objects.filter(project=project) | PersonaPanel.objects.filter(runs__project=project)
    models = (Rater.objects.filter(kind=Rater.Kind.SYNTHETIC, rankings__item__project=project)
              .values_list("model", flat=True).distinct().order_by("model"))
    return {"panels": [(p.pk, str(p)) for p in panels.distinct()], "models": [m for m in models if m]}


def _summary(project: Project, spec: PoolSpec, raters: list[RaterInfo]) -> dict[str, Any]:
    try:
        return resolve(project, spec, raters).summary()
    except PoolError as exc:
        return {"error": exc.message}


@login_required
@require_GET
def pool_list(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    raters = project_raters(project)
    rows = [{"name": "all", "builtin": True, "summary": _summary(project, ALL, raters)}]
    for pool in Pool.objects.filter(project=project):
        rows.append({"name": pool.name, "pool": pool, "summary": _summary(project, PoolSpec.from_pool(pool), raters)})
    return render(request, "aggregation/pool_list.html", {"project": project, "rows": rows})


def _form_page(request: HttpRequest, project: Project, form: PoolForm, pool: Pool | None) -> HttpResponse:
    status = 400 if form.errors else 200
    return render(request, "aggregation/pool_form.html", {"project": project, "form": form, "pool": pool},
                  status=status)


def _save(request: HttpRequest, project: Project, form: PoolForm, pool: Pool | None) -> HttpResponse:
    try:
        saved = services.save_pool(project=project, user=request.user, data=form.cleaned_data, pool=pool)
    except PoolError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _form_page(request, project, form, pool)
    summary = saved.resolved.summary()  # type: ignore[attr-defined]
    messages.success(request, f"Pool {saved.name} saved: {summary['raters']} raters, effective size "
                              f"{summary['effective_size']:.1f}.")
    return redirect("aggregation-pool-list", public_id=project.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def pool_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    form = PoolForm(request.POST or None, request.FILES or None, **_choices(project))
    if request.method == "POST" and form.is_valid():
        return _save(request, project, form, None)
    return _form_page(request, project, form, None)


def _pool(project: Project, name: str) -> Pool:
    pool = Pool.objects.filter(project=project, name=name).first()
    if pool is None:
        raise Http404("No such pool.")
    return pool


@login_required
@require_http_methods(["GET", "POST"])
def pool_edit(request: HttpRequest, public_id: UUID, name: str) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    pool = _pool(project, name)
    form = PoolForm(request.POST or None, request.FILES or None, initial=PoolForm.initial_from(pool),
                    **_choices(project))
    if request.method == "POST" and form.is_valid():
        return _save(request, project, form, pool)
    return _form_page(request, project, form, pool)


@login_required
@require_POST
def pool_delete(request: HttpRequest, public_id: UUID, name: str) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    pool = _pool(project, name)
    pool.delete()
    messages.success(request, f"Pool {name} deleted; snapshots made with it keep their copy of it.")
    return redirect("aggregation-pool-list", public_id=project.public_id)
