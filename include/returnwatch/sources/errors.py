"""Errors a parser raises when a file is not what the publisher normally serves.

Every error names the source, the file (its sha256 or name), the sheet where there is one, the
row (1-based, as a spreadsheet shows it: the header is row 1) and what was expected, so the
first log line of a failed task tells ops where to look without opening the code.
"""

from __future__ import annotations


class SourceFileError(ValueError):
    """A received file cannot be turned into rows. The raw file stays in the archive."""

    kind = "bad_file"

    def __init__(self, *, source: str, file: str, problem: str, row: int | None = None,
                 column: str | None = None, sheet: str | None = None, seen: str | None = None,
                 expected: str | None = None) -> None:
        self.source, self.file, self.problem = source, file, problem
        self.row, self.column, self.sheet = row, column, sheet
        self.seen, self.expected = seen, expected
        super().__init__(self.describe())

    def describe(self) -> str:
        where = [f"source {self.source}", f"file {self.file}"]
        if self.sheet:
            where.append(f"sheet {self.sheet!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column!r}")
        text = f"{', '.join(where)}: {self.problem}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.seen is not None:
            text += f"; saw {_clip(self.seen)}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "source": self.source, "file": self.file, "sheet": self.sheet,
                "row": self.row, "column": self.column, "problem": self.problem,
                "expected": self.expected, "seen": self.seen}


class LayoutChanged(SourceFileError):
    """The file's header, sheet or table is not one the parser knows: the publisher changed
    its layout (or served something else, like an HTML error page). Needs a person."""

    kind = "layout_changed"


class BadValue(SourceFileError):
    """A cell cannot be read as the type its column holds (a date, a count)."""

    kind = "bad_value"


def _clip(text: str, limit: int = 160) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
