"""Persona panels, synthetic rating runs, their judgments, and candidate-generation runs.

A `PersonaPanel` is immutable once created: any change makes a new row with the same owner and
name and `version + 1`, so a run keeps pointing at exactly the personas it judged with.
`SyntheticRun` and `GenerationRun` hold the kind-specific part of a `jobs.Run` (one-to-one);
the run's status, progress and log live on the `jobs.Run`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PersonaPanel(models.Model):
    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported"
        GENERATED = "generated", "Generated (stratified)"
        TWINS = "twins", "Twins of annotators"

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="persona_panels"
    )
    # Twins and panels generated from a project's annotators belong to that project: its
    # researchers see them. Panels without a project are visible to their owner only.
    project = models.ForeignKey(
        "annotation.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="persona_panels",
    )
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.IMPORTED)
    # How the panel was made (generator spec, import file name), for the record.
    recipe = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name", "version"], name="unique_panel_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Persona(models.Model):
    panel = models.ForeignKey(PersonaPanel, on_delete=models.CASCADE, related_name="personas")
    persona_id = models.CharField(max_length=200)
    description = models.TextField()
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["panel_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["panel", "persona_id"], name="unique_persona_id")
        ]

    def __str__(self) -> str:
        return self.persona_id

    def public_attributes(self) -> dict[str, object]:
        """Attributes without `twin_of` (which annotator a twin mirrors), for exports and raters."""
        return {k: v for k, v in self.attributes.items() if k != "twin_of"}

    def as_contract(self) -> dict[str, object]:
        """The persona as in ARCHITECTURE.md's persona contract (and the synthetic rater)."""
        contract: dict[str, object] = {
            "id": self.persona_id,
            "description": self.description,
            "attributes": self.public_attributes(),
        }
        if "twin_of" in self.attributes:
            # A real annotator's consented demographics: exports treat it as that annotator's profile.
            contract["twin"] = True
        return contract


class SyntheticRun(models.Model):
    class Items(models.TextChoices):
        ALL = "all", "All items"
        LIST = "list", "Listed external ids"
        RANDOM = "random", "Random sample"

    class Method(models.TextChoices):
        LISTWISE = "listwise", "Listwise (constrained ranking)"
        PAIRWISE = "pairwise_logprob", "Pairwise (log-probabilities)"
        POINTWISE = "pointwise", "Pointwise (expected 1-5 rating)"

    # The product's default, by benchmarks/judge_quality.py (200 hh-rlhf pairs, SmolLM2-135M):
    # every method was at chance, and every method but pointwise was position-driven (the first
    # or the last shown response won 99.5-100% of the time); pointwise has no position to follow.
    DEFAULT_METHOD = Method.POINTWISE

    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="synthetic")
    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="synthetic_runs"
    )
    panel = models.ForeignKey(PersonaPanel, on_delete=models.PROTECT, related_name="runs")
    items = models.CharField(max_length=10, choices=Items.choices, default=Items.ALL)
    item_ids = models.JSONField(
        default=list, blank=True, help_text="External ids, for a listed subset."
    )
    sample_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="N, for a random sample."
    )
    sample_seed = models.IntegerField(default=0)
    engine = models.CharField(max_length=50)
    model = models.CharField(
        max_length=500, help_text="Local path (transformers, vllm) or served name (openai)."
    )
    backend_options = models.JSONField(
        default=dict, blank=True, help_text="BackendConfig fields besides engine and model."
    )
    method = models.CharField(max_length=20, choices=Method.choices, default=DEFAULT_METHOD)
    allow_ties = models.BooleanField(default=False)
    reasoning = models.BooleanField(default=False)
    both_orders = models.BooleanField(
        default=True, help_text="Pairwise: ask every pair in both orders."
    )
    tie_margin = models.FloatField(default=0.05)
    orders_per_item = models.PositiveIntegerField(null=True, blank=True)
    permutations = models.PositiveSmallIntegerField(
        default=3, help_text="Listwise: seeded orders per judgment, combined by Borda (1 = no debiasing)."
    )
    score_margin = models.FloatField(
        default=0.1, help_text="Pointwise: expected ratings this close are tied (where ties are allowed)."
    )
    label_mass_threshold = models.FloatField(
        default=0.5, help_text="Judgments with less next-token probability on the allowed labels are low-confidence."
    )
    sampling = models.JSONField(
        default=dict, blank=True, help_text="temperature, max_reasoning_tokens."
    )
    seed = models.IntegerField(default=0)
    prompt_version = models.CharField(max_length=50)
    # Counters, written by the run handler after every stored chunk.
    judgments_total = models.PositiveIntegerField(default=0)
    judgments_done = models.PositiveIntegerField(default=0)
    parse_failures = models.PositiveIntegerField(default=0)
    rankings_rejected = models.PositiveIntegerField(default=0)
    # Position bias over the run's successful judgments (synthetic.judging.bias).
    bias_decisions = models.PositiveIntegerField(default=0)
    first_shown_win_rate = models.FloatField(null=True, blank=True)
    expected_first_rate = models.FloatField(null=True, blank=True)
    bias_z = models.FloatField(null=True, blank=True)
    # synthetic.judging.signal.SignalReport as JSON, written when the run finishes.
    signal = models.JSONField(default=dict, blank=True)
    low_confidence = models.PositiveIntegerField(default=0)
    # Rankings of this run a researcher deleted from the project (the judgments are kept).
    rankings_deleted = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"synthetic run {self.run_id} ({self.engine}:{self.model})"

    @property
    def model_label(self) -> str:
        from pathlib import Path

        name = self.model if self.engine == "openai" else (Path(self.model).name or self.model)
        return f"{self.engine}:{name}"


class Judgment(models.Model):
    """One persona's judgment of one item in a run: what was shown, what came back, what it meant."""

    run = models.ForeignKey(SyntheticRun, on_delete=models.CASCADE, related_name="judgments")
    item = models.ForeignKey("annotation.Item", on_delete=models.CASCADE, related_name="judgments")
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="judgments")
    rater = models.ForeignKey(
        "annotation.Rater", on_delete=models.PROTECT, related_name="judgments"
    )
    prompt_version = models.CharField(max_length=50)
    model = models.CharField(max_length=300)
    shown_order = models.JSONField()
    raw_output = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    pairs = models.JSONField(
        default=list, blank=True, help_text="Pairwise: every pair as shown with P(first)."
    )
    parsed_ranking = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    permutations = models.JSONField(
        default=list, blank=True,
        help_text="Listwise: every permutation as shown, with its raw output and ranking.",
    )
    scores = models.JSONField(default=dict, blank=True, help_text="Pointwise: expected rating per response.")
    label_mass = models.FloatField(
        null=True, blank=True, help_text="Mean next-token probability on the allowed labels."
    )
    ranking = models.ForeignKey(
        "annotation.Ranking",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="judgments",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A resumed run skips the (item, persona) pairs it already stored.
            models.UniqueConstraint(fields=["run", "item", "persona"], name="unique_judgment"),
        ]

    def __str__(self) -> str:
        return f"{self.persona} on {self.item} ({'ok' if self.parsed_ranking else 'failed'})"

    @property
    def ok(self) -> bool:
        return self.parsed_ranking is not None


class GenerationRun(models.Model):
    """K candidate responses per prompt from one or more models, stored as new items."""

    run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE, related_name="generation")
    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="generation_runs"
    )
    prompts = models.JSONField(
        default=list, help_text="[{id, prompt}] to answer; each becomes an item."
    )
    models_config = models.JSONField(
        default=list, help_text="[{engine, model, ...BackendConfig fields}]."
    )
    k = models.PositiveSmallIntegerField(
        default=4, help_text="Responses per prompt, over all models."
    )
    sampling = models.JSONField(
        default=dict, blank=True, help_text="temperature, top_p, max_new_tokens."
    )
    seed = models.IntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"generation run {self.run_id} ({len(self.prompts)} prompts)"
