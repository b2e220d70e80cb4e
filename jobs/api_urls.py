"""REST routes of the jobs app, mounted at /api/v1/ by config/urls.py. Names are api-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from jobs.api import RunViewSet

urlpatterns: list[URLPattern | URLResolver] = [
    path("runs/<uuid:run_id>/", RunViewSet.as_view({"get": "retrieve"}), name="api-run-detail"),
    path("runs/<uuid:run_id>/cancel/", RunViewSet.as_view({"post": "cancel"}), name="api-run-cancel"),
    path("runs/<uuid:run_id>/resume/", RunViewSet.as_view({"post": "resume"}), name="api-run-resume"),
]
