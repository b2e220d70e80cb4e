"""Researcher pages: create and edit projects, manage members, browse items and their rankings.

Every page fetches its project through `_researcher_project`: outsiders get 404 (the project's
existence is not revealed), annotator members get 403. The project page shows progress that
`annotation.consumers.ProjectProgressConsumer` refreshes live as rankings arrive.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation import services
from annotation.markdown import render_markdown
from annotation.models import Membership, Project, Ranking, Rater

ITEMS_PER_PAGE = 50
MAX_LEASE_SECONDS = 7 * 24 * 3600


# ---------------------------------------------------------------- access


def researcher_project(user: AbstractBaseUser | AnonymousUser | None, public_id: UUID | str) -> Project | None:
    """The project if `user` is one of its researchers, else None (for the websocket consumer)."""
    if user is None or not user.is_authenticated:
        return None
    membership = (
        Membership.objects.select_related("project")
        .filter(project__public_id=public_id, user=user, role=Membership.Role.RESEARCHER)
        .first()
    )
    return membership.project if membership else None


def _researcher_project(request: HttpRequest, public_id: UUID) -> Project:
    membership = Membership.objects.select_related("project").filter(
        project__public_id=public_id, user=request.user
    ).first()
    if membership is None:
        raise Http404("No such project.")
    if membership.role != Membership.Role.RESEARCHER:
        raise PermissionDenied("Only researchers of this project can open this page.")
    return membership.project


# ---------------------------------------------------------------- forms


class ProjectForm(forms.ModelForm):
    overlap_target = forms.IntegerField(
        min_value=1, max_value=1000, initial=3, label="Human rankings per item",
        help_text="Rankings wanted from annotators per item (each item has 2 to 16 responses)."
    )
    lease_seconds = forms.IntegerField(
        min_value=60, max_value=MAX_LEASE_SECONDS, initial=30 * 60,
        help_text="How long an item stays reserved for the annotator it was handed to.",
    )
    synthetic_target = forms.IntegerField(
        min_value=0, max_value=1000, initial=0, label="Synthetic rankings per item",
        help_text="Synthetic raters have their own target and never use up the human one. 0: no limit "
                  "(a synthetic run ranks every chosen item with every persona).",
    )

    class Meta:
        model = Project
        fields = [
            "name", "status", "guidelines", "overlap_target", "synthetic_target", "allow_ties", "allow_partial", "rationale",
            "consent_text", "demographics_export", "lease_seconds",
        ]
        widgets = {
            "guidelines": forms.Textarea(attrs={"rows": 12}),
            "consent_text": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The preview follows the text as it is typed; without JavaScript it shows after saving.
        self.fields["guidelines"].widget.attrs.update({
            "hx-post": reverse("annotation-guidelines-preview"),
            "hx-trigger": "input changed delay:400ms",
            "hx-target": "#guidelines-preview",
            "hx-swap": "outerHTML",
        })


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_username(self) -> AbstractBaseUser:
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"There is no user named “{username}”.")
        return user

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        user, role = cleaned.get("username"), cleaned.get("role")
        if user is not None and user.pk == self.project.owner_id and role != Membership.Role.RESEARCHER:
            self.add_error("role", f"{user} owns this project and stays a researcher.")
        return cleaned


# ---------------------------------------------------------------- progress (shared with the consumer)


def progress_context(project: Project) -> dict[str, Any]:
    progress = services.project_progress(project)
    target = progress["target"]
    return {
        "project": project,
        "progress": progress,
        "percent": round(100 * min(progress["rankings"], target) / target) if target else 0,
        "raters": services.rater_progress(project),
    }


def render_progress(project: Project) -> str:
    """The `_progress.html` fragment, as the page includes it and the websocket sends it."""
    project.refresh_from_db(fields=["overlap_target", "synthetic_target"])
    return render_to_string("annotation/_progress.html", progress_context(project))


# ---------------------------------------------------------------- views


@login_required
@permission_required("annotation.add_project", raise_exception=True)
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = services.create_project(owner=request.user, **form.cleaned_data)
        messages.success(request, f"Project “{project.name}” created.")
        return redirect("annotation-project-detail", public_id=project.public_id)
    return render(request, "annotation/project_form.html", {"form": form, "project": None, "preview": ""})


@login_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = _researcher_project(request, public_id)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Project settings saved.")
        return redirect("annotation-project-detail", public_id=project.public_id)
    preview = render_markdown(form["guidelines"].value() or "")
    return render(request, "annotation/project_form.html", {"form": form, "project": project, "preview": preview})


@login_required
@require_POST
def guidelines_preview(request: HttpRequest) -> HttpResponse:
    """Rendered, sanitised Markdown for the live preview beside the guidelines editor."""
    preview = render_markdown(request.POST.get("guidelines", ""))
    return render(request, "annotation/project_form.html#preview", {"preview": preview})


@login_required
@require_GET
def project_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = _researcher_project(request, public_id)
    context = progress_context(project) | {
        "guidelines_html": render_markdown(project.guidelines),
        "consent_html": render_markdown(project.consent_text),
        "ws_path": f"/ws/projects/{project.public_id}/",
    }
    return render(request, "annotation/project_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def project_members(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = _researcher_project(request, public_id)
    form = MemberForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        user, role = form.cleaned_data["username"], form.cleaned_data["role"]
        services.add_member(project=project, user=user, role=role)
        messages.success(request, f"{user} is now a member as {Membership.Role(role).label.lower()}.")
        return redirect("annotation-project-members", public_id=project.public_id)
    members = project.memberships.select_related("user").order_by("role", "user__username")
    return render(request, "annotation/members.html", {"project": project, "form": form, "members": members})


@login_required
@require_POST
def project_member_remove(request: HttpRequest, public_id: UUID, user_id: int) -> HttpResponse:
    project = _researcher_project(request, public_id)
    # `user__pk`, not `user_id`: a lookup on the user's own id answers "none" for an id beyond the
    # database's integers (Django's overflow handling), where the foreign key column overflows.
    membership = get_object_or_404(project.memberships.select_related("user"), user__pk=user_id)
    try:
        services.remove_member(project=project, user=membership.user)
    except services.MembershipError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{membership.user} was removed from the project.")
    return redirect("annotation-project-members", public_id=project.public_id)


@login_required
@require_GET
def project_items(request: HttpRequest, public_id: UUID) -> HttpResponse:
    project = _researcher_project(request, public_id)
    items = project.items.annotate(response_count=Count("responses")).order_by("id")
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "annotation/items.html", {"project": project, "page": page})


@login_required
@require_GET
def item_detail(request: HttpRequest, public_id: UUID, item_id: int) -> HttpResponse:
    project = _researcher_project(request, public_id)
    item = get_object_or_404(project.items, pk=item_id)
    show_profiles = project.demographics_export == Project.DemographicsExport.INDIVIDUAL
    rankings = item.rankings.filter(is_current=True).select_related("rater__user").order_by("created_at", "id")
    if show_profiles:
        rankings = rankings.select_related("rater__user__profile")
    rows = [{"ranking": r, "rater": rater_label(r.rater), "profile": _profile(r, show_profiles)} for r in rankings]
    context = {"project": project, "item": item, "responses": item.responses.all(), "rows": rows,
               "show_profiles": show_profiles}
    return render(request, "annotation/item_detail.html", context)


def rater_label(rater: Rater) -> str:
    if rater.kind == Rater.Kind.HUMAN and rater.user is not None:
        return rater.user.get_username()
    persona_id = (rater.persona or {}).get("id", "?")
    return f"{persona_id} · {rater.model}"


def _profile(ranking: Ranking, show: bool) -> dict[str, str] | None:
    """Consented demographics of a human rater, only where the project exports them per ranking."""
    if not show or ranking.rater.user is None:
        return None
    try:
        return ranking.rater.user.profile.consented_values()
    except ObjectDoesNotExist:
        return {}


urlpatterns: list[URLPattern] = [
    path("projects/new/", project_create, name="annotation-project-create"),
    path("projects/guidelines-preview/", guidelines_preview, name="annotation-guidelines-preview"),
    path("projects/<uuid:public_id>/", project_detail, name="annotation-project-detail"),
    path("projects/<uuid:public_id>/edit/", project_edit, name="annotation-project-edit"),
    path("projects/<uuid:public_id>/members/", project_members, name="annotation-project-members"),
    path(
        "projects/<uuid:public_id>/members/<int:user_id>/remove/",
        project_member_remove,
        name="annotation-project-member-remove",
    ),
    path("projects/<uuid:public_id>/items/", project_items, name="annotation-project-items"),
    path("projects/<uuid:public_id>/items/<int:item_id>/", item_detail, name="annotation-item-detail"),
]
