"""HHS monthly "Latest UC Data – FY{YYYY}" pages: parse, quirks, refusals and discovery.

Expected figures are quoted from ``include/replay/hhs_gov/wapo_fy2018_fy2021.csv`` (the Post's
scrape of these pages) with their line numbers, so a test fails if the parser or the mirror's
rendering misplaces a figure. Pages come from the committed fixture (the mirror's FY2021 page
as of 2021-03-11) or from the mirror's renderer, with parts changed to make broken variants.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from returnwatch import settings
from returnwatch.sources import hhs_uc_monthly
from returnwatch.sources.errors import BadValue, LayoutChanged
from returnwatch_replay.mirror import ReplayMirror
from returnwatch_replay.sites import hhs_gov

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "hhs"
    / "latest-uc-data-fy2021_as_of_2021-03-11_constructed.html"
)
SOURCE = "hhs_uc_monthly"
OVERALL = "Overall Data"
TENDER = "Tender Age (0-12) UC By Shelter Type"
SPONSORS = "Total Monthly Discharges to Individual Sponsors Only (By Category)"


@pytest.fixture(scope="module")
def site() -> hhs_gov.HhsGovSite:
    return hhs_gov.make_site(settings.replay_data_dir())


def page(site: hhs_gov.HhsGovSite, fiscal_year: int, as_of: dt.date = dt.date(2021, 3, 11)) -> str:
    found = site.page(fiscal_year, as_of)
    assert found is not None
    return found[0].decode("utf-8")


def figures(parsed: hhs_uc_monthly.ParsedPage) -> dict[tuple[str, str, dt.date], tuple[float, str]]:
    return {
        (r["section"], r["category"], r["month"]): (r["value"], r["number_type"])
        for r in parsed.rows
    }


def parse_text(text: str, name: str = "variant") -> hhs_uc_monthly.ParsedPage:
    return hhs_uc_monthly.parse(text.encode("utf-8"), file=name)


# ------------------------------------------------------------------ real figures


def test_fixture_fy2021_figures() -> None:
    parsed = hhs_uc_monthly.parse(FIXTURE.read_bytes(), file=FIXTURE.name)
    got = figures(parsed)
    assert parsed.fiscal_year == 2021
    assert len(parsed.rows) == 100  # 25 labels x Oct 2020 .. Jan 2021
    # wapo_fy2018_fy2021.csv lines 2-5: Average Number of Children in Care: 1929, 2397, 3691, 4020.
    assert [
        got[(OVERALL, "Average Number of Children in Care:", m)][0]
        for m in (
            dt.date(2020, 10, 1),
            dt.date(2020, 11, 1),
            dt.date(2020, 12, 1),
            dt.date(2021, 1, 1),
        )
    ] == [1929, 2397, 3691, 4020]
    assert got[(OVERALL, "Average Occupancy Rate:", dt.date(2020, 10, 1))] == (
        15,
        "Percent",
    )  # line 10
    assert got[(OVERALL, "30-Day Average UC Discharge Rate:", dt.date(2020, 11, 1))] == (
        1.8,
        "Number",
    )  # 27
    assert got[("Gender", "Male", dt.date(2020, 10, 1))] == (1410, "Number")  # line 30
    assert got[("Age", "17+", dt.date(2020, 10, 1))] == (753, "Number")  # line 54
    assert got[(SPONSORS, "Category 1", dt.date(2020, 10, 1))] == (544, "Number")  # line 86
    assert got[(SPONSORS, "Category 3", dt.date(2021, 1, 1))] == (228, "Number")  # line 97
    assert got[(SPONSORS, "Total", dt.date(2020, 10, 1))] == (1053, "Number")  # line 98


@pytest.mark.parametrize(
    ("fiscal_year", "section", "label", "month", "value", "number_type"),
    [
        (
            2018,
            OVERALL,
            "Average Number of Children in Care:",
            dt.date(2017, 10, 1),
            5074,
            "Number",
        ),  # 702
        (
            2018,
            OVERALL,
            "Average Number of Children in Care:",
            dt.date(2018, 9, 1),
            13034,
            "Number",
        ),  # 713
        (2018, OVERALL, "Average Occupancy Rate:", dt.date(2018, 6, 1), 94, "Percent"),  # 734
        (
            2018,
            OVERALL,
            "30-Day Average Number of UC Referrals:",
            dt.date(2018, 6, 1),
            177,
            "Number",
        ),  # 770
        (
            2018,
            OVERALL,
            "30-Day Average UC Discharge Rate:",
            dt.date(2018, 2, 1),
            1.5,
            "Number",
        ),  # 778
        (2018, TENDER, "Long Term Foster Care", dt.date(2017, 11, 1), 26, "Number"),  # 943
        (
            2019,
            OVERALL,
            "Average Number of Children in Care:",
            dt.date(2019, 6, 1),
            13432,
            "Number",
        ),  # 410
        (2019, "Gender", "Female", dt.date(2018, 12, 1), 3878, "Number"),  # 500
        (2019, "Age", "17", dt.date(2018, 10, 1), 5395, "Number"),  # 558: "17" before FY2020
        (2019, SPONSORS, "Category 3", dt.date(2019, 5, 1), 545, "Number"),  # 685
        (
            2020,
            OVERALL,
            "Average Number of Children in Care:",
            dt.date(2020, 3, 1),
            3541,
            "Number",
        ),  # 107
        (2020, OVERALL, "Average Occupancy Rate:", dt.date(2020, 7, 1), 6, "Percent"),  # 135
        (
            2020,
            OVERALL,
            "30-Day Average Number of UC Referrals:",
            dt.date(2019, 12, 1),
            84,
            "Number",
        ),  # 164
        (2021, "Age", "17+", dt.date(2020, 10, 1), 753, "Number"),  # 54
    ],
)
def test_pages_equal_the_wapo_copy(
    site: hhs_gov.HhsGovSite,
    fiscal_year: int,
    section: str,
    label: str,
    month: dt.date,
    value: float,
    number_type: str,
) -> None:
    parsed = parse_text(page(site, fiscal_year), f"fy{fiscal_year}")
    assert parsed.fiscal_year == fiscal_year
    assert figures(parsed)[(section, label, month)] == (value, number_type)


def test_measures_are_stable_across_label_changes(site: hhs_gov.HhsGovSite) -> None:
    fy2019 = parse_text(page(site, 2019))
    fy2020 = parse_text(page(site, 2020))
    age17 = {
        r["category"] for p in (fy2019, fy2020) for r in p.rows if r["measure"] == "age_17_plus"
    }
    assert age17 == {"17", "17+"}
    for parsed in (fy2019, fy2020):
        assert parsed.unknown_labels == []
        assert {r["measure"] for r in parsed.rows} >= set(hhs_uc_monthly.REQUIRED_MEASURES)


# ------------------------------------------------------------------ quirks


def test_labels_rendered_twice_are_dropped_but_repeated_figures_kept() -> None:
    text = FIXTURE.read_text()
    # The page renders the label twice: a <th> and again in a <td class="color2">.
    assert text.count(">Secure</th>") == 1 and text.count("<strong>Secure</strong>") == 1
    parsed = parse_text(text)
    secure = [r for r in parsed.rows if r["category"] == "Secure"]
    # Line 74-77 of the copy: Secure is 0 in each of the four months: four figures, not one.
    assert [r["value"] for r in secure] == [0, 0, 0, 0]
    assert len(parsed.rows) == 25 * 4  # each label once per month, not twice
    assert parsed.repeated_label_cells == 25  # one repeat per row label


def test_labels_once_or_three_times_read_the_same() -> None:
    text = FIXTURE.read_text()
    expected = figures(parse_text(text))
    once = re.sub(r'<(td|th) class="color2"><strong>.*?</strong></\1>', "", text)
    assert "color2" not in once
    assert figures(parse_text(once)) == expected
    thrice = re.sub(r'(<(td|th) class="color2"><strong>.*?</strong></\2>)', r"\1\1", text)
    parsed = parse_text(thrice)
    assert figures(parsed) == expected
    assert parsed.repeated_label_cells == 50


def test_label_spanning_two_columns_and_sub_heading_rows() -> None:
    text = FIXTURE.read_text()
    expected = figures(parse_text(text))
    # A label once, spanning both label columns; and a caption row spanning the whole table.
    spanning = re.sub(
        r'<th scope="row">(.*?)</th><td class="color2"><strong>\1</strong></td>',
        r'<th scope="row" colspan="2">\1</th>',
        text,
    )
    assert spanning.count('colspan="2"') == 25
    spanning = spanning.replace("<tbody>", '<tbody>\n<tr><td colspan="6">Source: ORR</td></tr>')
    assert figures(parse_text(spanning)) == expected


def test_october_to_december_belong_to_the_previous_calendar_year() -> None:
    parsed = hhs_uc_monthly.parse(FIXTURE.read_bytes(), file="fy2021")
    assert sorted({r["month"] for r in parsed.rows}) == [
        dt.date(2020, 10, 1),
        dt.date(2020, 11, 1),
        dt.date(2020, 12, 1),
        dt.date(2021, 1, 1),
    ]
    assert {r["fiscal_year"] for r in parsed.rows} == {2021}
    assert hhs_uc_monthly.month_date(2021, 12) == dt.date(2020, 12, 1)
    assert hhs_uc_monthly.month_date(2021, 9) == dt.date(2021, 9, 1)
    assert hhs_uc_monthly.fiscal_year_of(dt.date(2020, 10, 1)) == 2021
    assert hhs_uc_monthly.fiscal_year_of(dt.date(2021, 9, 30)) == 2021


@pytest.mark.parametrize(
    ("oct_header", "nov_header"),
    [
        ("October", "November"),
        ("Oct.", "Nov."),
        ("Oct 2020", "Nov 2020"),
        ("Oct-20", "Nov-20"),
        ("OCT", "NOV"),
    ],
)
def test_month_header_spellings(oct_header: str, nov_header: str) -> None:
    text = (
        FIXTURE.read_text()
        .replace('scope="col">Oct<', f'scope="col">{oct_header}<')
        .replace('scope="col">Nov<', f'scope="col">{nov_header}<')
    )
    assert figures(parse_text(text)) == figures(parse_text(FIXTURE.read_text()))


def test_month_header_of_another_fiscal_year_is_a_layout_change() -> None:
    text = FIXTURE.read_text().replace('scope="col">Oct<', 'scope="col">Oct 2021<')
    with pytest.raises(LayoutChanged, match="not in FY2021"):
        parse_text(text)


def test_section_from_a_caption() -> None:
    text = FIXTURE.read_text().replace(
        '<h2>Gender</h2>\n<table class="table">',
        '<table class="table"><caption>Gender</caption>',
        1,
    )
    assert "<caption>Gender</caption>" in text
    assert figures(parse_text(text)) == figures(parse_text(FIXTURE.read_text()))


def test_blank_cell_is_missing_not_zero() -> None:
    text = FIXTURE.read_text().replace("<td>1,410</td>", "<td></td>", 1)  # Male, Oct 2020
    parsed = parse_text(text)
    male = next(
        r for r in parsed.rows if r["category"] == "Male" and r["month"] == dt.date(2020, 10, 1)
    )
    assert male["value"] is None and male["number_type"] == "Number"
    assert parsed.blank_values == 1


def test_unreadable_figure_is_a_bad_value() -> None:
    text = FIXTURE.read_text().replace("<td>1,410</td>", "<td>N/A</td>", 1)
    with pytest.raises(BadValue) as caught:
        parse_text(text, "na")
    assert caught.value.column == "Oct 2020"
    assert caught.value.seen == "N/A"
    assert "Gender" in (caught.value.sheet or "")


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"error": "maintenance"}', "not an HTML page"),
        (hhs_gov.MAINTENANCE_PAGE.encode(), "fiscal year"),
        (hhs_gov.NOT_FOUND_PAGE.encode(), "fiscal year"),
    ],
)
def test_error_pages_and_empty_bodies_are_layout_changes(content: bytes, match: str) -> None:
    with pytest.raises(LayoutChanged, match=match):
        hhs_uc_monthly.parse(content, file="bad")


def test_page_with_a_fiscal_year_but_no_month_table() -> None:
    text = re.sub(r"<table.*?</table>", "<p>Data coming soon.</p>", FIXTURE.read_text(), flags=re.S)
    with pytest.raises(LayoutChanged, match="no table with months as columns"):
        parse_text(text)


def test_truncated_page_is_a_bad_value() -> None:
    content = FIXTURE.read_bytes()
    with pytest.raises(BadValue, match="truncated"):
        hhs_uc_monthly.parse(content[: len(content) // 2], file="half")


def test_row_missing_a_cell_is_a_layout_change() -> None:
    text = FIXTURE.read_text().replace("<td>1,410</td>", "", 1)
    with pytest.raises(LayoutChanged) as caught:
        parse_text(text, "short-row")
    assert "5 cells; the header has 2 label cell(s) and 4 month columns" in caught.value.problem
    assert caught.value.sheet == "table 2 (Gender)"


def test_row_with_two_different_labels_is_a_layout_change() -> None:
    text = FIXTURE.read_text().replace("<strong>Male</strong>", "<strong>Boys</strong>", 1)
    with pytest.raises(LayoutChanged, match="2 different label cells"):
        parse_text(text)


def test_renamed_required_label_is_a_layout_change() -> None:
    # Decided: a row the marts read ('30-Day Average Number of UC Referrals:') that disappears
    # stops the load and names both the missing row and the unknown label seen.
    renamed = "30-Day Average Number of Children Referred to ORR:"
    text = FIXTURE.read_text().replace("30-Day Average Number of UC Referrals:", renamed)
    with pytest.raises(LayoutChanged) as caught:
        parse_text(text, "renamed")
    assert "30-day average number of uc referrals" in caught.value.problem
    assert renamed in (caught.value.seen or "")


def test_renamed_other_label_loads_as_published_and_is_a_finding() -> None:
    # Decided: any other unknown label is loaded as published, measure NULL, and the suite's
    # warn expectation on measure turns it into a finding.
    from returnwatch import quality

    text = FIXTURE.read_text().replace("Standard Shelter", "Standard Shelter Care")
    parsed = parse_text(text, "renamed-breakdown")
    renamed = [r for r in parsed.rows if r["category"] == "Standard Shelter Care"]
    assert [r["measure"] for r in renamed] == [None] * 4
    assert [r["value"] for r in renamed] == [167, 255, 260, 376]  # copy lines 58-61
    assert parsed.summary()["unknown_labels"] == [f"{TENDER} / Standard Shelter Care"]
    report = quality.validate(
        "hhs_uc_monthly",
        parsed.frame(),
        source=SOURCE,
        file="renamed",
        parameters={"latest_possible_date": dt.date(2021, 3, 11)},
        prepare=hhs_uc_monthly.KINDS["fy_page"].prepare,
    )
    assert report.failures == []
    assert [(o.column, o.unexpected_count) for o in report.warnings] == [("measure", 4)]


def test_detect_kind() -> None:
    assert hhs_uc_monthly.detect_kind("fy2021.html", FIXTURE.read_bytes()) == "fy_page"
    with pytest.raises(LayoutChanged):
        hhs_uc_monthly.detect_kind("rows.csv", b"Date,Children in CBP custody\r\n")


# ------------------------------------------------------------------ contract, warehouse, suite


def test_kind_and_raw_table_roundtrip() -> None:
    import duckdb

    kind = hhs_uc_monthly.KINDS["fy_page"]
    assert (kind.raw_table, kind.suite) == ("hhs_uc_monthly", "hhs_uc_monthly")
    assert kind.key_columns == ("month", "section", "category")
    assert kind.value_columns == ("value",)
    frame = hhs_uc_monthly.parse(FIXTURE.read_bytes(), file="f").frame()
    assert list(frame.columns) == hhs_uc_monthly.COLUMNS
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for statement in hhs_uc_monthly.RAW_DDL:
        con.execute(statement)
    loaded = frame.assign(source_file="sha", vintage=dt.date(2021, 2, 15))  # noqa: F841
    con.execute("INSERT INTO raw.hhs_uc_monthly BY NAME SELECT * FROM loaded")
    assert con.execute("""SELECT value, number_type FROM raw.hhs_uc_monthly
                          WHERE measure = 'occupancy_rate_avg' AND month = DATE '2020-10-01'
                       """).fetchone() == (15.0, "Percent")
    assert con.execute("SELECT count(DISTINCT source_row) FROM raw.hhs_uc_monthly").fetchone() == (
        100,
    )


def test_suite_passes_the_real_pages_and_catches_a_wrong_year(site: hhs_gov.HhsGovSite) -> None:
    from returnwatch import quality

    prepare = hhs_uc_monthly.KINDS["fy_page"].prepare
    params = {"latest_possible_date": dt.date(2021, 3, 11)}
    for fiscal_year in (2018, 2021):
        frame = parse_text(page(site, fiscal_year)).frame()
        report = quality.validate(
            "hhs_uc_monthly",
            frame,
            source=SOURCE,
            file=str(fiscal_year),
            parameters=params,
            prepare=prepare,
        )
        assert report.failures == [] and report.warnings == [], report.summary()
    frame = parse_text(page(site, 2021)).frame()
    # A month outside its page's fiscal year cannot be parsed (test_october_to_december_...,
    # test_month_header_of_another_fiscal_year_...); a page heading's year misread can.
    frame.loc[0, "fiscal_year"] = 1921
    frame.loc[8, "value"] = 150.0  # Average Occupancy Rate: Oct 2020, as 150%
    report = quality.validate(
        "hhs_uc_monthly",
        frame,
        source=SOURCE,
        file="bad",
        parameters={"latest_possible_date": dt.date(2022, 1, 1)},
        prepare=prepare,
    )
    assert sorted(o.column for o in report.failures) == ["fiscal_year", "percent_value"]


# ------------------------------------------------------------------ discovery


@pytest.fixture(scope="module")
def mirror() -> Iterator[ReplayMirror]:
    with ReplayMirror(dt.date(2019, 1, 20)) as running:
        yield running


def discover_at(
    mirror: ReplayMirror,
    monkeypatch: pytest.MonkeyPatch,
    as_of: dt.date,
    options: dict | None = None,
) -> list:
    from returnwatch import config
    from returnwatch.fetch import page_getter

    for name, value in mirror.env().items():
        monkeypatch.setenv(name, value)
    mirror.set_as_of(as_of)
    cfg = config.source(SOURCE)
    run_at = dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)
    return hhs_uc_monthly.discover(
        page_getter(cfg),
        landing_url=cfg.url,
        run_at=run_at,
        options=cfg.options if options is None else options,
    )


def test_discovery_at_two_dates(mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    early = discover_at(mirror, monkeypatch, dt.date(2019, 1, 20))
    assert [link.period for link in early] == ["FY2018", "FY2019"]
    assert all(link.kind == "fy_page" for link in early)
    assert early[1].url == (
        f"{mirror.url}/hhs_uc_monthly/programs/social-services/"
        "unaccompanied-children/latest-uc-data-fy2019/index.html"
    )
    fy2019 = hhs_uc_monthly.parse(httpx.get(early[1].url, timeout=10).content, file="fy2019")
    assert fy2019.summary()["last_month"] == "2018-12-01"

    # November 1, 2020: FY2021 has begun but its October is not out until November 15.
    autumn = discover_at(mirror, monkeypatch, dt.date(2020, 11, 1))
    assert [link.period for link in autumn] == ["FY2018", "FY2019", "FY2020"]
    later = discover_at(mirror, monkeypatch, dt.date(2020, 11, 16))
    assert [link.period for link in later] == ["FY2018", "FY2019", "FY2020", "FY2021"]
    assert later[-1].extra == {"fiscal_year": "2021"}
    fy2021 = hhs_uc_monthly.parse(httpx.get(later[-1].url, timeout=10).content, file="fy2021")
    assert fy2021.summary()["first_month"] == fy2021.summary()["last_month"] == "2020-10-01"


def test_discovery_skips_pages_the_site_does_not_have(
    mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In 2025 the FY2022..FY2025 pages are 404 on the mirror (the copy ends in January 2021).
    links = discover_at(mirror, monkeypatch, dt.date(2025, 6, 17))
    assert [link.period for link in links] == ["FY2018", "FY2019", "FY2020", "FY2021"]


def test_discovery_without_any_page_is_a_layout_change(
    mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LayoutChanged, match="none of the pages FY2018..FY2018"):
        discover_at(mirror, monkeypatch, dt.date(2017, 11, 1))


def test_discovery_passes_server_errors_on(
    mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    from returnwatch.fetch import HTTPStatusError, fetch

    mirror.set_as_of(dt.date(2019, 1, 20))
    mirror.set_fault(SOURCE, "http_500")
    try:

        def get_page(url: str) -> bytes:
            return (
                fetch(
                    url,
                    source=SOURCE,
                    allowed_hosts=["127.0.0.1"],
                    max_bytes=2_000_000,
                    timeout=10,
                    retries=0,
                ).content
                or b""
            )

        pattern = mirror.base_url(SOURCE) + hhs_monthly_path()
        with pytest.raises(HTTPStatusError) as caught:
            hhs_uc_monthly.discover(
                get_page,
                landing_url=pattern,
                run_at=dt.datetime(2019, 1, 20, tzinfo=dt.UTC),
                options={"first_fiscal_year": 2018},
            )
        assert caught.value.status == 500
    finally:
        mirror.set_fault(SOURCE, None)


def test_discovery_needs_the_fiscal_year_placeholder() -> None:
    with pytest.raises(ValueError, match="fiscal_year"):
        hhs_uc_monthly.discover(
            lambda url: b"",
            landing_url="https://www.hhs.gov/x/index.html",
            run_at=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
            options={},
        )


def hhs_monthly_path() -> str:
    from returnwatch import config

    return config.source(SOURCE).path
