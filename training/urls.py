"""URLs of the training app (mounted under /training/); names are app-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from training import views

P = "projects/<uuid:public_id>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(P, views.project_training, name="training-project"),
    path(P + "models/register/", views.model_register, name="training-model-register"),
    path(P + "models/<uuid:model_id>/", views.model_detail, name="training-model-detail"),
    path(P + "models/<uuid:model_id>/download/", views.model_download, name="training-model-download"),
    path(P + "runs/new/", views.run_create, name="training-run-create"),
    path(P + "runs/<uuid:run_id>/", views.run_detail, name="training-run-detail"),
    path(P + "runs/<uuid:run_id>/metrics/", views.run_metrics, name="training-run-metrics"),
    path(P + "experiments/new/", views.experiment_create, name="training-experiment-create"),
    path(P + "experiments/<uuid:experiment_id>/", views.experiment_detail, name="training-experiment-detail"),
    path("vendor/plotly.min.js", views.plotly_js, name="training-plotly-js"),
]
