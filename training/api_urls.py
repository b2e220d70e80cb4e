"""REST routes of the training app, mounted at /api/v1/ by config/urls.py. Names are api-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
