"""Forms of the annotator's pages: a ranking submission and the demographic profile."""
from __future__ import annotations

import json
from typing import Any

from django import forms

from annotation.models import AnnotatorProfile, Ranking

# A day: a larger value is a client clock gone wrong, not time spent on one item.
MAX_SECONDS = 24 * 60 * 60


class RankingForm(forms.Form):
    """What the ranking widget posts. `ranking` is the weak order as JSON, best tie group first."""

    ranking = forms.CharField(error_messages={"required": "rank the responses before submitting"})
    rationale = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    flags = forms.MultipleChoiceField(
        required=False, choices=Ranking.Flag.choices, widget=forms.CheckboxSelectMultiple
    )
    seconds = forms.FloatField(required=False, min_value=0, max_value=MAX_SECONDS)
    submission_id = forms.UUIDField(required=False)

    def clean_ranking(self) -> Any:
        raw = self.cleaned_data["ranking"]
        try:
            return json.loads(raw)
        except ValueError:
            raise forms.ValidationError(
                "ranking is not valid JSON; expected tie groups like [[\"r2\"], [\"r1\", \"r3\"]]"
            ) from None

    def first_error(self) -> tuple[str, str]:
        """(field, message) of the first problem, for the error line above the widget."""
        field, errors = next(iter(self.errors.items()))
        return field, f"{field}: {errors[0]}" if field != "__all__" else errors[0]


class ProfileForm(forms.ModelForm):
    """Optional demographics, each with its own consent box; a value without consent is dropped."""

    class Meta:
        model = AnnotatorProfile
        fields = list(AnnotatorProfile.FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        consented = set(self.instance.consented_fields or [])
        for name in AnnotatorProfile.FIELDS:
            self.fields[name].required = False
            self.fields[self.consent_name(name)] = forms.BooleanField(
                required=False,
                initial=name in consented,
                label=f"I consent to sharing my {self.fields[name].label.lower()}",
            )

    @staticmethod
    def consent_name(field: str) -> str:
        return f"consent_{field}"

    def field_pairs(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        """(value, consent) bound fields, in the order of AnnotatorProfile.FIELDS."""
        return [(self[name], self[self.consent_name(name)]) for name in AnnotatorProfile.FIELDS]

    def consented_fields(self) -> list[str]:
        return [f for f in AnnotatorProfile.FIELDS if self.cleaned_data.get(self.consent_name(f))]

    def dropped_fields(self) -> list[str]:
        """Fields given a value but no consent: not kept, and the annotator is told so."""
        chosen = set(self.consented_fields())
        return [f for f in AnnotatorProfile.FIELDS if f not in chosen and self.cleaned_data.get(f)]
