"""Models of the training app: the model registry, training runs and experiments.

A `RegisteredModel` is a directory of HF files (model, tokenizer, config) with its lineage
(ARCHITECTURE.md, "Model lineage"): base models are registered from a local directory or a hub
id (fetched by a worker, never by the web process); trained models are registered by the run
that produced them. A `TrainingRun` is the training-specific half of a `jobs.Run`. An
`Experiment` groups matched conditions that differ only in their feedback.

Snapshots are referred to by their id string (16 hex digits; the directory
`settings.VAR_DIR / "snapshots" / <id>`), so training does not depend on how they are stored.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class RegisteredModel(models.Model):
    class Kind(models.TextChoices):
        BASE = "base", "Base model"
        TRAINED = "trained", "Trained model"

    class Status(models.TextChoices):
        READY = "ready", "Ready"
        FETCHING = "fetching", "Fetching"
        FAILED = "failed", "Fetch failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_models")
    project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="registered_models"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    path = models.CharField(max_length=1000, blank=True, help_text="The model's HF directory on the worker nodes.")
    hub_id = models.CharField(max_length=200, blank=True, help_text="Hub id a base model was fetched from.")
    lineage = models.JSONField(default=dict, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    training_run = models.OneToOneField(
        "training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="result_model"
    )
    fetch_run = models.OneToOneField(
        "jobs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="fetched_model"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # model list of a project, newest first.
            models.Index(fields=["project", "-created_at"], name="regmodel_project_created"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display().lower()})"

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY and bool(self.path)


class TrainingRun(models.Model):
    class Recipe(models.TextChoices):
        SFT = "sft", "SFT on collective winners"
        DPO = "dpo", "DPO"
        REWARD = "reward", "Reward model"
        RL = "rl", "Online RL (GRPO / RLOO)"

    class Launcher(models.TextChoices):
        LOCAL = "local", "accelerate launch on the worker"
        SLURM = "slurm", "Slurm (submitit)"

    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="training")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_runs")
    recipe = models.CharField(max_length=10, choices=Recipe.choices)
    objective = models.CharField(max_length=40, default="sigmoid")
    base_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    ref_model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="DPO reference model (the base model when empty).",
    )
    reward_models = models.ManyToManyField(RegisteredModel, blank=True, related_name="+")
    snapshot_id = models.CharField(max_length=64)
    dataset = models.CharField(max_length=40, default="pairs", help_text="Snapshot file the recipe reads.")
    launcher = models.CharField(max_length=10, choices=Launcher.choices, default=Launcher.LOCAL)
    output_dir = models.CharField(max_length=1000)
    config_hash = models.CharField(max_length=64)
    slurm_job_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_recipe_display()} on {self.snapshot_id} ({self.run.status})"


class Experiment(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="experiments")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    base_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="+")
    recipe = models.CharField(max_length=10, choices=TrainingRun.Recipe.choices, default=TrainingRun.Recipe.DPO)
    hyperparameters = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=42)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ExperimentCondition(models.Model):
    class Feedback(models.TextChoices):
        BASE = "base", "Base (untrained)"
        RLHF_BASELINE = "rlhf_baseline", "RLHF baseline (every rater's own pairs)"
        RLCHF_HUMANS = "rlchf_humans", "RLCHF on humans"
        RLCHF_SYNTHETIC = "rlchf_synthetic", "RLCHF on synthetic raters"
        RLCHF_BOTH = "rlchf_both", "RLCHF on both"
        RULE = "rule", "RLCHF with another rule"
        OBJECTIVE = "objective", "RLCHF with another objective"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="conditions")
    name = models.CharField(max_length=100)
    feedback = models.CharField(max_length=20, choices=Feedback.choices)
    snapshot_id = models.CharField(max_length=64, blank=True)
    objective = models.CharField(max_length=40, blank=True)
    training_run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="condition"
    )
    model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="conditions",
        help_text="The condition's resulting model (the base model itself for the base condition).",
    )

    class Meta:
        ordering = ["experiment", "id"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="unique_condition_name")]

    def __str__(self) -> str:
        return f"{self.experiment}: {self.name}"
