"""cbp.gov's Nationwide Encounters page and its CSV files, as they stood on a day.

What this module owns: the mirror's copy of CBP's monthly encounters source under
``/cbp_encounters_monthly``: the landing page linking the files published by ``as_of``, and
the AOR-layout CSVs (404 before publication; ``ETag``/``Last-Modified``; content faults).

Every file is re-laid from IOM's copy of CBP's files (nothing summed, split or invented, but
the March-2021 file's Washington Post figures); releases served are ``RELEASES`` (2 March 2021,
15 October 2024, then monthly to 16 June 2025). How each column is rendered and why:
docs/replay.md#mirror-site-cbp.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from returnwatch import reference
from returnwatch_replay.responses import Response, text_response, with_validators

SOURCE = "cbp_encounters_monthly"
LANDING_PATH = "/document/stats/nationwide-encounters"
FILES_PREFIX = "/sites/default/files/"
DATA_DIR = Path("cbp_encounters")
IOM_FILE = "iom_gdidata_irreg_usa.csv"
MARCH_2021_DELTAS = "usbp_uc_fy21_oct_jan_mar2021_deltas_constructed.csv"

PUBLISHER_TZ = ZoneInfo("America/New_York")
CSV_TYPE = "text/csv"
# Just above the 80,000,000-byte cap of cbp_encounters_monthly in config/sources.yaml.
OVERSIZE_BYTES = 80_500_000
# Rendered files kept in memory (each a few MB).
CACHE_FILES = 4
HEADER = (
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
)
# What the renamed_column fault does to the header.
RENAMED = ("Encounter Count", "Encounters")

# IOM's ISO3 codes -> CBP's citizenship names (upper case, CBP's spelling), from the project's
# countries table.
CITIZENSHIP = reference.cbp_citizenship_by_iso3()
# Area of Responsibility -> AOR (Abbv): sector codes for Border Patrol, the city for OFO.
AOR_ABBV = {
    "Big Bend Sector": "BBT",
    "Del Rio Sector": "DRT",
    "El Centro Sector": "ELC",
    "El Paso Sector": "EPT",
    "Laredo Sector": "LRT",
    "Rio Grande Valley Sector": "RGV",
    "San Diego Sector": "SDC",
    "Tucson Sector": "TCA",
    "Yuma Sector": "YUM",
    "El Paso Field Office": "El Paso",
    "Laredo Field Office": "Laredo",
    "San Diego Field Office": "San Diego",
    "Tucson Field Office": "Tucson",
}
_UC_IOM = "UC / Single Minors"  # IOM's label before FY2022 ('UAC' after); normalised below
_MONTH_ABBV = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NAME = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_ERROR_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Site Maintenance | U.S. Customs and Border Protection</title></head>
<body><h1>CBP.gov is temporarily unavailable</h1>
<p>We are performing scheduled maintenance. Please try again later.</p>
</body></html>
"""
_NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Page Not Found | U.S. Customs and Border Protection</title></head>
<body><h1>Page Not Found</h1><p>The requested page could not be found.</p></body></html>
"""


# ------------------------------------------------------------------------------ releases


@dataclass(frozen=True)
class CsvFile:
    """One AOR file as CBP uploads it, and how the mirror renders it."""

    folder: str  # upload folder, the publication month: "2025-06"
    first_fy: int
    last_fy: int
    through: dt.date  # first day of the last month in the file
    published: dt.datetime  # Last-Modified
    uc_label: str  # how this file prints the unaccompanied children
    float_counts: bool = False  # '9584.0' instead of '9584'
    march_2021_figures: bool = False  # apply the Washington Post March-2021 figures

    @property
    def complete(self) -> bool:
        """A file whose last fiscal year is over (through September) has no '(FYTD)'."""
        return self.through.month == 9

    @property
    def name(self) -> str:
        month = "" if self.complete else f"-{_MONTH_ABBV[self.through.month - 1].lower()}"
        return (
            f"nationwide-encounters-fy{self.first_fy % 100:02d}-fy{self.last_fy % 100:02d}"
            f"{month}-aor.csv"
        )

    @property
    def path(self) -> str:
        return f"{FILES_PREFIX}{self.folder}/{self.name}"

    @property
    def title(self) -> str:
        """The link text, in the style of CBP's attachment titles."""
        window = f"FY{self.first_fy % 100:02d} - FY{self.last_fy % 100:02d}"
        if self.complete:
            return f"{window} Nationwide Encounters by Area of Responsibility"
        return (
            f"{window} (FYTD) Nationwide Encounters by Area of Responsibility - "
            f"{_MONTH_NAME[self.through.month - 1]}"
        )


@dataclass(frozen=True)
class Release:
    """What the landing page lists from ``published`` until the next release."""

    published: dt.datetime
    current: CsvFile
    still_listed: tuple[CsvFile, ...] = ()

    @property
    def files(self) -> tuple[CsvFile, ...]:
        return (self.current, *self.still_listed)


def _at(day: dt.date, hour: int = 11) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, 0), tzinfo=PUBLISHER_TZ)


def _monthly_release(data_month: dt.date) -> dt.datetime:
    """When the file through ``data_month`` appears: a model, not a fact of the publisher.

    CBP posts its monthly update in the middle of the following month; we use the 15th (the
    next Monday when it is a weekend) at 11:00 New York time.
    """
    year, month = (
        (data_month.year + 1, 1)
        if data_month.month == 12
        else (data_month.year, data_month.month + 1)
    )
    day = dt.date(year, month, 15)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return _at(day)


def _releases() -> tuple[Release, ...]:
    # 1. The older vintage: the figures the Washington Post scraped on 2021-03-03 (through
    #    Jan 2021). We date the file the day before the scrape; its folder follows.
    march_2021 = CsvFile(
        folder="2021-03",
        first_fy=2020,
        last_fy=2021,
        through=dt.date(2021, 1, 1),
        published=_at(dt.date(2021, 3, 2), 10),
        uc_label="UC / Single Minors",
        float_counts=True,
        march_2021_figures=True,
    )
    # 2. The complete FY21-FY24 window under its real name and folder; CBP's file of that
    #    window printed 'UC / Single Minors'.
    fy21_fy24 = CsvFile(
        folder="2024-10",
        first_fy=2021,
        last_fy=2024,
        through=dt.date(2024, 9, 1),
        published=_at(dt.date(2024, 10, 15)),
        uc_label="UC / Single Minors",
    )
    releases = [Release(march_2021.published, march_2021), Release(fy21_fy24.published, fy21_fy24)]
    # 3. The rolling FY22-FY25 window, one release a month (IOM's FY2022+ rows say 'UAC').
    month = dt.date(2024, 10, 1)
    while month <= dt.date(2025, 5, 1):
        published = _monthly_release(month)
        current = CsvFile(
            folder=published.strftime("%Y-%m"),
            first_fy=2022,
            last_fy=2025,
            through=month,
            published=published,
            uc_label="UAC",
        )
        releases.append(Release(published, current, still_listed=(fy21_fy24,)))
        month = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return tuple(releases)


RELEASES = _releases()


def release_on(as_of: dt.date) -> Release | None:
    """The release the landing page shows on ``as_of`` (None before the first)."""
    published = [r for r in RELEASES if r.published.date() <= as_of]
    return published[-1] if published else None


# ------------------------------------------------------------------------------ the data


@dataclass(frozen=True)
class _IomRow:
    month: dt.date
    fiscal_year: int
    component: str
    area: str
    authority: str
    type: str
    demog: str
    nat: str
    n: int


def read_iom(path: Path) -> list[_IomRow]:
    """IOM's copy, FY2020 onwards (earlier rows have no area nor citizenship: not servable)."""
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, record in enumerate(csv.DictReader(handle), start=2):
            if not record["area"]:
                continue
            n = float(record["n"])
            if not n.is_integer() or record["nat"] not in CITIZENSHIP:
                raise ValueError(
                    f"{path} line {line}: unexpected n {record['n']!r} or nat {record['nat']!r}"
                )
            year, month = map(int, record["t"].split("-"))
            rows.append(
                _IomRow(
                    month=dt.date(year, month, 1),
                    fiscal_year=int(record["t_fy"][:4]),
                    component=record["component"],
                    area=record["area"],
                    authority=record["authority"],
                    type=record["type"],
                    demog=record["demog"],
                    nat=record["nat"],
                    n=int(n),
                )
            )
    return rows


def read_deltas(path: Path) -> dict[tuple[str, ...], int]:
    """(month, component, area, demog, nat, authority) -> change to IOM's count."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            (r["month"], r["component"], r["area"], r["demog"], r["nat"], r["authority"]): int(
                r["delta"]
            )
            for r in csv.DictReader(handle)
        }


def _grouping(month: dt.date, fiscal_year: int, file: CsvFile) -> str:
    """'FYTD' for the months up to the file's month in every fiscal year, else 'Remaining'."""
    if fiscal_year == file.last_fy or file.complete:
        return "FYTD"
    fiscal_index = (month.month - 10) % 12
    return "FYTD" if fiscal_index <= (file.through.month - 10) % 12 else "Remaining"


def render(file: CsvFile, rows: list[_IomRow], deltas: dict[tuple[str, ...], int]) -> bytes:
    """The CSV bytes of ``file``, as CBP would print IOM's rows."""
    applied = 0
    out = []
    for row in rows:
        if not file.first_fy <= row.fiscal_year <= file.last_fy or row.month > file.through:
            continue
        n = row.n
        if file.march_2021_figures:
            key = (
                row.month.strftime("%Y-%m"),
                row.component,
                row.area,
                row.demog,
                row.nat,
                row.authority,
            )
            if key in deltas:
                n += deltas[key]
                applied += 1
        year_label = str(row.fiscal_year)
        if row.fiscal_year == file.last_fy and not file.complete:
            year_label += " (FYTD)"
        demographic = file.uc_label if row.demog in {_UC_IOM, "UAC"} else row.demog
        out.append(
            (
                year_label,
                _grouping(row.month, row.fiscal_year, file),
                _MONTH_ABBV[row.month.month - 1],
                row.component,
                "Southwest Land Border",
                row.area,
                AOR_ABBV[row.area],
                demographic,
                CITIZENSHIP[row.nat],
                row.authority,
                row.type,
                f"{n}.0" if file.float_counts else str(n),
            )
        )
    if file.march_2021_figures and applied != len(deltas):
        raise ValueError(f"{MARCH_2021_DELTAS}: {len(deltas) - applied} row(s) match no IOM row")
    out.sort(key=lambda r: r[:-1])  # CBP's order: every column as text, month by its name
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(out)
    return buffer.getvalue().encode("ascii")


# ------------------------------------------------------------------------------ the site


class CbpSite:
    """cbp.gov, as far as the Nationwide Encounters page and its AOR files go."""

    name = SOURCE

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir / DATA_DIR
        self._files = {f.path: f for r in RELEASES for f in r.files}
        self._lock = threading.Lock()
        self._rows: list[_IomRow] | None = None
        self._deltas: dict[tuple[str, ...], int] | None = None
        self._bodies: OrderedDict[str, bytes] = OrderedDict()

    @staticmethod
    def is_data(path: str) -> bool:
        return path.startswith(FILES_PREFIX) and path.endswith(".csv")

    @property
    def files(self) -> list[CsvFile]:
        return list(self._files.values())

    def body(self, file: CsvFile) -> bytes:
        """The file's bytes (rendered on first use, then cached)."""
        with self._lock:
            if file.path in self._bodies:
                self._bodies.move_to_end(file.path)
                return self._bodies[file.path]
            if self._rows is None:
                self._rows = read_iom(self.data_dir / IOM_FILE)
                self._deltas = read_deltas(self.data_dir / MARCH_2021_DELTAS)
            body = render(file, self._rows, self._deltas or {})
            self._bodies[file.path] = body
            while len(self._bodies) > CACHE_FILES:
                self._bodies.popitem(last=False)
            return body

    def handle(
        self, path: str, query: str, headers: Any, as_of: dt.date, fault: str | None
    ) -> Response:
        if path.rstrip("/") == LANDING_PATH:
            return self._landing(as_of)
        file = self._files.get(path)
        if file is None or file.published.date() > as_of:
            return text_response(404, _NOT_FOUND_PAGE, "text/html")
        if fault == "html_error":
            return text_response(200, _ERROR_PAGE, "text/html")
        if fault == "empty":
            return Response(200, {"Content-Type": CSV_TYPE}, b"")
        if fault == "oversize":
            return Response(200, {"Content-Type": CSV_TYPE}, stream=self._oversize(file))
        body = self.body(file)
        if fault == "truncated":
            body = _truncated(body)
        elif fault == "renamed_column":
            header, sep, rest = body.partition(b"\r\n")
            old, new = RENAMED
            body = header.replace(old.encode(), new.encode()) + sep + rest
        return with_validators(headers, body, CSV_TYPE, file.published)

    def _oversize(self, file: CsvFile) -> Iterator[bytes]:
        """The real rows repeated past the size cap: looks like a CSV to anything that peeks."""
        header, _, rows = self.body(file).partition(b"\r\n")
        yield header + b"\r\n"
        sent = len(header) + 2
        view = memoryview(rows)
        while sent < OVERSIZE_BYTES:
            for start in range(0, len(view), 1 << 20):
                piece = view[start : start + (1 << 20)]
                yield bytes(piece)
                sent += len(piece)
                if sent >= OVERSIZE_BYTES:
                    return

    def _landing(self, as_of: dt.date) -> Response:
        release = release_on(as_of)
        items = "".join(
            f'<li><span class="file file--text-csv"><a href="/{SOURCE}{html.escape(f.path)}" '
            f'type="text/csv">{html.escape(f.title)}</a></span> (CSV)</li>\n'
            for f in (release.files if release else ())
        )
        updated = release.published.strftime("%B %d, %Y") if release else "never"
        page = f"""<!DOCTYPE html>
<html lang="en" dir="ltr"><head><meta charset="utf-8">
<title>Nationwide Encounters | U.S. Customs and Border Protection</title></head>
<body>
<main id="main-content">
<h1 class="page-title">Nationwide Encounters</h1>
<div class="field--name-body">
<p>Encounter data includes U.S. Border Patrol (USBP) Title 8 Apprehensions, Office of Field
Operations (OFO) Title 8 Inadmissibles, and Title 42 Expulsions for fiscal years to date.
Title 42 Expulsions were processed from March 21, 2020 to May 11, 2023.</p>
<p>Data is available for the Northern Land Border, Southwest Land Border, and Nationwide
encounters.</p>
</div>
<div class="field--name-field-attachments">
<h2>Attachments</h2>
<ul>
{items}</ul>
</div>
<p>Related: <a href="https://www.cbp.gov/newsroom/stats/southwest-land-border-encounters">Southwest
Land Border Encounters</a></p>
<p class="last-modified">Last Modified: {html.escape(updated)}</p>
<p><small>returnwatch replay mirror: the page as of {as_of.isoformat()}; files re-laid from
IOM's copy of CBP's figures, Southwest land border rows only
(see include/replay/cbp_encounters/PROVENANCE.md).</small></p>
</main>
</body></html>
"""
        return text_response(200, page, "text/html")


def _truncated(body: bytes) -> bytes:
    """Cut in the middle of the middle data row: what a dropped download looks like."""
    lines = body.splitlines(keepends=True)
    if len(lines) < 3:
        return body[: max(1, len(body) // 2)]
    middle = len(lines) // 2
    start = sum(len(line) for line in lines[:middle])
    return body[: start + len(lines[middle]) // 2]


def make_site(data_dir: Path) -> CbpSite:
    return CbpSite(data_dir)
