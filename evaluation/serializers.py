"""Input and output shapes of the evaluation API."""
from __future__ import annotations

from rest_framework import serializers

from evaluation.models import BlindComparison, EvaluationResult, EvaluationRun
from evaluation.services import MAX_PER_CATEGORY
from jobs.serializers import RUN_FIELDS, RunStateSerializer

CONFIG_HELP = ('The run\'s definition, as on the page: {"models": [{"name", "path", "reference"?}], "benchmarks": '
               '[{"name": "bbq", "per_category": 50}, ...], "chunk_size": 256, "device": "auto"} (see the README).')


class EvaluationRunInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, allow_blank=True, default="")
    config = serializers.DictField(help_text=CONFIG_HELP)


class ModelConfigSerializer(serializers.Serializer):
    name = serializers.CharField()
    path = serializers.CharField()
    reference = serializers.CharField(allow_null=True, required=False)
    public_id = serializers.UUIDField(required=False, help_text="The registered model's, for an experiment's run.")
    kind = serializers.CharField(required=False, help_text="causal_lm (the default) or reward_model.")


class EvaluationRunSerializer(RunStateSerializer):
    project = serializers.UUIDField(source="project.public_id", read_only=True)
    experiment = serializers.UUIDField(source="experiment.public_id", read_only=True, allow_null=True)
    models = ModelConfigSerializer(source="run.config.models", many=True, read_only=True)
    benchmarks = serializers.SerializerMethodField(help_text="The benchmarks' names, in the config's order.")

    class Meta:
        model = EvaluationRun
        fields = [*RUN_FIELDS, "project", "experiment", "config_hash", "models", "benchmarks"]
        read_only_fields = fields

    def get_benchmarks(self, erun: EvaluationRun) -> list[str]:
        return [str(b.get("name")) for b in erun.run.config.get("benchmarks", []) if isinstance(b, dict)]


class EvaluationResultSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_name", read_only=True)

    class Meta:
        model = EvaluationResult
        fields = ["model", "model_path", "benchmark", "benchmark_version", "config_hash", "metric", "scope",
                  "scope_value", "value", "ci_low", "ci_high", "n", "source", "scorer"]
        read_only_fields = fields


class EvaluationRunDetailSerializer(EvaluationRunSerializer):
    results = EvaluationResultSerializer(many=True, read_only=True,
                                         help_text="One number per model, benchmark, metric and scope (overall, "
                                         "category, group, collective, subset), with its interval.")
    log = serializers.CharField(source="run.log", read_only=True, help_text="The tail of the run's log.")
    config = serializers.JSONField(source="run.config", read_only=True)

    class Meta(EvaluationRunSerializer.Meta):
        fields = [*EvaluationRunSerializer.Meta.fields, "results", "log", "config"]
        read_only_fields = fields


class ExperimentEvaluateSerializer(serializers.Serializer):
    per_category = serializers.IntegerField(min_value=1, max_value=MAX_PER_CATEGORY, default=50,
                                            help_text="Examples per BBQ category.")


class BlindComparisonInputSerializer(serializers.Serializer):
    config = serializers.DictField(help_text='As on the page: {"name", "models": [{"name", "path"}, ...] (two or '
                                   'more), "limit": 20, "max_new_tokens": 128, "seed": 0, "device": "auto"}.')


class BlindComparisonSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="source_project.public_id", read_only=True,
                                    help_text="The project whose prompts the models answered.")
    ranking_project = serializers.UUIDField(source="project.public_id", read_only=True,
                                            help_text="The ranking project the annotators rank in.")
    name = serializers.CharField(source="project.name", read_only=True)
    run = serializers.UUIDField(source="run.public_id", read_only=True, allow_null=True,
                                help_text="The generation run that created it.")
    items = serializers.SerializerMethodField()

    class Meta:
        model = BlindComparison
        fields = ["id", "project", "ranking_project", "name", "model_names", "seed", "run", "items", "created_at"]
        read_only_fields = fields

    def get_items(self, comparison: BlindComparison) -> int:
        return comparison.project.items.count()


class ArenaSerializer(serializers.Serializer):
    version = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    rankings = serializers.IntegerField()
    win_rate = serializers.DictField(child=serializers.FloatField(allow_null=True))
    win_matrix = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)))
    battle_matrix = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    bt = serializers.DictField(child=serializers.FloatField(), help_text="Bradley-Terry scores.")
    bt_ci = serializers.DictField(child=serializers.DictField(child=serializers.FloatField(), allow_null=True))
    bt_prior_used = serializers.BooleanField()


class BlindResultsSerializer(serializers.Serializer):
    overall = ArenaSerializer()
    groups = serializers.DictField(child=ArenaSerializer(), help_text="Per annotator group of at least min_group people.")
    min_group = serializers.IntegerField()
    annotators = serializers.IntegerField()


class ReportSerializer(serializers.Serializer):
    """The comparison report as data (evaluation.report.report_data)."""

    run = serializers.UUIDField()
    config_hash = serializers.CharField()
    config = serializers.JSONField()
    conditions = serializers.ListField(child=serializers.DictField(), help_text="name, path, lineage")
    welfare = serializers.ListField(child=serializers.DictField(),
                                    help_text="Per model: mean and worst group accuracy, ranked by each.")
    results = serializers.ListField(child=serializers.DictField(), help_text="One row per number, traced to its "
                                    "run, model lineage, benchmark version and config hash.")
