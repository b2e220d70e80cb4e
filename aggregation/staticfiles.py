"""A static-files finder for plotly.js from the installed `plotly` wheel (no CDN, no copy in git).

`{% static "vendor/plotly.min.js" %}` then works like any static file: `runserver` and the test
live server find it through this finder, and `collectstatic` copies it for WhiteNoise.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage

PLOTLY_PATH = "vendor/plotly.min.js"


def plotly_file() -> Path | None:
    """plotly.min.js inside the installed plotly package, found without importing plotly."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs: Any) -> list[CheckMessage]:
        if plotly_file() is None:
            return [Error("plotly.min.js was not found: install the pinned `plotly` package.",
                          id="aggregation.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        found = plotly_file()
        if path != PLOTLY_PATH or found is None:
            return []  # as Django's own finders: an empty list, never "" (which reads as a match)
        return [str(found)] if find_all or kwargs.get("all") else str(found)

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        found = plotly_file()
        if found is None:
            return
        storage = FileSystemStorage(location=str(found.parent))
        storage.prefix = str(Path(PLOTLY_PATH).parent)  # type: ignore[attr-defined]
        yield found.name, storage
