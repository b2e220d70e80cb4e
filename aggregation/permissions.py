"""Who reaches the aggregation app: only the project's researchers.

Everyone else gets 404, annotator members included (unlike the annotation API's 403): pools,
collectives and snapshots expose every rater's work, so an annotator must not learn that they
exist. HTML views and the API use the same two helpers.
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from annotation.permissions import researched_projects as researcher_projects

from .models import Snapshot


def researcher_snapshots(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(project__in=researcher_projects(user)).select_related("project")


def researcher_snapshot(user: AbstractBaseUser | AnonymousUser, snapshot_id: str) -> Snapshot:
    """A snapshot of a project where ``user`` is a researcher, else 404."""
    if not user.is_authenticated:
        raise Http404("No such snapshot.")
    snap = researcher_snapshots(user).filter(snapshot_id=snapshot_id).first()
    if snap is None:
        raise Http404("No such snapshot.")
    return snap
