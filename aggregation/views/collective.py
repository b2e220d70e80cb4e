"""The collective ranking of every ranked item, for a pool and a rule, page by page."""
from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

import socialchoice
from aggregation import services
from aggregation.forms import CollectiveForm
from aggregation.pools import ALL_POOL, PoolError
from aggregation.views.snapshots import pool_names
from annotation.permissions import researched_project as researcher_project

ITEMS_PER_PAGE = 50


@login_required
@require_GET
def collective_list(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = researcher_project(request.user, public_id)
    # Unbound, the form shows what the page computes: the `all` pool and the default rule.
    form = CollectiveForm(request.GET or None, pools=pool_names(project),
                          initial={"pool": ALL_POOL, "rule": socialchoice.DEFAULT_RULE})
    pool, rule = ALL_POOL, socialchoice.DEFAULT_RULE
    if form.is_bound and form.is_valid():
        pool = form.cleaned_data["pool"] or pool
        rule = form.cleaned_data["rule"] or rule
    context = {"project": project, "form": form, "pool": pool, "rule": rule, "error": None, "page": None}
    try:
        result = services.collective(project, pool=services.pool_spec(project, pool), rule=rule)
    except (PoolError, services.AggregationError) as exc:
        context["error"] = str(exc)
        # A choice the researcher made is refused (400); a project with nothing to aggregate yet is not an error.
        return render(request, "aggregation/collective.html", context, status=400 if form.is_bound else 200)
    page = Paginator(range(len(result.ballots.items)), ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    rows = result.rows(page.start_index() - 1, page.end_index()) if len(result.ballots.items) else []
    context.update(page=page, rows=rows, summary=result.pool.summary(),
                   query=urlencode({"pool": pool, "rule": rule}))
    return render(request, "aggregation/collective.html", context)
