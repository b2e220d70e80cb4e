"""Admin of the evaluation app: runs, results and blind comparisons are records, read-only."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from evaluation.models import BlindComparison, EvaluationResult, EvaluationRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyAdmin):
    list_display = ["run", "project", "config_hash", "created_at"]


@admin.register(EvaluationResult)
class EvaluationResultAdmin(ReadOnlyAdmin):
    list_display = ["model_name", "benchmark", "metric", "scope", "scope_value", "value", "scorer", "benchmark_version",
                    "config_hash"]
    list_filter = ["benchmark", "scope", "source", "scorer"]
    search_fields = ["model_name", "metric", "scope_value"]


@admin.register(BlindComparison)
class BlindComparisonAdmin(ReadOnlyAdmin):
    list_display = ["project", "source_project", "model_names", "created_at"]
