"""Routes of the REST API, mounted at /api/v1/ by config/urls.py. Names are api-verb-noun.

Other API modules (imports and exports) append their own `path(...)` lines to `urlpatterns`.
"""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from annotation import api, api_io

router = SimpleRouter()
router.register("projects", api.ProjectViewSet, basename="api-project")
router.register("assignments", api.AssignmentViewSet, basename="api-assignment")
router.register("rankings", api.RankingViewSet, basename="api-ranking")

items = api.ItemViewSet.as_view({"get": "list", "post": "create"})
item = api.ItemViewSet.as_view({"get": "retrieve"})

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/token/", obtain_auth_token, name="api-obtain-token"),
    path("profile/", api.ProfileView.as_view(), name="api-profile"),
    path("projects/<uuid:project_id>/items/", items, name="api-item-list"),
    path("projects/<uuid:project_id>/items/<int:pk>/", item, name="api-item-detail"),
    *router.urls,
]
urlpatterns += [
    path("projects/<uuid:public_id>/import/", api_io.import_items, name="api-import-items"),
    path("projects/<uuid:public_id>/export/", api_io.export_rankings, name="api-export-rankings"),
]
