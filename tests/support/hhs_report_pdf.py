"""Writes "Unaccompanied Children Daily Report" PDFs in the published layout, for the tests.

No copy of a real report PDF is stored anywhere we can reach, so the fixtures are constructed
(their names end in ``_constructed.pdf``): the layout and wording are the real reports' as their
text reads in public transcripts (scribd.com/document/503038617, the report released April 14,
2021, and scribd.com/document/513979465, released July 1, 2021); the figures are real:

- ``REPORTS_2021``: the two transcribed reports' own figures, 30-day averages included.
- ``HEALTHDATA_DATES``: days of the healthdata.gov dataset copy shipped for the replay mirror
  (``include/replay/hhs_uc/healthdata_ehpz-xc9n_copy_mihirg42.csv``; provenance in
  ``include/replay/PROVENANCE.md``). The day's five figures are that file's; the three 30-day
  averages are NOT published figures: they are computed here as the mean of that file's 30
  reported days up to and including the data day, printed with one decimal. The release date
  is the next day, as in the real reports. (The copy's CBP columns repeat on some dates, see
  its PROVENANCE warning: fine for testing a parser, not for quoting.)

Regenerate the committed fixtures with ``.venv/bin/python -m tests.support.hhs_report_pdf``.
The tests also call ``report_pdf`` directly to build broken variants (a missing row, an
unreadable figure) on the fly.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from returnwatch import settings

if TYPE_CHECKING:
    from fpdf import FPDF

TITLE = "Unaccompanied Children Daily Report"
INTRO = (
    "Data represent a joint, preliminary daily tally provided by the U.S. Department of "
    "Health and Human Services (HHS) and the Department of Homeland Security (DHS)."
)
FOOTNOTE = (
    "*This number does not include children from Mexico, most of whom will be "
    "repatriated and will not remain in CBP custody."
)
LABELS = [
    "Unaccompanied children apprehended and placed into CBP custody*",
    "Children in CBP custody",
    "Children transferred out of CBP custody",
    "Children in HHS care",
    "Children discharged from HHS care",
]

HEALTHDATA_CSV = settings.replay_data_dir() / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv"
FIXTURES_DIR = settings.PROJECT_DIR / "tests" / "fixtures" / "hhs"
AVERAGE_WINDOW = 30

# (data day, release day, the five figures, the three 30-day averages), as transcribed.
REPORTS_2021: list[tuple[dt.date, dt.date, tuple[int, ...], tuple[int, ...]]] = [
    (dt.date(2021, 4, 13), dt.date(2021, 4, 14), (492, 2853, 649, 19120, 303), (496, 4608, 620)),
    (dt.date(2021, 6, 30), dt.date(2021, 7, 1), (471, 949, 344, 14739, 419), (399, 794, 430)),
]
# Days of the healthdata copy on the 1st, 2nd, 3rd and 13th (ordinal suffixes), and one with
# more than 10,000 children in HHS care.
HEALTHDATA_DATES = [
    dt.date(2023, 5, 1),
    dt.date(2024, 1, 2),
    dt.date(2024, 4, 3),
    dt.date(2023, 9, 13),
]


def ordinal(day: int) -> str:
    """1 -> '1st', 2 -> '2nd', 3 -> '3rd', 11..13 -> '11th'..'13th', 22 -> '22nd'."""
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th') }"


def heading(day: dt.date) -> str:
    return f"{day.strftime('%B')} {ordinal(day.day)} Data"


def release_line(day: dt.date) -> str:
    return f"Release date: {day.strftime('%B')} {day.day}, {day.year}"


def count_text(value: int) -> str:
    return f"{value:,}"


def average_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def report_pdf(
    *,
    release: str,
    heading_text: str,
    daily: Sequence[tuple[str, str]],
    averages: Sequence[tuple[str, str]],
    title: str = TITLE,
    average_heading: str = "30-Day Average Data",
    footnote: bool = True,
) -> bytes:
    """A one-page report: every text given verbatim, rows as (label, figure) pairs."""
    from fpdf import FPDF

    pdf = FPDF(format="letter")
    pdf.set_creation_date(dt.datetime(2021, 1, 1, tzinfo=dt.UTC))  # stable bytes
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, release, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 12, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, INTRO, new_x="LMARGIN", new_y="NEXT")
    _block(pdf, heading_text, daily)
    _block(pdf, average_heading, averages)
    if footnote:
        pdf.ln(4)
        pdf.set_font("Helvetica", size=8)
        pdf.multi_cell(0, 4, FOOTNOTE, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _block(pdf: FPDF, title: str, rows: Sequence[tuple[str, str]]) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for label, figure in rows:
        pdf.cell(150, 7, label, border=1)
        pdf.cell(35, 7, figure, border=1, align="R", new_x="LMARGIN", new_y="NEXT")


def report_from_figures(
    report_date: dt.date, release_date: dt.date, figures: Sequence[int], averages: Sequence[float]
) -> bytes:
    return report_pdf(
        release=release_line(release_date),
        heading_text=heading(report_date),
        daily=[(label, count_text(v)) for label, v in zip(LABELS, figures)],
        averages=[(label, average_text(v)) for label, v in zip(LABELS[:3], averages)],
    )


# ------------------------------------------------------------------ the healthdata copy


def healthdata_rows(path: Path = HEALTHDATA_CSV) -> dict[dt.date, tuple[int, ...]]:
    """The copy's published days -> their five figures (blank rows skipped)."""
    rows: dict[dt.date, tuple[int, ...]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for cells in reader:
            if not cells or not cells[0].strip():
                continue
            day = dt.datetime.strptime(cells[0].strip(), "%B %d, %Y").date()
            rows[day] = tuple(int(c.replace(",", "")) for c in cells[1:6])
    return rows


def healthdata_report(
    day: dt.date, rows: dict[dt.date, tuple[int, ...]]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The day's five figures and the mean of the first three over the copy's 30 reported days
    up to and including ``day`` (unrounded)."""
    window = sorted(d for d in rows if d <= day)[-AVERAGE_WINDOW:]
    if len(window) < AVERAGE_WINDOW:
        raise ValueError(f"{day}: fewer than {AVERAGE_WINDOW} reported days before it")
    means = tuple(sum(rows[d][i] for d in window) / AVERAGE_WINDOW for i in range(3))
    return rows[day], means


def fixture_name(day: dt.date) -> str:
    return f"uc_daily_report_{day.isoformat()}_constructed.pdf"


def write_fixtures(directory: Path = FIXTURES_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for report_date, release_date, figures, averages in REPORTS_2021:
        path = directory / fixture_name(report_date)
        path.write_bytes(report_from_figures(report_date, release_date, figures, averages))
        written.append(path)
    rows = healthdata_rows()
    for day in HEALTHDATA_DATES:
        figures, means = healthdata_report(day, rows)
        rounded = tuple(round(m, 1) for m in means)
        path = directory / fixture_name(day)
        path.write_bytes(report_from_figures(day, day + dt.timedelta(days=1), figures, rounded))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_fixtures():
        print(
            f"{written_path.relative_to(settings.PROJECT_DIR)} ({written_path.stat().st_size} bytes)"
        )
