"""URLs of the evaluation app (mounted under /evaluation/); names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from evaluation import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("projects/<uuid:public_id>/runs/", views.run_list, name="evaluation-run-list"),
    path("projects/<uuid:public_id>/runs/new/", views.run_create, name="evaluation-run-create"),
    path("projects/<uuid:public_id>/runs/<int:run_id>/", views.run_report, name="evaluation-run-report"),
    path("projects/<uuid:public_id>/blind/new/", views.blind_create, name="evaluation-blind-create"),
    path("projects/<uuid:public_id>/blind/<int:comparison_id>/", views.blind_detail, name="evaluation-blind-detail"),
    path("projects/<uuid:public_id>/experiments/<uuid:experiment_id>/", views.experiment_evaluations,
         name="evaluation-experiment"),
    path("projects/<uuid:public_id>/experiments/<uuid:experiment_id>/evaluate/", views.experiment_evaluate,
         name="evaluation-experiment-evaluate"),
]
