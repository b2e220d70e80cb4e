"""Personas for synthetic raters (pure: no Django, no engine).

- Import: our JSONL (`{"id", "description", "attributes"}`), the seed project's format
  (`description, sex, age, nationality, social_class` at top level) and PersonaHub's
  (`{"persona": "..."}`), with line-numbered errors for bad rows (`parse_persona_jsonl`).
- Generate: a seeded, stratified panel over demographic attributes with editable value lists and
  optional quotas (`generate_panel`); quotas can be taken from annotators' profiles
  (`quotas_from_profiles`).
- Twins: a persona from one annotator's profile, consented fields only (`twin_persona`).
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from annotation.importing.storable import unstorable


@dataclass(frozen=True)
class Persona:
    """One synthetic rater's identity: the description is what the model is told."""

    id: str
    description: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "attributes": self.attributes}


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class PersonaImportError(ValueError):
    """Some rows could not be imported; `errors` lists every one with its line number."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def persona_id(description: str) -> str:
    """A stable id from the description, for formats that carry none."""
    return "p-" + hashlib.sha256(description.encode()).hexdigest()[:12]


def persona_from_row(row: Any) -> Persona:
    """One persona from a decoded JSON row in any accepted format; ValueError if unusable."""
    if not isinstance(row, dict):
        raise ValueError("row is not a JSON object")
    if "persona" in row and "description" not in row:
        return _from_text(row["persona"], row.get("id"), {})
    if "attributes" in row:
        if not isinstance(row["attributes"], dict):
            raise ValueError("'attributes' must be an object")
        return _from_text(row.get("description"), row.get("id"), row["attributes"])
    attributes = {k: v for k, v in row.items() if k not in ("id", "description")}
    return _from_text(row.get("description"), row.get("id"), attributes)


def _from_text(description: Any, pid: Any, attributes: dict[str, Any]) -> Persona:
    if not isinstance(description, str) or not description.strip():
        raise ValueError("missing or empty description (or 'persona' text)")
    if pid is not None and (not isinstance(pid, str | int) or not str(pid).strip()):
        raise ValueError("'id' must be a non-empty string")
    text = description.strip()
    return Persona(str(pid) if pid is not None else persona_id(text), text, dict(attributes))


def parse_persona_jsonl(text: str) -> list[Persona]:
    """Every persona in JSONL `text`; raise `PersonaImportError` listing all bad rows."""
    personas: list[Persona] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            problem = unstorable(row)
            if problem is not None:
                raise ValueError(f"field {problem[0]!r} {problem[1]}")
            persona = persona_from_row(row)
        except RecursionError:
            errors.append(RowError(line_no, "invalid JSON (nested too deeply)"))
            continue
        except json.JSONDecodeError as exc:
            errors.append(RowError(line_no, f"invalid JSON ({exc.msg})"))
            continue
        except ValueError as exc:
            errors.append(RowError(line_no, str(exc)))
            continue
        if persona.id in seen:
            errors.append(
                RowError(line_no, f"duplicate id {persona.id!r} (first on line {seen[persona.id]})")
            )
            continue
        seen[persona.id] = line_no
        personas.append(persona)
    if errors:
        raise PersonaImportError(errors)
    return personas


def personas_to_jsonl(personas: Iterable[Persona]) -> str:
    """Our JSONL format, one persona per line."""
    return "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in personas)


# ---- the stratified panel generator ---------------------------------------------------------

DEFAULT_VALUES: dict[str, list[str]] = {
    "sex": ["female", "male"],
    "age_band": ["18-29", "30-44", "45-59", "60-79"],
    "region": ["Africa", "Asia", "Europe", "Latin America", "North America", "Oceania"],
    "social_class": ["working class", "lower middle class", "upper middle class", "upper class"],
    "education": ["primary school", "secondary school", "vocational training", "university degree"],
    "political_leaning": ["left", "centre-left", "centre", "centre-right", "right"],
    "religion": ["Christian", "Muslim", "Hindu", "Buddhist", "Jewish", "not religious"],
}

DEFAULT_COUNTRIES: dict[str, list[str]] = {
    "Africa": ["Nigeria", "Kenya", "South Africa", "Egypt"],
    "Asia": ["India", "China", "Japan", "Indonesia", "Philippines"],
    "Europe": ["Germany", "France", "Poland", "Spain", "United Kingdom"],
    "Latin America": ["Brazil", "Mexico", "Argentina", "Colombia"],
    "North America": ["United States", "Canada"],
    "Oceania": ["Australia", "New Zealand"],
}

DEFAULT_TEMPLATE = (
    "You are a $age-year-old $sex from $country ($region). You are $social_class, your highest "
    "education is $education, you lean $political_leaning politically, and your religion is "
    "$religion."
)


@dataclass(frozen=True)
class PanelSpec:
    """What `generate_panel` draws.

    `values`: attribute -> allowed values (editable; `age_band` values are "lo-hi").
    `quotas`: attribute -> value -> share; marginals are matched exactly up to rounding
    (largest remainder). Attributes without quotas are spread evenly over their values.
    `countries`: region -> countries; each persona's country is drawn within its region.
    """

    size: int
    seed: int = 0
    values: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_VALUES))
    quotas: dict[str, dict[str, float]] = field(default_factory=dict)
    countries: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_COUNTRIES))
    template: str = DEFAULT_TEMPLATE
    id_prefix: str = "gen"


def allocate(size: int, shares: Mapping[str, float]) -> list[str]:
    """`size` values with counts proportional to `shares` (largest-remainder rounding)."""
    total = sum(shares.values())
    if total <= 0 or any(v < 0 for v in shares.values()):
        raise ValueError("quota shares must be non-negative and not all zero")
    exact = {value: size * share / total for value, share in shares.items()}
    counts = {value: int(x) for value, x in exact.items()}
    by_remainder = sorted(exact, key=lambda v: (counts[v] - exact[v], list(exact).index(v)))
    for value in by_remainder[: size - sum(counts.values())]:
        counts[value] += 1
    return [value for value, n in counts.items() for _ in range(n)]


def panel_problems(spec: PanelSpec) -> list[str]:
    """Reasons `spec` cannot be drawn, as sentences (empty when it can)."""
    problems = [] if spec.size >= 1 else ["The panel size must be at least 1."]
    for attribute, shares in spec.quotas.items():
        allowed = set(spec.values.get(attribute, []))
        unknown = sorted(set(shares) - allowed)
        if unknown:
            problems.append(f"Quota for {attribute!r} names values not in its list: {unknown}.")
    for attribute, values in spec.values.items():
        if not values:
            problems.append(f"Attribute {attribute!r} has no values.")
    for region in spec.values.get("region", []):
        if not spec.countries.get(region):
            problems.append(f"Region {region!r} has no countries.")
    return problems


def generate_panel(spec: PanelSpec) -> list[Persona]:
    """A seeded stratified panel: each attribute's marginal follows its quota (or is even),
    combinations are shuffled independently per attribute, descriptions come from the template."""
    problems = panel_problems(spec)
    if problems:
        raise ValueError(" ".join(problems))
    rng = random.Random(spec.seed)
    columns: dict[str, list[str]] = {}
    for attribute, values in spec.values.items():
        shares = spec.quotas.get(attribute) or dict.fromkeys(values, 1.0)
        column = allocate(spec.size, shares)
        rng.shuffle(column)
        columns[attribute] = column
    return [
        _panel_persona(spec, rng, {a: c[i] for a, c in columns.items()}, i)
        for i in range(spec.size)
    ]


def _panel_persona(
    spec: PanelSpec, rng: random.Random, drawn: dict[str, Any], index: int
) -> Persona:
    attributes = dict(drawn)
    if "age_band" in drawn:
        low, high = (int(x) for x in str(drawn["age_band"]).split("-"))
        attributes["age"] = rng.randint(low, high)
    if "region" in drawn:
        attributes["country"] = rng.choice(spec.countries[drawn["region"]])
    description = string.Template(spec.template).safe_substitute(attributes)
    return Persona(f"{spec.id_prefix}-{spec.seed}-{index:04d}", description, attributes)


def age_band(age: int, bands: Iterable[str]) -> str | None:
    """The band ("lo-hi") containing `age`, or None."""
    for band in bands:
        low, high = (int(x) for x in band.split("-"))
        if low <= age <= high:
            return band
    return None


def quotas_from_profiles(
    profiles: Iterable[Mapping[str, Any]], values: Mapping[str, list[str]] | None = None
) -> dict[str, dict[str, float]]:
    """Quotas matching the demographic distribution of (consenting) annotators' profiles.

    A profile's `age` counts towards its `age_band`; values outside the panel's lists are
    ignored, so the quotas always name known values.
    """
    values = values or DEFAULT_VALUES
    counters: dict[str, Counter[str]] = {attribute: Counter() for attribute in values}
    for profile in profiles:
        for attribute, allowed in values.items():
            value = profile.get(attribute)
            if attribute == "age_band" and value is None and isinstance(profile.get("age"), int):
                value = age_band(profile["age"], allowed)
            if value in allowed:
                counters[attribute][value] += 1
    return {
        attribute: {v: n / sum(c.values()) for v, n in c.items()}
        for attribute, c in counters.items()
        if c
    }


# ---- twins ------------------------------------------------------------------------------

TWIN_PHRASES: dict[str, str] = {
    "age": "$value years old",
    "sex": "$value",
    "gender": "$value",
    "nationality": "of $value nationality",
    "country": "living in $value",
    "social_class": "$value",
    "education": "with $value as highest education",
    "political_leaning": "leaning $value politically",
    "religion": "whose religion is $value",
    "occupation": "working as $value",
    "native_language": "whose native language is $value",
}


def twin_persona(
    rater_id: str, profile: Mapping[str, Any], consented_fields: Iterable[str], *, persona_id: str | None = None
) -> Persona:
    """A persona mirroring one annotator: only consented, non-empty fields are used.

    `persona_id` should not reveal who is mirrored (it travels with every synthetic ranking);
    the default `twin-<rater_id>` is for callers without such a concern. `twin_of` keeps the link.
    """
    allowed = [f for f in consented_fields if profile.get(f) not in (None, "")]
    attributes = {f: profile[f] for f in allowed}
    phrases = [
        string.Template(TWIN_PHRASES.get(f, f.replace("_", " ") + ": $value")).substitute(
            value=attributes[f]
        )
        for f in allowed
    ]
    description = "You are a person " + ", ".join(phrases) + "." if phrases else "You are a person."
    return Persona(persona_id or f"twin-{rater_id}", description, {**attributes, "twin_of": rater_id})
