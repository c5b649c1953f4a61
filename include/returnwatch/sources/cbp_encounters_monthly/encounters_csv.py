"""CBP's encounter CSVs (``aor``, ``state``, ``sbo`` layouts) into typed rows: a pure function
of the bytes. Columns are matched by header label, never position; the quirks handled (fiscal
months, ``UAC`` vs ``UC / Single Minors``, float counts, ...) are in docs/sources.md, section B.

Speed: each column is checked and converted once per distinct value, then mapped back with
pandas, so a ~100k-row file costs no per-cell Python work beyond reading the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.sources.cbp_encounters_monthly.schema import FRAME_COLUMNS, SOURCE
from returnwatch.sources.errors import (
    COUNT_MAX,
    BadValue,
    LayoutChanged,
    csv_rows,
    refuse_nul,
)

if TYPE_CHECKING:
    import pandas as pd


# ------------------------------------------------------------------------------ layouts

# Header label as published -> raw column. Labels are compared after label_key().
_LABEL_COLUMNS: dict[str, str] = {
    "Fiscal Year": "fiscal_year",
    "Month Grouping": "month_grouping",
    "Month (abbv)": "month",
    "Component": "component",
    "Land Border Region": "land_border_region",
    "Area of Responsibility": "area_of_responsibility",
    "AOR (Abbv)": "aor_abbv",
    "State": "state",
    "Demographic": "demographic",
    "Citizenship": "citizenship",
    "Citizenship Grouping": "citizenship_grouping",
    "Title of Authority": "title_of_authority",
    "Encounter Type": "encounter_type",
    "Encounter Count": "encounters",
}

# The headers, verbatim and in CBP's order (docs/sources.md B).
HEADERS: dict[str, tuple[str, ...]] = {
    "aor": (
        "Fiscal Year",
        "Month Grouping",
        "Month (abbv)",
        "Component",
        "Land Border Region",
        "Area of Responsibility",
        "AOR (Abbv)",
        "Demographic",
        "Citizenship",
        "Title of Authority",
        "Encounter Type",
        "Encounter Count",
    ),
    "state": (
        "Fiscal Year",
        "Month Grouping",
        "Month (abbv)",
        "Land Border Region",
        "State",
        "Demographic",
        "Citizenship",
        "Title of Authority",
        "Encounter Count",
    ),
    "sbo": (
        "Fiscal Year",
        "Month Grouping",
        "Month (abbv)",
        "Component",
        "Demographic",
        "Citizenship Grouping",
        "Title of Authority",
        "Encounter Type",
        "Encounter Count",
    ),
}


# CBP's fiscal year starts in October: the fiscal month order, and each month's calendar month.
FISCAL_MONTHS = ("OCT", "NOV", "DEC", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP")
_CALENDAR_MONTH = {abbv: (i + 9) % 12 + 1 for i, abbv in enumerate(FISCAL_MONTHS)}

# One name per demographic; CBP's files print the unaccompanied children as ``UAC`` in some
# vintages and ``UC / Single Minors`` in others (docs/sources.md B; PROVENANCE "Quirks found").
UC = "UC / Single Minors"
_DEMOGRAPHICS = {
    "uac": UC,
    "uc/singleminors": UC,
    "fmua": "FMUA",
    "singleadults": "Single Adults",
    "accompaniedminors": "Accompanied Minors",
}

_FISCAL_YEAR = re.compile(r"^(\d{4})(?:\s*\(\s*FYTD\s*\))?$", re.IGNORECASE)
# Whole numbers, float strings of whole numbers (9584.0) and, in hand-saved copies, thousands
# separators. A fractional part other than zeros is caught after matching.
_COUNT = re.compile(r"^-?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d*)?$")


def label_key(label: str) -> str:
    """Header labels compared without case, byte-order mark or spacing differences."""
    return " ".join(label.replace("\ufeff", "").split()).lower()


_KEY_TO_LABEL = {label_key(label): label for label in _LABEL_COLUMNS}


# ------------------------------------------------------------------------------ parsed file


@dataclass
class ParsedFile:
    """Rows of one CBP CSV in file order, plus what the parser noticed on the way."""

    source: str
    file: str
    kind: str
    table: pd.DataFrame
    header: list[str]
    facts: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The raw table's columns except ``source_file`` and ``vintage``."""
        return self.table[FRAME_COLUMNS[self.kind]].copy()

    def summary(self) -> dict[str, Any]:
        months = self.table["month"]
        return {
            "kind": self.kind,
            "rows": len(self.table),
            "first_month": months.min().isoformat() if len(months) else None,
            "last_month": months.max().isoformat() if len(months) else None,
            "encounters": int(self.table["encounters"].sum()),
            **self.facts,
        }


# ------------------------------------------------------------------------------ parsing


def parse_aor(content: bytes, *, file: str) -> ParsedFile:
    """Parse a ``nationwide-encounters-...-aor.csv`` file."""
    return parse(content, file=file, kind="aor")


def parse_state(content: bytes, *, file: str) -> ParsedFile:
    """Parse a ``nationwide-encounters-...-state.csv`` file."""
    return parse(content, file=file, kind="state")


def parse_sbo(content: bytes, *, file: str) -> ParsedFile:
    """Parse a ``sbo-encounters-...csv`` (Southwest land border) file."""
    return parse(content, file=file, kind="sbo")


def parse(content: bytes, *, file: str, kind: str) -> ParsedFile:
    """Parse one CBP encounters CSV of layout ``kind``. ``file`` names it in errors."""
    import pandas as pd

    expected = _expected(kind)
    text = decode_csv(content, file, expected)
    refuse_non_csv(text, file, expected)  # an HTML page or a workbook, named as such
    refuse_nul(content, source=SOURCE, file=file, expected=expected)
    if not text.endswith(("\n", "\r")):
        # CBP's files end with a line break; a body without one was cut off in transit, and a
        # cut inside a count ("9584" -> "95") would otherwise load a wrong figure silently.
        raise BadValue(
            source=SOURCE,
            file=file,
            row=text.count("\n") + 1,
            problem="the file ends in the middle of a line (truncated download?)",
            expected="a CSV that ends with a line break",
            seen=text.rsplit("\n", 1)[-1],
        )

    reader = csv.reader(io.StringIO(text, newline=""))
    lines = csv_rows(reader, source=SOURCE, file=file, expected=expected)
    header = next(lines)
    columns = _match_header(header, kind, file)
    width = len(header)
    records: list[list[str]] = []
    rows: list[int] = []
    blank = 0
    for cells in lines:
        if not any(cell.strip() for cell in cells):
            blank += 1
            continue
        if len(cells) != width:
            raise BadValue(
                source=SOURCE,
                file=file,
                row=reader.line_num,
                problem=f"the row has {len(cells)} fields instead of {width}",
                expected="one value per header column",
                seen=",".join(cells),
            )
        records.append(cells)
        rows.append(reader.line_num)

    raw = pd.DataFrame(records, columns=columns, dtype=object)
    row_numbers = pd.Series(rows, dtype="int64")
    table = pd.DataFrame({"source_row": row_numbers})

    fiscal_year, fiscal_label = _fiscal_years(raw["fiscal_year"], row_numbers, file)
    month_abbv = _mapped(
        raw["month"],
        row_numbers,
        file,
        "Month (abbv)",
        _read_month,
        "a month abbreviation OCT, NOV, ..., SEP",
    )
    table["fiscal_year"] = fiscal_year
    table["fiscal_year_published"] = fiscal_label
    table["month"] = _calendar_months(fiscal_year, month_abbv)
    table["month_abbv"] = month_abbv
    for column in columns:
        if column in {"fiscal_year", "month", "encounters"}:
            continue
        label = _column_label(column)
        values = _mapped(raw[column], row_numbers, file, label, _read_text, "a value")
        if column == "demographic":
            table["demographic_published"] = values
            values = values.map(_normalise_demographic)
        table[column] = values
    table["encounters"] = _mapped(
        raw["encounters"],
        row_numbers,
        file,
        "Encounter Count",
        _read_count,
        f"a whole number of encounters from 0 to {COUNT_MAX:,} (e.g. 9584 or 9584.0)",
    ).astype("int64")
    facts = _facts(raw, table, text, blank)
    table = table[FRAME_COLUMNS[kind]]
    return ParsedFile(source=SOURCE, file=file, kind=kind, table=table, header=header, facts=facts)


def _expected(kind: str) -> str:
    if kind not in HEADERS:
        raise ValueError(f"unknown CBP file kind {kind!r}; known: {sorted(HEADERS)}")
    return f"the {kind} header " + ",".join(HEADERS[kind])


def decode_csv(content: bytes, file: str, expected: str) -> str:
    if content[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0"):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="the file is an Excel workbook, not a CSV",
            expected=expected,
            seen=repr(content[:16]),
        )
    try:
        return content.decode("utf-8-sig")  # Excel-saved copies start with a byte-order mark
    except UnicodeDecodeError:
        # Hand-saved copies from Windows; CBP's own files are ASCII.
        return content.decode("cp1252", errors="replace")


def refuse_non_csv(text: str, file: str, expected: str) -> None:
    stripped = text.lstrip()
    if not stripped:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="the body is empty instead of the CSV",
            expected=expected,
            seen=text[:40],
        )
    head = stripped[:300].lower()
    if head.startswith("<") or "<html" in head or "<!doctype" in head:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="the publisher served an HTML page instead of the CSV "
            "(an error or maintenance page)",
            expected=expected,
            seen=stripped[:160],
        )
    if head.startswith(("{", "[")):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="the publisher served JSON instead of the CSV",
            expected=expected,
            seen=stripped[:160],
        )


def _some(labels: list[str], shown: int = 6) -> str:
    """A list for a message, cut after ``shown`` (a damaged header can have 100k cells)."""
    more = f" and {len(labels) - shown:,} more" if len(labels) > shown else ""
    return f"{[label[:60] for label in labels[:shown]]}{more}"


def _match_header(header: list[str], kind: str, file: str) -> list[str]:
    """Raw column of each header cell, by label; any other header is a layout change."""
    wanted = {label_key(label) for label in HEADERS[kind]}
    keys = [label_key(label) for label in header]
    unknown = [label for label, key in zip(header, keys) if key not in wanted]
    missing = [label for label in HEADERS[kind] if label_key(label) not in keys]
    times = Counter(keys)  # not keys.count() per cell: quadratic on a damaged 100k-cell header
    repeated = sorted({label for label, key in zip(header, keys) if times[key] > 1})
    if unknown or missing or repeated:
        problems = []
        if missing:
            problems.append(f"columns {missing} are missing")
        if unknown:
            problems.append(f"columns {_some(unknown)} are not in this layout")
        if repeated:
            problems.append(f"columns {_some(repeated)} appear twice")
        other = [
            k for k in HEADERS if k != kind and {label_key(x) for x in HEADERS[k]} == set(keys)
        ]
        if other:
            problems.append(f"this is the {other[0]} layout")
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="unknown header: " + "; ".join(problems),
            expected=_expected(kind),
            seen=",".join(header),
        )
    return [_LABEL_COLUMNS[_KEY_TO_LABEL[key]] for key in keys]


def _column_label(column: str) -> str:
    return next(label for label, col in _LABEL_COLUMNS.items() if col == column)


class _Unreadable(ValueError):
    """A cell value a column cannot hold."""


def _mapped(
    values: pd.Series,
    rows: pd.Series,
    file: str,
    label: str,
    read: Callable[[str], Any],
    expected: str,
) -> pd.Series:
    """``read`` applied once per distinct value, mapped back; the first bad cell is an error."""
    converted: dict[str, Any] = {}
    bad: set[str] = set()
    for value in values.unique():
        try:
            converted[value] = read(value)
        except _Unreadable:
            bad.add(value)
    if bad:
        position = int(values.isin(bad).to_numpy().argmax())
        raise BadValue(
            source=SOURCE,
            file=file,
            row=int(rows.iloc[position]),
            column=label,
            problem=f"{label} cannot be read ({len(bad)} distinct bad value(s))",
            expected=expected,
            seen=values.iloc[position],
        )
    return values.map(converted)


def _read_text(value: str) -> str:
    text = value.strip()
    if not text:
        raise _Unreadable(value)
    return text


def _read_month(value: str) -> str:
    abbv = value.strip().upper()
    if abbv not in _CALENDAR_MONTH:
        raise _Unreadable(value)
    return abbv


def _read_count(value: str) -> int:
    text = value.strip()
    if not _COUNT.match(text):
        raise _Unreadable(value)
    whole, _, fraction = text.replace(",", "").partition(".")
    if fraction.strip("0"):
        raise _Unreadable(value)  # 12.5 encounters is not a count
    if not 0 <= int(whole) <= COUNT_MAX:  # negative, or too large for the INTEGER column
        raise _Unreadable(value)
    return int(whole)


def _fiscal_years(values: pd.Series, rows: pd.Series, file: str) -> tuple[pd.Series, pd.Series]:
    def read(value: str) -> tuple[int, str]:
        match = _FISCAL_YEAR.match(value.strip())
        if not match or not 2000 <= int(match.group(1)) <= 2100:
            raise _Unreadable(value)
        return int(match.group(1)), value.strip()

    labels = _mapped(
        values,
        rows,
        file,
        "Fiscal Year",
        lambda v: read(v)[1],
        "a fiscal year like 2023 or '2023 (FYTD)'",
    )
    numbers = {label: read(label)[0] for label in labels.unique()}
    return labels.map(numbers).astype("int64"), labels


def _calendar_months(fiscal_year: pd.Series, abbv: pd.Series) -> pd.Series:
    """First day of the calendar month: OCT-DEC of fiscal year FY are in calendar year FY-1."""
    number = abbv.map(_CALENDAR_MONTH).astype("int64")
    year = fiscal_year - (number >= 10).astype("int64")
    key = year * 100 + number
    dates = {k: dt.date(k // 100, k % 100, 1) for k in key.unique().tolist()}
    return key.map(dates).astype(object)


def _normalise_demographic(label: str) -> str:
    return _DEMOGRAPHICS.get(label.replace(" ", "").lower(), label)


def _facts(raw: pd.DataFrame, table: pd.DataFrame, text: str, blank: int) -> dict[str, Any]:
    """What the file looked like, for the run log (not loaded)."""
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    # Month order inside each block of one fiscal year and month grouping, as first seen.
    blocks = table[["fiscal_year_published", "month_grouping", "month_abbv"]].drop_duplicates()
    orders = set()
    for _, block in blocks.groupby(["fiscal_year_published", "month_grouping"], sort=False):
        months = block["month_abbv"].tolist()
        if len(months) < 2:
            continue
        if months == sorted(months):
            orders.add("alphabetical")
        elif months == sorted(months, key=FISCAL_MONTHS.index):
            orders.add("calendar")
        else:
            orders.add("mixed")
    return {
        "fiscal_years_published": sorted(table["fiscal_year_published"].unique().tolist()),
        "month_groupings": {
            k: int(v) for k, v in table["month_grouping"].value_counts().sort_index().items()
        },
        "demographic_labels": sorted(table["demographic_published"].unique().tolist()),
        "counts_as_float_strings": bool(raw["encounters"].str.contains(".", regex=False).any()),
        "zero_rows": int((table["encounters"] == 0).sum()),
        "first_row_month": table["month_abbv"].iloc[0] if len(table) else None,
        "month_order": orders.pop() if len(orders) == 1 else "mixed" if orders else "single",
        "line_endings": "CRLF" if crlf and not lf else "LF" if lf and not crlf else "mixed",
        "blank_rows": blank,
    }
