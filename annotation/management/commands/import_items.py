"""Import items into a project from a file, a `datasets` directory or a Hugging Face hub id.

    manage.py import_items --project <public id> data/hh-rlhf/harmless-base_test.jsonl.gz
    manage.py import_items --project <public id> items.csv --skip-existing
    manage.py import_items --project <public id> Anthropic/hh-rlhf --format hub --split test

All or nothing: on any bad row it lists every error (line and field) and stores nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import services_io
from annotation.importers import FORMATS, ImportFailed, ImportSource, RowError
from annotation.models import Project


def find_project(public_id: str) -> Project:
    try:
        return Project.objects.get(public_id=public_id)
    except (Project.DoesNotExist, ValidationError):
        raise CommandError(f"--project: no project with public id {public_id!r}") from None


class Command(BaseCommand):
    help = "Import items (prompt + responses) into a project, all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="a .jsonl/.jsonl.gz/.csv/.parquet file, a datasets directory, or a hub id")
        parser.add_argument("--project", required=True, help="the project's public id")
        parser.add_argument("--format", choices=[f for f in FORMATS if f != "records"],
                            help="default: from the file name; 'hub' loads SOURCE with datasets.load_dataset")
        parser.add_argument("--split", help="split of a datasets directory or hub dataset (default: train)")
        parser.add_argument("--skip-existing", action="store_true",
                            help="leave out items whose id the project already has (otherwise an error)")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="leave out rows that are not valid items, listing each (otherwise one stops the import)")

    def handle(self, *args: Any, **options: Any) -> None:
        project = find_project(options["project"])
        source = self._source(options["source"], options["format"], options["split"])
        try:
            report = services_io.import_items(project=project, source=source, skip_existing=options["skip_existing"],
                                              skip_invalid=options["skip_invalid"])
        except ImportFailed as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            more = " (stopped there; there may be more)" if exc.truncated else ""
            raise CommandError(f"nothing imported: {len(exc.errors)} error(s){more}") from None
        for error in report.invalid:
            self.stderr.write(f"skipped {error}")
        self.stdout.write(self.style.SUCCESS(f"Imported {report.created} items into {project.name!r}{report.summary()}."))

    def _source(self, source: str, fmt: str | None, split: str | None) -> ImportSource:
        if fmt == "hub":
            return ImportSource.from_hub(source, split=split)
        path = Path(source)
        if not path.exists():
            raise CommandError(f"no such file or directory: {source!r} (for a hub id add --format hub)")
        try:
            return ImportSource.from_path(path, format=fmt, split=split)
        except RowError as exc:
            raise CommandError(str(exc)) from None
