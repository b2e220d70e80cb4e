"""The annotator's own demographic profile: optional fields, each kept only with explicit consent.

There is no user id in the URL: the page always shows and edits the requesting user's profile,
so nobody can reach anyone else's.
"""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from annotation.forms import ProfileForm
from annotation.models import AnnotatorProfile, Project


def _own_profile(request: HttpRequest) -> AnnotatorProfile:
    """The user's profile, unsaved until they first submit the form."""
    try:
        return request.user.profile
    except AnnotatorProfile.DoesNotExist:
        return AnnotatorProfile(user=request.user)


def _consent_projects(user: Any) -> list[Project]:
    """The user's projects that explain how they use demographics, in the words of each project."""
    return list(Project.objects.filter(memberships__user=user).exclude(consent_text="").order_by("name"))


def _save(form: ProfileForm, profile: AnnotatorProfile) -> AnnotatorProfile:
    profile = form.save(commit=False)
    consented = form.consented_fields()
    if consented != list(profile.consented_fields or []):
        profile.consented_at = timezone.now() if consented else None
    profile.consented_fields = consented
    profile.drop_unconsented()
    profile.save()
    return profile


def _saved_message(form: ProfileForm) -> str:
    dropped = [form.fields[f].label.lower() for f in form.dropped_fields()]
    if not dropped:
        return "Profile saved."
    return f"Profile saved. Not kept, because you did not tick its consent box: {', '.join(dropped)}."


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    instance = _own_profile(request)
    form = ProfileForm(request.POST if request.method == "POST" else None, instance=instance)
    if request.method == "POST" and form.is_valid():
        _save(form, instance)
        messages.success(request, _saved_message(form))
        return redirect("annotation-profile")
    status = 422 if form.errors else 200
    context = {"form": form, "projects": _consent_projects(request.user)}
    return render(request, "annotation/profile.html", context, status=status)


urlpatterns = [
    path("profile/", profile, name="annotation-profile"),
]
