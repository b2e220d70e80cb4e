"""URLs of the evaluation app (mounted under /evaluation/); names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
