"""The job half of the training and evaluation APIs' runs: one shape for a run's state everywhere.

`RUN_FIELDS` are read from a row's `run` (the `jobs.Run` its one-to-one points at), so a training
or evaluation run shows its id, status and progress flat beside its own fields.
"""
from __future__ import annotations

from rest_framework import serializers

from jobs.models import Run

RUN_FIELDS = ["id", "name", "status", "progress_done", "progress_total", "percent", "error", "cancel_requested",
              "created_at", "started_at", "finished_at"]


class RunStateSerializer(serializers.ModelSerializer):
    """Base of serializers of a model with a `run` one-to-one: list `RUN_FIELDS` in its Meta.fields."""

    id = serializers.UUIDField(source="run.public_id", read_only=True, help_text="The run's public id.")
    name = serializers.CharField(source="run.name", read_only=True)
    status = serializers.ChoiceField(source="run.status", choices=Run.Status.choices, read_only=True)
    progress_done = serializers.IntegerField(source="run.progress_done", read_only=True)
    progress_total = serializers.IntegerField(source="run.progress_total", read_only=True, allow_null=True)
    percent = serializers.FloatField(source="run.percent", read_only=True, allow_null=True)
    error = serializers.CharField(source="run.error_cause", read_only=True, help_text="Why it failed, one line.")
    cancel_requested = serializers.BooleanField(source="run.cancel_requested", read_only=True)
    created_at = serializers.DateTimeField(source="run.created_at", read_only=True)
    started_at = serializers.DateTimeField(source="run.started_at", read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(source="run.finished_at", read_only=True, allow_null=True)


class RunSerializer(serializers.ModelSerializer):
    """A run by itself (a blind comparison's generation run, a model's download: /api/v1/runs/{id}/)."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    error = serializers.CharField(source="error_cause", read_only=True)
    percent = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Run
        fields = ["id", "kind", "name", "status", "progress_done", "progress_total", "percent", "error",
                  "cancel_requested", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    project = serializers.UUIDField(source="project.public_id", read_only=True, allow_null=True)
    log = serializers.CharField(read_only=True, help_text="The tail of the run's log.")

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "project", "log"]
        read_only_fields = fields
