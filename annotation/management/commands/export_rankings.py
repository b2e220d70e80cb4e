"""Export a project's raw rankings (one judgment per record, see ARCHITECTURE.md).

    manage.py export_rankings --project <public id> --format jsonl --out rankings.jsonl
    manage.py export_rankings --project <public id> --format jsonl --out -          # to stdout
    manage.py export_rankings --project <public id> --format parquet --out r.parquet --rater-kind human
    manage.py export_rankings --project <public id> --format datasets --out r_dataset --since 2026-11-01
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import exporters
from annotation.management.commands.import_items import find_project


class Command(BaseCommand):
    help = "Export raw rankings as JSONL, Parquet or a datasets directory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="the project's public id")
        parser.add_argument("--format", choices=exporters.FORMATS, default="jsonl")
        parser.add_argument("--out", required=True, help="file (jsonl, parquet; '-' is stdout for jsonl) or directory (datasets)")
        parser.add_argument("--rater-kind", choices=exporters.RATER_KINDS, default="all")
        parser.add_argument("--since", help="ISO-8601 date or datetime, inclusive")
        parser.add_argument("--until", help="ISO-8601 datetime (exclusive) or date (that whole day)")
        parser.add_argument("--all-versions", action="store_true", help="every version, not only current rankings")

    def handle(self, *args: Any, **options: Any) -> None:
        project = find_project(options["project"])
        params = {"rater_kind": options["rater_kind"], "since": options["since"], "until": options["until"],
                  "versions": "all" if options["all_versions"] else "current"}
        try:
            flt = exporters.ExportFilter.from_params(params)
        except exporters.ExportError as exc:
            raise CommandError(f"--{exc}") from None
        try:
            count = self._write(project, options["format"], options["out"], flt)
        except exporters.ExportError as exc:
            raise CommandError(str(exc)) from None
        if options["out"] != "-":
            self.stdout.write(self.style.SUCCESS(f"Exported {count} rankings to {options['out']}."))

    def _write(self, project: Any, fmt: str, out: str, flt: exporters.ExportFilter) -> int:
        if fmt == "jsonl" and out == "-":
            return self._lines(project, flt, lambda line: self.stdout.write(line, ending=""))
        if out == "-":
            raise CommandError("--out -: only jsonl can go to stdout")
        path = Path(out)
        if fmt == "datasets" and path.exists() and any(path.iterdir()):
            raise CommandError(f"--out: {out!r} exists and is not empty")
        if fmt == "jsonl":
            with path.open("w", encoding="utf-8") as handle:
                return self._lines(project, flt, handle.write)
        if fmt == "parquet":
            return exporters.write_parquet(project, flt, path)
        return exporters.write_datasets(project, flt, path)

    def _lines(self, project: Any, flt: exporters.ExportFilter, write: Callable[[str], object]) -> int:
        count = 0
        for line in exporters.export_jsonl(project, flt):
            write(line)
            count += 1
        return count
