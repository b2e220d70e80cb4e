"""URLs of the synthetic app (mounted under /synthetic/); names are app-verb-noun."""
from __future__ import annotations

from django.urls import path

from synthetic import views

urlpatterns = [
    path("projects/<uuid:public_id>/panels/", views.panel_list, name="synthetic-panel-list"),
    path("projects/<uuid:public_id>/panels/import/", views.panel_import, name="synthetic-panel-import"),
    path("projects/<uuid:public_id>/panels/generate/", views.panel_generate, name="synthetic-panel-generate"),
    path("projects/<uuid:public_id>/panels/twins/", views.panel_twins, name="synthetic-panel-twins"),
    path("projects/<uuid:public_id>/panels/<int:panel_id>/", views.panel_detail, name="synthetic-panel-detail"),
    path("projects/<uuid:public_id>/runs/", views.run_list, name="synthetic-run-list"),
    path("projects/<uuid:public_id>/runs/new/", views.run_create, name="synthetic-run-create"),
    path("projects/<uuid:public_id>/runs/<int:run_id>/", views.run_summary, name="synthetic-run-summary"),
    path(
        "projects/<uuid:public_id>/runs/<int:run_id>/delete-rankings/", views.run_delete_rankings,
        name="synthetic-run-delete-rankings",
    ),
    path("projects/<uuid:public_id>/generate/", views.generation_create, name="synthetic-generation-create"),
]
