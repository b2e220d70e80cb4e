"""Management commands: import_personas (all or nothing, errors by line)."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from synthetic.models import PersonaPanel

pytestmark = pytest.mark.django_db


def test_import_personas_command_stores_a_panel_of_the_project(tmp_path, owner, project, capsys):
    path = tmp_path / "panel.jsonl"
    path.write_text('{"persona": "A farmer."}\n{"id": "x", "description": "A poet.", "attributes": {}}\n')
    call_command("import_personas", str(path), name="Cmd", owner="owner", project=str(project.public_id))
    panel = PersonaPanel.objects.get()
    assert panel.project == project and panel.personas.count() == 2
    assert "imported 2 personas as Cmd v1" in capsys.readouterr().out


def test_import_personas_command_names_the_bad_line_and_imports_nothing(tmp_path, owner):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"persona": "A farmer."}\n{"persona": ""}\n')
    with pytest.raises(CommandError, match="bad.jsonl: line 2"):
        call_command("import_personas", str(path), name="Cmd", owner="owner")
    assert not PersonaPanel.objects.exists()


def test_import_personas_command_refuses_a_project_the_owner_does_not_research(tmp_path, annotator, project):
    path = tmp_path / "p.jsonl"
    path.write_text('{"persona": "A farmer."}\n')
    with pytest.raises(CommandError, match="no researcher"):
        call_command("import_personas", str(path), name="Cmd", owner="annie", project=str(project.public_id))
