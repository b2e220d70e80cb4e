"""URLs of the training app (mounted under /training/); names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
