"""Import a persona panel from JSONL (our format, the seed project's, or PersonaHub's).

    manage.py import_personas personas.jsonl --name "Panel" --owner alice [--project <uuid>]

All or nothing: a file with any bad row imports nothing and every bad row is listed by line.
Importing under a name the owner already uses stores the next version of that panel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Membership, Project
from synthetic.services import PanelError, import_panel


class Command(BaseCommand):
    help = "Import personas from a JSONL file as a new persona panel (or the next version of one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="username of the panel's owner")
        parser.add_argument("--project", default=None, help="public id of the project the panel belongs to")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None:
            raise CommandError(f"no user named {options['owner']!r}")
        project = None
        if options["project"]:
            project = Project.objects.filter(
                public_id=options["project"], memberships__user=owner, memberships__role=Membership.Role.RESEARCHER
            ).first()
            if project is None:
                raise CommandError(f"{options['owner']} is no researcher of a project {options['project']}")
        try:
            panel = import_panel(owner=owner, name=options["name"], text=text, project=project,
                                 description=options["description"], filename=path.name)
        except PanelError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"imported {panel.personas.count()} personas as {panel} (id {panel.pk})")
