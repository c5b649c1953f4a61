"""The dataset's CSV export (healthdata.gov ``ehpz-xc9n``) into typed rows of ``raw.hhs_uc_daily``.

A pure function of the bytes. The quirks it handles (date spellings, header noise, thousands
separators, blank trailing rows, repeated dates kept and counted) are in docs/sources.md,
section A; anything else raises an error naming file, row and expectation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.sources.errors import BadValue, LayoutChanged, check_count, csv_rows, refuse_nul
from returnwatch.sources.hhs_uc_daily.schema import SOURCE

if TYPE_CHECKING:
    import pandas as pd


# The publisher's footnote on the first count, verbatim (docs/sources.md A.1).
MEXICO_FOOTNOTE = (
    "*This number does not include children from Mexico, most of whom will be repatriated "
    "and will not remain in CBP custody."
)

# Header as published (normalised: lower case, single spaces, no trailing '*') -> raw column.
COLUMNS: dict[str, str] = {
    "date": "report_date",
    "children apprehended and placed in cbp custody": "apprehended_placed_in_cbp_custody",
    "children in cbp custody": "in_cbp_custody",
    "children transferred out of cbp custody": "transferred_out_of_cbp_custody",
    "children in hhs care": "in_hhs_care",
    "children discharged from hhs care": "discharged_from_hhs_care",
}
COUNT_COLUMNS = [c for c in COLUMNS.values() if c != "report_date"]
EXPECTED_HEADER = (
    "Date, Children apprehended and placed in CBP custody[*], Children in CBP custody, "
    "Children transferred out of CBP custody, Children in HHS Care, "
    "Children discharged from HHS Care"
)

_TEXT_DATE_FORMATS = ("%B %d, %Y", "%B %d %Y", "%b %d, %Y", "%b %d %Y", "%Y-%m-%d", "%m/%d/%Y")
# Excel's day zero: serial 1 is 1900-01-01 with the 1900 leap-year bug, so day 0 is 1899-12-30.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
# Serial numbers of plausible report dates (2000-01-01 .. 2100-01-01): anything else is not a date.
_EXCEL_SERIALS = range(36526, 73051)
_COUNT = re.compile(r"^\d{1,3}(,\d{3})+$|^\d+$|^\d+\.0+$")


@dataclass
class ParsedFile:
    """Rows of one file, in file order, plus what the parser noticed on the way."""

    source: str
    file: str
    rows: list[dict[str, Any]]  # report_date (a date), the counts, source_row
    header: list[str]
    blank_rows: int = 0
    # report_date -> file rows, for dates that occur more than once with different figures.
    conflicting_dates: dict[dt.date, list[int]] = field(default_factory=dict)
    # Same date, same figures: harmless repeats, counted only.
    repeated_identical_rows: int = 0
    footnote_star_in_header: bool = False
    order: str = "empty"

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with the raw table's columns (counts as nullable Int64)."""
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=["report_date", *COUNT_COLUMNS, "source_row"])
        for column in COUNT_COLUMNS:
            frame[column] = frame[column].astype("Int64")
        frame["source_row"] = frame["source_row"].astype("int64")
        return frame

    def summary(self) -> dict[str, object]:
        dates = [r["report_date"] for r in self.rows]
        return {
            "rows": len(self.rows),
            "first_date": min(dates).isoformat() if dates else None,
            "last_date": max(dates).isoformat() if dates else None,
            "blank_rows": self.blank_rows,
            "conflicting_dates": len(self.conflicting_dates),
            "repeated_identical_rows": self.repeated_identical_rows,
            "footnote_star_in_header": self.footnote_star_in_header,
            "order": self.order,
        }


def parse(content: bytes, *, file: str) -> ParsedFile:
    """Parse one CSV export of dataset ehpz-xc9n. ``file`` names it in errors (sha256 or name)."""
    refuse_nul(content, source=SOURCE, file=file, expected=f"the header {EXPECTED_HEADER}")
    text = _decode(content, file)
    if not text.strip():
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="the file is empty",
            expected=f"the header {EXPECTED_HEADER}",
            seen=text,
        )
    _refuse_non_csv(text, file)
    if not text.endswith(("\n", "\r")):
        last_row = text.count("\n") + 1
        raise BadValue(
            source=SOURCE,
            file=file,
            row=last_row,
            problem="the file ends in the middle of a line (truncated download?)",
            expected="a CSV export that ends with a line break",
            seen=text.rsplit("\n", 1)[-1],
        )

    reader = csv.reader(io.StringIO(text, newline=""))
    lines = csv_rows(reader, source=SOURCE, file=file, expected="a CSV export")
    header = next(lines)
    columns, star = _match_header(header, file)
    parsed = ParsedFile(
        source=SOURCE, file=file, rows=[], header=header, footnote_star_in_header=star
    )

    seen_by_date: dict[dt.date, tuple[int, tuple[object, ...]]] = {}
    for row_number, cells in enumerate(lines, start=2):
        if not any(cell.strip() for cell in cells):
            parsed.blank_rows += 1
            continue
        if len(cells) != len(header):
            raise BadValue(
                source=SOURCE,
                file=file,
                row=row_number,
                problem=f"the row has {len(cells)} fields instead of {len(header)}",
                expected="one value per header column",
                seen=",".join(cells),
            )
        record: dict[str, Any] = {"source_row": row_number}
        for column, cell in zip(columns, cells):
            if column == "report_date":
                record[column] = _parse_date(cell, file=file, row=row_number)
            else:
                record[column] = _parse_count(cell, file=file, row=row_number, column=column)
        _note_repeat(parsed, seen_by_date, record, row_number)
        parsed.rows.append(record)

    parsed.order = _order(parsed.rows)
    return parsed


def _decode(content: bytes, file: str) -> str:
    try:
        return content.decode("utf-8-sig")  # Excel-saved copies start with a byte-order mark
    except UnicodeDecodeError as exc:
        row = content[: exc.start].count(b"\n") + 1
        raise BadValue(
            source=SOURCE,
            file=file,
            row=row,
            problem="the file is not UTF-8 text",
            expected="a UTF-8 CSV export",
            seen=content[max(0, exc.start - 20) : exc.start + 20].decode("latin-1"),
        ) from None


def _refuse_non_csv(text: str, file: str) -> None:
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype", "<html", "<?xml", "<")) or "<html" in head:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="the publisher served an HTML page instead of the CSV export",
            expected=f"the header {EXPECTED_HEADER}",
            seen=text.lstrip()[:120],
        )
    if head.startswith(("{", "[")):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="the publisher served JSON instead of the CSV export",
            expected=f"the header {EXPECTED_HEADER}",
            seen=text.lstrip()[:120],
        )


def _normalise_label(label: str) -> str:
    return " ".join(label.replace("\ufeff", "").strip().rstrip("*").split()).lower()


def _match_header(header: list[str], file: str) -> tuple[list[str], bool]:
    """Map the file's header to raw columns by label, never by position."""
    columns: list[str] = []
    for label in header:
        column = COLUMNS.get(_normalise_label(label))
        if column is None or column in columns:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                row=1,
                problem=f"unknown or repeated column {label!r} in the header",
                expected=f"the header {EXPECTED_HEADER}",
                seen=",".join(header),
            )
        columns.append(column)
    missing = [c for c in COLUMNS.values() if c not in columns]
    if missing:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem=f"columns {missing} are missing from the header",
            expected=f"the header {EXPECTED_HEADER}",
            seen=",".join(header),
        )
    star = any(label.strip().endswith("*") for label in header)
    return columns, star


def _parse_date(cell: str, *, file: str, row: int) -> dt.date:
    value = " ".join(cell.strip().split())
    for fmt in _TEXT_DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    if value.isdigit() and int(value) in _EXCEL_SERIALS:
        return _EXCEL_EPOCH + dt.timedelta(days=int(value))
    raise BadValue(
        source=SOURCE,
        file=file,
        row=row,
        column="Date",
        problem="the date cannot be read",
        expected="a date like 'December 09, 2025', 'March 23 2021' or '2025-12-09'",
        seen=cell,
    )


def _parse_count(cell: str, *, file: str, row: int, column: str) -> int | None:
    value = cell.strip()
    if value == "":
        return None  # empty is not zero: later exports leave whole columns empty
    if not _COUNT.match(value):
        raise BadValue(
            source=SOURCE,
            file=file,
            row=row,
            column=column,
            problem="the count is not a whole number",
            expected="digits, optionally with thousands separators ('2,484')",
            seen=cell,
        )
    # The whole part as digits: int(float()) loses digits and overflows on huge counts.
    whole = int(value.replace(",", "").partition(".")[0])
    return check_count(whole, source=SOURCE, file=file, row=row, column=column)


def _note_repeat(
    parsed: ParsedFile,
    seen: dict[dt.date, tuple[int, tuple[object, ...]]],
    record: dict[str, Any],
    row_number: int,
) -> None:
    date = record["report_date"]
    figures = tuple(record[c] for c in COUNT_COLUMNS)
    if date not in seen:
        seen[date] = (row_number, figures)
        return
    first_row, first_figures = seen[date]
    if figures == first_figures:
        parsed.repeated_identical_rows += 1
    else:
        parsed.conflicting_dates.setdefault(date, [first_row]).append(row_number)


def _order(rows: list[dict[str, Any]]) -> str:
    dates = [r["report_date"] for r in rows]
    if len(dates) < 2:
        return "single" if dates else "empty"
    if all(a >= b for a, b in zip(dates, dates[1:])):
        return "newest_first"
    if all(a <= b for a, b in zip(dates, dates[1:])):
        return "oldest_first"
    return "mixed"
