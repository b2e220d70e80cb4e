"""Forms of the synthetic pages: panels (import, generate, twins) and starting runs."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django import forms
from django.db.models import QuerySet

from synthetic import endpoints, services
from synthetic.backends import loads_local_model
from synthetic.model_choices import ModelChoice, default_model_dir
from synthetic.models import PersonaPanel, SyntheticRun
from synthetic.services import MAX_DESCRIBED_PANEL_SIZE, MAX_PANEL_SIZE, MAX_PERMUTATIONS

ENGINE_CHOICES = [
    ("transformers", "transformers (local model, CPU or GPU)"),
    ("openai", "OpenAI-compatible HTTP server"),
    ("vllm", "vLLM (GPU machines)"),
]
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _read_upload(upload: Any, label: str) -> str:
    if upload.size > MAX_UPLOAD_BYTES:
        raise forms.ValidationError(f"{label} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        return upload.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise forms.ValidationError(f"{label} is not UTF-8 text (byte {exc.start})") from None


class PanelImportForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="An existing name of yours adds a new version.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    file = forms.FileField(required=False, help_text="JSONL: our format, the seed format or PersonaHub's.")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}), label="Or paste JSONL")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        data["jsonl"] = _read_upload(upload, upload.name) if upload else data.get("text", "")
        data["filename"] = upload.name if upload else ""
        if not data["jsonl"].strip():
            raise forms.ValidationError("Upload a JSONL file or paste its lines.")
        return data


class ModelChoiceSelect(forms.Select):
    """A select whose options carry their model's directory (`data-path`): static/js/model_choice.js
    copies it into the path field, so the page shows the path that will be used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paths: dict[str, str] = {}

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if value in self.paths:
            option["attrs"]["data-path"] = self.paths[value]
        return option


class BackendFields(forms.Form):
    """Engine, model and connection fields shared by both run forms and the panel generator.

    `model_choices` (synthetic.model_choices: the default model, the registry's models of this
    project and user) fill the `registered_model` select; a choice wins over the typed path and is
    validated as that path would be. `model_spec()` passes the choice's key on, so the service
    can record which model the run used."""

    needs_model = True

    engine = forms.ChoiceField(choices=ENGINE_CHOICES, initial="transformers")
    registered_model = forms.ChoiceField(
        required=False, label="Registered model", widget=ModelChoiceSelect,
        help_text="The default model or one from this project's model registry (transformers, vLLM); "
                  "when chosen, the path below is not used.",
    )
    model = forms.CharField(max_length=500, required=False, widget=forms.TextInput(attrs={"size": 80}),
                            help_text="Local model directory or .gguf under the models directory "
                                      "(transformers, vLLM), or the served model name (OpenAI).")
    # Where OpenAI-compatible requests go is the operator's choice (synthetic.endpoints): the
    # researcher picks an endpoint by name; a free URL only where the operator allows it.
    endpoint = forms.ChoiceField(required=False, label="Inference endpoint",
                                 help_text="OpenAI-compatible servers only: one of the endpoints the operator set up.")
    base_url = forms.URLField(required=False, assume_scheme="http", label="Base URL",
                              help_text="Instead of an endpoint: any OpenAI-compatible server (no API key is sent).")
    device = forms.CharField(initial="auto", max_length=20)
    batch_size = forms.IntegerField(min_value=1, max_value=4096, initial=8)

    def __init__(self, *args: Any, model_choices: Sequence[ModelChoice] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].initial = default_model_dir()
        self.fields["endpoint"].choices = [("", "(none)"), *endpoints.choices()]
        if not endpoints.free_urls_allowed():
            del self.fields["base_url"]
        self.model_choices = {c.key: c for c in model_choices}
        if self.model_choices:
            field = self.fields["registered_model"]
            field.choices = [("", "(the path typed below)"), *((c.key, c.label) for c in model_choices)]
            field.widget.paths = {c.key: c.path for c in model_choices}
            field.widget.attrs["data-model-path-for"] = self["model"].auto_id
        else:
            del self.fields["registered_model"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Old clients and crafted posts: say no rather than silently dropping the field.
        for name in sorted(endpoints.FORBIDDEN_OPTIONS & set(self.data)):
            self.add_error(None, f"A run cannot set {name}: API keys and addresses belong to the operator's "
                                 "inference endpoints; choose an endpoint by name.")
        if "base_url" not in self.fields and self.data.get("base_url"):
            self.add_error(None, "This server does not accept free base URLs; choose an inference endpoint.")
        self._apply_model_choice(data)
        if self.needs_model and not data.get("model") and "model" not in self.errors:
            self.add_error("model", "Give a model: its path (the served name for OpenAI), or a registered model above.")
        if data.get("model") and self.uses_backend(data):
            # The service checks again (a crafted request cannot skip the form); this names the field.
            try:
                services.local_model_path(data.get("engine", ""), data["model"])
            except services.SyntheticRunError as exc:
                self.add_error("model", str(exc))
        if data.get("engine") == "openai" and self.uses_backend(data) and not data.get("endpoint") \
                and not data.get("base_url"):
            self.add_error("endpoint", "Choose the endpoint that serves this model.")
        return data

    def _apply_model_choice(self, data: dict[str, Any]) -> None:
        """A chosen model's directory becomes data["model"] (the service checks it like a typed path)."""
        engine = data.get("engine", "")
        choice = self.model_choices.get(data.get("registered_model") or "")
        if choice is None or not self.uses_backend(data):
            data["registered_model"] = ""
        elif not loads_local_model(engine):
            self.add_error("registered_model", f"A registered model is a directory on this server: the {engine} "
                                               "engine cannot load it; use transformers or vLLM.")
        else:
            data["model"] = choice.path

    def uses_backend(self, data: dict[str, Any]) -> bool:
        return True

    def model_spec(self) -> dict[str, Any]:
        """{"engine", "model"} and, where one was chosen, "registered_model" (the choice's key)."""
        data = self.cleaned_data
        spec = {"engine": data["engine"], "model": data["model"]}
        if data.get("registered_model"):
            spec["registered_model"] = data["registered_model"]
        return spec

    def backend_options(self) -> dict[str, Any]:
        data = self.cleaned_data
        options: dict[str, Any] = {"device": data["device"], "batch_size": data["batch_size"]}
        if data.get("engine") == "openai":
            for name in ("endpoint", "base_url"):
                if data.get(name):
                    options[name] = data[name]
        return options


class PanelGenerateForm(BackendFields):
    """The generator; the engine fields are used only when a model writes the descriptions."""

    needs_model = False  # only with describe_with_model (clean says so)
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    size = forms.IntegerField(min_value=1, max_value=MAX_PANEL_SIZE, initial=20)
    seed = forms.IntegerField(initial=0)
    match_annotators = forms.BooleanField(
        required=False, initial=True,
        help_text="Quotas follow the consented demographics of this project's annotators.",
    )
    describe_with_model = forms.BooleanField(
        required=False, label="Write descriptions with a model",
        help_text=f"Richer descriptions from the engine and model below instead of the template; up to "
                  f"{MAX_DESCRIBED_PANEL_SIZE} personas, written while you wait.",
    )
    field_order = ["name", "description", "size", "seed", "match_annotators", "describe_with_model"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in BackendFields.base_fields.keys() & self.fields.keys():
            self.fields[name].required = False

    def uses_backend(self, data: dict[str, Any]) -> bool:
        return bool(data.get("describe_with_model"))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("describe_with_model"):
            for name in ("engine", "model"):
                if not data.get(name):
                    self.add_error(name, "Needed to write descriptions with a model.")
        data["device"] = data.get("device") or "auto"
        data["batch_size"] = data.get("batch_size") or 8
        return data

    def describe_with(self) -> dict[str, Any] | None:
        """The backend that writes the descriptions (`{"engine", "model", **options}`), or None."""
        data = self.cleaned_data
        if not data["describe_with_model"]:
            return None
        return {**self.model_spec(), **self.backend_options()}


class TwinPanelForm(forms.Form):
    name = forms.CharField(max_length=200, initial="Annotator twins")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SyntheticRunForm(BackendFields):
    name = forms.CharField(max_length=200, required=False)
    panel = forms.ModelChoiceField(queryset=PersonaPanel.objects.none())
    method = forms.ChoiceField(choices=SyntheticRun.Method.choices, initial=SyntheticRun.DEFAULT_METHOD)
    items = forms.ChoiceField(choices=SyntheticRun.Items.choices, initial=SyntheticRun.Items.ALL)
    item_ids = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Item external ids",
                               help_text="For a listed subset: separated by spaces, commas or new lines.")
    sample_size = forms.IntegerField(required=False, min_value=1, label="Random sample size")
    sample_seed = forms.IntegerField(initial=0)
    allow_ties = forms.BooleanField(required=False)
    reasoning = forms.BooleanField(required=False, help_text="Let the model explain before it ranks.")
    both_orders = forms.BooleanField(required=False, initial=True,
                                     help_text="Pairwise: ask each pair in both orders and average (cancels position bias).")
    permutations = forms.IntegerField(min_value=1, max_value=MAX_PERMUTATIONS, initial=3, required=False,
                                      help_text="Listwise: orders per judgment, combined by Borda (1 = no debiasing).")
    tie_margin = forms.FloatField(min_value=0, max_value=0.49, initial=0.05)
    score_margin = forms.FloatField(min_value=0, max_value=4, initial=0.1, required=False,
                                    help_text="Pointwise: ratings this close are tied (where ties are allowed).")
    label_mass_threshold = forms.FloatField(
        min_value=0, max_value=1, initial=0.5, required=False, label="Low-confidence below",
        help_text="Share of next-token probability on the allowed answers under which a judgment is low-confidence.",
    )
    temperature = forms.FloatField(min_value=0, max_value=5, initial=0.0)
    seed = forms.IntegerField(initial=0)

    def __init__(self, *args: Any, panels: QuerySet[PersonaPanel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["panel"].queryset = panels

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Left empty: the run settings' defaults (the form predates them; API-like posts omit them).
        for name in ("permutations", "score_margin", "label_mass_threshold"):
            if data.get(name) is None:
                data[name] = self.fields[name].initial
        return data

    def clean_item_ids(self) -> list[str]:
        return [x for x in re.split(r"[\s,]+", self.cleaned_data.get("item_ids", "")) if x]


class GenerationRunForm(BackendFields):
    name = forms.CharField(max_length=200, required=False)
    file = forms.FileField(required=False, label="Prompts (JSONL)", help_text='One {"id": ..., "prompt": ...} per line.')
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}), label="Or paste JSONL")
    k = forms.IntegerField(min_value=2, max_value=16, initial=4, label="Responses per prompt (K)")
    temperature = forms.FloatField(min_value=0, max_value=5, initial=0.8)
    top_p = forms.FloatField(min_value=0.01, max_value=1, initial=0.95)
    max_new_tokens = forms.IntegerField(min_value=1, max_value=8192, initial=256)
    seed = forms.IntegerField(initial=0)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        data["jsonl"] = _read_upload(upload, upload.name) if upload else data.get("text", "")
        if not data["jsonl"].strip():
            raise forms.ValidationError("Upload a JSONL file of prompts or paste its lines.")
        return data
