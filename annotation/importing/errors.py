"""Import errors that name where the problem is: the line (or row) and the field."""
from __future__ import annotations


class FieldError(ValueError):
    """A problem with one field of one row; the reader adds the line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class RowError(ValueError):
    """A problem at a place in the input: `line 7, field 'responses': needs 2 to 16 responses, got 1`.

    `unit` is "line" for text files (JSONL, CSV: the 1-based line of the file), "row" for Parquet
    and `datasets` rows, "item" for a JSON request body. `line` is None for a problem with the
    whole file (unreadable type, bad CSV header row aside, which is line 1).
    """

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None,
                 unit: str = "line") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field
        self.unit = unit

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "unit": self.unit, "field": self.field, "message": self.message,
                "error": str(self)}


class ImportFailed(Exception):
    """Nothing was imported; `errors` lists every problem found (up to a cap)."""

    def __init__(self, errors: list[RowError], *, truncated: bool = False) -> None:
        self.errors = errors
        self.truncated = truncated
        more = " (stopped counting there)" if truncated else ""
        first = str(errors[0]) if errors else "unknown error"
        super().__init__(f"nothing imported: {len(errors)} error(s){more}; first: {first}")
