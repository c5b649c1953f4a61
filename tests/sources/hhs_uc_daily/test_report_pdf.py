"""The daily report PDF parser on constructed reports that carry real figures.

Fixtures (``tests/fixtures/hhs/*_constructed.pdf``, written by ``tests/support/hhs_report_pdf.py``)
use the real reports' layout and wording. Two carry the figures of real 2021 reports as
transcribed; four carry days of the real healthdata.gov copy, whose figures are checked here
against that CSV as read by the CSV parser (``sources/hhs_uc_daily/export_csv.py``), not against the generator.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from returnwatch.sources import hhs_uc_daily
from returnwatch.sources.errors import BadValue, LayoutChanged
from returnwatch.sources.hhs_uc_daily import report_pdf
from tests.support import hhs_report_pdf as gen

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hhs"
DAILY = list(report_pdf.COUNT_COLUMNS)
AVERAGES = list(report_pdf.AVERAGE_COLUMNS)


def fixture(day: dt.date) -> bytes:
    return (FIXTURES / gen.fixture_name(day)).read_bytes()


def parse_one(content: bytes, name: str = "test.pdf") -> dict[str, object]:
    parsed = report_pdf.parse(content, file=name)
    assert len(parsed.rows) == 1
    return parsed.rows[0]


def variant(
    *,
    daily: list[tuple[str, str]] | None = None,
    averages: list[tuple[str, str]] | None = None,
    heading: str = "April 13th Data",
    release: str = "Release date: April 14, 2021",
    **kwargs: object,
) -> bytes:
    """The April 14, 2021 report (real transcribed figures) with some part changed."""
    real_daily = [
        (label, gen.count_text(v)) for label, v in zip(gen.LABELS, (492, 2853, 649, 19120, 303))
    ]
    real_averages = [(label, gen.count_text(v)) for label, v in zip(gen.LABELS, (496, 4608, 620))]
    return gen.report_pdf(
        release=release,
        heading_text=heading,
        daily=real_daily if daily is None else daily,
        averages=real_averages if averages is None else averages,
        **kwargs,
    )


@pytest.fixture(scope="module")
def healthdata_by_date(real_hhs_bytes: bytes) -> dict[dt.date, dict[str, object]]:
    return {row["report_date"]: row for row in hhs_uc_daily.parse(real_hhs_bytes, file="real").rows}


# ------------------------------------------------------------------ real figures


@pytest.mark.parametrize("report", gen.REPORTS_2021, ids=lambda r: r[0].isoformat())
def test_transcribed_2021_reports(report: tuple) -> None:
    report_date, release_date, figures, averages = report
    row = parse_one(fixture(report_date))
    assert row["report_date"] == report_date
    assert row["release_date"] == release_date
    assert [row[c] for c in DAILY] == list(figures)
    assert [row[c] for c in AVERAGES] == [float(v) for v in averages]


def test_april_14_2021_report_figure_by_figure() -> None:
    # The transcript of the report released April 14, 2021 (scribd.com/document/503038617).
    row = parse_one(fixture(dt.date(2021, 4, 13)))
    assert row == {
        "report_date": dt.date(2021, 4, 13),
        "release_date": dt.date(2021, 4, 14),
        "apprehended_placed_in_cbp_custody": 492,
        "in_cbp_custody": 2853,
        "transferred_out_of_cbp_custody": 649,
        "in_hhs_care": 19120,
        "discharged_from_hhs_care": 303,
        "apprehended_placed_in_cbp_custody_30day_avg": 496.0,
        "in_cbp_custody_30day_avg": 4608.0,
        "transferred_out_of_cbp_custody_30day_avg": 620.0,
        "source_row": 5,  # the fifth text line: release, title, 2 intro lines, the heading
    }


@pytest.mark.parametrize("day", gen.HEALTHDATA_DATES, ids=lambda d: d.isoformat())
def test_constructed_reports_equal_the_real_csv(
    day: dt.date, healthdata_by_date: dict[dt.date, dict]
) -> None:
    row = parse_one(fixture(day))
    csv_row = healthdata_by_date[day]
    assert row["report_date"] == day
    assert row["release_date"] == day + dt.timedelta(days=1)
    assert {c: row[c] for c in DAILY} == {c: csv_row[c] for c in hhs_uc_daily.COUNT_COLUMNS}
    # The 30-day averages were computed from the CSV's 30 reported days up to this one and
    # printed with one decimal: recompute them from the CSV parser's rows.
    window = sorted(d for d in healthdata_by_date if d <= day)[-30:]
    assert len(window) == 30
    for average, count in zip(AVERAGES, hhs_uc_daily.COUNT_COLUMNS[:3]):
        mean = sum(healthdata_by_date[d][count] for d in window) / 30
        assert row[average] == pytest.approx(mean, abs=0.05), average


def test_thousands_separator_in_hhs_care() -> None:
    # 2023-09-13 in the healthdata copy: "10,678" children in HHS care.
    assert parse_one(fixture(dt.date(2023, 9, 13)))["in_hhs_care"] == 10678


# ------------------------------------------------------------------ headings and dates


@pytest.mark.parametrize(
    ("heading", "release", "expected"),
    [
        ("May 1st Data", "Release date: May 2, 2023", dt.date(2023, 5, 1)),
        ("January 2nd Data", "Release date: January 3, 2024", dt.date(2024, 1, 2)),
        ("April 3rd Data", "Release date: April 4, 2024", dt.date(2024, 4, 3)),
        ("April 13th Data", "Release date: April 14, 2021", dt.date(2021, 4, 13)),
        ("June 22nd Data", "Release date: June 23, 2021", dt.date(2021, 6, 22)),
        ("April 11th Data", "Release date: April 12, 2021", dt.date(2021, 4, 11)),
        ("April 13 Data", "Release date: April 14, 2021", dt.date(2021, 4, 13)),  # no suffix
        # The heading has no year: a December day released in January belongs to the year before.
        ("December 31st Data", "Release date: January 2, 2022", dt.date(2021, 12, 31)),
    ],
)
def test_ordinal_headings(heading: str, release: str, expected: dt.date) -> None:
    row = parse_one(variant(heading=heading, release=release))
    assert row["report_date"] == expected


def test_ordinal_helper_of_the_generator() -> None:
    assert [gen.ordinal(d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 30, 31)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
        "30th",
        "31st",
    ]


def test_impossible_heading_date_is_a_bad_value() -> None:
    with pytest.raises(BadValue, match="not a real date"):
        report_pdf.parse(variant(heading="February 30th Data"), file="feb30.pdf")


def test_unreadable_release_date_is_a_bad_value() -> None:
    with pytest.raises(BadValue, match="release date"):
        report_pdf.parse(variant(release="Release date: sometime in April"), file="r.pdf")


# ------------------------------------------------------------------ layout by label


def test_rows_are_found_by_label_not_position() -> None:
    shuffled = [
        (label, gen.count_text(v))
        for label, v in reversed(list(zip(gen.LABELS, (492, 2853, 649, 19120, 303))))
    ]
    row = parse_one(variant(daily=shuffled))
    assert (row["apprehended_placed_in_cbp_custody"], row["in_hhs_care"]) == (492, 19120)


def test_label_wrapped_over_two_lines_is_read() -> None:
    lines = [
        report_pdf._Line(1, 6, "Unaccompanied children apprehended and placed"),
        report_pdf._Line(1, 7, "into CBP custody* 492"),
        report_pdf._Line(1, 8, "Children in CBP custody 2,853"),
    ]
    heading = report_pdf._Line(1, 5, "April 13th Data")
    label = "Unaccompanied children apprehended and placed into CBP custody"
    assert report_pdf._figure(lines, label, heading, "wrapped", whole=True) == 492
    assert (
        report_pdf._figure(lines, "Children in CBP custody", heading, "wrapped", whole=True) == 2853
    )


def test_missing_row_is_a_layout_change_naming_file_page_and_text() -> None:
    daily = [
        (label, gen.count_text(v))
        for label, v in zip(gen.LABELS, (492, 2853, 649, 19120, 303))
        if label != "Children in HHS care"
    ]
    with pytest.raises(LayoutChanged) as caught:
        report_pdf.parse(variant(daily=daily), file="no-hhs-care.pdf")
    error = caught.value
    assert error.file == "no-hhs-care.pdf"
    assert error.sheet == "page 1"
    assert "'Children in HHS care'" in error.problem
    assert "Children discharged from HHS care 303" in (error.seen or "")
    assert "no-hhs-care.pdf" in str(error) and "page 1" in str(error)


def test_missing_average_row_is_a_layout_change() -> None:
    averages = [(gen.LABELS[0], "496"), (gen.LABELS[1], "4,608")]
    with pytest.raises(LayoutChanged, match="Children transferred out of CBP custody"):
        report_pdf.parse(variant(averages=averages), file="avg.pdf")


def test_missing_title_is_a_layout_change() -> None:
    with pytest.raises(LayoutChanged, match="title") as caught:
        report_pdf.parse(variant(title="Unaccompanied Children Weekly Summary"), file="t.pdf")
    assert caught.value.sheet == "page 1"
    assert "Release date: April 14, 2021" in (caught.value.seen or "")


def test_missing_average_block_is_a_layout_change() -> None:
    with pytest.raises(LayoutChanged, match="30-Day Average Data"):
        report_pdf.parse(variant(average_heading="7-Day Average Data"), file="noavg.pdf")


def test_unreadable_figure_is_a_bad_value() -> None:
    daily = [
        (label, gen.count_text(v)) for label, v in zip(gen.LABELS, (492, 2853, 649, 19120, 303))
    ]
    daily[3] = ("Children in HHS care", "19,12O")  # letter O for a zero
    with pytest.raises(BadValue) as caught:
        report_pdf.parse(variant(daily=daily), file="ocr.pdf")
    assert caught.value.column == "Children in HHS care"
    assert caught.value.sheet == "page 1"
    assert caught.value.seen == "Children in HHS care 19,12O"


def test_decimal_count_is_a_bad_value_but_decimal_average_is_read() -> None:
    daily = [
        (label, gen.count_text(v)) for label, v in zip(gen.LABELS, (492, 2853, 649, 19120, 303))
    ]
    daily[0] = (gen.LABELS[0], "492.5")
    with pytest.raises(BadValue):
        report_pdf.parse(variant(daily=daily), file="dec.pdf")
    averages = [(gen.LABELS[0], "495.8"), (gen.LABELS[1], "4,608.3"), (gen.LABELS[2], "620")]
    row = parse_one(variant(averages=averages))
    assert row["in_cbp_custody_30day_avg"] == 4608.3


@pytest.mark.parametrize(
    "content",
    [
        b"<!DOCTYPE html><html><body>Site maintenance</body></html>",
        b"",
        b"%PDF-1.4\n% truncated before any object",
    ],
)
def test_not_a_readable_pdf_is_a_layout_change(content: bytes) -> None:
    with pytest.raises(LayoutChanged):
        report_pdf.parse(content, file="junk")


def test_truncated_pdf_is_a_layout_change() -> None:
    content = fixture(dt.date(2021, 4, 13))
    with pytest.raises(LayoutChanged):
        report_pdf.parse(content[: len(content) // 2], file="half.pdf")


def test_looks_like() -> None:
    assert report_pdf.looks_like(fixture(dt.date(2021, 6, 30)))
    assert not report_pdf.looks_like(variant(title="Something Else Entirely"))
    assert not report_pdf.looks_like(b"Date,Children in CBP custody\r\n")


# ------------------------------------------------------------------ contract and warehouse


def test_frame_types_and_raw_table_roundtrip() -> None:
    import duckdb

    frame = report_pdf.parse(fixture(dt.date(2023, 5, 1)), file="f").frame()
    assert list(frame.columns) == report_pdf.COLUMNS
    assert str(frame["in_hhs_care"].dtype) == "Int64"
    assert str(frame["in_cbp_custody_30day_avg"].dtype) == "Float64"
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for statement in hhs_uc_daily.RAW_DDL:
        con.execute(statement)
    loaded = frame.assign(source_file="sha", vintage=dt.date(2023, 5, 2))  # noqa: F841
    con.execute("INSERT INTO raw.hhs_uc_daily_report BY NAME SELECT * FROM loaded")
    assert con.execute(
        "SELECT in_hhs_care, in_cbp_custody_30day_avg FROM raw.hhs_uc_daily_report"
    ).fetchone() == (8492, 250.7)


def test_file_kind() -> None:
    kind = hhs_uc_daily.KINDS["daily_report_pdf"]
    assert (kind.kind, kind.raw_table, kind.suite) == (
        "daily_report_pdf",
        "hhs_uc_daily_report",
        "hhs_uc_daily_report",
    )
    assert kind.key_columns == ("report_date",)
    assert set(kind.value_columns) == set(DAILY) | set(AVERAGES)
    assert kind.parse is report_pdf.parse


def test_suite_passes_a_real_report_and_fails_an_impossible_one() -> None:
    from returnwatch import quality

    frame = report_pdf.parse(fixture(dt.date(2021, 4, 13)), file="f").frame()
    params = {"latest_possible_date": dt.date(2026, 1, 1)}
    report = quality.validate(
        "hhs_uc_daily_report",
        frame,
        source="hhs_uc_daily",
        file="f",
        parameters=params,
        prepare=hhs_uc_daily.KINDS["daily_report_pdf"].prepare,
    )
    assert report.failures == [] and report.warnings == [], report.summary()

    # Released before its data day (a misread heading year): stops the load.
    bad = frame.assign(release_date=dt.date(2021, 4, 10))
    report = quality.validate(
        "hhs_uc_daily_report",
        bad,
        source="hhs_uc_daily",
        file="f",
        parameters=params,
        prepare=hhs_uc_daily.KINDS["daily_report_pdf"].prepare,
    )
    assert [o.column for o in report.failures] == ["release_lag_days"]
