"""URLs of the aggregation app (mounted under /aggregation/); names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from . import views_review
from .views import collective, pools, snapshots

urlpatterns: list[URLPattern | URLResolver] = [
    path("<uuid:public_id>/pools/", pools.pool_list, name="aggregation-pool-list"),
    path("<uuid:public_id>/pools/new/", pools.pool_create, name="aggregation-pool-create"),
    path("<uuid:public_id>/pools/<str:name>/edit/", pools.pool_edit, name="aggregation-pool-edit"),
    path("<uuid:public_id>/pools/<str:name>/delete/", pools.pool_delete, name="aggregation-pool-delete"),
    path("<uuid:public_id>/collective/", collective.collective_list, name="aggregation-collective-list"),
    path("<uuid:public_id>/snapshots/", snapshots.snapshot_list, name="aggregation-snapshot-list"),
    path("snapshots/<str:snapshot_id>/", snapshots.snapshot_detail, name="aggregation-snapshot-detail"),
    path("snapshots/<str:snapshot_id>/download/", snapshots.snapshot_download, name="aggregation-snapshot-download"),
    path("snapshots/<str:snapshot_id>/diff/", snapshots.snapshot_diff, name="aggregation-snapshot-diff"),
    path("snapshots/<str:snapshot_id>/delete/", snapshots.snapshot_delete, name="aggregation-snapshot-delete"),
]
urlpatterns += views_review.urlpatterns
