"""Pure benchmark scorers: plain data and numpy in, metrics out. Nothing here imports Django.

Each benchmark module has a `VERSION` (stored with every result, bumped whenever a change would
alter a number), a loader that turns its data files into examples with clear errors naming file
and line, the model requests it needs (texts to score) and a scorer over the model's scores.
The model never appears here: an engine (`evaluation.engine`) turns requests into scores.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


class BenchmarkDataError(ValueError):
    """A benchmark's data file is malformed; the message names the file, line and field."""


def read_jsonl(path: Path | str) -> Iterator[tuple[Any, str]]:
    """Each JSON line of a file (gzip-compressed if it ends in .gz) with where it stands
    ("name line N"); blank lines are passed over, invalid JSON is a BenchmarkDataError there."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                yield json.loads(line), where
            except json.JSONDecodeError as exc:
                raise BenchmarkDataError(f"{where}: invalid JSON ({exc.msg})") from None
