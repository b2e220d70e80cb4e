from __future__ import annotations

import pytest
from django.core.management import call_command

from annotation.management.commands.seed_demo import DEMO_PROJECT
from annotation.models import Membership, Project
from annotation.services import next_assignment

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_a_rankable_project_and_is_idempotent(django_user_model, capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "researcher / researcher-demo" in out and "annotator / annotator-demo" in out
    project = Project.objects.get(name=DEMO_PROJECT)
    assert project.status == Project.Status.ACTIVE and project.items.count() == 6
    assert all(item.responses.count() == 4 for item in project.items.all())
    researcher = django_user_model.objects.get(username="researcher")
    assert researcher.check_password("researcher-demo") and researcher.has_perm("annotation.add_project")
    annotator = django_user_model.objects.get(username="annotator")
    assert Membership.objects.get(project=project, user=annotator).role == Membership.Role.ANNOTATOR
    assert next_assignment(project=project, user=annotator) is not None
