"""Evaluation runs, their stored scores (chunk by chunk, for resuming) and their results.

An evaluation run is a `jobs.Run` of kind "evaluation" (its config is the whole definition:
models x benchmarks) plus an `EvaluationRun` row that holds the project it belongs to (whose
researchers may see it) and the hash of the config. Every `EvaluationResult` row is one number:
a metric of one model on one benchmark in one scope (overall, a category, a demographic group,
a collective, a subset), with its interval where the scorer gives one, the benchmark's version,
the run's config hash and the scorer (what turned the model into scores), so a number can always
be traced to what produced it.
"""
from __future__ import annotations

from django.db import models


class EvaluationRun(models.Model):
    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="evaluation")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="evaluation_runs")
    experiment = models.ForeignKey(
        "training.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluations",
        help_text="The experiment whose conditions are the run's models, if any.",
    )
    config_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"evaluation {self.run.public_id}"


class ScoreChunk(models.Model):
    """The engine's scores of one chunk of one benchmark's requests for one model (or its
    reference model): what a resumed run does not compute again."""

    evaluation = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="chunks")
    model_name = models.CharField(max_length=200)
    benchmark = models.CharField(max_length=100)
    role = models.CharField(max_length=20, default="policy")
    index = models.PositiveIntegerField()
    scores = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "model_name", "benchmark", "role", "index"], name="unique_score_chunk"),
        ]

    def __str__(self) -> str:
        return f"{self.model_name}/{self.benchmark}/{self.role} chunk {self.index}"


class EvaluationResult(models.Model):
    class Scope(models.TextChoices):
        OVERALL = "overall", "Overall"
        CATEGORY = "category", "Category"
        GROUP = "group", "Demographic group"
        COLLECTIVE = "collective", "Collective"
        SUBSET = "subset", "Subset"

    class Scorer(models.TextChoices):
        LOGLIK = "loglik", "Log-likelihood"
        DPO = "dpo", "DPO implicit reward"
        REWARD = "reward", "Reward model"

    evaluation = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    model_name = models.CharField(max_length=200)
    model_path = models.CharField(max_length=1000)
    benchmark = models.CharField(max_length=100)
    benchmark_version = models.CharField(max_length=50)
    config_hash = models.CharField(max_length=64)
    metric = models.CharField(max_length=100)
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.OVERALL)
    scope_value = models.CharField(max_length=200, blank=True)
    value = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    n = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=20, default="rlchf", help_text="rlchf, or lm-eval for the bridge's numbers.")
    scorer = models.CharField(max_length=20, blank=True, choices=Scorer.choices, help_text=(
        "What the model's scores were: log-likelihoods, the DPO implicit reward against a reference, or a reward "
        "model's rewards; empty for lm-eval's numbers."))

    class Meta:
        ordering = ["model_name", "benchmark", "metric", "scope", "scope_value"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "model_name", "benchmark", "metric", "scope", "scope_value", "source"],
                name="unique_evaluation_result",
            ),
        ]

    def __str__(self) -> str:
        where = f" {self.scope}={self.scope_value}" if self.scope_value else ""
        return f"{self.model_name} {self.benchmark}.{self.metric}{where} = {self.value}"


class BlindComparison(models.Model):
    """A ranking project of anonymised model generations. Which model wrote which response is
    kept here only (`assignment`), never in the project's items or responses, which annotators see."""

    project = models.OneToOneField("annotation.Project", on_delete=models.CASCADE, related_name="blind_comparison")
    source_project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="blind_comparisons")
    run = models.ForeignKey("jobs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_names = models.JSONField(help_text="Names of the compared models.")
    assignment = models.JSONField(help_text="{item external id: {response id: model name}}.")
    seed = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"blind comparison {self.project}"
