"""REST routes of the training app, mounted at /api/v1/ by config/urls.py. Names are api-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from training.api import ExperimentViewSet, RegisteredModelViewSet, TrainingRunViewSet

P = "projects/<uuid:public_id>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(P + "models/", RegisteredModelViewSet.as_view({"get": "list", "post": "create"}), name="api-model-list"),
    path("models/<uuid:model_id>/", RegisteredModelViewSet.as_view({"get": "retrieve"}), name="api-model-detail"),
    path("models/<uuid:model_id>/download/", RegisteredModelViewSet.as_view({"get": "download"}),
         name="api-model-download"),
    path(P + "training-runs/", TrainingRunViewSet.as_view({"get": "list", "post": "create"}),
         name="api-training-run-list"),
    path("training-runs/<uuid:run_id>/", TrainingRunViewSet.as_view({"get": "retrieve"}),
         name="api-training-run-detail"),
    path("training-runs/<uuid:run_id>/cancel/", TrainingRunViewSet.as_view({"post": "cancel"}),
         name="api-training-run-cancel"),
    path("training-runs/<uuid:run_id>/resume/", TrainingRunViewSet.as_view({"post": "resume"}),
         name="api-training-run-resume"),
    path(P + "experiments/", ExperimentViewSet.as_view({"get": "list", "post": "create"}), name="api-experiment-list"),
    path("experiments/<uuid:experiment_id>/", ExperimentViewSet.as_view({"get": "retrieve"}),
         name="api-experiment-detail"),
]
