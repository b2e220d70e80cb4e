"""Persona panels: import (three formats, line-numbered errors, all or nothing), versions,
stratified generation with quotas from consenting annotators, and twins."""
from __future__ import annotations

from collections import Counter

import pytest

from annotation.models import AnnotatorProfile
from synthetic import personas as pure
from synthetic.models import Persona, PersonaPanel
from synthetic.services import (
    PanelError,
    generate_panel,
    import_panel,
    new_panel_version,
    twin_panel,
)

pytestmark = pytest.mark.django_db


def test_import_reads_our_format_the_seed_format_and_personahub(panel):
    rows = {p.persona_id: p for p in panel.personas.all()}
    assert len(rows) == 3
    assert rows["p1"].attributes == {"age": 67}
    seed = next(p for p in rows.values() if p.description == "A student from Lagos.")
    assert seed.attributes == {"sex": "female", "age": 21, "nationality": "Nigerian"}
    assert any(p.description == "A software engineer who loves terse answers." for p in rows.values())
    assert (panel.version, panel.source) == (1, PersonaPanel.Source.IMPORTED)


def test_bad_rows_are_reported_by_line_and_nothing_is_stored(owner):
    text = '{"id": "a", "description": "ok"}\n{"id": "b"}\nnot json\n{"id": "a", "description": "dup"}\n'
    with pytest.raises(PanelError) as excinfo:
        import_panel(owner=owner, name="Broken", text=text, filename="panel.jsonl")
    message = str(excinfo.value)
    assert "panel.jsonl" in message
    assert "line 2" in message and "description" in message
    assert "line 3" in message and "invalid JSON" in message
    assert "line 4" in message and "duplicate id 'a'" in message
    assert not PersonaPanel.objects.exists()
    assert not Persona.objects.exists()


def test_an_empty_file_is_refused(owner):
    with pytest.raises(PanelError, match="no personas"):
        import_panel(owner=owner, name="Empty", text="\n\n")


def test_a_change_makes_a_new_version_and_the_old_one_stays(panel):
    changed = [pure.Persona("p9", "Someone new.", {})]
    v2 = new_panel_version(panel=panel, personas=changed, description="only one")
    assert (v2.name, v2.version) == (panel.name, 2)
    assert list(v2.personas.values_list("persona_id", flat=True)) == ["p9"]
    assert panel.personas.count() == 3  # version 1 untouched
    assert import_panel(owner=panel.owner, name=panel.name, text='{"persona": "x"}').version == 3


def _profile(user, consented, **values):
    return AnnotatorProfile.objects.create(user=user, consented_fields=consented, **values)


def test_generated_panel_follows_the_consented_demographics_of_annotators(owner, project, annotator, annotator2):
    _profile(annotator, ["gender", "religion"], gender="female", religion="Buddhist", education="university degree")
    _profile(annotator2, ["gender"], gender="male", religion="Hindu")
    panel = generate_panel(owner=owner, name="Matched", size=10, seed=3, project=project, match_annotators=True)
    attributes = [p.attributes for p in panel.personas.all()]
    assert len(attributes) == 10
    assert Counter(a["sex"] for a in attributes) == {"female": 5, "male": 5}
    # Only annie consented to religion (Buddhist); bob's Hindu was never shared.
    assert {a["religion"] for a in attributes} == {"Buddhist"}
    # Annie's education was not consented, so education is spread evenly, not matched.
    assert len({a["education"] for a in attributes}) > 1
    assert panel.recipe["quotas"]["religion"] == {"Buddhist": 1.0}


def test_matching_without_any_consent_is_an_error(owner, project, annotator):
    _profile(annotator, [], gender="female")
    with pytest.raises(PanelError, match="consented"):
        generate_panel(owner=owner, name="Nobody", size=5, project=project, match_annotators=True)
    assert not PersonaPanel.objects.exists()


def test_generation_is_seeded(owner):
    a = generate_panel(owner=owner, name="A", size=6, seed=42)
    b = generate_panel(owner=owner, name="B", size=6, seed=42)
    assert [p.description for p in a.personas.all()] == [p.description for p in b.personas.all()]


def test_panel_size_is_checked(owner):
    with pytest.raises(PanelError, match="panel size"):
        generate_panel(owner=owner, name="Zero", size=0)


def test_twins_use_consented_fields_only(owner, project, annotator, annotator2, outsider):
    _profile(annotator, ["country", "age_band"], country="Kenya", age_band="30-44", religion="Muslim")
    _profile(annotator2, [], country="Peru")
    _profile(outsider, ["country"], country="Chile")  # not a member: never twinned
    panel = twin_panel(owner=owner, project=project, name="Twins")
    (twin,) = panel.personas.all()
    assert twin.attributes == {"country": "Kenya", "age_band": "30-44", "twin_of": str(annotator.pk)}
    assert "Kenya" in twin.description and "Muslim" not in twin.description
    assert panel.project == project and panel.source == PersonaPanel.Source.TWINS
    # Raters and exports never carry which annotator a twin mirrors.
    assert "twin_of" not in twin.as_contract()["attributes"]


def test_twins_without_consent_is_an_error(owner, project):
    with pytest.raises(PanelError, match="consented"):
        twin_panel(owner=owner, project=project, name="Twins")


def test_a_twins_id_does_not_name_its_annotator_and_is_stable(owner, project, annotator):
    _profile(annotator, ["country"], country="Kenya")
    first = twin_panel(owner=owner, project=project, name="Twins").personas.get()
    again = twin_panel(owner=owner, project=project, name="Twins again").personas.get()
    assert first.persona_id == again.persona_id and first.persona_id.startswith("twin-")
    assert first.persona_id != f"twin-{annotator.pk}" and len(first.persona_id) == len("twin-") + 12
    assert first.as_contract()["twin"] is True


@pytest.mark.parametrize("setting, shown", [("individual", True), ("aggregate", False), ("none", False)])
def test_exports_hold_a_twins_demographics_to_the_projects_setting(owner, project, annotator, setting, shown):
    from annotation.exporters import ExportFilter, export_records
    from annotation.models import Item, Project
    from annotation.services import record_ranking, synthetic_rater

    _profile(annotator, ["country"], country="Kenya")
    twin = twin_panel(owner=owner, project=project, name="Twins").personas.get()
    Project.objects.filter(pk=project.pk).update(demographics_export=setting)
    project.refresh_from_db()
    item = Item.objects.filter(project=project).first()
    record_ranking(item=item, rater=synthetic_rater(persona=twin.as_contract(), model="fake:tiny"),
                   order=[["r1"], ["r2"], ["r3"], ["r4"]])
    (record,) = export_records(project, ExportFilter())
    persona = record["rater"]["persona"]
    assert persona["id"] == twin.persona_id and persona["twin"] is True
    if shown:
        assert persona["attributes"] == {"country": "Kenya"} and "Kenya" in persona["description"]
    else:
        assert persona["attributes"] is None and persona["description"] is None
