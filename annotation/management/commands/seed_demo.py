"""Create the demo: a researcher, two annotators and an active project from data/demo, then the
review demo (`manage.py seed_review_demo` of the aggregation app: a project with stored rankings
from simulated annotators and SmolLM2 personas, so the review pages have something to show).

Idempotent: running it again keeps existing users (and their passwords), items and rankings.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation.models import Membership, Project
from annotation.services import add_member, create_item, create_project

DEMO_USERS = {
    "researcher": ("researcher", "researcher-demo", Membership.Role.RESEARCHER),
    "annotator": ("annotator", "annotator-demo", Membership.Role.ANNOTATOR),
    "annotator2": ("annotator2", "annotator2-demo", Membership.Role.ANNOTATOR),
}
DEMO_PROJECT = "Demo: rank assistant answers"
GUIDELINES = """Rank the responses from **best** (top) to **worst**.

* Prefer answers that are *helpful*, *honest* and *harmless*.
* Put two responses in the same slot (a tie) when you genuinely cannot prefer one.
* Flag a response set as harmful when any answer could hurt someone.

Keyboard: focus a response with Tab or the arrow keys, press a number to put it in that rank,
and submit with Enter.
"""


class Command(BaseCommand):
    help = "Create demo users and a demo project from data/demo (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            users = {key: self._user(*spec[:2]) for key, spec in DEMO_USERS.items()}
            project = self._project(users)
        self.stdout.write(self.style.SUCCESS(f"Demo project {project.name!r}: {project.items.count()} items"))
        for username, password, role in DEMO_USERS.values():
            self.stdout.write(f"  demo login ({role}): {username} / {password}")
        # By command name, not by import: the annotation app never imports the apps built on it.
        call_command("seed_review_demo", stdout=self.stdout)

    def _user(self, username: str, password: str) -> Any:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.is_staff = username == "researcher"
            user.save()
        if username == "researcher":
            # Creating projects is what makes someone a researcher.
            user.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
        return user

    def _project(self, users: dict[str, Any]) -> Project:
        project = Project.objects.filter(name=DEMO_PROJECT, owner=users["researcher"]).first()
        if project is None:
            project = create_project(
                owner=users["researcher"], name=DEMO_PROJECT, guidelines=GUIDELINES, overlap_target=2,
                allow_ties=True, status=Project.Status.ACTIVE,
                consent_text="Optional demographic fields help us check that every group is represented.",
            )
        for key, (_, _, role) in DEMO_USERS.items():
            if role == Membership.Role.ANNOTATOR:
                add_member(project=project, user=users[key], role=role)
        existing = set(project.items.values_list("external_id", flat=True))
        for row in _demo_rows(Path(settings.BASE_DIR) / "data" / "demo" / "prompts.jsonl"):
            if row["id"] not in existing:
                create_item(project=project, external_id=row["id"], prompt=row["prompt"], responses=row["responses"])
        return project


def _demo_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
