"""Output shapes of the training API, and its input shapes documented from the pages' forms (the
forms validate: config.api_forms)."""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api_forms import request_serializer
from jobs.serializers import RUN_FIELDS, RunStateSerializer
from training import forms, services
from training.models import Experiment, ExperimentCondition, RegisteredModel, TrainingRun

RegisterModelInputSerializer = request_serializer(forms.RegisterModelForm, "RegisterModelInputSerializer")
TrainingRunInputSerializer = request_serializer(forms.TrainingRunForm, "TrainingRunInputSerializer")
ExperimentInputSerializer = request_serializer(forms.ExperimentForm, "ExperimentInputSerializer")


class ModelRefSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "kind", "status"]
        read_only_fields = fields


class RegisteredModelSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    project = serializers.UUIDField(source="project.public_id", read_only=True, allow_null=True)
    training_run = serializers.UUIDField(source="training_run.run.public_id", read_only=True, allow_null=True,
                                         help_text="The training run that produced it (trained models).")
    fetch_run = serializers.UUIDField(source="fetch_run.public_id", read_only=True, allow_null=True,
                                      help_text="The run downloading it (models registered from a hub id).")
    fetch_error = serializers.CharField(source="fetch_run.error_cause", read_only=True, allow_null=True)

    class Meta:
        model = RegisteredModel
        fields = ["id", "project", "name", "kind", "status", "path", "hub_id", "size_bytes", "lineage", "training_run",
                  "fetch_run", "fetch_error", "created_at"]
        read_only_fields = fields


class ModelFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField()


class RegisteredModelDetailSerializer(RegisteredModelSerializer):
    files = serializers.SerializerMethodField(help_text="The model's files (checkpoints left out).")

    class Meta(RegisteredModelSerializer.Meta):
        fields = [*RegisteredModelSerializer.Meta.fields, "files"]
        read_only_fields = fields

    @extend_schema_field(ModelFileSerializer(many=True))
    def get_files(self, model: RegisteredModel) -> list[dict[str, Any]]:
        return services.model_files(model)


class TrainingRunSerializer(RunStateSerializer):
    project = serializers.UUIDField(source="project.public_id", read_only=True)
    base_model = ModelRefSerializer(read_only=True)
    ref_model = ModelRefSerializer(read_only=True, allow_null=True)
    reward_models = ModelRefSerializer(many=True, read_only=True)
    result_model = ModelRefSerializer(read_only=True, allow_null=True, help_text="The registered result, once done.")
    hyperparameters = serializers.JSONField(source="run.config.hyperparameters", read_only=True)
    gpus = serializers.IntegerField(source="run.config.gpus", read_only=True)
    preset = serializers.CharField(source="run.config.preset", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [*RUN_FIELDS, "project", "recipe", "objective", "base_model", "ref_model", "reward_models",
                  "snapshot_id", "dataset", "hyperparameters", "gpus", "preset", "launcher", "slurm_job_id",
                  "config_hash", "output_dir", "result_model"]
        read_only_fields = fields


class MetricSeriesSerializer(serializers.Serializer):
    step = serializers.ListField(child=serializers.IntegerField())
    value = serializers.ListField(child=serializers.FloatField())


class TrainingRunDetailSerializer(TrainingRunSerializer):
    log = serializers.CharField(source="run.log", read_only=True, help_text="The tail of the run's log.")
    config = serializers.JSONField(source="run.config", read_only=True)
    summary = serializers.SerializerMethodField(help_text="rlchf_run.json: rows given / kept / dropped, precision, steps.")
    metrics = serializers.SerializerMethodField(help_text="Logged metrics by name (the run page's charts).")

    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "summary", "metrics", "log", "config"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_summary(self, training: TrainingRun) -> dict[str, Any] | None:
        return services.run_summary(training)

    @extend_schema_field(serializers.DictField(child=MetricSeriesSerializer()))
    def get_metrics(self, training: TrainingRun) -> dict[str, dict[str, list[float]]]:
        return services.metric_series(training)


class ExperimentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    project = serializers.UUIDField(source="project.public_id", read_only=True)
    base_model = ModelRefSerializer(read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "project", "name", "base_model", "recipe", "hyperparameters", "seed", "created_at"]
        read_only_fields = fields


class ConditionRunSerializer(RunStateSerializer):
    class Meta:
        model = TrainingRun
        fields = RUN_FIELDS
        read_only_fields = fields


class ConditionSerializer(serializers.ModelSerializer):
    training_run = ConditionRunSerializer(read_only=True, allow_null=True, help_text="None for the base condition.")
    model = serializers.SerializerMethodField(help_text="The condition's model once there is one.")

    class Meta:
        model = ExperimentCondition
        fields = ["name", "feedback", "snapshot_id", "objective", "training_run", "model"]
        read_only_fields = fields

    @extend_schema_field(ModelRefSerializer(allow_null=True))
    def get_model(self, condition: ExperimentCondition) -> dict[str, Any] | None:
        model = condition.model
        if model is None and condition.training_run is not None:
            model = getattr(condition.training_run, "result_model", None)
        return ModelRefSerializer(model).data if model is not None else None


class ExperimentDetailSerializer(ExperimentSerializer):
    conditions = ConditionSerializer(many=True, read_only=True)

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "conditions"]
        read_only_fields = fields
