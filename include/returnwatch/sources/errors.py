"""Errors a parser raises when a file is not what the publisher normally serves.

Every error names the source, the file (as the user or the URL gave it, with its sha256), the
sheet where there is one, the row (1-based, as a spreadsheet shows it: the header is row 1) and
what was expected, so the first log line of a failed task tells ops where to look without
opening the code.

``refusing`` turns anything else a parser lets out (a ``struct.error`` from a damaged
workbook, an lxml ``ValueError`` on a NUL byte, a ``MemoryError`` on a bomb...) into a
``SourceFileError``: a received file is either rows or one clear refusal, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Warehouse integer column types and the values they hold (DuckDB's ranges).
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "TINYINT": (-(2**7), 2**7 - 1),
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
}
COUNT_MAX = INTEGER_RANGES["INTEGER"][1]  # every count column of raw.* is an INTEGER


class SourceFileError(ValueError):
    """A received file cannot be turned into rows. The raw file stays in the archive."""

    kind = "bad_file"

    def __init__(
        self,
        *,
        source: str,
        file: str,
        problem: str,
        row: int | None = None,
        column: str | None = None,
        sheet: str | None = None,
        seen: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.source, self.file, self.problem = source, file, problem
        self.row, self.column, self.sheet = row, column, sheet
        self.seen, self.expected = seen, expected
        super().__init__(self.describe())

    def describe(self) -> str:
        where = [f"source {self.source}", f"file {self.file}"]
        if self.sheet:
            where.append(f"sheet {_clip(self.sheet, 120)}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {_clip(self.column, 120)}")
        # Clipped: a damaged file can put 100k header cells into a problem, and this text
        # goes to the log, the incident and the ops alert.
        text = f"{', '.join(where)}: {_clip(self.problem, 400, quote=False)}"
        if self.expected is not None:
            text += f"; expected {_clip(self.expected, 400, quote=False)}"
        if self.seen is not None:
            text += f"; saw {_clip(self.seen)}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "file": self.file,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "problem": self.problem,
            "expected": self.expected,
            "seen": self.seen,
        }


class LayoutChanged(SourceFileError):
    """The file's header, sheet or table is not one the parser knows: the publisher changed
    its layout (or served something else, like an HTML error page). Needs a person."""

    kind = "layout_changed"


class BadValue(SourceFileError):
    """A cell cannot be read as the type its column holds (a date, a count)."""

    kind = "bad_value"


def check_count(
    value: int,
    *,
    source: str,
    file: str,
    row: int | None,
    column: str | None,
    sheet: str | None = None,
    maximum: int = COUNT_MAX,
) -> int:
    """``value`` if it fits its warehouse column (a count: 0 to the INTEGER maximum), else a
    ``BadValue`` at parse time, naming where, rather than a failed insert later."""
    if 0 <= value <= maximum:
        return value
    raise BadValue(
        source=source,
        file=file,
        sheet=sheet,
        row=row,
        column=column,
        problem="the count is out of range for its warehouse column",
        expected=f"a whole number from 0 to {maximum:,}",
        seen=str(value),
    )


def refuse_nul(content: bytes, *, source: str, file: str, expected: str) -> None:
    """A text file (CSV, HTML) holding NUL bytes is refused, naming the line of the first.

    A NUL is never in a publisher's text: it is a damaged download, a UTF-16 file, or a binary
    served under a text name. CSV readers differ on it (some stop, some drop it, some warn and
    go on), so it is refused here, before any of them sees it."""
    at = content.find(b"\x00")
    if at < 0:
        return
    line = content.count(b"\n", 0, at) + 1
    utf16 = content.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        len(content) > 3 and (content[1] == 0) != (content[0] == 0)
    )
    raise BadValue(
        source=source,
        file=file,
        row=line,
        problem="the file is UTF-16 text, not the publisher's encoding"
        if utf16
        else "the file holds NUL bytes (damaged download or not a text file)",
        expected=expected,
        seen=content[max(0, at - 40) : at + 8].decode("latin-1"),
    )


def csv_rows(reader: Any, *, source: str, file: str, expected: str) -> Iterator[list[str]]:
    """A ``csv.reader``'s rows; a row it cannot split (a field over the csv module's size
    limit, a NUL) is a ``BadValue`` naming its line instead of a bare ``_csv.Error``."""
    import csv

    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BadValue(
                source=source,
                file=file,
                row=reader.line_num,
                problem="the line cannot be split into fields",
                expected=expected,
                seen=str(exc),
            ) from None
        yield row


# More markup tags than any page a publisher serves (HHS's monthly pages and the SEGOB and CBP
# listing pages have a few thousand): BeautifulSoup builds a Python object per tag, so a page
# of 100k+ tags (a damaged or hostile one) would hold a worker for many seconds.
MAX_PAGE_TAGS = 40_000


def refuse_tag_flood(
    content: bytes, *, source: str, file: str, expected: str, limit: int = MAX_PAGE_TAGS
) -> None:
    """Refuse an HTML page with more than ``limit`` tags before it is parsed."""
    tags = content.count(b"<")
    if tags > limit:
        raise LayoutChanged(
            source=source,
            file=file,
            problem=f"the page has {tags:,} tags, far more than the publisher's "
            "pages (a damaged page?)",
            expected=f"{expected}, under {limit:,} tags",
            seen=content[:80].decode("latin-1"),
        )


@contextmanager
def refusing(
    *, source: str, file: str, expected: str, passing: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Run a parser step; any exception but ours becomes a ``SourceFileError`` naming the file.

    ``Exception`` on purpose: the libraries under the parsers (xlrd, pdfminer, lxml, pyarrow,
    csv) report a damaged file with dozens of types, and every one means the same thing here.
    ``BaseException``s (KeyboardInterrupt, SystemExit, a test's timeout) go through.
    """
    ours: tuple[type[BaseException], ...] = (SourceFileError, *passing)
    try:
        yield
    except ours:  # ours, or what the caller handles (a fetch error)
        raise
    except MemoryError:
        raise SourceFileError(
            source=source,
            file=file,
            problem="the file is too large to read "
            "in memory (a decompression bomb or a damaged length?)",
            expected=expected,
        ) from None
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise SourceFileError(
            source=source,
            file=file,
            problem=f"the file cannot be read ({type(exc).__name__}): "
            "damaged, cut short, or not the layout the parser knows",
            expected=expected,
            seen=str(exc) or type(exc).__name__,
        ) from exc


def _clip(text: str, limit: int = 160, *, quote: bool = True) -> str:
    text = repr(text) if quote else text
    return text if len(text) <= limit else text[: limit - 1] + "…"
