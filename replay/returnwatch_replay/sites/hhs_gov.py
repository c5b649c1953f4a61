"""hhs.gov's "Latest UC Data – FY{YYYY}" pages on the replay mirror (source ``hhs_uc_monthly``).

What this module owns: serving, under ``/hhs_uc_monthly``, the per-fiscal-year pages of HHS's
monthly in-care statistics, FY2018–FY2021. The figures are real (The Washington Post's scrape
of these pages, ``include/replay/hhs_gov/wapo_fy2018_fy2021.csv``); the page around them is a
reconstruction of HHS's layout. A month appears on the 15th of the next month
(``PUBLICATION_DAY``, an assumption); content faults apply to the FY pages.

Layout, time model and faults: docs/replay.md#mirror-site-hhs-monthly-pages.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from returnwatch_replay.responses import OVERSIZE_BYTES, Response, text_response, with_validators

NAME = "hhs_uc_monthly"
DATA_FILE = Path("hhs_gov") / "wapo_fy2018_fy2021.csv"
PAGE_PATH = re.compile(
    r"^/programs/social-services/unaccompanied-children/latest-uc-data-fy(?P<fy>\d{4})/index\.html$"
)

# Month M's column appears on day PUBLICATION_DAY of month M+1 at PUBLICATION_TIME.
PUBLICATION_DAY = 15
PUBLICATION_TIME = dt.time(10, 0)
PUBLISHER_TZ = ZoneInfo("America/New_York")

HEADER_CAPTION = "In Care Statistics Calculated on the Last Day of the Month"
RENAMED_FROM = "Average Number of Children in Care:"
RENAMED_TO = "Average Number of Children in ORR Care:"
FISCAL_MONTHS = (10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9)
HTML_TYPE = "text/html; charset=utf-8"

MAINTENANCE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Site Maintenance | HHS.gov</title></head>
<body><h1>HHS.gov is temporarily unavailable</h1>
<p>We are performing scheduled maintenance. Please check back soon.</p>
</body></html>
"""

NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Page Not Found | HHS.gov</title></head>
<body><h1>Page Not Found</h1>
<p>The page you are looking for may have been moved or no longer exists.</p>
</body></html>
"""


@dataclass(frozen=True)
class Figure:
    text: str  # as printed on the page: "1,929", "1.8", "15%"


# fiscal year -> section -> label -> month -> figure, in the copy's order.
Figures = dict[int, dict[str, dict[str, dict[dt.date, Figure]]]]


def published_on(month: dt.date) -> dt.datetime:
    """When the column of ``month`` (its first day) appeared (the mirror's publication model)."""
    following = dt.date(month.year + (month.month == 12), month.month % 12 + 1, PUBLICATION_DAY)
    return dt.datetime.combine(following, PUBLICATION_TIME, tzinfo=PUBLISHER_TZ)


def is_published(month: dt.date, as_of: dt.date) -> bool:
    return published_on(month).date() <= as_of


def fiscal_year_of(month: dt.date) -> int:
    return month.year + 1 if month.month >= 10 else month.year


def read_figures(path: Path) -> Figures:
    """The Post's long copy (group,category,month,value,number_type) by fiscal year."""
    figures: Figures = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            month = dt.date.fromisoformat(row["month"])
            if month.day != 1:
                raise ValueError(f"{path} line {number}: month {row['month']!r} is not a first day")
            figures.setdefault(fiscal_year_of(month), {}).setdefault(row["group"], {}).setdefault(
                row["category"], {}
            )[month] = Figure(_printed(row, path, number))
    return figures


def _printed(row: dict[str, str], path: Path, number: int) -> str:
    """The figure as the page prints it: thousands separators, '%' for Percent."""
    text = row["value"].strip()
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f"{path} line {number}: value {text!r} is not a number")
    whole, _, decimals = text.partition(".")
    printed = f"{int(whole):,}" + (f".{decimals}" if decimals else "")
    if row["number_type"] == "Percent":
        return printed + "%"
    if row["number_type"] != "Number":
        raise ValueError(f"{path} line {number}: number_type {row['number_type']!r}")
    return printed


class HhsGovSite:
    """The FY pages of hhs.gov's unaccompanied children section, as of a day."""

    name = NAME

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DATA_FILE
        self._figures: Figures | None = None
        self._lock = threading.Lock()

    @staticmethod
    def is_data(path: str) -> bool:
        return PAGE_PATH.match(path) is not None

    @property
    def figures(self) -> Figures:
        with self._lock:  # read once, on the first request (a mirror starts instantly)
            if self._figures is None:
                self._figures = read_figures(self.path)
            return self._figures

    def months(self, fiscal_year: int, as_of: dt.date) -> list[dt.date]:
        """The months of ``fiscal_year`` on its page as of ``as_of``, in fiscal order."""
        sections = self.figures.get(fiscal_year, {})
        known = {
            m for labels in sections.values() for by_month in labels.values() for m in by_month
        }
        return sorted(
            (m for m in known if is_published(m, as_of)), key=lambda m: FISCAL_MONTHS.index(m.month)
        )

    def page(self, fiscal_year: int, as_of: dt.date) -> tuple[bytes, dt.datetime] | None:
        """The page's bytes and Last-Modified, or None when it does not exist yet."""
        months = self.months(fiscal_year, as_of)
        if not months:
            return None
        body = render_page(fiscal_year, months, self.figures[fiscal_year])
        return body.encode("utf-8"), published_on(max(months))

    def handle(
        self, path: str, query: str, headers: Any, as_of: dt.date, fault: str | None
    ) -> Response:
        found = PAGE_PATH.match(path)
        if found is None:
            return text_response(404, NOT_FOUND_PAGE, "text/html")
        page = self.page(int(found["fy"]), as_of)
        if page is None:
            return text_response(404, NOT_FOUND_PAGE, "text/html")
        body, last_modified = page
        if fault == "html_error":
            return text_response(200, MAINTENANCE_PAGE, "text/html")
        if fault == "empty":
            return Response(200, {"Content-Type": HTML_TYPE}, b"")
        if fault == "oversize":
            return Response(200, {"Content-Type": HTML_TYPE}, stream=_oversize_chunks(body))
        if fault == "truncated":
            body = _truncated(body)
        elif fault == "renamed_column":
            body = body.replace(
                html.escape(RENAMED_FROM).encode(), html.escape(RENAMED_TO).encode()
            )
        return with_validators(headers, body, HTML_TYPE, last_modified)


def make_site(data_dir: Path) -> HhsGovSite:
    return HhsGovSite(data_dir)


# ------------------------------------------------------------------ rendering


def render_page(
    fiscal_year: int, months: list[dt.date], sections: dict[str, dict[str, dict[dt.date, Figure]]]
) -> str:
    title = f"Latest UC Data – FY{fiscal_year}"
    parts = [
        f"""<!DOCTYPE html>
<html lang="en" dir="ltr">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} | HHS.gov</title>
</head>
<body>
<main id="main-content">
<h1>{html.escape(title)}</h1>
<p>Statistics on unaccompanied children in the care of the Office of Refugee Resettlement
(ORR), by month of fiscal year {fiscal_year}.</p>
"""
    ]
    header = "".join(f'<th scope="col">{m.strftime("%b")}</th>' for m in months)
    for section, labels in sections.items():
        parts.append(
            f'<h2>{html.escape(section)}</h2>\n<table class="table">\n<thead>\n'
            f"{_label_cells(HEADER_CAPTION, 'col')}{header}</tr>\n</thead>\n<tbody>\n"
        )
        for label, by_month in labels.items():
            cells = "".join(f"<td>{html.escape(by_month[m].text)}</td>" for m in months)
            parts.append(f"{_label_cells(label, 'row')}{cells}</tr>\n")
        parts.append("</tbody>\n</table>\n")
    parts.append("""<p><small>returnwatch replay mirror: figures as published by HHS (The
Washington Post's scrape of these pages, March 2021); page layout reconstructed.</small></p>
</main>
</body>
</html>
""")
    return "".join(parts)


def _label_cells(label: str, scope: str) -> str:
    """A row's opening and its label, twice: the page renders every label in two cells."""
    text = html.escape(label)
    second = "th" if scope == "col" else "td"
    return (
        f'<tr><th scope="{scope}">{text}</th>'
        f'<{second} class="color2"><strong>{text}</strong></{second}>'
    )


def _truncated(body: bytes) -> bytes:
    """Cut in the middle of the middle table: what a dropped connection leaves."""
    tables = [m.start() for m in re.finditer(rb"<table", body)]
    middle = tables[len(tables) // 2] if tables else len(body) // 2
    return body[: middle + 200]


def _oversize_chunks(body: bytes) -> Iterator[bytes]:
    """The page's tables repeated past the cap: still HTML to anything that peeks at it."""
    head, _, _ = body.partition(b"</main>")
    filler = b"<!-- returnwatch replay: oversize fault -->\n" + head[head.find(b"<h2>") :]
    yield head
    sent = len(head)
    while sent < OVERSIZE_BYTES:
        yield filler
        sent += len(filler)
