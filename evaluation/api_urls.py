"""REST routes of the evaluation app, mounted at /api/v1/ by config/urls.py. Names are api-verb-noun."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from annotation.api_io import IgnoreFormatParameter
from evaluation.api import BlindComparisonViewSet, EvaluationRunViewSet, ExperimentEvaluationViewSet

P = "projects/<uuid:public_id>/"
RUN = "evaluation-runs/<uuid:run_id>/"
BLIND = "blind-comparisons/<int:comparison_id>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(P + "evaluation-runs/", EvaluationRunViewSet.as_view({"get": "list", "post": "create"}),
         name="api-evaluation-run-list"),
    path(RUN, EvaluationRunViewSet.as_view({"get": "retrieve"}), name="api-evaluation-run-detail"),
    # ?format= picks the report's export here, not a DRF renderer.
    path(RUN + "report/", EvaluationRunViewSet.as_view({"get": "report"}, content_negotiation_class=IgnoreFormatParameter),
         name="api-evaluation-run-report"),
    path(RUN + "cancel/", EvaluationRunViewSet.as_view({"post": "cancel"}), name="api-evaluation-run-cancel"),
    path(RUN + "resume/", EvaluationRunViewSet.as_view({"post": "resume"}), name="api-evaluation-run-resume"),
    path("experiments/<uuid:experiment_id>/evaluations/",
         ExperimentEvaluationViewSet.as_view({"get": "list", "post": "create"}), name="api-experiment-evaluations"),
    path(P + "blind-comparisons/", BlindComparisonViewSet.as_view({"get": "list", "post": "create"}),
         name="api-blind-comparison-list"),
    path(BLIND, BlindComparisonViewSet.as_view({"get": "retrieve"}), name="api-blind-comparison-detail"),
    path(BLIND + "results/", BlindComparisonViewSet.as_view({"get": "results"}), name="api-blind-comparison-results"),
]
