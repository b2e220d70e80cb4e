"""Rater pools and snapshots.

A `Pool` is a saved, named definition of whose rankings count in a project (rater kinds, weights,
filters, quality thresholds, raking targets); `services.save_pool` validates it against the
project's raters before it is stored, so a stored pool always resolves at the time it is saved.
The built-in pool `all` (every rater, equal weights) is not a row: `pools.ALL` builds it.

A `Snapshot` is the record of a frozen preference dataset written under
`settings.SNAPSHOTS_DIR / <snapshot_id>`; its files never change after they are written,
and deleting the row (through `snapshots.delete_snapshot`) is the only way to remove them.
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models

from annotation.models import Project


class Pool(models.Model):
    class Kinds(models.TextChoices):
        BOTH = "both", "Humans and synthetic raters"
        HUMANS = "humans", "Humans only"
        SYNTHETIC = "synthetic", "Synthetic raters only"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pools")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kinds = models.CharField(max_length=10, choices=Kinds.choices, default=Kinds.BOTH)
    # Synthetic raters: keep only these persona panels (ids) and models ("backend:model"); empty = all.
    panels = models.JSONField(default=list, blank=True)
    synthetic_models = models.JSONField(default=list, blank=True)
    human_weight = models.FloatField(default=1.0)
    synthetic_weight = models.FloatField(default=1.0)
    # Per-rater weight multipliers by rater key ("user:<pk>", "persona:<id>@<model>").
    rater_weights = models.JSONField(default=dict, blank=True)
    # {field: [allowed values]} on consented human demographics / on persona attributes.
    human_filters = models.JSONField(default=dict, blank=True)
    persona_filters = models.JSONField(default=dict, blank=True)
    min_rankings = models.PositiveIntegerField(default=0, help_text="Leave out raters with fewer rankings.")
    max_distance = models.FloatField(
        null=True, blank=True,
        help_text="Leave out raters whose mean Kendall distance to the collective (0-1) exceeds this.",
    )
    drop_cannot_judge = models.BooleanField(default=True, help_text='Leave out rankings flagged "cannot judge".')
    # Raking targets for human raters: {field: {value: share}}, each field's shares summing to 1.
    raking_targets = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_pool_name")]

    def __str__(self) -> str:
        return self.name


class Snapshot(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    # First 16 hex digits of sha256(canonical JSON of every input + source rankings' hash).
    snapshot_id = models.CharField(max_length=16, unique=True)
    pool_name = models.CharField(max_length=100)
    rule = models.CharField(max_length=50)
    pair_strategy = models.CharField(max_length=20)
    seed = models.IntegerField(default=0)
    source_hash = models.CharField(max_length=64)
    # The manifest as written to manifest.json (inputs, counts, split, code version).
    manifest = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.snapshot_id

    @property
    def path(self) -> Path:
        return snapshot_root() / self.snapshot_id


def snapshot_root() -> Path:
    """Where snapshots live (settings.SNAPSHOTS_DIR, `RLCHF_SNAPSHOTS_DIR`): training and
    evaluation read them from here."""
    return Path(settings.SNAPSHOTS_DIR)


class RankingCode(models.Model):
    """A ranking's tie groups as one short string, filled by `ballots.load_ballots` on first use.

    One character per response of the item in position order: the tie group as a hex digit (0 =
    best), "-" if unranked. A ranking row never changes (a revision stores a new row), so a code
    stays valid; its length guards against responses added to the item later (then it is re-encoded).
    Reading these codes is what keeps a whole project's aggregation fast: the weak orders' JSON is
    expanded by the database only once per ranking.
    """

    ranking = models.OneToOneField("annotation.Ranking", primary_key=True, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=16)

    def __str__(self) -> str:
        return f"{self.ranking_id}: {self.code}"
