"""A project with something on every page: items, a ranking of each kind, a skipped item, a
persona panel and a synthetic run, seen by its owner (a researcher) and by an annotator."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from annotation.models import Ranking
from annotation.services import (
    next_assignment,
    rater_for_user,
    record_ranking,
    skip_assignment,
    submit_ranking,
)


@dataclass
class Site:
    project: Any
    ranking: Ranking
    item: Any
    panel: Any
    srun: Any


@pytest.fixture
def site(project, owner, annotator) -> Site:
    from synthetic.services import import_panel, start_synthetic_run
    from tests.synthetic_app import fake_engine
    from tests.synthetic_app.conftest import PERSONAS_JSONL

    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    fake_engine.register()
    lease = next_assignment(project=project, user=annotator)
    ranking = submit_ranking(user=annotator, assignment=lease, order=[[r] for r in lease.shown_order])
    skip_assignment(assignment=next_assignment(project=project, user=annotator), user=annotator)
    next_assignment(project=project, user=annotator)  # the item on screen
    record_ranking(item=ranking.item, rater=rater_for_user(owner), order=[["r1", "r2"], ["r3"], ["r4"]])
    panel = import_panel(owner=owner, name="Mixed", text=PERSONAS_JSONL)
    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine=fake_engine.ENGINE, model="fake")
    return Site(project=project, ranking=ranking, item=ranking.item, panel=panel, srun=srun)


def pages_of(site: Site, role: str) -> list[str]:
    """Every HTML page `role` ("owner" or "annotator") may open."""
    p = site.project.public_id
    shared = [
        reverse("annotation-home"), reverse("annotation-profile"), reverse("annotation-annotate", args=[p]),
        reverse("annotation-my-rankings", args=[p]), reverse("jobs-run-list"),
    ]
    if role == "annotator":
        return [*shared, reverse("annotation-revise-ranking", args=[site.ranking.pk])]
    return [
        *shared,
        reverse("annotation-project-create"),
        *(reverse(name, args=[p]) for name in (
            "annotation-project-detail", "annotation-project-edit", "annotation-project-members",
            "annotation-project-items", "annotation-import-items", "annotation-export-rankings",
            "synthetic-panel-list", "synthetic-panel-import", "synthetic-panel-generate", "synthetic-panel-twins",
            "synthetic-run-list", "synthetic-run-create", "synthetic-generation-create",
        )),
        reverse("annotation-item-detail", args=[p, site.item.pk]),
        reverse("synthetic-panel-detail", args=[p, site.panel.pk]),
        reverse("synthetic-run-summary", args=[p, site.srun.pk]),
        reverse("jobs-run-detail", args=[site.srun.run.public_id]),
    ]
