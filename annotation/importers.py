"""Item import: parse and validate rows from files, `datasets` and hub ids (no database writes).

Inputs (see `annotation.importing.readers`): JSONL (optionally gzipped), CSV, Parquet, a directory
written by `datasets.Dataset.save_to_disk`, a Hugging Face hub id, or records from a JSON body.
Row shapes (see `annotation.importing.rows`): `{prompt, responses}` and pairwise
`{prompt?, chosen, rejected}`, including hh-rlhf's "\\n\\nHuman: ... \\n\\nAssistant: ..." text.

Every problem is a `RowError` naming the line (1-based, of the file; "row" for Parquet and
`datasets`, "item" for a request body) and the field. Two rows with the same external id (given,
or the content hash used when a row has no `id`) are an error on the later row: which one was
meant is the user's call, not ours. Writing is `annotation.services_io.import_items`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from annotation.importing.errors import FieldError, ImportFailed, RowError
from annotation.importing.readers import FORMATS, ImportSource, detect_format, read_rows
from annotation.importing.rows import ParsedItem, ParsedResponse, content_hash, parse_row

__all__ = [
    "FORMATS",
    "MAX_ERRORS",
    "ImportFailed",
    "ImportSource",
    "ParsedItem",
    "ParsedResponse",
    "RowError",
    "content_hash",
    "detect_format",
    "iter_items",
    "load_hh_rlhf_sample",
    "parse_items",
]

# Past this many errors a file is plainly in the wrong shape; listing more helps nobody.
MAX_ERRORS = 50


def iter_items(source: ImportSource) -> Iterator[ParsedItem | RowError]:
    """Each row of `source` as a `ParsedItem`, or a `RowError` saying what is wrong and where."""
    first_line: dict[str, int] = {}
    for number, row in read_rows(source):
        if isinstance(row, RowError):
            yield _placed(row, source)
            continue
        try:
            item = parse_row(row)
        except FieldError as exc:
            yield RowError(exc.message, line=number, field=exc.field or None, unit=source.unit)
            continue
        earlier = first_line.setdefault(item.external_id, number)
        if earlier != number:
            yield _duplicate(item, number, earlier, source.unit)
            continue
        yield replace(item, line=number)


def _placed(error: RowError, source: ImportSource) -> RowError:
    if error.line is not None:
        error.unit = source.unit
    return error


def _duplicate(item: ParsedItem, number: int, earlier: int, unit: str) -> RowError:
    if item.id_from_content:
        return RowError(f"duplicate item: same prompt and responses as {unit} {earlier}", line=number,
                        field="prompt", unit=unit)
    return RowError(f"duplicate id {item.external_id!r}, first used on {unit} {earlier}", line=number,
                    field="id", unit=unit)


def parse_items(source: ImportSource) -> list[ParsedItem]:
    """All items of `source`, or `ImportFailed` listing the problems (for small inputs and tests)."""
    items: list[ParsedItem] = []
    errors: list[RowError] = []
    for parsed in iter_items(source):
        if isinstance(parsed, RowError):
            errors.append(parsed)
            if len(errors) >= MAX_ERRORS:
                raise ImportFailed(errors, truncated=True)
        else:
            items.append(parsed)
    if errors:
        raise ImportFailed(errors)
    return items


def load_hh_rlhf_sample(path: str | Path, limit: int | None = None) -> Iterator[ParsedItem]:
    """Up to `limit` items of an hh-rlhf file (e.g. data/hh-rlhf/harmless-base_test.jsonl.gz).

    Rows that do not make a valid item (the pair differs before its last turn, an empty answer,
    a repeated conversation) are left out, so a demo can be built from the file as shipped.
    """
    count = 0
    for parsed in iter_items(ImportSource.from_path(path, format="jsonl")):
        if limit is not None and count >= limit:
            return
        if isinstance(parsed, ParsedItem):
            count += 1
            yield replace(parsed, metadata={**parsed.metadata, "dataset": "hh-rlhf"})
