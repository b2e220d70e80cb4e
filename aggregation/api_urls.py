"""REST routes of the aggregation app, mounted at /api/v1/ by config/urls.py. Names are api-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from . import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("projects/<uuid:public_id>/pools/", api.pools, name="api-pool-list"),
    path("projects/<uuid:public_id>/pools/<str:name>/", api.pool_detail, name="api-pool-detail"),
    path("projects/<uuid:public_id>/aggregate/", api.aggregate, name="api-aggregate"),
    path("projects/<uuid:public_id>/agreement/", api.agreement, name="api-agreement"),
    path("projects/<uuid:public_id>/snapshots/", api.project_snapshots, name="api-snapshot-list"),
    path("snapshots/<str:snapshot_id>/", api.snapshot_detail, name="api-snapshot-detail"),
    path("snapshots/<str:snapshot_id>/download/", api.snapshot_download, name="api-snapshot-download"),
    path("snapshots/<str:snapshot_id>/diff/<str:other_id>/", api.snapshot_diff, name="api-snapshot-diff"),
]
