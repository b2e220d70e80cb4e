"""Projects, items, responses, raters, assignments and rankings.

A `Rater` is one model for humans (a user) and synthetic raters (a persona judged by a model), so
aggregation, agreement and export treat both alike. A `Ranking` stores a weak order in the contract
of ARCHITECTURE.md: a list of tie groups, best first, of response ids.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

MIN_RESPONSES = 2
MAX_RESPONSES = 16


class Project(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    class Rationale(models.TextChoices):
        OFF = "off", "Off"
        OPTIONAL = "optional", "Optional"
        REQUIRED = "required", "Required"

    class DemographicsExport(models.TextChoices):
        NONE = "none", "Never exported"
        AGGREGATE = "aggregate", "Only in aggregate"
        INDIVIDUAL = "individual", "Per ranking (consented fields only)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects")
    guidelines = models.TextField(blank=True, help_text="Markdown, shown to annotators before they rank.")
    overlap_target = models.PositiveIntegerField(default=3, help_text="Human rankings wanted per item.")
    # Synthetic raters have a target of their own, so a synthetic run never uses up the humans' share.
    synthetic_target = models.PositiveIntegerField(
        default=0, help_text="Synthetic rankings wanted per item; 0 means no limit (every persona of a run ranks it)."
    )
    allow_ties = models.BooleanField(default=True)
    allow_partial = models.BooleanField(default=False, help_text="Annotators may leave responses unranked.")
    rationale = models.CharField(max_length=10, choices=Rationale.choices, default=Rationale.OPTIONAL)
    consent_text = models.TextField(blank=True, help_text="Shown when annotators are asked for demographic fields.")
    demographics_export = models.CharField(
        max_length=12, choices=DemographicsExport.choices, default=DemographicsExport.AGGREGATE
    )
    lease_seconds = models.PositiveIntegerField(default=30 * 60, help_text="How long an assignment is held.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        RESEARCHER = "researcher", "Researcher"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Item(models.Model):
    """One prompt with its K responses. `context` holds earlier chat turns; `prompt` the last user turn."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200, help_text="Stable id from the import, unique per project.")
    prompt = models.TextField()
    context = models.JSONField(default=list, blank=True, help_text="Earlier chat messages [{role, content}].")
    metadata = models.JSONField(default=dict, blank=True)
    # Denormalised counts of current rankings, kept by services: human ones (against the project's
    # overlap_target; the assignment query orders by it) and synthetic ones (against synthetic_target).
    ranking_count = models.PositiveIntegerField(default=0, help_text="Current human rankings.")
    synthetic_count = models.PositiveIntegerField(default=0, help_text="Current synthetic rankings.")
    # Denormalised count of `leased` assignments (live or run out but not yet closed), kept by the
    # annotation loop's statements (annotation.loop_sql) under the item's row lock.
    lease_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "external_id"], name="unique_item_external_id")]
        indexes = [
            # next_assignment's row-by-row walk (loop_sql.lapsed_candidate): below target, fewest rankings first.
            models.Index(fields=["project", "ranking_count", "id"], name="item_next_assignment"),
            # next_assignment (loop_sql.next_candidate): rankings plus leases below target, fewest first.
            models.Index(F("project"), F("ranking_count") + F("lease_count"), F("id"), name="item_next_open"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.external_id}"

    @property
    def messages(self) -> list[dict[str, str]]:
        return [*self.context, {"role": "user", "content": self.prompt}]


class Response(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="responses")
    response_id = models.CharField(max_length=64)
    text = models.TextField()
    source = models.CharField(max_length=200, blank=True, help_text="Model or dataset label.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["item_id", "position"]
        constraints = [models.UniqueConstraint(fields=["item", "response_id"], name="unique_response_id")]

    def __str__(self) -> str:
        return f"{self.item} {self.response_id}"


class Rater(models.Model):
    """Whoever produced a ranking: a human user, or a persona simulated by a model."""

    class Kind(models.TextChoices):
        HUMAN = "human", "Human"
        SYNTHETIC = "synthetic", "Synthetic"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="rater"
    )
    # Synthetic raters: the persona as judged ({id, description, attributes}) and "backend:model".
    persona = models.JSONField(null=True, blank=True)
    model = models.CharField(max_length=300, blank=True)
    # "user:<pk>" or "persona:<persona id>@<model>": one rater per person or persona-model pair.
    key = models.CharField(max_length=500, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="human", user__isnull=False) | Q(kind="synthetic", user__isnull=True)),
                name="rater_kind_matches_user",
            )
        ]

    def __str__(self) -> str:
        return self.key


class AnnotatorProfile(models.Model):
    """Optional demographics. A value is kept only for a field the annotator consented to share."""

    FIELDS = (
        "age_band",
        "gender",
        "country",
        "first_language",
        "education",
        "social_class",
        "political_leaning",
        "religion",
    )

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    age_band = models.CharField(max_length=20, blank=True)
    gender = models.CharField(max_length=50, blank=True)
    country = models.CharField(max_length=100, blank=True)
    first_language = models.CharField(max_length=100, blank=True)
    education = models.CharField(max_length=100, blank=True)
    social_class = models.CharField(max_length=100, blank=True)
    political_leaning = models.CharField(max_length=100, blank=True)
    religion = models.CharField(max_length=100, blank=True)
    consented_fields = models.JSONField(default=list, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    def consented_values(self) -> dict[str, str]:
        """The fields the annotator agreed to share, with a value."""
        return {f: getattr(self, f) for f in self.FIELDS if f in self.consented_fields and getattr(self, f)}

    def drop_unconsented(self) -> None:
        for field in self.FIELDS:
            if field not in self.consented_fields:
                setattr(self, field, "")


class Assignment(models.Model):
    """An item leased to a rater. A lease counts against the overlap target until it expires."""

    class Status(models.TextChoices):
        LEASED = "leased", "Leased"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        # A skip the annotator took back: the item is in their pool again (kept, not deleted, as a record).
        REOPENED = "reopened", "Skipped, then reopened"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    shown_order = models.JSONField(help_text="Response ids in the order they were shown.")
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A rater holds at most one live lease per item.
            models.UniqueConstraint(
                fields=["item", "rater"], condition=Q(status="leased"), name="one_live_lease_per_item_rater"
            )
        ]
        indexes = [
            # next_assignment: the rater's own live lease; counting live leases per item.
            models.Index(fields=["rater", "status"], name="assignment_rater_status"),
            models.Index(fields=["item", "status", "expires_at"], name="assignment_item_live"),
            # next_assignment: "has this rater been assigned this item" per candidate row.
            models.Index(fields=["item", "rater"], name="assignment_item_rater"),
        ]

    def __str__(self) -> str:
        return f"{self.item} -> {self.rater} ({self.status})"

    @classmethod
    def lease_end(cls, project: Project) -> datetime:
        return timezone.now() + timedelta(seconds=project.lease_seconds)

    @property
    def is_live(self) -> bool:
        return self.status == self.Status.LEASED and self.expires_at > timezone.now()


class Ranking(models.Model):
    """A rater's weak order over an item's responses. Edits add a version; one is current."""

    class Flag(models.TextChoices):
        ALL_BAD = "all_bad", "All responses are bad"
        HARMFUL = "harmful", "Harmful content"
        CANNOT_JUDGE = "cannot_judge", "Cannot judge"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="rankings")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="rankings")
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="rankings")
    order = models.JSONField(help_text="Weak order: tie groups of response ids, best first.")
    shown_order = models.JSONField(help_text="Response ids in the order they were shown.")
    is_partial = models.BooleanField(default=False)
    rationale = models.TextField(blank=True)
    flags = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    # Client-generated id of the submit request; a retried submit with the same id is a no-op.
    submission_id = models.UUIDField(default=uuid.uuid4, unique=True)
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "rater"], condition=Q(is_current=True), name="one_current_ranking_per_item_rater"
            )
        ]
        indexes = [
            # Exports and aggregation: current rankings of a project's items, by rater kind and date.
            models.Index(fields=["item", "is_current"], name="ranking_item_current"),
            models.Index(fields=["rater", "is_current"], name="ranking_rater_current"),
            # next_assignment: "has this rater ranked this item" per candidate row.
            models.Index(fields=["item", "rater"], name="ranking_item_rater"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} on {self.item} v{self.version}"
