"""Who may see and change what through the API.

The rule, the same on every endpoint:
- anonymous requests get 401 (token auth is the first authenticator, so the answer carries
  `WWW-Authenticate: Token`);
- a user who is not a member of a project gets 404 for the project and everything in it, so a
  project's existence never leaks;
- a member without the researcher role gets 403 on researcher-only actions (members, progress,
  items, project edits): they already know the project exists, so 403 tells them why;
- creating a project needs the `annotation.add_project` permission, as on the HTML page (403
  otherwise): whoever creates a project becomes its researcher, with imports and synthetic runs;
- assignments and rankings of other raters are simply not in the requester's queryset: 404.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, QuerySet
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from annotation.models import Membership, Project

RESEARCHER_ONLY = "only the project's researchers may do this"
CREATE_PROJECT = "creating projects needs the annotation.add_project permission (ask an administrator)"
ADD_PROJECT_PERMISSION = "annotation.add_project"


def member_projects(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    """Projects `user` belongs to, each annotated with `my_role` (their membership role)."""
    # The annotation reuses the join of the filter, so each project appears once, with this user's role.
    return Project.objects.filter(memberships__user=user.pk).annotate(my_role=F("memberships__role"))


def researcher_project_ids(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Membership]:
    """Subquery of the ids of projects where `user` is a researcher."""
    return Membership.objects.filter(user=user.pk, role=Membership.Role.RESEARCHER).values("project_id")


def is_researcher(project: Project) -> bool:
    return getattr(project, "my_role", None) == Membership.Role.RESEARCHER


def member_project(user: AbstractBaseUser | AnonymousUser, public_id: Any) -> Project:
    """The project if `user` is a member, else 404."""
    return get_object_or_404(member_projects(user), public_id=public_id)


def researched_projects(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    """Projects where `user` is a researcher."""
    return Project.objects.filter(pk__in=researcher_project_ids(user))


def researched_project(user: AbstractBaseUser | AnonymousUser, public_id: Any) -> Project:
    """The project if `user` is one of its researchers; 404 for everyone else, members included
    (the researcher-only apps: aggregation, training, evaluation)."""
    return get_object_or_404(researched_projects(user), public_id=public_id)


def researcher_project(user: AbstractBaseUser | AnonymousUser, public_id: Any) -> Project:
    """The project if `user` is one of its researchers; 404 for outsiders, 403 for other members."""
    project = member_project(user, public_id)
    if not is_researcher(project):
        raise PermissionDenied(RESEARCHER_ONLY)
    return project


class IsProjectResearcher(BasePermission):
    """Object permission for a `Project` fetched through `member_projects` (outsiders already 404)."""

    message = RESEARCHER_ONLY

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return isinstance(obj, Project) and is_researcher(obj)


class CanCreateProjects(BasePermission):
    """The `annotation.add_project` permission, the same check as the HTML page `project_create`."""

    message = CREATE_PROJECT

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm(ADD_PROJECT_PERMISSION))
