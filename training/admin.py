"""Admin of the training app."""
from __future__ import annotations

from django.contrib import admin

from training.models import Experiment, ExperimentCondition, RegisteredModel, TrainingRun


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "status", "project", "owner", "size_bytes", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("name", "hub_id", "path")
    readonly_fields = ("public_id", "lineage", "created_at")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("run", "recipe", "objective", "snapshot_id", "launcher", "created_at")
    list_filter = ("recipe", "launcher")
    raw_id_fields = ("run", "base_model", "ref_model")


class ConditionInline(admin.TabularInline):
    model = ExperimentCondition
    extra = 0
    raw_id_fields = ("training_run", "model")


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "owner", "seed", "created_at")
    inlines = [ConditionInline]
