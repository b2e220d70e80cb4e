"""Where import rows come from: JSONL (gzip too), CSV, Parquet, a `datasets` directory, a hub id,
or records already in memory (a JSON request body).

`read_rows(source)` yields `(number, row)` pairs; `row` is a dict, or a `RowError` for a line that
could not be read (malformed JSON, a CSV line with the wrong cell count). A problem with the whole
input (unknown file type, unreadable Parquet, bad CSV header) is yielded as a `RowError` and ends
the stream. Every read starts from the beginning, so a source can be read twice (validate, write).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from annotation.importing.errors import FieldError, RowError

Row = tuple[int, "dict[str, Any] | RowError"]

FILE_FORMATS = {".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
FORMATS = ("jsonl", "csv", "parquet", "datasets", "hub", "records")
_BATCH_ROWS = 1000


@dataclass
class ImportSource:
    """An input to import from; build it with one of the `from_*` constructors."""

    format: str
    name: str
    path: Path | None = None
    file: IO[bytes] | None = None
    split: str | None = None
    records: Sequence[object] | None = None

    @classmethod
    def from_path(cls, path: str | Path, *, format: str | None = None, split: str | None = None) -> ImportSource:
        path = Path(path)
        fmt = format or ("datasets" if path.is_dir() else detect_format(path.name))
        return cls(format=fmt, name=path.name, path=path, split=split)

    @classmethod
    def from_file(cls, file: IO[bytes], *, name: str, format: str | None = None) -> ImportSource:
        return cls(format=format or detect_format(name), name=name, file=file)

    @classmethod
    def from_hub(cls, dataset_id: str, *, split: str | None = None) -> ImportSource:
        return cls(format="hub", name=dataset_id, split=split)

    @classmethod
    def from_records(cls, records: Sequence[object]) -> ImportSource:
        return cls(format="records", name="request body", records=records)

    @property
    def unit(self) -> str:
        return {"jsonl": "line", "csv": "line", "records": "item"}.get(self.format, "row")

    def open_binary(self) -> IO[bytes]:
        if self.file is not None:
            self.file.seek(0)
            return self.file
        assert self.path is not None
        return self.path.open("rb")


def detect_format(name: str) -> str:
    lowered = name.lower()
    for suffix, fmt in sorted(FILE_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if lowered.endswith(suffix):
            return fmt
    suffix = Path(lowered).suffix or "(none)"
    raise RowError(f"unreadable file type {suffix!r} of {name!r}; use {', '.join(sorted(FILE_FORMATS))}, "
                   "a datasets directory saved with save_to_disk, or a hub id")


def read_rows(source: ImportSource) -> Iterator[Row]:
    if source.format not in FORMATS:
        yield 0, RowError(f"unknown format {source.format!r}; use one of {', '.join(FORMATS)}")
        return
    reader = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet, "datasets": _datasets, "hub": _hub,
              "records": _records}[source.format]
    yield from reader(source)


# ---------------------------------------------------------------- text formats


def _text_lines(source: ImportSource) -> Iterator[tuple[int, str | RowError]]:
    raw = source.open_binary()
    head = raw.read(2)
    raw.seek(0)
    stream: IO[bytes] | gzip.GzipFile = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
    try:
        for number, line in enumerate(stream, start=1):
            try:
                yield number, line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                yield number, RowError("is not UTF-8 text", line=number)
    except (OSError, EOFError) as exc:
        yield 0, RowError(f"cannot read {source.name!r}: {exc}")
    finally:
        if source.file is None:
            raw.close()


def _jsonl(source: ImportSource) -> Iterator[Row]:
    for number, line in _text_lines(source):
        if isinstance(line, RowError):
            yield number, line
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, RowError(f"malformed JSON: {exc.msg} (column {exc.colno})", line=number)
            continue
        except RecursionError:
            yield number, RowError("malformed JSON: nested too deeply", line=number)
            continue
        if not isinstance(row, dict):
            yield number, RowError(f"each line must be a JSON object, got {type(row).__name__}", line=number)
            continue
        yield number, row


def _csv(source: ImportSource) -> Iterator[Row]:
    raw = source.open_binary()
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_rows(csv.reader(text))
    except UnicodeDecodeError:
        yield 0, RowError(f"{source.name!r} is not UTF-8 text")
    except csv.Error as exc:
        yield 0, RowError(f"unreadable CSV: {exc}")
    finally:
        text.detach()  # leave an uploaded file open for the second read
        if source.file is None:
            raw.close()


def _csv_rows(reader: Any) -> Iterator[Row]:
    header = next(reader, None)
    if header is None:
        return
    problem = csv_header_problem(header)
    if problem:
        yield 1, RowError(problem, line=1, field="header")
        return
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield line, RowError(f"expected {len(header)} cells as in the header, got {len(cells)}", line=line)
            continue
        try:
            yield line, csv_record(dict(zip(header, cells, strict=True)))
        except FieldError as exc:
            yield line, RowError(exc.message, line=line, field=exc.field)


def _numbered(name: str) -> bool:
    return name.startswith(("response_", "source_")) and name.split("_", 1)[1].isdigit()


def _response_columns(header: Sequence[str]) -> list[str]:
    cols = [h for h in header if h.startswith("response_") and h[len("response_"):].isdigit()]
    return sorted(cols, key=lambda h: int(h[len("response_"):]))


def csv_header_problem(header: Sequence[str]) -> str | None:
    """What is wrong with a CSV header, or None. Columns: id?, prompt, then responses as
    `response_1..response_K` (with optional `source_1..`), a `responses` JSON column, or
    `chosen` + `rejected`; optional `context` / `metadata` JSON columns; others go to metadata."""
    names = [h.strip() for h in header]
    if any(not n for n in names):
        return f"column {names.index('') + 1} has no name"
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return f"column {dupes[0]!r} appears more than once"
    pairwise = "chosen" in names and "rejected" in names
    if "prompt" not in names and not pairwise:
        return f"needs a 'prompt' column; found {', '.join(names)}"
    if not (pairwise or "responses" in names or _response_columns(names)):
        return "needs response columns: response_1, response_2, ... (or 'responses' as JSON, or 'chosen' and 'rejected')"
    return None


def csv_record(cells: dict[str, str]) -> dict[str, Any]:
    """One CSV record as a row dict; raises FieldError on a cell that is not valid JSON."""
    row: dict[str, Any] = {}
    for name, value in cells.items():
        name = name.strip()
        if name in ("responses", "context", "metadata"):
            if value.strip():
                try:
                    row[name] = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise FieldError(name, f"is not valid JSON ({exc.msg}, column {exc.colno})") from None
                except RecursionError:
                    raise FieldError(name, "is not valid JSON (nested too deeply)") from None
        elif not _numbered(name) and (value != "" or name in ("prompt", "chosen", "rejected")):
            row[name] = value
    columns = _response_columns(list(cells))
    if columns:
        row["responses"] = [
            {"text": cells[col], "source": cells.get(f"source_{col[len('response_'):]}", "")}
            for col in columns if cells[col] != ""
        ]
    return row


# ---------------------------------------------------------------- columnar formats


def _parquet(source: ImportSource) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = source.open_binary()
    try:
        parquet = pq.ParquetFile(raw)
        number = 0
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pa.ArrowException, OSError) as exc:
        yield 0, RowError(f"{source.name!r} is not a readable Parquet file: {exc}")
    finally:
        if source.file is None:
            raw.close()


def _datasets(source: ImportSource) -> Iterator[Row]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(source.path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        yield 0, RowError(f"{source.name!r} is not a datasets directory saved with save_to_disk: {exc}")
        return
    yield from _dataset_rows(loaded, source)


def _hub(source: ImportSource) -> Iterator[Row]:
    import datasets

    try:
        loaded = datasets.load_dataset(source.name, split=source.split)
    except Exception as exc:  # noqa: BLE001 - the hub raises many kinds; all mean "cannot load"
        yield 0, RowError(f"could not load dataset {source.name!r} from the hub: {exc}")
        return
    yield from _dataset_rows(loaded, source)


def _dataset_rows(loaded: Any, source: ImportSource) -> Iterator[Row]:
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        split = source.split or ("train" if "train" in splits else splits[0] if len(splits) == 1 else None)
        if split not in loaded:
            yield 0, RowError(f"choose a split of {source.name!r}: {', '.join(splits)}")
            return
        loaded = loaded[split]
    for number, row in enumerate(loaded, start=1):
        yield number, dict(row)


def _records(source: ImportSource) -> Iterator[Row]:
    for number, record in enumerate(source.records or (), start=1):
        yield number, record if isinstance(record, dict) else RowError(
            f"each item must be an object, got {type(record).__name__}", line=number, unit="item")
