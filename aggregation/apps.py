from __future__ import annotations

from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation and snapshots"
    default_auto_field = "django.db.models.BigAutoField"
