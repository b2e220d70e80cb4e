"""Pure benchmark scorers: plain data and numpy in, metrics out. Nothing here imports Django.

Each benchmark module has a `VERSION` (stored with every result, bumped whenever a change would
alter a number), a loader that turns its data files into examples with clear errors naming file
and line, the model requests it needs (texts to score) and a scorer over the model's scores.
The model never appears here: an engine (`evaluation.engine`) turns requests into scores.
"""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


class BenchmarkDataError(ValueError):
    """A benchmark's data file is malformed; the message names the file, line and field."""
