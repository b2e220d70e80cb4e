"""URLs of the annotation app. Each views module owns its own list; names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver

from annotation.views import annotate, imports, profile, projects

urlpatterns: list[URLPattern | URLResolver] = []
urlpatterns += projects.urlpatterns
urlpatterns += annotate.urlpatterns
urlpatterns += profile.urlpatterns
urlpatterns += imports.urlpatterns
