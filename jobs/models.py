"""Runs, and the two tables of the database-backed channel layer.

Design choice: ONE concrete `Run` table for every kind of background work (synthetic ratings,
candidate generation, training, evaluation). The kind-specific part of a run lives in the owning
app's own model, linked with `OneToOneField("jobs.Run")` (e.g. `synthetic.SyntheticRun.run`), and
in `Run.config` (JSON, validated by the kind's handler before queueing). One table means one
worker loop, one reaper, one run list, one live page and one permission rule for all kinds, and
no joins across per-kind tables to answer "what is running?". `kind` is a free string rather
than a choices field because apps register kinds (`jobs.registry`); `Run.Kind` names the known ones.

The log is kept twice: the whole log in a file under ARTIFACTS_DIR/runs/<public_id>/run.log, and
its tail (the last `LOG_TAIL_CHARS` characters) in `Run.log`, which is what the page shows and
what `error` quotes on failure.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

LOG_TAIL_CHARS = 20_000


class Run(models.Model):
    class Kind(models.TextChoices):
        SYNTHETIC = "synthetic", "Synthetic ratings"
        GENERATION = "generation", "Candidate generation"
        TRAINING = "training", "Training"
        EVALUATION = "evaluation", "Evaluation"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        INTERRUPTED = "interrupted", "Interrupted"

    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    # States a researcher may resume from: the work stopped before it was done.
    RESUMABLE = (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=50)
    name = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs")
    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    config = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=50, default="default")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    # progress_done when the current attempt started: the rate counts this attempt's work only.
    progress_base = models.PositiveBigIntegerField(default=0)
    log = models.TextField(blank=True, help_text="Tail of the run's log.")
    error = models.TextField(blank=True, help_text="Why the run failed, with the log tail.")
    artifacts = models.JSONField(default=list, blank=True, help_text="Paths the run produced.")
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True, help_text="Tasks API result id of the last attempt.")
    worker_id = models.CharField(max_length=200, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="Start of the current attempt.")
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # run list: a researcher's runs, newest first.
            models.Index(fields=["owner", "-created_at"], name="run_owner_created"),
            # reap_stale_runs: running runs whose heartbeat is old.
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.public_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def can_resume(self) -> bool:
        return self.status in self.RESUMABLE

    @property
    def percent(self) -> float | None:
        if not self.progress_total:
            return None
        return min(100.0, 100.0 * self.progress_done / self.progress_total)

    @property
    def rate(self) -> float | None:
        """Units per second during the current attempt, or None before there is one."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at and self.finished_at > self.started_at else timezone.now()
        seconds = (end - self.started_at).total_seconds()
        done = self.progress_done - self.progress_base
        if seconds <= 0 or done <= 0:
            return None
        return done / seconds

    @property
    def eta(self) -> timedelta | None:
        rate = self.rate
        if rate is None or self.progress_total is None or self.status != self.Status.RUNNING:
            return None
        return timedelta(seconds=round(max(0, self.progress_total - self.progress_done) / rate))

    @property
    def error_cause(self) -> str:
        """The first line of `error`: why the run failed, in one readable line."""
        return self.error.split("\n", 1)[0] if self.error else ""

    @property
    def error_details(self) -> str:
        """`error` without its first line (the log tail up to the failure)."""
        return self.error.split("\n", 1)[1].strip("\n") if "\n" in self.error else ""

    @property
    def log_path(self) -> str:
        return str(settings.ARTIFACTS_DIR / "runs" / str(self.public_id) / "run.log")


class ChannelMessage(models.Model):
    """A message waiting in a channel of `jobs.channel_layer.DatabaseChannelLayer`."""

    channel = models.CharField(max_length=100)
    message = models.BinaryField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            # receive(): the oldest message of one channel; capacity: messages per channel.
            models.Index(fields=["channel", "id"], name="channelmessage_channel"),
            # cleanup: expired messages.
            models.Index(fields=["expires_at"], name="channelmessage_expiry"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} to {self.channel}"


class GroupMembership(models.Model):
    """A channel in a group of the database channel layer, until `expires_at`."""

    group = models.CharField(max_length=100)
    channel = models.CharField(max_length=100)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "channel"], name="unique_group_channel")]
        indexes = [
            # cleanup: expired memberships (group_send filters the group through the unique index).
            models.Index(fields=["expires_at"], name="groupmembership_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} in {self.group}"
