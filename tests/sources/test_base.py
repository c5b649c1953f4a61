"""``sources.base.read`` / ``detect`` / ``discover`` and the refusals of ``sources.errors``:
whatever a parser lets out becomes one ``SourceFileError`` naming source and file, counts are
range-checked against their warehouse columns, and text files holding NUL bytes are refused.

The damaged files are the real fixtures with one change each (a NUL, a huge count, a field past
the csv module's limit); the exceptions of the first test are raised by a stand-in parser,
because they are what the libraries under the parsers raise on files we cannot build on
purpose (the mutation fuzz in tests/fuzz finds those on the real files).
"""

from __future__ import annotations

import _csv
import datetime as dt
import struct
from pathlib import Path

import pandas as pd
import pytest
import xlrd

from returnwatch.sources import (
    cbp_encounters_monthly,
    hhs_uc_daily,
    hhs_uc_monthly,
    segob_bulletin_monthly,
)
from returnwatch.sources.base import FileKind, column_types, detect, discover, read
from returnwatch.sources.errors import COUNT_MAX, BadValue, LayoutChanged, SourceFileError
from returnwatch.sources.hhs_uc_daily import report_pdf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
URL = "https://example.gov/files/export.csv (sha256 0123456789ab)"


class _Rows:
    def __init__(self, frame: pd.DataFrame, fail: Exception | None = None) -> None:
        self._frame, self._fail = frame, fail

    def frame(self) -> pd.DataFrame:
        if self._fail:
            raise self._fail
        return self._frame

    def summary(self) -> dict[str, int]:
        return {"rows": len(self._frame)}


def kind_raising(error: BaseException) -> FileKind:
    def parse(content: bytes, *, file: str) -> _Rows:
        raise error

    return FileKind(
        "export_csv", parse, "hhs_uc_daily", "hhs_uc_daily", description="the HHS export"
    )


@pytest.mark.parametrize(
    "error",
    [
        struct.error("unpack requires a buffer of 4 bytes"),
        IndexError("list index out of range"),
        KeyError("Enero"),
        AssertionError(),
        OverflowError("cannot convert float infinity"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        xlrd.XLRDError("Can't find workbook in OLE2 compound document"),
        _csv.Error("field larger than field limit (131072)"),
        ValueError("NUL byte"),
        RecursionError("maximum recursion depth exceeded"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_anything_a_parser_lets_out_is_one_bad_file_error(error: Exception) -> None:
    with pytest.raises(SourceFileError) as caught:
        read("hhs_uc_daily", kind_raising(error), b"x", file=URL)
    refusal = caught.value
    assert refusal.kind == "bad_file" and refusal.source == "hhs_uc_daily" and refusal.file == URL
    assert type(error).__name__ in refusal.problem and "the HHS export" in refusal.expected
    assert str(refusal).startswith(f"source hhs_uc_daily, file {URL}: the file cannot be read")
    assert refusal.__cause__ is error  # the original stays in the task log's traceback


def test_memory_error_is_a_bad_file_and_interrupts_are_not() -> None:
    with pytest.raises(SourceFileError, match="too large to read in memory"):
        read("hhs_uc_daily", kind_raising(MemoryError()), b"x", file=URL)
    with pytest.raises(KeyboardInterrupt):
        read("hhs_uc_daily", kind_raising(KeyboardInterrupt()), b"x", file=URL)


def test_rows_built_lazily_fail_inside_read() -> None:
    def parse(content: bytes, *, file: str) -> _Rows:
        return _Rows(pd.DataFrame(), fail=IndexError("sheet 2"))

    kind = FileKind("cuadro_3_1_1", parse, "segob_presented_by_nationality", "x")
    with pytest.raises(SourceFileError, match="IndexError"):
        read("segob_bulletin_monthly", kind, b"x", file="cuadro3.1.1.xls")


def test_the_real_file_reads_as_before(real_hhs_bytes: bytes) -> None:
    parsed = read("hhs_uc_daily", hhs_uc_daily.KINDS["export_csv"], real_hhs_bytes, file=URL)
    assert len(parsed.frame()) == 720 and parsed.summary()["rows"] == 720


# ------------------------------------------------------------------ counts against columns


def test_integer_columns_are_read_off_the_ddl() -> None:
    assert column_types("cbp_encounters_monthly", "cbp_encounters_aor")["encounters"] == "INTEGER"
    assert column_types("segob_bulletin_monthly", "segob_repatriation_events")["age"] == "SMALLINT"


def test_a_value_past_its_column_is_refused_with_its_row() -> None:
    frame = pd.DataFrame({"events": [5, COUNT_MAX + 1], "source_row": [7, 8]})

    def parse(content: bytes, *, file: str) -> _Rows:
        return _Rows(frame)

    kind = FileKind("cuadro_3_1_1", parse, "segob_presented_by_nationality", "x")
    with pytest.raises(BadValue, match="does not fit its warehouse column") as caught:
        read("segob_bulletin_monthly", kind, b"x", file="c.xls")
    assert (caught.value.row, caught.value.column) == (8, "events")
    assert caught.value.seen == str(COUNT_MAX + 1)


def hhs_with(real_hhs_bytes: bytes, line: int, old: bytes, new: bytes) -> bytes:
    lines = real_hhs_bytes.split(b"\r\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return b"\r\n".join(lines)


@pytest.mark.parametrize("count", [b"2147483648", b"9" * 400])
def test_hhs_count_too_large_for_integer(real_hhs_bytes: bytes, count: bytes) -> None:
    first = real_hhs_bytes.split(b"\r\n")[1]
    cell = first.split(b",")[-1]
    body = hhs_with(real_hhs_bytes, 2, b"," + cell, b"," + count)
    with pytest.raises(BadValue, match="out of range") as caught:
        read("hhs_uc_daily", hhs_uc_daily.KINDS["export_csv"], body, file=URL)
    assert caught.value.row == 2 and caught.value.column == "discharged_from_hhs_care"
    assert "2,147,483,647" in caught.value.expected


def test_cbp_negative_or_huge_count_is_refused_with_row_and_column() -> None:
    body = (FIXTURES / "cbp" / "state_fy22_fy23_jan_excerpt_constructed.csv").read_bytes()
    header, first, *rest = body.split(b"\n")
    for count in (b"-3", b"4294967296"):
        cells = first.split(b",")
        cells[-1] = count + (b"\r" if cells[-1].endswith(b"\r") else b"")
        bad = b"\n".join([header, b",".join(cells), *rest])
        with pytest.raises(BadValue, match="Encounter Count") as caught:
            cbp_encounters_monthly.parse_state(bad, file="state.csv")
        assert caught.value.row == 2 and "0 to 2,147,483,647" in caught.value.expected


def test_segob_count_too_large_names_sheet_row_and_column() -> None:
    import io

    import xlwt

    # Constructed: one country, January 2019, a count of 2^31 (no real table comes close).
    rows = [
        [],
        [
            "Cuadro 3.1.1 Eventos de extranjeros presentados ante la autoridad migratoria, "
            "enero de 2019"
        ],
        [],
        [],
        ["Continente y país de nacionalidad", "Enero", "Total"],
        [],
        ["Total general", 2**31, 2**31],
        ["Guatemala", 2**31, 2**31],
    ]
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Cuadro 3.1.1")
    for r, row in enumerate(rows):
        for c, value in enumerate(row, start=2):
            sheet.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(BadValue, match="out of range") as caught:
        read(
            "segob_bulletin_monthly",
            segob_bulletin_monthly.KINDS["cuadro_3_1_1"],
            out.getvalue(),
            file="cuadro3.1.1.xls",
        )
    error = caught.value
    assert (error.sheet, error.row, error.column) == ("Cuadro 3.1.1", 7, "D")


# ------------------------------------------------------------------ NUL bytes and huge fields


def test_a_csv_with_a_nul_byte_is_refused_naming_its_line(real_hhs_bytes: bytes) -> None:
    body = hhs_with(real_hhs_bytes, 5, b",", b",\x00")
    with pytest.raises(BadValue, match="NUL bytes") as caught:
        read("hhs_uc_daily", hhs_uc_daily.KINDS["export_csv"], body, file=URL)
    assert caught.value.row == 5


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("aor", b"Fiscal Year,\x00Month\n"),
        (
            "microdata",
            b"FEC_REP,SEXO,EDA,ACOM_REP,EDO_DET,PUNT_REP\n01/02/2024,1,\x0012,2,BC,TIJ\n",
        ),
    ],
)
def test_nul_bytes_are_refused_in_every_csv(kind: str, body: bytes) -> None:
    source = "cbp_encounters_monthly" if kind == "aor" else "segob_bulletin_monthly"
    module = cbp_encounters_monthly if kind == "aor" else segob_bulletin_monthly
    with pytest.raises(BadValue, match="NUL bytes"):
        read(source, module.KINDS[kind], body, file="x.csv")


def test_a_utf16_file_is_named_as_such(real_hhs_bytes: bytes) -> None:
    body = real_hhs_bytes.decode().encode("utf-16")
    with pytest.raises(BadValue, match="UTF-16"):
        read("hhs_uc_daily", hhs_uc_daily.KINDS["export_csv"], body, file=URL)


def test_a_field_past_the_csv_limit_names_its_line(real_hhs_bytes: bytes) -> None:
    body = hhs_with(real_hhs_bytes, 3, b",", b',"' + b"9" * 200_000 + b'",')
    with pytest.raises(BadValue, match="cannot be split into fields") as caught:
        read("hhs_uc_daily", hhs_uc_daily.KINDS["export_csv"], body, file=URL)
    assert caught.value.row == 3


def test_an_html_page_with_a_nul_byte_is_refused() -> None:
    page = next((FIXTURES / "hhs").glob("latest-uc-data-*.html")).read_bytes()
    at = page.index(b"<table")
    with pytest.raises(BadValue, match="NUL bytes"):
        read(
            "hhs_uc_monthly",
            hhs_uc_monthly.KINDS["fy_page"],
            page[:at] + b"\x00" + page[at:],
            file="page.html",
        )


def test_a_page_flooded_with_tags_is_refused_before_parsing() -> None:
    page = next((FIXTURES / "hhs").glob("latest-uc-data-*.html")).read_bytes()
    at = page.index(b"<table")
    with pytest.raises(LayoutChanged, match="tags"):
        read(
            "hhs_uc_monthly",
            hhs_uc_monthly.KINDS["fy_page"],
            page[:at] + b"<td>" * 50_000 + page[at:],
            file="page.html",
        )


# ------------------------------------------------------------------ PDFs with a deadline


def test_a_pdf_that_would_hold_the_reader_is_stopped_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pdf = sorted((FIXTURES / "hhs").glob("*.pdf"))[0].read_bytes()
    # An unterminated string of 1 MB: pdfminer's lexer takes minutes on it.
    monkeypatch.setattr(report_pdf, "PDF_SECONDS", 1.0)
    with pytest.raises(SourceFileError, match="took over 1 s"):
        read(
            "hhs_uc_daily",
            hhs_uc_daily.KINDS["daily_report_pdf"],
            pdf[:575] + b"(" * 1_000_000 + pdf[575:],
            file="report.pdf",
        )
    # The same reader still reads the real layout.
    assert (
        len(
            read(
                "hhs_uc_daily", hhs_uc_daily.KINDS["daily_report_pdf"], pdf, file="report.pdf"
            ).frame()
        )
        == 1
    )


def test_a_damaged_compressed_stream_decodes_as_pdfminer_would() -> None:
    import zlib

    from pdfminer.pdftypes import decompress_corrupted

    def outcome(decode: object, data: bytes) -> bytes | str:
        try:
            return decode(data)  # type: ignore[operator]
        except zlib.error:
            return "zlib.error"

    text = b"".join(b"Children in HHS care %d\n" % i for i in range(20_000))
    packed = zlib.compress(text)
    cases = (
        packed[:-2] + b"xx",
        packed + b"\x00" * 30_000,
        packed[:-1],
        packed[:5000] + b"\xff" * 50 + packed[5050:],
    )
    results = [outcome(report_pdf._decompress_corrupted, d) for d in cases]
    assert results == [outcome(decompress_corrupted, d) for d in cases]
    assert results[0] == text and results[3] == "zlib.error"


# ------------------------------------------------------------------ detect and discover


def test_detect_refuses_instead_of_crashing() -> None:
    with pytest.raises(SourceFileError) as caught:
        detect(
            "segob_bulletin_monthly",
            "downloads/2024/cuadro3.1.1.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,
        )
    assert caught.value.file == "downloads/2024/cuadro3.1.1.xls"


def test_discover_refuses_a_broken_page_and_lets_fetch_errors_through() -> None:
    from returnwatch.fetch import FetchError

    landing = "https://www.cbp.gov/document/stats/nationwide-encounters"
    with pytest.raises(LayoutChanged, match="tags") as caught:
        discover(
            "cbp_encounters_monthly",
            lambda url: b"<a>" * 50_000,
            landing_url=landing,
            run_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
            options={},
        )
    assert caught.value.file == landing

    def down(url: str) -> bytes:
        raise FetchError(source="cbp_encounters_monthly", url=url, reason="connection refused")

    with pytest.raises(FetchError):
        discover(
            "cbp_encounters_monthly",
            down,
            landing_url=landing,
            run_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
            options={},
        )


def test_a_pdf_bomb_is_refused_within_the_memory_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    import zlib

    # The ceiling lowered from 1 GB to 200 MB so the bomb (and the test) stays small.
    monkeypatch.setattr(report_pdf, "PDF_MEMORY_BYTES", 200 << 20)

    pdf = sorted((FIXTURES / "hhs").glob("*.pdf"))[0].read_bytes()
    start, end = pdf.index(b"stream\n") + 7, pdf.index(b"endstream")
    length = pdf[:start].rsplit(b"/Length ", 1)[1].split(b"\n", 1)[0]
    packer, zeros = zlib.compressobj(1), bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(300)) + packer.flush()  # 300 MB
    body = (
        pdf[:start].replace(b"/Length " + length, b"/Length %d" % len(bomb))
        + bomb
        + b"\n"
        + pdf[end:]
    )
    assert len(body) < 2_000_000  # a body under the 5 MB fetch cap
    with pytest.raises(SourceFileError, match="MemoryError|allocate|stopped") as caught:
        read("hhs_uc_daily", hhs_uc_daily.KINDS["daily_report_pdf"], body, file="report.pdf")
    assert caught.value.source == "hhs_uc_daily" and caught.value.file == "report.pdf"


def test_without_a_reader_child_the_pdf_is_read_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing.process

    pdf = sorted((FIXTURES / "hhs").glob("*.pdf"))[0].read_bytes()
    # As inside a daemonic multiprocessing worker, which may not start children.
    monkeypatch.setitem(multiprocessing.process.current_process()._config, "daemon", True)
    assert (
        len(
            read(
                "hhs_uc_daily", hhs_uc_daily.KINDS["daily_report_pdf"], pdf, file="report.pdf"
            ).frame()
        )
        == 1
    )


def test_a_refusal_stays_readable_whatever_the_file_holds() -> None:
    # A damaged page put a whole table's text where a section heading was expected.
    huge = "Standard Shelter 167 255 " * 400
    error = BadValue(
        source="hhs_uc_monthly",
        file="page.html",
        sheet=huge,
        row=3,
        column=huge,
        problem=huge,
        expected=huge,
        seen=huge,
    )
    assert len(str(error)) < 1500 and str(error).startswith("source hhs_uc_monthly, file page")
    assert error.as_dict()["sheet"] == huge  # the details keep everything
