"""HHS/DHS "Unaccompanied Children Daily Report" PDFs into one row of ``raw.hhs_uc_daily_report``.

A file kind of ``hhs_uc_daily`` for manual ingest (no stable public URL is known). Rows are
found by their label at the start of a text line (pdfplumber), never by position; the layout
is in docs/sources.md, section A. Text extraction runs in a child process bounded in time and
memory (``PDF_SECONDS``, ``PDF_MEMORY_BYTES``), so a hostile PDF cannot hang a worker.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.sources.errors import BadValue, LayoutChanged, SourceFileError, check_count
from returnwatch.sources.hhs_uc_daily.schema import SOURCE

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


TITLE = "Unaccompanied Children Daily Report"
AVERAGE_HEADING = "30-Day Average Data"
# The footnote's first words (its full text is export_csv.MEXICO_FOOTNOTE).
FOOTNOTE_START = "*This number does not include children from Mexico"

# Row label as published (without its '*') -> raw column. Same column names as raw.hhs_uc_daily.
DAILY_ROWS: dict[str, str] = {
    "Unaccompanied children apprehended and placed into CBP custody": "apprehended_placed_in_cbp_custody",
    "Children in CBP custody": "in_cbp_custody",
    "Children transferred out of CBP custody": "transferred_out_of_cbp_custody",
    "Children in HHS care": "in_hhs_care",
    "Children discharged from HHS care": "discharged_from_hhs_care",
}
# The 30-Day Average block repeats the first three rows.
AVERAGE_ROWS: dict[str, str] = {
    label: f"{column}_30day_avg" for label, column in list(DAILY_ROWS.items())[:3]
}
COUNT_COLUMNS = list(DAILY_ROWS.values())
AVERAGE_COLUMNS = list(AVERAGE_ROWS.values())
COLUMNS = ["report_date", "release_date", *COUNT_COLUMNS, *AVERAGE_COLUMNS, "source_row"]

_MONTH_NAMES = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
)
_RELEASE = re.compile(r"Release\s+date:\s*(?P<date>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
# "April 13th Data", "June 1st Data", "April 13 Data", "April 13th, 2021 Data".
_DATA_HEADING = re.compile(
    rf"^(?P<month>{_MONTH_NAMES})\.?\s+(?P<day>\d{{1,2}})(?P<suffix>st|nd|rd|th)?"
    r"(?:,?\s+(?P<year>\d{4}))?\s+Data\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_COUNT = re.compile(r"^\d{1,3}(,\d{3})+$|^\d+$")
_AVERAGE = re.compile(r"^(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")


@dataclass
class ParsedReport:
    """One report: a single row, plus what the parser noticed."""

    source: str
    file: str
    rows: list[dict[str, Any]]  # one: the dates, the counts, the averages, source_row
    pages: int
    footnote_present: bool
    notes: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=COLUMNS)
        for column in COUNT_COLUMNS:
            frame[column] = frame[column].astype("Int64")
        for column in AVERAGE_COLUMNS:
            frame[column] = frame[column].astype("Float64")
        frame["source_row"] = frame["source_row"].astype("int64")
        return frame

    def summary(self) -> dict[str, object]:
        row = self.rows[0] if self.rows else {}
        return {
            "rows": len(self.rows),
            "report_date": row["report_date"].isoformat() if row else None,
            "release_date": row["release_date"].isoformat() if row else None,
            "pages": self.pages,
            "footnote_present": self.footnote_present,
        }


@dataclass(frozen=True)
class _Line:
    page: int  # 1-based
    number: int  # 1-based line of that page's extracted text
    text: str  # whitespace-normalised


def parse(content: bytes, *, file: str) -> ParsedReport:
    """Parse one daily report PDF. ``file`` names it in errors (sha256 or file name)."""
    lines, pages = _text_lines(content, file)
    first_page = "page 1"
    title = _find(lines, lambda text: TITLE.lower() in text.lower())
    if title is None:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=first_page,
            row=1,
            problem=f"the title {TITLE!r} is not in the PDF",
            expected=f"a report titled {TITLE!r}",
            seen=_show(lines[:4]),
        )
    text_by_page = {
        p: "\n".join(ln.text for ln in lines if ln.page == p) for p in range(1, pages + 1)
    }

    release_date = _release_date(lines, file)
    report_date, heading = _report_date(lines, release_date, file)

    average_heading = _find(lines, lambda text: text.lower() == AVERAGE_HEADING.lower())
    if average_heading is None or _position(average_heading) < _position(heading):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=f"page {heading.page}",
            problem=f"the {AVERAGE_HEADING!r} block is missing after the {heading.text!r} block",
            expected=f"a line {AVERAGE_HEADING!r} followed by the first three rows",
            seen=text_by_page[heading.page],
        )
    daily_block = [
        ln for ln in lines if _position(heading) < _position(ln) < _position(average_heading)
    ]
    average_block = [ln for ln in lines if _position(ln) > _position(average_heading)]

    record: dict[str, object] = {"report_date": report_date, "release_date": release_date}
    for label, column in DAILY_ROWS.items():
        record[column] = _figure(daily_block, label, heading, file, whole=True)
    for label, column in AVERAGE_ROWS.items():
        record[column] = _figure(average_block, label, average_heading, file, whole=False)
    # One report per file: its row is where its data heading is (the n-th non-empty line of
    # the extracted text, all pages), so a validation message points at the heading.
    record["source_row"] = lines.index(heading) + 1
    footnote = any(ln.text.startswith(FOOTNOTE_START) for ln in lines)
    return ParsedReport(
        source=SOURCE, file=file, rows=[record], pages=pages, footnote_present=footnote
    )


def looks_like(content: bytes) -> bool:
    """Whether ``content`` is a daily report PDF (for ``detect_kind`` in manual ingest)."""
    if not content.startswith(b"%PDF-"):
        return False
    try:
        lines, _ = _text_lines(content, "looks_like")
    except (LayoutChanged, BadValue):
        return False
    return any(TITLE.lower() in ln.text.lower() for ln in lines)


# ------------------------------------------------------------------ text


def _decompress_corrupted(data: bytes) -> bytes:
    """pdfminer's ``decompress_corrupted`` (a Flate stream whose checksum fails: keep what
    decodes), fed 64 KiB at a time instead of one byte at a time.

    pdfminer's loop costs a Python call per byte, so one damaged stream of a few MB held a
    parse for over 10 s (found by tests/fuzz). Same result: the output up to the first bad
    byte; an error before the last 3 bytes (the checksum) is still an error.
    """
    import zlib

    decoder = zlib.decompressobj()
    out: list[bytes] = []
    step = 1 << 16
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        saved = decoder.copy()
        try:
            out.append(decoder.decompress(chunk))
            continue
        except zlib.error:
            decoder = saved
        for offset in range(len(chunk)):  # the failing chunk, byte by byte, as pdfminer does
            try:
                out.append(decoder.decompress(chunk[offset : offset + 1]))
            except zlib.error:
                if start + offset < len(data) - 3:
                    raise
                return b"".join(out)
    return b"".join(out)


# pdfminer is pure Python and some damaged files make it quadratic: 1 MB of one repeated
# token held it for minutes in tests/fuzz. So the text is read in a forked child that is
# killed at the deadline and cannot grow past the memory ceiling; a real one-page report takes
# well under a second. tests/fuzz lowers PDF_SECONDS to keep its own run short.
PDF_SECONDS = 8.0
PDF_MEMORY_BYTES = 1 << 30


def _text_lines(content: bytes, file: str) -> tuple[list[_Line], int]:
    """Every non-empty line of the PDF's text, page by page."""
    import multiprocessing

    if not content.startswith(b"%PDF-"):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            problem="the file is not a PDF",
            expected="a PDF (starting with %PDF-)",
            seen=content[:80].decode("latin-1"),
        )
    import pdfplumber  # noqa: F401 - loaded here, once, so each forked child has it

    # fork: the child has pdfminer loaded already and needs no pickled arguments.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_read_in_child, args=(content, send))
    try:
        child.start()
    except (AssertionError, OSError) as exc:
        # A daemonic multiprocessing worker may not have children (or fork failed): read
        # here, without the deadline, rather than refuse every report.
        log.warning("reading %s in this process (no reader child: %s)", file, exc)
        send.close()
        receive.close()
        outcome, payload = _read(content)
    else:
        send.close()
        outcome, payload = _wait_for(child, receive, content, file)
    if outcome == "error":
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            problem=f"the PDF cannot be read ({payload})",
            expected="a readable PDF with a text layer",
            seen=content[:80].decode("latin-1"),
        )
    lines, pages = payload
    if not lines:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet="page 1",
            problem="the PDF has no extractable text (a scanned image?)",
            expected=f"a report titled {TITLE!r} with a text layer",
            seen="",
        )
    return lines, pages


def _wait_for(child: Any, receive: Any, content: bytes, file: str) -> tuple[str, Any]:
    """The reader child's answer; a refusal at the deadline or when the child died."""
    try:
        if not receive.poll(PDF_SECONDS):
            raise SourceFileError(
                source=SOURCE,
                file=file,
                problem=f"reading the PDF took over {PDF_SECONDS:g} s (a damaged file?)",
                expected="a readable PDF with a text layer",
                seen=content[:80].decode("latin-1"),
            )
        return receive.recv()
    except EOFError:  # the child died: over the memory ceiling, or crashed
        raise SourceFileError(
            source=SOURCE,
            file=file,
            problem="the PDF reader stopped (over "
            f"{PDF_MEMORY_BYTES >> 20} MB of memory, or crashed)",
            expected="a readable PDF with a text layer",
            seen=content[:80].decode("latin-1"),
        ) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()


def _read_in_child(content: bytes, send: Any) -> None:
    """In the forked child: cap memory, then send ``_read``'s answer to the parent."""
    import resource

    try:
        with open("/proc/self/statm") as statm:  # what the fork already maps, plus the cap
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(
            resource.RLIMIT_AS,
            (mapped + PDF_MEMORY_BYTES, resource.getrlimit(resource.RLIMIT_AS)[1]),
        )
    except (OSError, ValueError):
        pass  # no /proc or a lower hard limit: the deadline still bounds the child
    try:
        send.send(_read(content))
    finally:
        send.close()


def _read(content: bytes) -> tuple[str, Any]:
    """("ok", (lines, pages)) or ("error", "Type: message"): any exception pdfminer raises on
    a broken file is an error."""
    import pdfminer.pdftypes
    import pdfplumber

    pdfminer.pdftypes.decompress_corrupted = _decompress_corrupted  # see its docstring
    try:
        lines: list[_Line] = []
        with pdfplumber.open(io.BytesIO(content)) as pdf:
            pages = len(pdf.pages)
            for page_number, page in enumerate(pdf.pages, start=1):
                text = page.extract_text() or ""
                for line_number, raw in enumerate(text.splitlines(), start=1):
                    normal = " ".join(raw.split())
                    if normal:
                        lines.append(_Line(page_number, line_number, normal))
        return "ok", (lines, pages)
    except Exception as exc:  # noqa: BLE001 - pdfminer/pdfplumber raise dozens of types
        return "error", f"{type(exc).__name__}: {str(exc)[:200]}"


def _find(lines: list[_Line], match: Callable[[str], bool]) -> _Line | None:
    return next((ln for ln in lines if match(ln.text)), None)


def _position(line: _Line) -> tuple[int, int]:
    return (line.page, line.number)


def _show(lines: list[_Line]) -> str:
    return " | ".join(ln.text for ln in lines)


# ------------------------------------------------------------------ dates


def _release_date(lines: list[_Line], file: str) -> dt.date:
    for line in lines:
        found = _RELEASE.search(line.text)
        if found:
            return _read_date(found["date"], line, file)
    raise LayoutChanged(
        source=SOURCE,
        file=file,
        sheet="page 1",
        problem="the 'Release date:' line is missing",
        expected="a line like 'Release date: April 14, 2021'",
        seen=_show(lines[:4]),
    )


def _read_date(text: str, line: _Line, file: str) -> dt.date:
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.strip().rstrip("."), flags=re.IGNORECASE)
    for fmt in ("%B %d, %Y", "%B %d %Y", "%b %d, %Y", "%b. %d, %Y", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise BadValue(
        source=SOURCE,
        file=file,
        sheet=f"page {line.page}",
        row=line.number,
        column="Release date",
        problem="the release date cannot be read",
        expected="a date like 'April 14, 2021'",
        seen=line.text,
    )


def _report_date(lines: list[_Line], release: dt.date, file: str) -> tuple[dt.date, _Line]:
    """The data day from the 'April 13th Data' heading; its year from the release date."""
    headings = [(ln, m) for ln in lines if (m := _DATA_HEADING.match(ln.text))]
    if not headings:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet="page 1",
            problem="the data-day heading is missing",
            expected="a line like 'April 13th Data'",
            seen=_show(lines[:8]),
        )
    if len(headings) > 1:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=f"page {headings[1][0].page}",
            row=headings[1][0].number,
            problem="more than one data-day heading: several reports in one file",
            expected="one report per PDF",
            seen=", ".join(ln.text for ln, _ in headings),
        )
    line, match = headings[0]
    month = dt.datetime.strptime(match["month"][:3], "%b").month
    day = int(match["day"])
    year = int(match["year"]) if match["year"] else release.year
    try:
        date = dt.date(year, month, day)
        if not match["year"] and date > release:  # "December 31st Data" released January 1
            date = dt.date(year - 1, month, day)
    except ValueError:
        raise BadValue(
            source=SOURCE,
            file=file,
            sheet=f"page {line.page}",
            row=line.number,
            column="data heading",
            problem="the data-day heading is not a real date",
            expected="a heading like 'April 13th Data'",
            seen=line.text,
        ) from None
    return date, line


# ------------------------------------------------------------------ figures


def _figure(
    block: list[_Line], label: str, heading: _Line, file: str, *, whole: bool
) -> int | float:
    """The number after ``label`` at the start of a line of ``block``.

    The block's lines are joined with newlines and the label's words may be separated by any
    whitespace, so a label wrapped over two lines is still found.
    """
    text = "\n".join(ln.text for ln in block)
    words = r"\s+".join(re.escape(word) for word in label.split())
    found = re.search(rf"(?:^|\n){words}\s*\*?[ \t]*(?P<value>[^\s]*)", text, re.IGNORECASE)
    where = f"page {heading.page}"
    if found is None:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=where,
            problem=f"the row {label!r} is missing from the {heading.text!r} block",
            expected=f"a line starting with {label!r} followed by a number",
            seen=_show(block),
        )
    value = found["value"]
    line = _line_of(block, text, found.start("value"))
    pattern = _COUNT if whole else _AVERAGE
    if not pattern.match(value):
        raise BadValue(
            source=SOURCE,
            file=file,
            sheet=f"page {line.page}",
            row=line.number,
            column=label,
            problem="the figure is not a number",
            expected="a whole number like 2,853" if whole else "a number like 4,608 or 312.5",
            seen=line.text,
        )
    number = value.replace(",", "")
    if whole:
        return check_count(
            int(number),
            source=SOURCE,
            file=file,
            sheet=f"page {line.page}",
            row=line.number,
            column=label,
        )
    if not math.isfinite(float(number)):
        raise BadValue(
            source=SOURCE,
            file=file,
            sheet=f"page {line.page}",
            row=line.number,
            column=label,
            problem="the figure is too large",
            expected="a number like 4,608 or 312.5",
            seen=line.text,
        )
    return float(number)


def _line_of(block: list[_Line], text: str, offset: int) -> _Line:
    """The block line that holds character ``offset`` of the newline-joined ``text``."""
    index = text.count("\n", 0, offset)
    return block[min(index, len(block) - 1)]
