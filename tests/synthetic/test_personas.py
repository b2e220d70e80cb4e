from __future__ import annotations

import json
from collections import Counter

import pytest

from synthetic.personas import (
    PanelSpec,
    Persona,
    PersonaImportError,
    allocate,
    generate_panel,
    panel_problems,
    parse_persona_jsonl,
    persona_id,
    personas_to_jsonl,
    quotas_from_profiles,
    twin_persona,
)

OURS = {
    "id": "p1",
    "description": "A nurse from Ghana.",
    "attributes": {"sex": "female", "age": 41},
}
SEED = {
    "description": "A farmer.",
    "sex": "male",
    "age": 63,
    "nationality": "Indian",
    "social_class": "working",
}
HUB = {"persona": "A jazz musician who teaches children."}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (OURS, Persona("p1", "A nurse from Ghana.", {"sex": "female", "age": 41})),
        (
            SEED,
            Persona(
                persona_id("A farmer."),
                "A farmer.",
                {"sex": "male", "age": 63, "nationality": "Indian", "social_class": "working"},
            ),
        ),
        ({**HUB, "id": 7}, Persona("7", "A jazz musician who teaches children.", {})),
    ],
)
def test_all_three_formats_import(row: dict, expected: Persona) -> None:
    assert parse_persona_jsonl(json.dumps(row)) == [expected]


def test_round_trip_through_our_format() -> None:
    personas = parse_persona_jsonl("\n".join(json.dumps(r) for r in (OURS, SEED, HUB)) + "\n\n")
    assert parse_persona_jsonl(personas_to_jsonl(personas)) == personas


def test_bad_rows_are_reported_with_line_numbers() -> None:
    text = "\n".join(
        [
            json.dumps(OURS),
            "{broken",
            json.dumps({"persona": ""}),
            "[1, 2]",
            json.dumps(OURS),
            json.dumps({"description": "x", "attributes": 3}),
        ]
    )
    with pytest.raises(PersonaImportError) as info:
        parse_persona_jsonl(text)
    lines = [(e.line, e.message.split(" ")[0]) for e in info.value.errors]
    assert lines == [
        (2, "invalid"),
        (3, "missing"),
        (4, "row"),
        (5, "duplicate"),
        (6, "'attributes'"),
    ]
    assert "line 5: duplicate id 'p1' (first on line 1)" in str(info.value)


@pytest.mark.parametrize(
    ("size", "shares", "expected"),
    [
        (10, {"a": 1, "b": 1, "c": 1}, {"a": 4, "b": 3, "c": 3}),
        (7, {"x": 0.5, "y": 0.5}, {"x": 4, "y": 3}),
        (100, {"f": 0.52, "m": 0.48}, {"f": 52, "m": 48}),
        (3, {"rare": 0.01, "common": 0.99}, {"common": 3}),
    ],
)
def test_allocate_matches_quotas_exactly_up_to_rounding(
    size: int, shares: dict, expected: dict
) -> None:
    assert Counter(allocate(size, shares)) == expected


def test_generated_panel_is_seeded_stratified_and_follows_quotas() -> None:
    spec = PanelSpec(size=40, seed=5, quotas={"sex": {"female": 0.75, "male": 0.25}})
    panel = generate_panel(spec)
    assert panel == generate_panel(spec)
    assert panel != generate_panel(PanelSpec(size=40, seed=6, quotas=spec.quotas))
    assert Counter(p.attributes["sex"] for p in panel) == {"female": 30, "male": 10}
    assert Counter(p.attributes["age_band"] for p in panel) == dict.fromkeys(
        ["18-29", "30-44", "45-59", "60-79"], 10
    )
    assert len({p.id for p in panel}) == 40
    for p in panel:
        low, high = map(int, p.attributes["age_band"].split("-"))
        assert low <= p.attributes["age"] <= high
        assert p.attributes["country"] in spec.countries[p.attributes["region"]]
        assert (
            f"{p.attributes['age']}-year-old {p.attributes['sex']} from {p.attributes['country']}"
            in p.description
        )
        assert "$" not in p.description


def test_value_lists_are_editable() -> None:
    spec = PanelSpec(
        size=4,
        values={"sex": ["nonbinary"], "religion": ["Jain", "Sikh"]},
        template="A $sex $religion person.",
    )
    panel = generate_panel(spec)
    assert {p.description for p in panel} == {
        "A nonbinary Jain person.",
        "A nonbinary Sikh person.",
    }


def test_panel_problems_are_sentences() -> None:
    spec = PanelSpec(
        size=0, quotas={"sex": {"robot": 1.0}}, values={"sex": ["female"], "region": ["Mars"]}
    )
    problems = panel_problems(spec)
    assert any("at least 1" in p for p in problems)
    assert any("'robot'" in p for p in problems)
    assert any("'Mars' has no countries" in p for p in problems)
    with pytest.raises(ValueError):
        generate_panel(spec)


def test_quotas_from_annotator_profiles() -> None:
    profiles = [
        {"sex": "female", "age": 25},
        {"sex": "female", "age": 50},
        {"sex": "male", "age": 51},
        {"sex": "other"},
    ]
    quotas = quotas_from_profiles(profiles)
    assert quotas["sex"] == {"female": pytest.approx(2 / 3), "male": pytest.approx(1 / 3)}
    assert quotas["age_band"] == {"18-29": pytest.approx(1 / 3), "45-59": pytest.approx(2 / 3)}
    assert "religion" not in quotas
    panel = generate_panel(PanelSpec(size=9, quotas=quotas))
    assert Counter(p.attributes["age_band"] for p in panel) == {"18-29": 3, "45-59": 6}


def test_twin_uses_only_consented_fields() -> None:
    profile = {
        "age": 34,
        "sex": "female",
        "religion": "Muslim",
        "country": "Kenya",
        "education": "",
    }
    twin = twin_persona("u7", profile, consented_fields=["age", "country", "education"])
    assert twin.id == "twin-u7"
    assert twin.attributes == {"age": 34, "country": "Kenya", "twin_of": "u7"}
    assert "34 years old" in twin.description and "Kenya" in twin.description
    assert "Muslim" not in twin.description and "female" not in twin.description
