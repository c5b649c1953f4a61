"""HHS's "Latest UC Data – FY{YYYY}" HTML page into one row per figure (table, row, month).

Tables are recognised by their section heading and months by their header labels, never by
position; the layout and its quirks are in docs/sources.md. An unknown row label is kept with
``measure`` NULL so a new breakdown row never blocks the headline figures.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.sources.errors import BadValue, LayoutChanged, refuse_nul, refuse_tag_flood
from returnwatch.sources.hhs_uc_monthly.schema import COLUMNS, SOURCE

if TYPE_CHECKING:
    import pandas as pd
    from bs4 import Tag


# Section heading as published -> its known row labels (normalised, see _norm) -> measure id.
MEASURES: dict[str, dict[str, str]] = {
    "Overall Data": {
        "average number of children in care": "children_in_care_avg",
        "maximum number of operations beds": "operational_beds_max",
        "average occupancy rate": "occupancy_rate_avg",
        "average length of care (for those discharged)": "length_of_care_discharged_avg",
        "average length of care (for those in care)": "length_of_care_in_care_avg",
        "30-day average number of uc referrals": "uc_referrals_30day_avg",
        "30-day average uc discharge rate": "uc_discharge_rate_30day_avg",
    },
    "Gender": {"male": "gender_male", "female": "gender_female"},
    "Age": {
        "0-5": "age_0_5",
        "6-12": "age_6_12",
        "13-14": "age_13_14",
        "15-16": "age_15_16",
        # FY2018-FY2019 pages say "17", FY2020 on "17+": the same band (UC are under 18).
        "17": "age_17_plus",
        "17+": "age_17_plus",
    },
    "Tender Age (0-12) UC By Shelter Type": {
        "standard shelter": "tender_age_standard_shelter",
        "transitional foster care": "tender_age_transitional_foster_care",
        "residential treatment": "tender_age_residential_treatment",
        "staff secure": "tender_age_staff_secure",
        "secure": "tender_age_secure",
        "therapeutic": "tender_age_therapeutic",
        "long term foster care": "tender_age_long_term_foster_care",
    },
    "Total Monthly Discharges to Individual Sponsors Only (By Category)": {
        "category 1": "discharges_sponsor_category_1",
        "category 2": "discharges_sponsor_category_2",
        "category 3": "discharges_sponsor_category_3",
        "total": "discharges_sponsor_total",
    },
}
# Rows the marts and monitors read (docs/sources.md A.3 names them): a page without one of them is
# refused rather than loaded with a hole.
REQUIRED_MEASURES = (
    "children_in_care_avg",
    "occupancy_rate_avg",
    "uc_referrals_30day_avg",
    "uc_discharge_rate_30day_avg",
    "discharges_sponsor_category_1",
    "discharges_sponsor_category_2",
    "discharges_sponsor_category_3",
)
NUMBER_TYPES = ("Number", "Percent")


_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
# "Oct", "October", "Oct.", "Sept", "Oct 2020", "Oct-20".
_MONTH_HEADER = re.compile(r"^(?P<name>[a-z]{3})[a-z]*\.?(?:[\s\-]+(?P<year>\d{2}|\d{4}))?$")
_FISCAL_YEAR = re.compile(r"\bFY\s*(?P<fy>\d{4})\b|\bFiscal\s+Year\s+(?P<fy2>\d{4})\b", re.I)
_FIGURE = re.compile(r"^(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?P<percent>%)?$")
_BLANK = {"", "-", "\u2013", "\u2014"}
_MAX_SPAN = 50  # a colspan larger than any real table: a broken page, not a reason to loop
_SECTION_BY_NORM = {" ".join(name.lower().split()): name for name in MEASURES}


@dataclass
class ParsedPage:
    """The long rows of one fiscal year's page, plus what the parser noticed."""

    source: str
    file: str
    fiscal_year: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # month is a date
    tables: int = 0
    tables_skipped: int = 0  # tables without a month header (layout tables, notes)
    repeated_label_cells: int = 0  # label cells dropped because the page renders labels twice
    unknown_labels: list[str] = field(default_factory=list)  # "section / label"
    repeated_labels: list[str] = field(default_factory=list)  # same label twice in a section
    blank_values: int = 0

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=COLUMNS)
        frame["fiscal_year"] = frame["fiscal_year"].astype("int64")
        frame["value"] = frame["value"].astype("Float64")
        frame["source_row"] = frame["source_row"].astype("int64")
        return frame

    def summary(self) -> dict[str, object]:
        months = sorted({r["month"] for r in self.rows})
        return {
            "fiscal_year": self.fiscal_year,
            "rows": len(self.rows),
            "months": len(months),
            "first_month": months[0].isoformat() if months else None,
            "last_month": months[-1].isoformat() if months else None,
            "tables": self.tables,
            "tables_skipped": self.tables_skipped,
            "repeated_label_cells": self.repeated_label_cells,
            "unknown_labels": self.unknown_labels,
            "repeated_labels": self.repeated_labels,
            "blank_values": self.blank_values,
        }


# ------------------------------------------------------------------ parse


def parse(content: bytes, *, file: str) -> ParsedPage:
    """Parse one ``latest-uc-data-fy{YYYY}`` page. ``file`` names it in errors."""
    from bs4 import BeautifulSoup

    expected_page = "an HHS 'Latest UC Data – FY{YYYY}' page with tables of months as columns"
    refuse_nul(content, source=SOURCE, file=file, expected=expected_page)
    if not content.strip():
        raise LayoutChanged(
            source=SOURCE, file=file, problem="the page is empty", expected=expected_page, seen=""
        )
    head = content.lstrip()[:200].lower()
    if not (head.startswith((b"<!doctype html", b"<html")) or b"<html" in head):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            problem="the response is not an HTML page",
            expected=expected_page,
            seen=content[:120].decode("utf-8", "replace"),
        )
    if b"</html>" not in content.rstrip()[-64:].lower():
        raise BadValue(
            source=SOURCE,
            file=file,
            problem="the page ends before </html> (truncated download?)",
            expected="a complete HTML page",
            seen=content.rstrip()[-80:].decode("utf-8", "replace"),
        )

    refuse_tag_flood(content, source=SOURCE, file=file, expected=expected_page)
    soup = BeautifulSoup(content, "lxml")
    fiscal_year = _fiscal_year(soup, file)
    page = ParsedPage(source=SOURCE, file=file, fiscal_year=fiscal_year)
    seen_keys: set[tuple[str, str]] = set()
    for number, table in enumerate(soup.find_all("table"), start=1):
        _read_table(page, table, number, seen_keys, file)
    if page.tables == 0:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            problem="no table with months as columns on the page",
            expected=expected_page,
            seen=_page_text(soup),
        )
    _check_required(page, file)
    return page


def _fiscal_year(soup: Any, file: str) -> int:
    candidates = [tag.get_text(" ", strip=True) for tag in soup.find_all(["h1", "title"])]
    for text in candidates:
        found = _FISCAL_YEAR.search(text)
        if found:
            return int(found["fy"] or found["fy2"])
    raise LayoutChanged(
        source=SOURCE,
        file=file,
        problem="the page does not say which fiscal year it covers",
        expected="a heading like 'Latest UC Data – FY2021'",
        seen=" | ".join(candidates) or _page_text(soup),
    )


def _read_table(
    page: ParsedPage, table: Tag, number: int, seen_keys: set[tuple[str, str]], file: str
) -> None:
    """Read one table. Its month header row says how many label cells come before the months
    (two on these pages: every label is rendered twice); every data row must have that many
    label cells, all the same label, then one figure per month."""
    months: list[dt.date] | None = None
    label_cells = 1
    section: str | None = None
    where = f"table {number}"
    for row_number, tr in enumerate(table.find_all("tr"), start=1):
        cells = _cells(tr)
        if not any(cells):
            continue
        header = _month_header(cells, page.fiscal_year, file, where, row_number)
        if header is not None:
            months, label_cells = header, max(1, len(cells) - len(header))
            if section is None:
                section = _section(table, file, where)
                where = f"table {number} ({section})"
                page.tables += 1
            continue
        if months is None:
            continue  # rows above the month header (a title row), or not a data table
        if len({_norm(cell) for cell in cells}) == 1 and not _FIGURE.match(cells[0]):
            continue  # a sub-heading row inside the table (one cell spanning the columns)
        if len(cells) != label_cells + len(months):
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=where,
                row=row_number,
                problem=f"the row has {len(cells)} cells; the header has "
                f"{label_cells} label cell(s) and {len(months)} month "
                "columns",
                expected="the row's label, then one figure per month column",
                seen=" | ".join(cells),
            )
        label = _label(cells[:label_cells], file, where, row_number, cells)
        page.repeated_label_cells += label_cells - 1
        _add_rows(
            page,
            section or "",
            label,
            cells[label_cells:],
            months,
            seen_keys,
            file,
            where,
            row_number,
        )
    if months is None:
        page.tables_skipped += 1


def _label(label_cells: list[str], file: str, where: str, row_number: int, cells: list[str]) -> str:
    """The row's label: its label cells must all say the same (the page repeats it)."""
    distinct = {_norm(text) for text in label_cells}
    if len(distinct) != 1 or not label_cells[0]:
        problem = (
            "a row of figures without a label"
            if distinct <= {""}
            else f"the row has {len(distinct)} different label cells"
        )
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=where,
            row=row_number,
            problem=problem,
            expected="one label (rendered once per label column), then one figure per month",
            seen=" | ".join(cells),
        )
    return label_cells[0]


def _add_rows(
    page: ParsedPage,
    section: str,
    label: str,
    figures: list[str],
    months: list[dt.date],
    seen_keys: set[tuple[str, str]],
    file: str,
    where: str,
    row_number: int,
) -> None:
    canonical_section = _SECTION_BY_NORM.get(_norm(section))
    measure = MEASURES.get(canonical_section or "", {}).get(_norm(label))
    if measure is None:
        page.unknown_labels.append(f"{section} / {label}")
    key = (_norm(section), _norm(label))
    if key in seen_keys:
        page.repeated_labels.append(f"{section} / {label}")
    seen_keys.add(key)
    parsed = [_figure(text, file, where, row_number, month) for text, month in zip(figures, months)]
    # A blank cell takes the row's type, so "Percent" rows stay Percent where a month is empty.
    row_type = "Percent" if any(p and p[1] == "Percent" for p in parsed) else "Number"
    for month, figure in zip(months, parsed):
        if figure is None:
            page.blank_values += 1
        page.rows.append(
            {
                "fiscal_year": page.fiscal_year,
                "month": month,
                "section": section,
                "category": label,
                "measure": measure,
                "value": figure[0] if figure else None,
                "number_type": figure[1] if figure else row_type,
                # The n-th figure on the page: tables top to bottom, rows, then months left to right.
                "source_row": len(page.rows) + 1,
            }
        )


def _cells(tr: Tag) -> list[str]:
    """The row's cell texts, a cell spanning n columns counted n times (so rows line up)."""
    cells: list[str] = []
    for cell in tr.find_all(["th", "td"]):
        text = " ".join(cell.get_text(" ", strip=True).split())
        span = str(cell.get("colspan") or "1")
        cells.extend([text] * min(int(span) if span.isdigit() and int(span) > 0 else 1, _MAX_SPAN))
    return cells


def _month_header(
    cells: list[str], fiscal_year: int, file: str, where: str, row_number: int
) -> list[dt.date] | None:
    """The month columns' dates when the row ends in month names after its caption cells
    (none of them a figure), else None."""
    matches = [_MONTH_HEADER.match(cell.lower()) for cell in cells]
    month_matches: list[re.Match[str]] = []  # the cells at the end of the row that are months
    for match in reversed(matches):
        if not (match and match["name"] in _MONTHS):
            break
        month_matches.insert(0, match)
    trailing = len(month_matches)
    first = len(cells) - trailing
    if trailing == 0 or any(_FIGURE.match(cell) for cell in cells[:first]):
        return None
    dates = []
    for cell, match in zip(cells[first:], month_matches):
        month = _MONTHS[match["name"]]
        date = month_date(fiscal_year, month)
        if match["year"]:
            year = int(match["year"])
            year = year + 2000 if year < 100 else year
            if year != date.year:
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=where,
                    row=row_number,
                    problem=f"the month column {cell!r} is not in FY{fiscal_year}",
                    expected=f"months October {fiscal_year - 1} to September {fiscal_year}",
                    seen=" | ".join(cells),
                )
        dates.append(date)
    if len(set(dates)) != len(dates):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=where,
            row=row_number,
            problem="a month appears twice in the header",
            expected="each month once",
            seen=" | ".join(cells),
        )
    return dates


def _section(table: Tag, file: str, where: str) -> str:
    caption = table.find("caption")
    heading = caption or table.find_previous(["h2", "h3", "h4", "h5", "h6"])
    text = " ".join(heading.get_text(" ", strip=True).split()) if heading else ""
    if not text:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=where,
            problem="the table has no section heading",
            expected="a heading such as 'Overall Data' or 'Gender' before it",
            seen=" ".join(table.get_text(" ", strip=True).split())[:160],
        )
    return text


def _figure(
    text: str, file: str, where: str, row_number: int, month: dt.date
) -> tuple[float, str] | None:
    if text.strip() in _BLANK:
        return None  # empty is not zero
    found = _FIGURE.match(text.strip())
    if not found:
        raise BadValue(
            source=SOURCE,
            file=file,
            sheet=where,
            row=row_number,
            column=month.strftime("%b %Y"),
            problem="the figure is not a number",
            expected="a number like 1,929, 1.8 or 15%",
            seen=text,
        )
    value = float(found["number"].replace(",", ""))
    if not math.isfinite(value):  # hundreds of digits: not a figure HHS publishes
        raise BadValue(
            source=SOURCE,
            file=file,
            sheet=where,
            row=row_number,
            column=month.strftime("%b %Y"),
            problem="the figure is too large",
            expected="a number like 1,929, 1.8 or 15%",
            seen=text[:40],
        )
    return value, "Percent" if found["percent"] else "Number"


def _check_required(page: ParsedPage, file: str) -> None:
    seen = {row["measure"] for row in page.rows}
    missing = [m for m in REQUIRED_MEASURES if m not in seen]
    if not missing:
        return
    labels = {measure: label for rows in MEASURES.values() for label, measure in rows.items()}
    raise LayoutChanged(
        source=SOURCE,
        file=file,
        problem="rows the warehouse relies on are missing: "
        + ", ".join(repr(labels[m]) for m in missing),
        expected="the rows " + ", ".join(repr(labels[m]) for m in REQUIRED_MEASURES),
        seen="labels not recognised: " + ("; ".join(page.unknown_labels) or "none"),
    )


def _norm(label: str) -> str:
    """Compare labels without case, spacing, or the trailing ':' and footnote '*'s."""
    return " ".join(label.replace("\u00a0", " ").split()).lower().rstrip(":* ").strip()


def _page_text(soup: Any) -> str:
    return " ".join(soup.get_text(" ", strip=True).split())[:160]


def month_date(fiscal_year: int, month: int) -> dt.date:
    """First day of ``month`` of US federal fiscal year ``fiscal_year`` (Oct–Dec: FY−1)."""
    return dt.date(fiscal_year - 1 if month >= 10 else fiscal_year, month, 1)


def fiscal_year_of(day: dt.date) -> int:
    return day.year + 1 if day.month >= 10 else day.year
