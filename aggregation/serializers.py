"""Input and output shapes of the aggregation API."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

import socialchoice
from socialchoice.pairs import STRATEGIES

from .models import Pool, Snapshot

POOL_FIELDS = [
    "name", "description", "kinds", "panels", "synthetic_models", "human_weight", "synthetic_weight",
    "rater_weights", "human_filters", "persona_filters", "min_rankings", "max_distance", "drop_cannot_judge",
    "raking_targets",
]


class PoolSerializer(serializers.ModelSerializer):
    """A pool's definition (input and output); `summary` is read-only: raters, Kish size, left out."""

    summary = serializers.SerializerMethodField()
    builtin = serializers.SerializerMethodField()

    class Meta:
        model = Pool
        fields = [*POOL_FIELDS, "summary", "builtin", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness of the name is checked by services.save_pool with the project in hand.
        validators: list[Any] = []

    def get_summary(self, pool: Pool) -> dict[str, Any] | None:
        resolved = getattr(pool, "resolved", None)
        return resolved.summary() if resolved is not None else None

    def get_builtin(self, pool: Pool) -> bool:
        return pool.pk is None


class AggregateQuerySerializer(serializers.Serializer):
    pool = serializers.CharField(default="all")
    rule = serializers.ChoiceField(choices=[], default=socialchoice.DEFAULT_RULE)
    params = serializers.JSONField(default=dict, binary=True, help_text="Rule parameters as a JSON object.")
    tie_policy = serializers.ChoiceField(choices=["keep", "random"], default="keep")
    seed = serializers.IntegerField(required=False, allow_null=True, default=None)
    offset = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rule"].choices = sorted(r["name"] for r in socialchoice.describe())

    def validate_params(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object of the rule's parameters, e.g. {\"reg\": 0.1}")
        return value


class CollectiveItemSerializer(serializers.Serializer):
    item = serializers.CharField()
    ranking = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    scores = serializers.DictField(child=serializers.FloatField())
    rankings = serializers.IntegerField()
    weight = serializers.FloatField()


class AggregateSerializer(serializers.Serializer):
    rule = serializers.CharField()
    pool = serializers.DictField()
    tie_policy = serializers.CharField()
    tie_seed = serializers.IntegerField(allow_null=True)
    count = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = CollectiveItemSerializer(many=True)


class SnapshotCreateSerializer(serializers.Serializer):
    pool = serializers.CharField(default="all")
    rule = serializers.ChoiceField(choices=[], default=socialchoice.DEFAULT_RULE)
    params = serializers.JSONField(default=dict)
    tie_policy = serializers.ChoiceField(choices=["keep", "random"], default="keep")
    tie_seed = serializers.IntegerField(default=0)
    pair_strategy = serializers.ChoiceField(choices=list(STRATEGIES), default="all")
    seed = serializers.IntegerField(default=0)
    split = serializers.DictField(child=serializers.FloatField(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rule"].choices = sorted(r["name"] for r in socialchoice.describe())


class SnapshotSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project.public_id", read_only=True)
    path = serializers.CharField(read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Snapshot
        fields = ["snapshot_id", "project", "pool_name", "rule", "pair_strategy", "seed", "source_hash", "path",
                  "counts", "created_at"]

    def get_counts(self, snap: Snapshot) -> dict[str, int]:
        return dict(snap.manifest.get("counts", {}))


class SnapshotDetailSerializer(SnapshotSerializer):
    manifest = serializers.JSONField(read_only=True)

    class Meta(SnapshotSerializer.Meta):
        fields = [*SnapshotSerializer.Meta.fields, "manifest"]
