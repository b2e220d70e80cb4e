"""Importing items into a project: all rows or none.

`import_items` reads its source twice. The first pass parses and validates every row (streamed;
only the external ids are kept) and checks ids against the project's items in batches; any error
and nothing is written. The second pass writes the items in batches with two `bulk_create`s each
(items, then their responses) inside one transaction, so a few thousand items cost a few dozen
queries and no file sits whole in memory.

Duplicates: two rows with the same id in one file are always an error. A row whose id is already
an item of the project is an error too, unless `skip_existing=True`: then it is left out and
counted in the report (re-running an import after adding rows to the file).

Invalid rows: by default any one of them stops the import. With `skip_invalid=True` (a public
dataset with a few malformed rows, such as hh-rlhf's) they are left out and reported, each with
its line, field and reason, and the valid rows are imported; a file with no valid row still fails.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from django.db import IntegrityError, transaction

from annotation.importers import (
    MAX_ERRORS,
    ImportFailed,
    ImportSource,
    ParsedItem,
    RowError,
    iter_items,
)
from annotation.models import Item, Project, Response

BATCH_SIZE = 500


@dataclass
class ImportReport:
    created: int = 0
    skipped_existing: int = 0
    skipped_ids: list[str] = field(default_factory=list)
    skipped_invalid: int = 0
    invalid: list[RowError] = field(default_factory=list)  # the first MAX_ERRORS of them

    def as_dict(self) -> dict[str, object]:
        return {"created": self.created, "skipped_existing": self.skipped_existing,
                "skipped_ids": self.skipped_ids[:100], "skipped_invalid": self.skipped_invalid,
                "invalid": [error.as_dict() for error in self.invalid]}

    def summary(self) -> str:
        """", 3 already in the project skipped, 9 invalid rows skipped (line 12, field 'chosen': ...)"."""
        parts = []
        if self.skipped_existing:
            parts.append(f"{self.skipped_existing} already in the project skipped")
        if self.skipped_invalid:
            first = f" (first: {self.invalid[0]})" if self.invalid else ""
            parts.append(f"{self.skipped_invalid} invalid row{'s' if self.skipped_invalid != 1 else ''} skipped{first}")
        return "".join(f", {part}" for part in parts)


@transaction.atomic
def import_items(*, project: Project, source: ImportSource, skip_existing: bool = False,
                 skip_invalid: bool = False, batch_size: int = BATCH_SIZE) -> ImportReport:
    """Validate every row of `source`, then create its items; raise `ImportFailed` and write nothing
    if any row is bad (with `skip_invalid`, if no row is good)."""
    report = _validate(project, source, skip_existing, skip_invalid, batch_size)
    try:
        for batch in _batches(_parsed(source, skip_invalid), batch_size):
            fresh = _drop_existing(project, batch) if skip_existing else batch
            _create(project, fresh)
            report.created += len(fresh)
    except IntegrityError:
        raise ImportFailed([RowError("another import added items with the same ids meanwhile; try again")]) from None
    return report


def _validate(project: Project, source: ImportSource, skip_existing: bool, skip_invalid: bool,
              batch_size: int) -> ImportReport:
    errors: list[RowError] = []
    report = ImportReport()
    pending: list[ParsedItem] = []
    seen = 0
    for parsed in iter_items(source):
        if isinstance(parsed, RowError) and skip_invalid and parsed.line is not None:
            report.skipped_invalid += 1
            if len(report.invalid) < MAX_ERRORS:
                report.invalid.append(parsed)
        elif isinstance(parsed, RowError):
            errors.append(parsed)
        else:
            pending.append(parsed)
            seen += 1
        if len(pending) >= batch_size:
            errors += _check_existing(project, pending, skip_existing, report, source.unit)
            pending = []
        if len(errors) >= MAX_ERRORS:
            raise ImportFailed(errors[:MAX_ERRORS], truncated=True)
    errors += _check_existing(project, pending, skip_existing, report, source.unit)
    if errors:
        raise ImportFailed(errors[:MAX_ERRORS], truncated=len(errors) > MAX_ERRORS)
    if not seen:
        raise ImportFailed(report.invalid or [RowError(f"{source.name!r} contains no items")])
    return report


def _check_existing(project: Project, batch: list[ParsedItem], skip_existing: bool, report: ImportReport,
                    unit: str) -> list[RowError]:
    existing = _existing_ids(project, batch)
    if skip_existing:
        report.skipped_existing += len(existing)
        report.skipped_ids += sorted(existing)
        return []
    return [
        RowError(f"item {item.external_id!r} already exists in this project", line=item.line, field="id", unit=unit)
        for item in batch if item.external_id in existing
    ]


def _existing_ids(project: Project, batch: list[ParsedItem]) -> set[str]:
    if not batch:
        return set()
    ids = [item.external_id for item in batch]
    return set(Item.objects.filter(project=project, external_id__in=ids).values_list("external_id", flat=True))


def _parsed(source: ImportSource, skip_invalid: bool) -> Iterator[ParsedItem]:
    for parsed in iter_items(source):
        if isinstance(parsed, RowError) and skip_invalid and parsed.line is not None:
            continue  # counted by the first pass
        if isinstance(parsed, RowError):  # the source changed between the two passes
            raise ImportFailed([parsed])
        yield parsed


def _batches(items: Iterator[ParsedItem], size: int) -> Iterator[list[ParsedItem]]:
    while batch := list(islice(items, size)):
        yield batch


def _drop_existing(project: Project, batch: list[ParsedItem]) -> list[ParsedItem]:
    existing = _existing_ids(project, batch)
    return [item for item in batch if item.external_id not in existing]


def _create(project: Project, batch: list[ParsedItem]) -> None:
    items = Item.objects.bulk_create(
        Item(project=project, external_id=p.external_id, prompt=p.prompt, context=p.context, metadata=p.metadata)
        for p in batch
    )
    Response.objects.bulk_create(
        (
            Response(item=item, response_id=r.id, text=r.text, source=r.source, position=position)
            for item, parsed in zip(items, batch, strict=True)
            for position, r in enumerate(parsed.responses)
        ),
        batch_size=2000,
    )


@transaction.atomic
def create_parsed_items(*, project: Project, items: Iterable[ParsedItem], batch_size: int = BATCH_SIZE) -> int:
    """Bulk-create items already parsed and validated (e.g. `importers.load_hh_rlhf_sample` for the
    demo), leaving out ids the project already has; return how many were created."""
    created = 0
    for batch in _batches(iter(items), batch_size):
        fresh = _drop_existing(project, batch)
        _create(project, fresh)
        created += len(fresh)
    return created
