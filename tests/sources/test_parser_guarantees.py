"""What the parsers guarantee, so that the GX suites do not check it again.

A suite expectation that no parsed file can violate guards nothing (issue 20, "checks that can
fail"): the suites dropped them, and each guarantee they stood for is held here instead, on the
parser that gives it. Either the parser builds the value so that it cannot be otherwise (its
columns, a month inside its fiscal year, a first-of-month date, one year per workbook, a
mapped category), which is checked on every row of a real parsed file of each kind; or it
refuses a file that would break it (a negative or blank count, a blank label, a header-only
file), which is checked with the project's error naming the file and row.

What the suites still check (and ``tests/test_quality_checks_can_fail.py`` shows can fail):
ranges the publisher can break in a well-formed file (a month after the run date, a Title 42
row outside its period), categories the parser passes through as printed, repeated keys, and
the ``warn`` plausibility bounds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import duckdb
import pandas as pd
import pytest

from returnwatch import reference
from returnwatch.sources import (
    cbp_encounters_monthly,
    hhs_uc_daily,
    hhs_uc_monthly,
    segob_bulletin_monthly,
)
from returnwatch.sources.base import read
from returnwatch.sources.errors import BadValue, SourceFileError
from returnwatch.warehouse import RAW_DDL as WAREHOUSE_RAW_DDL
from tests.support import hhs_report_pdf as gen
from tests.support import parsed_files

LOAD_COLUMNS = {"source_file", "vintage"}  # added at load, not by the parser


def raw_columns(table: str) -> set[str]:
    from returnwatch import sources

    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for statement in WAREHOUSE_RAW_DDL + sources.raw_ddl():
        con.execute(statement)
    return {row[0] for row in con.execute(f"DESCRIBE raw.{table}").fetchall()}


def frame_of(key: str) -> pd.DataFrame:
    return parsed_files.parsed(key).frame


# ------------------------------------------------------------------ every kind


@pytest.mark.parametrize("key", parsed_files.KEYS)
def test_the_frame_has_exactly_its_raw_tables_columns(key: str) -> None:
    # Was expect_table_columns_to_match_set in every suite.
    parsed = parsed_files.parsed(key)
    assert set(parsed.frame.columns) == raw_columns(parsed.kind.raw_table) - LOAD_COLUMNS


# ------------------------------------------------------------------ CBP


CBP_KEYS = ["cbp_aor", "cbp_state", "cbp_sbo"]


def cbp_body(key: str) -> tuple[list[str], list[str], str]:
    """Header cells, first data row's cells and the next rows of a CBP file (a few dozen: a
    real AOR file has 25k rows, which would make every refusal below a whole parse)."""
    text = parsed_files.content(key).decode("utf-8-sig")
    header, first, rest = text.split("\n", 2)
    rest = "\n".join(rest.split("\n", 40)[:40]) + "\n"
    return header.rstrip("\r").split(","), next(csv.reader([first.rstrip("\r")])), rest


@pytest.mark.parametrize("key", CBP_KEYS)
def test_cbp_refuses_a_blank_cell_in_any_column(key: str) -> None:
    # Was expect_column_values_to_not_be_null on each of the raw table's columns.
    header, first, rest = cbp_body(key)
    kind = parsed_files.parsed(key).kind
    for column in range(len(header)):
        cells = [f'"{c}"' for c in first]
        cells[column] = ""
        body = "\r\n".join([",".join(header), ",".join(cells), rest]).encode()
        with pytest.raises(BadValue) as caught:
            read(cbp_encounters_monthly.SOURCE, kind, body, file=f"{key}.csv")
        assert caught.value.row == 2 and caught.value.column == header[column], header[column]


@pytest.mark.parametrize("key", CBP_KEYS)
def test_cbp_refuses_a_negative_count(key: str) -> None:
    # Was expect_column_values_to_be_between(encounters, min_value=0).
    header, first, rest = cbp_body(key)
    cells = [f'"{c}"' for c in first]
    cells[header.index("Encounter Count")] = "-3"
    body = "\r\n".join([",".join(header), ",".join(cells), rest]).encode()
    with pytest.raises(BadValue, match="Encounter Count") as caught:
        read(cbp_encounters_monthly.SOURCE, parsed_files.parsed(key).kind, body, file=f"{key}.csv")
    assert caught.value.row == 2 and caught.value.seen == "-3"


@pytest.mark.parametrize("key", CBP_KEYS)
def test_cbp_months_lie_in_their_rows_fiscal_year(key: str) -> None:
    # Was expect_column_pair_values_to_be_equal(fiscal_year, fiscal_year_of_month): the parser
    # builds month from the fiscal year and the month name (OCT-DEC in FY-1).
    frame = frame_of(key)
    own_year = [m.year + (1 if m.month >= 10 else 0) for m in frame["month"]]
    assert own_year == frame["fiscal_year"].tolist()
    assert cbp_encounters_monthly.encounters_csv._calendar_months(
        pd.Series([2023, 2023]), pd.Series(["OCT", "SEP"])
    ).tolist() == [
        dt.date(2022, 10, 1),
        dt.date(2023, 9, 1),
    ]


# ------------------------------------------------------------------ HHS export and report


def test_hhs_export_refuses_a_negative_count_and_a_blank_date() -> None:
    # Were expect_column_values_to_be_between(<count>, min_value=0) and not_null(report_date).
    header = parsed_files.REAL_HHS_CSV.read_bytes().split(b"\r\n")[0]
    for row, column in (
        (b'"December 16, 2025",8,-54,15,"2,468",9', "in_cbp_custody"),
        (b',8,54,15,"2,468",9', "Date"),
    ):
        with pytest.raises(BadValue) as caught:
            read(
                hhs_uc_daily.SOURCE,
                hhs_uc_daily.KINDS["export_csv"],
                header + b"\r\n" + row + b"\r\n",
                file="export.csv",
            )
        assert (caught.value.row, caught.value.column) == (2, column)


def test_hhs_report_is_one_row_with_both_dates_and_every_figure() -> None:
    # Were row count == 1 and not_null on report_date, release_date and the daily figures.
    frame = frame_of("hhs_daily_report_pdf")
    assert len(frame) == 1
    assert frame.notna().all(axis=None)


@pytest.mark.parametrize("block", ["daily", "averages"])
def test_hhs_report_refuses_a_negative_figure(block: str) -> None:
    # Were expect_column_values_to_be_between(<figure or average>, min_value=0).
    daily = [
        (label, gen.count_text(v)) for label, v in zip(gen.LABELS, (492, 2853, 649, 19120, 303))
    ]
    averages = [(label, gen.count_text(v)) for label, v in zip(gen.LABELS, (496, 4608, 620))]
    figures = daily if block == "daily" else averages
    figures[1] = (figures[1][0], "-" + figures[1][1])
    content = gen.report_pdf(
        release="Release date: April 14, 2021",
        heading_text="April 13th Data",
        daily=daily,
        averages=averages,
    )
    with pytest.raises(BadValue, match="not a number") as caught:
        read(
            hhs_uc_daily.SOURCE, hhs_uc_daily.KINDS["daily_report_pdf"], content, file="report.pdf"
        )
    assert caught.value.column == "Children in CBP custody"


# ------------------------------------------------------------------ HHS monthly pages


def test_hhs_monthly_rows_are_months_of_the_page_with_a_label_and_a_type() -> None:
    # Were row count >= 1 (the required rows are always there), not_null(month, section,
    # category), fiscal_year == month's fiscal year, month_day == 1, number_type in set.
    frame = frame_of("hhs_monthly_fy_page")
    assert set(hhs_uc_monthly.REQUIRED_MEASURES) <= set(frame["measure"])
    assert frame[["month", "section", "category", "number_type"]].notna().all(axis=None)
    assert (frame["section"] != "").all() and (frame["category"] != "").all()
    assert [hhs_uc_monthly.fiscal_year_of(m) for m in frame["month"]] == frame[
        "fiscal_year"
    ].tolist()
    assert {m.day for m in frame["month"]} == {1}
    assert set(frame["number_type"]) == set(hhs_uc_monthly.NUMBER_TYPES)


def test_hhs_monthly_refuses_a_negative_figure() -> None:
    # Was expect_column_values_to_be_between(value, min_value=0).
    page = parsed_files.content("hhs_monthly_fy_page")
    bad = page.replace(
        b"Standard Shelter</strong></td><td>167<", b"Standard Shelter</strong></td><td>-167<", 1
    )
    assert bad != page
    with pytest.raises(BadValue, match="not a number") as caught:
        read(hhs_uc_monthly.SOURCE, hhs_uc_monthly.KINDS["fy_page"], bad, file="fy2021.html")
    assert caught.value.seen == "-167"


# ------------------------------------------------------------------ SEGOB bulletin workbooks


WORKBOOK_KEYS = [
    "segob_cuadro_3_1_1",
    "segob_cuadro_3_1_3",
    "segob_cuadro_3_2_4",
    "segob_section_5_minors",
]


@pytest.mark.parametrize("key", WORKBOOK_KEYS)
def test_segob_months_are_first_days_of_one_year_with_a_count(key: str) -> None:
    # Were not_null(month), month_day in {1}, month_year one value, not_null(events) and,
    # for the nationality tables, not_null(country).
    frame = frame_of(key)
    assert frame["month"].notna().all() and {m.day for m in frame["month"]} == {1}
    assert len({m.year for m in frame["month"]}) == 1
    assert frame["events"].notna().all() and str(frame["events"].dtype) == "int64"
    if "country" in frame:
        assert frame["country"].notna().all() and (frame["country"] != "").all()


def test_segob_categories_are_the_parsers_own_codes() -> None:
    # Were in_set on sex (3.1.3, section 5), age_group and travel_condition (3.1.3) and
    # return_type (3.2.4): the parser maps each printed label to one of its codes or refuses
    # the row (tests/sources/segob_bulletin_monthly/: unknown row labels and return types).
    sex_age = frame_of("segob_cuadro_3_1_3")
    assert set(sex_age["sex"]) == {"male", "female"}
    assert set(sex_age["age_group"]) <= {"18+", "12-17", "0-11"}
    assert set(sex_age["travel_condition"]) <= {
        "accompanied",
        "unaccompanied",
        segob_bulletin_monthly.NOT_SPLIT,
    }
    assert set(frame_of("segob_section_5_minors")["sex"]) == {"male", "female"}
    assert set(frame_of("segob_cuadro_3_2_4")["return_type"]) <= set(
        segob_bulletin_monthly.RETURN_TYPES
    )
    assert set(segob_bulletin_monthly.SEX_LABELS.values()) == {"male", "female"}


def test_segob_iso3_codes_come_only_from_the_countries_table() -> None:
    # Was expect_column_values_to_match_regex(iso3, ^[A-Z]{3}$): iso3 is looked up, never read.
    codes = {row.iso3 for row in reference.countries()} | set(
        segob_bulletin_monthly.ALIASES.values()
    )
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in codes)
    for key in ("segob_cuadro_3_1_1", "segob_cuadro_3_2_4"):
        assert set(frame_of(key)["iso3"].dropna()) <= codes


def xls(rows: list[list[object]]) -> bytes:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Cuadro 3.1.1")
    for r, row in enumerate(rows):
        for c, value in enumerate(row, start=2):
            if value is not None:
                sheet.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("cell", "problem"),
    [(-3, "out of range"), ("-3", "not a count"), (None, "empty cell in a month")],
)
def test_segob_refuses_a_negative_or_blank_count(cell: object, problem: str) -> None:
    # Were between(events, min_value=0) and not_null(events). Constructed: one country.
    rows = [
        [],
        ["Cuadro 3.1.1 Eventos de extranjeros presentados, enero-febrero de 2019"],
        [],
        ["Continente y país de nacionalidad", "Enero", "Febrero", "Total"],
        [],
        ["Total general", 5, 4, 9],
        ["Guatemala", 5, 4, 9],
        ["Honduras", 0, cell, 0],
    ]
    with pytest.raises(BadValue, match=problem) as caught:
        read(
            segob_bulletin_monthly.SOURCE,
            segob_bulletin_monthly.KINDS["cuadro_3_1_1"],
            xls(rows),
            file="cuadro3.1.1.xls",
        )
    assert (caught.value.row, caught.value.column) == (8, "E")


# ------------------------------------------------------------------ SEGOB microdata


def test_microdata_without_events_is_refused() -> None:
    # Was expect_table_row_count_to_be_between(min_value=1).
    header = b"FEC_REP,SEXO,EDA,ACOM_REP,EDO_DET,PUNT_REP\r\n"
    with pytest.raises(SourceFileError, match="repatriation date"):
        read(
            segob_bulletin_monthly.SOURCE,
            segob_bulletin_monthly.KINDS["microdata"],
            header,
            file="BDSIOMR_PUB_2024_UPMRIP.csv",
        )


def test_microdata_rows_are_distinct_file_lines() -> None:
    # Was expect_column_values_to_be_unique(source_row): line numbers, blank lines skipped.
    rows = segob_bulletin_monthly.parse_microdata(
        b"FEC_REP,SEXO,EDA,ACOM_REP,EDO_DET,PUNT_REP\n"
        b"03/01/2024,1,16,2,Texas,Reynosa\n\n"
        b"05/01/2024,2,9,1,Texas,Reynosa\n",
        file="m",
    ).frame()
    assert rows["source_row"].tolist() == [2, 4]
    lines = frame_of("segob_microdata")["source_row"]
    assert lines.is_unique and lines.is_monotonic_increasing
