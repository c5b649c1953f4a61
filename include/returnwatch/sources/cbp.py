"""CBP monthly encounters (``https://www.cbp.gov/document/stats/nationwide-encounters``).

This module owns CBP's encounter CSVs: finding their links on the landing page, telling the
three layouts apart, and turning each into typed rows for ``raw.cbp_encounters_aor``,
``raw.cbp_encounters_state`` and ``raw.cbp_encounters_sbo``. Parsing is a pure function of the
bytes: no network, no warehouse.

The layouts (``docs/sources.md`` section B), matched by header label, never position:

- ``aor``: ``nationwide-encounters-fy{a}-fy{b}[-{mon}]-aor.csv``, 12 columns, one row per
  month x component x area of responsibility x demographic x citizenship x title x type;
- ``state``: ``nationwide-encounters-fy{a}-fy{b}[-{mon}]-state.csv``, 9 columns (state instead
  of component/area; no encounter type);
- ``sbo``: ``sbo-encounters-fy{a}-fy{b}[-{mon}].csv`` (Southwest land border), 9 columns,
  citizenship grouped into five title-case values.

Quirks handled, all seen in real releases:

- ``Fiscal Year`` reads ``2023`` or ``2023 (FYTD)``: ``fiscal_year`` is the number,
  ``fiscal_year_published`` keeps the label;
- ``Month (abbv)`` is ``OCT``..``SEP`` of the fiscal year: OCT-DEC belong to calendar year
  FY-1, so ``month`` (the first day of the calendar month) is derived from both columns;
- ``Month Grouping`` ``FYTD`` / ``Remaining``: both are real data (in a mid-year release the
  months of earlier years after the cut-off month are ``Remaining``), kept as a column;
- ``Demographic`` ``UAC`` in some vintages, ``UC / Single Minors`` in others: ``demographic``
  holds the one name (``UC / Single Minors``), ``demographic_published`` the label as printed,
  so a label change is never mistaken for a revision;
- counts as float strings (``9584.0``) in some files; a non-integral count is a ``BadValue``;
- CRLF line endings, rows sorted by month *name* (a release's first row may be ``DEC``),
  explicit zero rows, citizenship names with commas (``"CHINA, PEOPLES REPUBLIC OF"``).

Anything else (an HTML page or an empty body served instead of the CSV, an unknown or
renamed column, a truncated download, a month or count that cannot be read) raises an error
naming the file, the row and what was expected.

Speed: a 4-fiscal-year AOR file has ~100k rows. Rows are read with the csv module and each
column is checked and converted once per *distinct* value (a few thousand at most), then
mapped back with pandas, so no per-cell Python work happens beyond reading the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from returnwatch.sources.base import FileKind, GetPage, Link
from returnwatch.sources.errors import (
    COUNT_MAX,
    BadValue,
    LayoutChanged,
    csv_rows,
    refuse_nul,
    refuse_tag_flood,
)

if TYPE_CHECKING:
    import pandas as pd

SOURCE = "cbp_encounters_monthly"

# ------------------------------------------------------------------------------ layouts

# Header label as published -> raw column. Labels are compared after _label_key().
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

RAW_TABLES = {
    "aor": "cbp_encounters_aor",
    "state": "cbp_encounters_state",
    "sbo": "cbp_encounters_sbo",
}

# Columns every layout gets from the parser, in raw-table order. The published Fiscal Year
# and Demographic labels are kept next to their normalised values.
_LEADING = ["month", "fiscal_year", "fiscal_year_published", "month_grouping"]
_DIMENSIONS: dict[str, list[str]] = {
    "aor": [
        "component",
        "land_border_region",
        "area_of_responsibility",
        "aor_abbv",
        "demographic",
        "demographic_published",
        "citizenship",
        "title_of_authority",
        "encounter_type",
    ],
    "state": [
        "land_border_region",
        "state",
        "demographic",
        "demographic_published",
        "citizenship",
        "title_of_authority",
    ],
    "sbo": [
        "component",
        "demographic",
        "demographic_published",
        "citizenship_grouping",
        "title_of_authority",
        "encounter_type",
    ],
}
FRAME_COLUMNS: dict[str, list[str]] = {
    kind: [*_LEADING, *dims, "encounters", "source_row"] for kind, dims in _DIMENSIONS.items()
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


def _label_key(label: str) -> str:
    """Header labels compared without case, byte-order mark or spacing differences."""
    return " ".join(label.replace("\ufeff", "").split()).lower()


_KEY_TO_LABEL = {_label_key(label): label for label in _LABEL_COLUMNS}


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
    text = _decode(content, file, expected)
    _refuse_non_csv(text, file, expected)  # an HTML page or a workbook, named as such
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


def _decode(content: bytes, file: str, expected: str) -> str:
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


def _refuse_non_csv(text: str, file: str, expected: str) -> None:
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
    wanted = {_label_key(label) for label in HEADERS[kind]}
    keys = [_label_key(label) for label in header]
    unknown = [label for label, key in zip(header, keys) if key not in wanted]
    missing = [label for label in HEADERS[kind] if _label_key(label) not in keys]
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
            k for k in HEADERS if k != kind and {_label_key(x) for x in HEADERS[k]} == set(keys)
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


# ------------------------------------------------------------------------------ validation


# What each component records under each title (CBP's definitions, docs/sources.md B).
_EXPECTED_TYPE = {
    ("U.S. Border Patrol", "Title 8"): "Apprehensions",
    ("Office of Field Operations", "Title 8"): "Inadmissibles",
    ("U.S. Border Patrol", "Title 42"): "Expulsions",
    ("Office of Field Operations", "Title 42"): "Expulsions",
}


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Derived columns the suites check (never loaded).

    - ``title_42_month``: the month of Title 42 rows (empty otherwise), to check that they lie
      inside the Title 42 period;
    - ``encounter_type_expected``: what the component records under the title (aor/sbo).
    """
    frame = frame.copy()
    months = frame["month"]
    frame["title_42_month"] = months.where(frame["title_of_authority"] == "Title 42", None)
    if "encounter_type" in frame:
        frame["encounter_type_expected"] = [
            _EXPECTED_TYPE.get(pair, "(unknown component or title)")
            for pair in zip(frame["component"], frame["title_of_authority"])
        ]
    return frame


# A figure is one row of CBP's table: its identity is every dimension (normalised), so that
# a relabelled demographic (UAC -> UC / Single Minors) is not taken for a revision.
_KEYS = {
    "aor": (
        "month",
        "component",
        "land_border_region",
        "area_of_responsibility",
        "demographic",
        "citizenship",
        "title_of_authority",
        "encounter_type",
    ),
    "state": (
        "month",
        "land_border_region",
        "state",
        "demographic",
        "citizenship",
        "title_of_authority",
    ),
    "sbo": (
        "month",
        "component",
        "demographic",
        "citizenship_grouping",
        "title_of_authority",
        "encounter_type",
    ),
}

KINDS: dict[str, FileKind] = {
    "aor": FileKind(
        kind="aor",
        parse=parse_aor,
        raw_table=RAW_TABLES["aor"],
        suite="cbp_encounters_aor",
        key_columns=_KEYS["aor"],
        value_columns=("encounters",),
        prepare=_prepare,
        description="CBP Nationwide Encounters by Area of Responsibility "
        "(nationwide-encounters-fy{a}-fy{b}[-{mon}]-aor.csv): monthly encounters "
        "by component, border region, sector/field office, demographic, "
        "citizenship, title of authority and encounter type",
    ),
    "state": FileKind(
        kind="state",
        parse=parse_state,
        raw_table=RAW_TABLES["state"],
        suite="cbp_encounters_state",
        key_columns=_KEYS["state"],
        value_columns=("encounters",),
        prepare=_prepare,
        description="CBP Nationwide Encounters by State "
        "(nationwide-encounters-fy{a}-fy{b}[-{mon}]-state.csv): monthly encounters "
        "by border region, state, demographic, citizenship and title of authority",
    ),
    "sbo": FileKind(
        kind="sbo",
        parse=parse_sbo,
        raw_table=RAW_TABLES["sbo"],
        suite="cbp_encounters_sbo",
        key_columns=_KEYS["sbo"],
        value_columns=("encounters",),
        prepare=_prepare,
        description="CBP Southwest Land Border Encounters (sbo-encounters-fy{a}-fy{b}[-{mon}]"
        ".csv): monthly encounters at the Southwest land border by component, "
        "demographic, five citizenship groups, title and encounter type",
    ),
}

# ------------------------------------------------------------------------------ raw tables

_COMMON_HEAD = """
        month                  DATE NOT NULL,     -- first day of the calendar month (OCT-DEC are in FY-1)
        fiscal_year            INTEGER NOT NULL,  -- CBP fiscal year (Oct-Sep), from 'Fiscal Year'
        fiscal_year_published  VARCHAR NOT NULL,  -- 'Fiscal Year' as printed: '2023' or '2023 (FYTD)'
        month_grouping         VARCHAR NOT NULL,  -- 'FYTD' or 'Remaining': both are real data"""
_DEMOGRAPHIC = """
        demographic            VARCHAR NOT NULL,  -- 'UC / Single Minors' (printed 'UAC' in some vintages), 'FMUA', 'Single Adults', 'Accompanied Minors'
        demographic_published  VARCHAR NOT NULL,  -- 'Demographic' as printed in this file"""
_COMMON_TAIL = """
        encounters             INTEGER NOT NULL,  -- 'Encounter Count': events, not people
        source_file            VARCHAR NOT NULL,  -- sha256 of the archived CSV
        source_row             INTEGER NOT NULL,  -- line in that file, header = 1
        vintage                DATE NOT NULL,     -- publication date of that file
        PRIMARY KEY (source_file, source_row)"""

RAW_DDL = [
    f"""
    CREATE TABLE IF NOT EXISTS raw.{RAW_TABLES["aor"]} ({_COMMON_HEAD}
        component              VARCHAR NOT NULL,  -- 'U.S. Border Patrol' (between ports) or 'Office of Field Operations' (at ports)
        land_border_region     VARCHAR NOT NULL,  -- 'Southwest Land Border', 'Northern Land Border', 'Other'
        area_of_responsibility VARCHAR NOT NULL,  -- USBP sector or OFO field office, e.g. 'Rio Grande Valley Sector'
        aor_abbv               VARCHAR NOT NULL,  -- 'AOR (Abbv)' as printed, e.g. 'RGV'{_DEMOGRAPHIC}
        citizenship            VARCHAR NOT NULL,  -- upper case as printed, e.g. 'MEXICO', 'CHINA, PEOPLES REPUBLIC OF', 'OTHER'
        title_of_authority     VARCHAR NOT NULL,  -- 'Title 8' or 'Title 42' (2020-03-21 .. 2023-05-11)
        encounter_type         VARCHAR NOT NULL,  -- 'Apprehensions' (USBP, T8), 'Inadmissibles' (OFO, T8), 'Expulsions' (T42){_COMMON_TAIL}
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.{RAW_TABLES["state"]} ({_COMMON_HEAD}
        land_border_region     VARCHAR NOT NULL,  -- 'Southwest Land Border', 'Northern Land Border', 'Other'
        state                  VARCHAR NOT NULL,  -- two-letter code as printed (includes DC, PR, GU, VI, MP){_DEMOGRAPHIC}
        citizenship            VARCHAR NOT NULL,  -- upper case as printed, e.g. 'MEXICO'
        title_of_authority     VARCHAR NOT NULL,  -- 'Title 8' or 'Title 42'{_COMMON_TAIL}
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.{RAW_TABLES["sbo"]} ({_COMMON_HEAD}
        component              VARCHAR NOT NULL,  -- 'U.S. Border Patrol' or 'Office of Field Operations'{_DEMOGRAPHIC}
        citizenship_grouping   VARCHAR NOT NULL,  -- 'El Salvador', 'Guatemala', 'Honduras', 'Mexico', 'Other' as printed
        title_of_authority     VARCHAR NOT NULL,  -- 'Title 8' or 'Title 42'
        encounter_type         VARCHAR NOT NULL,  -- 'Apprehensions', 'Inadmissibles', 'Expulsions'{_COMMON_TAIL}
    )
    """,
]

# ------------------------------------------------------------------------------ manual ingest


def detect_kind(name: str, content: bytes) -> str:
    """Which layout a hand-downloaded file is, by its header (the name is only for errors)."""
    expected = "one of the headers: " + " | ".join(",".join(h) for h in HEADERS.values())
    text = _decode(content[:65536], name, expected)
    _refuse_non_csv(text, name, expected)
    header = next(csv.reader(io.StringIO(text.splitlines()[0], newline="")), [])
    keys = {_label_key(label) for label in header}
    for kind, labels in HEADERS.items():
        if keys == {_label_key(label) for label in labels}:
            return kind
    raise LayoutChanged(
        source=SOURCE,
        file=name,
        row=1,
        problem="the header is none of CBP's encounter layouts (aor, state, sbo)",
        expected=expected,
        seen=",".join(header),
    )


# ------------------------------------------------------------------------------ discovery

# File names as CBP uploads them (the folder before them changes with every upload):
#   nationwide-encounters-fy22-fy25-may-aor.csv, nationwide-encounters-fy21-fy24-state.csv,
#   sbo-encounters-fy23-fy26-apr.csv
_FILE_NAME = re.compile(
    r"^(?:nationwide-encounters-fy(?P<a>\d{2})-fy(?P<b>\d{2})(?:-(?P<mon>[a-z]{3}))?-(?P<kind>aor|state)"
    r"|sbo-encounters-fy(?P<sa>\d{2})-fy(?P<sb>\d{2})(?:-(?P<smon>[a-z]{3}))?)\.csv$",
    re.IGNORECASE,
)
# The upload folder: /sites/default/files/2025-06/... or, in older uploads,
# /sites/default/files/assets/documents/2023-Nov/...
_FOLDER = re.compile(r"/(\d{4}-(?:\d{2}|[A-Za-z]{3}))/[^/]+$")


def discover(
    get_page: GetPage,
    *,
    landing_url: str,
    run_at: dt.datetime,
    options: Mapping[str, Any] | None = None,
) -> list[Link]:
    """The encounter CSVs the landing page links, in page order (CBP lists the newest first).

    Every recognised file is returned (the current window and any older window still
    listed), so a figure revised in an older window's file is seen. ``options``:
    ``kinds`` limits the layouts fetched (default: all of ``KINDS``). A page that links no
    recognisable CSV means CBP changed its page: ``LayoutChanged``.
    """
    from bs4 import BeautifulSoup

    options = options or {}
    wanted = set(options.get("kinds") or KINDS)
    unknown_kinds = wanted - set(KINDS)
    if unknown_kinds:
        raise ValueError(f"options.kinds {sorted(unknown_kinds)} unknown; known: {sorted(KINDS)}")
    page = get_page(landing_url)
    refuse_tag_flood(
        page, source=SOURCE, file=landing_url, expected="CBP's nationwide encounters page"
    )
    refuse_nul(page, source=SOURCE, file=landing_url, expected="CBP's nationwide encounters page")
    soup = BeautifulSoup(page, "lxml")
    links: list[Link] = []
    seen_urls: set[str] = set()
    csv_hrefs: list[str] = []
    for anchor in soup.find_all("a", href=True):
        href = anchor["href"].strip()
        url = urljoin(landing_url, href)
        path = unquote(urlsplit(url).path)
        name = path.rsplit("/", 1)[-1]
        if not name.lower().endswith(".csv"):
            continue
        csv_hrefs.append(href)
        match = _FILE_NAME.match(name)
        if match is None or url in seen_urls:
            continue
        kind = (match.group("kind") or "sbo").lower()
        if kind not in wanted:
            continue
        seen_urls.add(url)
        first = int(match.group("a") or match.group("sa")) + 2000
        last = int(match.group("b") or match.group("sb")) + 2000
        through = (match.group("mon") or match.group("smon") or "").upper()
        folder = _FOLDER.search(path)
        links.append(
            Link(
                url=url,
                kind=kind,
                label=" ".join(anchor.get_text(" ").split()) or name,
                # The window, not the month: next month's file of the same window replaces this
                # one, so an incident about a bad file is resolved by the next good one.
                period=f"FY{first}-FY{last}",
                extra={
                    "file_name": name,
                    "folder": folder.group(1) if folder else "",
                    "first_fiscal_year": str(first),
                    "last_fiscal_year": str(last),
                    "through_month": through,
                },
            )
        )
    if not links:
        text = " ".join(soup.get_text(" ").split())[:160] if page.strip() else ""
        raise LayoutChanged(
            source=SOURCE,
            file=landing_url,
            row=None,
            problem="the landing page links no recognisable encounters CSV "
            f"(of kinds {sorted(wanted)}); CBP may have changed the page",
            expected="links to nationwide-encounters-fy{a}-fy{b}[-{mon}]-aor.csv / -state.csv "
            "or sbo-encounters-fy{a}-fy{b}[-{mon}].csv",
            seen=("CSV links: " + ", ".join(csv_hrefs))
            if csv_hrefs
            else (f"no CSV links; page text: {text}" if text else "an empty page"),
        )
    return links
