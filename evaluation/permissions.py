"""Who reaches the evaluation app: the project's researchers who may also create projects (the
`annotation.add_project` permission; a blind comparison creates a ranking project). Everyone else
gets 404, annotator members included. The HTML views and the API use the same two helpers."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from annotation.models import Project
from annotation.permissions import ADD_PROJECT_PERMISSION, researched_projects


def evaluation_projects(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    """Projects whose evaluation `user` may see and start."""
    if not user.has_perm(ADD_PROJECT_PERMISSION):
        return Project.objects.none()
    return researched_projects(user)


def evaluation_project(user: AbstractBaseUser | AnonymousUser, public_id: Any) -> Project:
    """The project if `user` may evaluate in it; 404 otherwise."""
    return get_object_or_404(evaluation_projects(user), public_id=public_id)
