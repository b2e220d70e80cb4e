"""URLs of the aggregation app (mounted under /aggregation/); names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver

from aggregation import views_review

urlpatterns: list[URLPattern | URLResolver] = []
urlpatterns += views_review.urlpatterns
