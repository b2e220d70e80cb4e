"""Values the database cannot store, found before anything is written (pure: no Django).

PostgreSQL keeps no NUL character in text or JSON, no text with an unpaired UTF-16 surrogate
(Python decodes `"\\ud800"` in JSON into one; it cannot be encoded as UTF-8 for any database),
and JSON holds no NaN or infinity (`1e999` parses as one). Each would fail at insert time as a
server error; callers turn the path and reason into an error naming the field.
"""
from __future__ import annotations

import math
import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if _SURROGATE.search(text):
        return "contains an unpaired surrogate (such as \\ud800), which is not valid Unicode"
    return None


def unstorable(value: object, where: str = "") -> tuple[str, str] | None:
    """(field path, reason) of the first value in `value` that cannot be stored, or None."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return (where, problem) if problem else None
    if isinstance(value, float) and not math.isfinite(value):
        return where, "is not a finite number"
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{where}.{key}" if where else str(key)
            problem = _text_problem(str(key))
            if problem:
                return where or str(key), f"has a key that {problem}"
            found = unstorable(inner, path)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            found = unstorable(inner, f"{where}[{index}]")
            if found:
                return found
    return None
