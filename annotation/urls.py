"""URLs of the annotation app. Each views module owns its own list; names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver

from annotation.views import projects

urlpatterns: list[URLPattern | URLResolver] = []
urlpatterns += projects.urlpatterns
