"""Forms of the aggregation pages. Filters, weights and targets are typed as short text lines so a
researcher can paste them; each bad line is reported with its number."""
from __future__ import annotations

from typing import Any

from django import forms

import socialchoice
from socialchoice.pairs import STRATEGIES

from .models import Pool
from .pools import PoolError, parse_targets_csv


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def parse_filters(text: str, field: str) -> dict[str, list[str]]:
    """``field=value1,value2`` per line."""
    out: dict[str, list[str]] = {}
    for n, line in _lines(text):
        key, sep, values = line.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not items:
            raise forms.ValidationError(f"line {n}: write field=value1,value2 (got {line!r})")
        out[key.strip()] = items
    return out


def parse_weights(text: str) -> dict[str, float]:
    """``rater key=weight`` per line."""
    out: dict[str, float] = {}
    for n, line in _lines(text):
        key, sep, value = line.rpartition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"line {n}: write rater-key=weight (got {line!r})")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise forms.ValidationError(f"line {n}: {value.strip()!r} is not a number") from None
    return out


def filters_text(filters: dict[str, list[str]]) -> str:
    return "\n".join(f"{k}={','.join(map(str, v))}" for k, v in filters.items())


def targets_text(targets: dict[str, dict[str, float]]) -> str:
    if not targets:
        return ""
    rows = [f"{f},{v},{s:g}" for f, cells in targets.items() for v, s in cells.items()]
    return "\n".join(["field,value,share", *rows])


class PoolForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kinds = forms.ChoiceField(choices=Pool.Kinds.choices, initial=Pool.Kinds.BOTH)
    panels = forms.TypedMultipleChoiceField(choices=[], coerce=int, required=False,
                                            help_text="Synthetic raters from these persona panels only (none: all).")
    synthetic_models = forms.MultipleChoiceField(choices=[], required=False,
                                                 help_text="Synthetic raters of these models only (none: all).")
    human_weight = forms.FloatField(initial=1.0)
    synthetic_weight = forms.FloatField(initial=1.0)
    rater_weights = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                    help_text="One rater-key=weight a line (multiplies the kind's weight).")
    human_filters = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                    help_text="Consented demographics, one field=value1,value2 a line, "
                                              "e.g. age_band=18-29 and country=DE.")
    persona_filters = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                      help_text="Persona attributes, e.g. political_leaning=left.")
    min_rankings = forms.IntegerField(min_value=0, initial=0, help_text="Leave out raters with fewer rankings.")
    max_distance = forms.FloatField(required=False, min_value=0, max_value=1,
                                    help_text="Leave out raters whose mean Kendall distance to the collective "
                                              "(0 = same, 1 = reversed) exceeds this.")
    drop_cannot_judge = forms.BooleanField(required=False, initial=True,
                                           label='Leave out rankings flagged "cannot judge"')
    raking_targets = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}),
                                     help_text="CSV with the header field,value,share; each field's shares sum to 1.")
    raking_file = forms.FileField(required=False, help_text="Or upload the targets as a CSV file.")

    def __init__(self, *args: Any, panels: list[tuple[int, str]], models: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["panels"].choices = panels
        self.fields["synthetic_models"].choices = [(m, m) for m in models]

    def clean_rater_weights(self) -> dict[str, float]:
        return parse_weights(self.cleaned_data["rater_weights"])

    def clean_human_filters(self) -> dict[str, list[str]]:
        return parse_filters(self.cleaned_data["human_filters"], "human_filters")

    def clean_persona_filters(self) -> dict[str, list[str]]:
        return parse_filters(self.cleaned_data["persona_filters"], "persona_filters")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("raking_file")
        text = upload.read().decode("utf-8-sig", errors="replace") if upload else data.get("raking_targets", "")
        try:
            data["raking_targets"] = parse_targets_csv(text) if text.strip() else {}
        except PoolError as exc:
            self.add_error("raking_file" if upload else "raking_targets", exc.message)
        data.pop("raking_file", None)
        return data

    @staticmethod
    def initial_from(pool: Pool) -> dict[str, Any]:
        return {
            "name": pool.name, "description": pool.description, "kinds": pool.kinds, "panels": pool.panels,
            "synthetic_models": pool.synthetic_models, "human_weight": pool.human_weight,
            "synthetic_weight": pool.synthetic_weight,
            "rater_weights": "\n".join(f"{k}={v:g}" for k, v in pool.rater_weights.items()),
            "human_filters": filters_text(pool.human_filters), "persona_filters": filters_text(pool.persona_filters),
            "min_rankings": pool.min_rankings, "max_distance": pool.max_distance,
            "drop_cannot_judge": pool.drop_cannot_judge, "raking_targets": targets_text(pool.raking_targets),
        }


def rule_choices() -> list[tuple[str, str]]:
    return [(r["name"], r["title"]) for r in socialchoice.describe()]


class SnapshotForm(forms.Form):
    pool = forms.ChoiceField(choices=[])
    rule = forms.ChoiceField(choices=[], initial=socialchoice.DEFAULT_RULE)
    pair_strategy = forms.ChoiceField(choices=[(s, s.replace("_", " ")) for s in STRATEGIES], initial="all")
    seed = forms.IntegerField(initial=0, help_text="Seed of the train / validation / test split.")
    train = forms.FloatField(initial=0.8, min_value=0, max_value=1)
    validation = forms.FloatField(initial=0.1, min_value=0, max_value=1)
    test = forms.FloatField(initial=0.1, min_value=0, max_value=1)

    def __init__(self, *args: Any, pools: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pool"].choices = [(p, p) for p in pools]
        self.fields["rule"].choices = rule_choices()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        parts = [data.get(k) for k in ("train", "validation", "test")]
        if all(p is not None for p in parts) and abs(sum(parts) - 1) > 1e-9:  # type: ignore[arg-type]
            raise forms.ValidationError(f"train + validation + test must be 1, not {sum(parts):g}")  # type: ignore[arg-type]
        return data


class CollectiveForm(forms.Form):
    pool = forms.ChoiceField(choices=[], required=False)
    rule = forms.ChoiceField(choices=[], required=False)

    def __init__(self, *args: Any, pools: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pool"].choices = [(p, p) for p in pools]
        self.fields["rule"].choices = rule_choices()
