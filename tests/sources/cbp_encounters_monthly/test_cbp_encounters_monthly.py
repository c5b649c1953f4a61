"""The CBP encounters parser on real figures: every quirk of docs/sources.md B, and every way a file
can be wrong, named by file, row and what was expected.

The AOR files are the replay mirror's (real figures re-laid in CBP's layout, see
include/replay/cbp_encounters/PROVENANCE.md), rendered here without HTTP; the state and sbo
layouts use the small fixtures in tests/fixtures/cbp/ (README there says what is real).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import duckdb
import pytest

from returnwatch import quality, settings
from returnwatch.sources import cbp_encounters_monthly
from returnwatch.sources.base import FileKind, Link
from returnwatch.sources.errors import BadValue, LayoutChanged
from returnwatch_replay.sites import cbp as site

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cbp"
IOM = settings.replay_data_dir() / "cbp_encounters" / "iom_gdidata_irreg_usa.csv"
LANDING = "https://www.cbp.gov/document/stats/nationwide-encounters"
RUN_AT = dt.datetime(2025, 6, 20, 12, tzinfo=dt.UTC)


def _file(name: str) -> site.CsvFile:
    return next(f for f in site.CbpSite(settings.replay_data_dir()).files if f.name == name)


MARCH_2021 = "nationwide-encounters-fy20-fy21-jan-aor.csv"
FY21_FY24 = "nationwide-encounters-fy21-fy24-aor.csv"
FY22_FY25_MAY = "nationwide-encounters-fy22-fy25-may-aor.csv"
FY22_FY25_JAN = "nationwide-encounters-fy22-fy25-jan-aor.csv"


@pytest.fixture(scope="module")
def mirror_site() -> site.CbpSite:
    return site.CbpSite(settings.replay_data_dir())


@pytest.fixture(scope="module")
def bodies(mirror_site: site.CbpSite) -> dict[str, bytes]:
    return {
        name: mirror_site.body(_file(name))
        for name in (MARCH_2021, FY21_FY24, FY22_FY25_MAY, FY22_FY25_JAN)
    }


@pytest.fixture(scope="module")
def parsed(bodies: dict[str, bytes]) -> dict[str, cbp_encounters_monthly.ParsedFile]:
    return {
        name: cbp_encounters_monthly.parse_aor(body, file=name) for name, body in bodies.items()
    }


def iom_rows() -> list[dict[str, str]]:
    with IOM.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def lines_of(body: bytes) -> list[str]:
    return body.decode("ascii").split("\r\n")


def replace_header(body: bytes, header: str) -> bytes:
    _, sep, rest = body.partition(b"\r\n")
    return header.encode() + sep + rest


# ------------------------------------------------------------------ contract


def test_kinds_tables_and_suites_follow_the_source_contract() -> None:
    assert cbp_encounters_monthly.SOURCE == "cbp_encounters_monthly"
    assert set(cbp_encounters_monthly.KINDS) == {"aor", "state", "sbo"}
    for name, kind in cbp_encounters_monthly.KINDS.items():
        assert isinstance(kind, FileKind) and kind.kind == name
        assert kind.raw_table == f"cbp_encounters_{name}"
        assert (settings.expectations_dir() / f"{kind.suite}.json").is_file()
        assert set(kind.key_columns) < set(cbp_encounters_monthly.FRAME_COLUMNS[name])
        assert kind.value_columns == ("encounters",)
        assert "month" in kind.key_columns and "demographic" in kind.key_columns
        assert "demographic_published" not in kind.key_columns  # a relabel is not a revision


def test_raw_ddl_holds_the_frames_with_source_file_and_vintage(
    parsed: dict[str, cbp_encounters_monthly.ParsedFile],
) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for statement in cbp_encounters_monthly.RAW_DDL:
        con.execute(statement)
    state = cbp_encounters_monthly.parse_state(
        (FIXTURES / "state_fy22_fy23_jan_excerpt_constructed.csv").read_bytes(), file="state"
    )
    sbo = cbp_encounters_monthly.parse_sbo(
        (FIXTURES / "sbo_fy22_fy25_may_uac_excerpt_constructed.csv").read_bytes(), file="sbo"
    )
    for kind, frame in (
        ("aor", parsed[FY22_FY25_JAN].frame()),
        ("state", state.frame()),
        ("sbo", sbo.frame()),
    ):
        table = f"raw.cbp_encounters_{kind}"
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        assert columns == [
            *cbp_encounters_monthly.FRAME_COLUMNS[kind][:-1],
            "source_file",
            "source_row",
            "vintage",
        ]
        frame = frame.assign(source_file="sha", vintage=dt.date(2025, 2, 17))
        con.register("frame", frame)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")
        con.unregister("frame")
        loaded, total = con.execute(f"SELECT count(*), sum(encounters) FROM {table}").fetchone()
        assert (loaded, total) == (len(frame), frame["encounters"].sum())
        with pytest.raises(duckdb.ConstraintException):  # one row per (file, line)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {table} LIMIT 1")
    aor_comment = cbp_encounters_monthly.RAW_DDL[0]
    assert "-- first day of the calendar month" in aor_comment
    assert "PRIMARY KEY (source_file, source_row)" in aor_comment


# ------------------------------------------------------------------ the AOR layout on real figures


def test_every_row_becomes_a_typed_row_with_its_file_line(
    bodies: dict[str, bytes], parsed: dict[str, cbp_encounters_monthly.ParsedFile]
) -> None:
    frame = parsed[FY22_FY25_MAY].frame()
    assert list(frame.columns) == cbp_encounters_monthly.FRAME_COLUMNS["aor"]
    body_lines = lines_of(bodies[FY22_FY25_MAY])
    assert len(frame) == len(body_lines) - 2  # header and the empty string after the last CRLF
    assert frame["source_row"].tolist() == list(range(2, len(frame) + 2))
    assert str(frame["encounters"].dtype) == "int64"
    assert str(frame["fiscal_year"].dtype) == "int64"
    assert all(isinstance(m, dt.date) for m in frame["month"].head(100))
    row = next(csv.reader([body_lines[41]]))  # file row 42
    got = frame[frame["source_row"] == 42].iloc[0]
    assert (
        got["component"],
        got["area_of_responsibility"],
        got["aor_abbv"],
        got["citizenship"],
        got["title_of_authority"],
        got["encounter_type"],
        got["encounters"],
    ) == (row[3], row[5], row[6], row[8], row[9], row[10], int(row[11]))


def test_months_oct_to_dec_belong_to_the_previous_calendar_year(
    parsed: dict[str, cbp_encounters_monthly.ParsedFile],
) -> None:
    frame = parsed[MARCH_2021].frame()
    fy21 = frame[frame["fiscal_year_published"] == "2021 (FYTD)"]
    assert set(fy21["fiscal_year"]) == {2021}
    assert sorted(set(fy21["month"])) == [
        dt.date(2020, 10, 1),
        dt.date(2020, 11, 1),
        dt.date(2020, 12, 1),
        dt.date(2021, 1, 1),
    ]
    fy20 = frame[frame["fiscal_year"] == 2020]
    assert set(fy20["fiscal_year_published"]) == {"2020"}
    assert min(fy20["month"]) == dt.date(2019, 10, 1)
    assert max(fy20["month"]) == dt.date(2020, 9, 1)


def test_remaining_months_are_real_data_and_kept(
    parsed: dict[str, cbp_encounters_monthly.ParsedFile],
) -> None:
    frame = parsed[MARCH_2021].frame()
    summary = parsed[MARCH_2021].summary()
    assert set(summary["month_groupings"]) == {"FYTD", "Remaining"}
    remaining = frame[frame["month_grouping"] == "Remaining"]
    # A release cut at January: FY2020's Feb-Sep are 'Remaining'; Oct-Jan of both years FYTD.
    assert sorted({m.month for m in remaining["month"]}) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert set(remaining["fiscal_year"]) == {2020}
    # USBP unaccompanied children in Jun 2020 (a 'Remaining' month): 1,603, the figure
    # PROVENANCE quotes from both the IOM copy and the Post's (mislabelled) table.
    june = remaining[
        (remaining["month"] == dt.date(2020, 6, 1))
        & (remaining["component"] == "U.S. Border Patrol")
        & (remaining["demographic"] == cbp_encounters_monthly.UC)
    ]
    assert june["encounters"].sum() == 1603


def test_uac_label_is_normalised_and_the_printed_label_kept(
    parsed: dict[str, cbp_encounters_monthly.ParsedFile],
) -> None:
    newest = parsed[FY22_FY25_MAY].frame()
    older = parsed[FY21_FY24].frame()
    assert parsed[FY22_FY25_MAY].summary()["demographic_labels"] == [
        "Accompanied Minors",
        "FMUA",
        "Single Adults",
        "UAC",
    ]
    assert set(newest["demographic"]) == {
        "Accompanied Minors",
        "FMUA",
        "Single Adults",
        cbp_encounters_monthly.UC,
    }
    uc_new = newest[newest["demographic"] == cbp_encounters_monthly.UC]
    assert set(uc_new["demographic_published"]) == {"UAC"}
    uc_old = older[older["demographic"] == cbp_encounters_monthly.UC]
    assert set(uc_old["demographic_published"]) == {"UC / Single Minors"}
    # Same month, same figure, different label: one name in the demographic column.
    month = dt.date(2023, 5, 1)
    assert (
        uc_new[uc_new["month"] == month]["encounters"].sum()
        == uc_old[uc_old["month"] == month]["encounters"].sum()
        > 0
    )


def test_float_string_counts_are_read_as_whole_numbers(
    bodies: dict[str, bytes], parsed: dict[str, cbp_encounters_monthly.ParsedFile]
) -> None:
    assert lines_of(bodies[MARCH_2021])[1].endswith(".0")
    assert parsed[MARCH_2021].summary()["counts_as_float_strings"] is True
    assert parsed[FY22_FY25_MAY].summary()["counts_as_float_strings"] is False
    frame = parsed[MARCH_2021].frame()
    first = next(csv.reader([lines_of(bodies[MARCH_2021])[1]]))
    assert frame.iloc[0]["encounters"] == int(float(first[-1]))


def test_a_count_that_is_not_a_whole_number_is_a_bad_value(bodies: dict[str, bytes]) -> None:
    lines = lines_of(bodies[FY22_FY25_MAY])
    fields = next(csv.reader([lines[99]]))  # file row 100
    fields[-1] = "12.5"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    lines[99] = buffer.getvalue()
    with pytest.raises(BadValue) as caught:
        cbp_encounters_monthly.parse_aor("\r\n".join(lines).encode(), file="abc123")
    error = caught.value
    assert (error.file, error.row, error.column, error.seen) == (
        "abc123",
        100,
        "Encounter Count",
        "12.5",
    )
    assert "whole number" in str(error)
    for bad in ("", "n/a", "1e3", "12,5"):
        fields[-1] = bad
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(fields)
        lines[99] = buffer.getvalue()
        with pytest.raises(BadValue, match="row 100"):
            cbp_encounters_monthly.parse_aor("\r\n".join(lines).encode(), file="abc123")


def test_crlf_alphabetical_months_and_a_first_row_in_december(
    bodies: dict[str, bytes], parsed: dict[str, cbp_encounters_monthly.ParsedFile]
) -> None:
    for name in (MARCH_2021, FY22_FY25_JAN, FY22_FY25_MAY):
        body = bodies[name]
        assert body.count(b"\r\n") == body.count(b"\n")  # CRLF everywhere
        summary = parsed[name].summary()
        assert summary["line_endings"] == "CRLF"
        assert summary["month_order"] == "alphabetical"
    # A release cut at January lists DEC, JAN, NOV, OCT: its first row is December.
    for name in (MARCH_2021, FY22_FY25_JAN):
        assert lines_of(bodies[name])[1].split(",")[2] == "DEC"
        assert parsed[name].summary()["first_row_month"] == "DEC"
        assert parsed[name].frame().iloc[0]["month"].month == 12
    # The parser does not depend on the order: a calendar-ordered copy gives the same rows.
    body = bodies[FY22_FY25_JAN]
    header, *rows = lines_of(body)[:-1]
    rows.sort(key=lambda line: cbp_encounters_monthly.FISCAL_MONTHS.index(line.split(",")[2]))
    reordered = cbp_encounters_monthly.parse_aor(
        ("\r\n".join([header, *rows]) + "\r\n").encode(), file="x"
    )
    assert reordered.summary()["month_order"] == "calendar"
    assert reordered.summary()["encounters"] == parsed[FY22_FY25_JAN].summary()["encounters"]


def test_explicit_zero_rows_are_kept(parsed: dict[str, cbp_encounters_monthly.ParsedFile]) -> None:
    zero_in_iom = sum(
        1
        for r in iom_rows()
        if float(r["n"]) == 0 and r["area"] and "2019-10" <= r["t"] <= "2021-01"
    )
    assert zero_in_iom > 0
    frame = parsed[MARCH_2021].frame()
    assert (frame["encounters"] == 0).sum() == zero_in_iom
    assert parsed[MARCH_2021].summary()["zero_rows"] == zero_in_iom


def test_citizenship_names_with_commas_both_components_both_titles(
    bodies: dict[str, bytes], parsed: dict[str, cbp_encounters_monthly.ParsedFile]
) -> None:
    assert b',"CHINA, PEOPLES REPUBLIC OF",' in bodies[FY22_FY25_MAY]
    frame = parsed[FY22_FY25_MAY].frame()
    assert "CHINA, PEOPLES REPUBLIC OF" in set(frame["citizenship"])
    assert {"MEXICO", "OTHER", "GUATEMALA"} <= set(frame["citizenship"])
    combos = set(zip(frame["component"], frame["title_of_authority"], frame["encounter_type"]))
    assert combos == {
        ("U.S. Border Patrol", "Title 8", "Apprehensions"),
        ("U.S. Border Patrol", "Title 42", "Expulsions"),
        ("Office of Field Operations", "Title 8", "Inadmissibles"),
        ("Office of Field Operations", "Title 42", "Expulsions"),
    }
    title42 = frame[frame["title_of_authority"] == "Title 42"]
    assert min(title42["month"]) >= dt.date(2021, 10, 1)
    assert max(title42["month"]) == dt.date(2023, 5, 1)


def test_a_nationwide_size_file_parses_whole(bodies: dict[str, bytes]) -> None:
    # Its speed is measured by `make bench` (bench/cbp_parse.py), not here.
    header, _, rows = bodies[FY21_FY24].partition(b"\r\n")
    big = header + b"\r\n" + rows * 4  # 113,776 rows, as large as a real nationwide file
    result = cbp_encounters_monthly.parse_aor(big, file="big")
    assert len(result.frame()) == 4 * (rows.count(b"\r\n"))


# ------------------------------------------------------------------ what is not a CBP file


@pytest.mark.parametrize(
    "header, problem",
    [
        (
            "Fiscal Year,Month Grouping,Month (abbv),Component,Land Border Region,Area of "
            "Responsibility,AOR (Abbv),Demographic,Citizenship,Title of Authority,Encounter Type,"
            "Encounters",
            "['Encounter Count'] are missing",
        ),
        (
            "Fiscal Year,Month Grouping,Month (abbv),Component,Land Border Region,Area of "
            "Responsibility,Demographic,Citizenship,Title of Authority,Encounter Type,Encounter Count",
            "['AOR (Abbv)'] are missing",
        ),
        (
            "Fiscal Year,Month Grouping,Month (abbv),Component,Land Border Region,Area of "
            "Responsibility,AOR (Abbv),Demographic,Citizenship,Title of Authority,Encounter Type,"
            "Encounter Count,Sex",
            "['Sex'] are not in this layout",
        ),
    ],
)
def test_a_renamed_missing_or_new_column_is_a_layout_change(
    bodies: dict[str, bytes], header: str, problem: str
) -> None:
    body = replace_header(bodies[FY22_FY25_JAN], header)
    if "Sex" in header:  # a new column comes with a new value on every row
        body = body.replace(b"\r\n", b",X\r\n").replace(header.encode() + b",X", header.encode())
    with pytest.raises(LayoutChanged) as caught:
        cbp_encounters_monthly.parse_aor(body, file="f00d")
    error = caught.value
    assert (error.source, error.file, error.row) == ("cbp_encounters_monthly", "f00d", 1)
    assert error.seen == header
    assert problem in error.problem
    assert "Encounter Count" in (error.expected or "")
    assert "row 1" in str(error) and "f00d" in str(error)


def test_header_labels_match_by_label_not_position_or_spacing(
    bodies: dict[str, bytes], parsed: dict[str, cbp_encounters_monthly.ParsedFile]
) -> None:
    lines = lines_of(bodies[FY22_FY25_JAN])[:-1]
    table = list(csv.reader(lines))
    moved = [[row[-1], *row[:-1]] for row in table]  # the count first
    moved[0] = ["encounter  count", *[f" {label.upper()} " for label in moved[0][1:]]]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(moved)
    result = cbp_encounters_monthly.parse_aor(buffer.getvalue().encode("utf-8-sig"), file="moved")
    assert result.frame().equals(parsed[FY22_FY25_JAN].frame())


def test_another_layout_is_named_in_the_error() -> None:
    state = (FIXTURES / "state_fy22_fy23_jan_excerpt_constructed.csv").read_bytes()
    with pytest.raises(LayoutChanged, match="this is the state layout"):
        cbp_encounters_monthly.parse_aor(state, file="state-file")


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"", "empty"),
        (b"  \r\n\r\n", "empty"),
        (
            b"<!DOCTYPE html>\n<html><head><title>Site Maintenance | U.S. Customs and Border "
            b"Protection</title></head><body>Back soon</body></html>\n",
            "HTML page",
        ),
        (b"\n\n<html><body>Access Denied</body></html>", "HTML page"),
        (b'{"error": "not found"}\n', "JSON"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
    ],
)
def test_an_error_page_or_empty_body_is_a_layout_change(body: bytes, problem: str) -> None:
    with pytest.raises(LayoutChanged) as caught:
        cbp_encounters_monthly.parse_aor(body, file="e3b0c442")
    assert caught.value.row == 1 and caught.value.file == "e3b0c442"
    assert problem in caught.value.problem
    assert "Fiscal Year,Month Grouping" in (caught.value.expected or "")


def test_a_truncated_download_is_refused(bodies: dict[str, bytes]) -> None:
    body = bodies[FY22_FY25_JAN]
    cut = body[: len(body) // 2]
    cut = cut[: cut.rfind(b"\r\n") + 40]  # in the middle of a data row
    with pytest.raises(BadValue, match="truncated") as caught:
        cbp_encounters_monthly.parse_aor(cut, file="cut")
    assert caught.value.row == cut.count(b"\n") + 1


def test_a_row_with_missing_fields_is_named(bodies: dict[str, bytes]) -> None:
    lines = lines_of(bodies[FY22_FY25_JAN])
    lines[9] = lines[9].rsplit(",", 2)[0]  # file row 10 loses two fields
    with pytest.raises(BadValue) as caught:
        cbp_encounters_monthly.parse_aor("\r\n".join(lines).encode(), file="short")
    assert caught.value.row == 10 and "10 fields instead of 12" in caught.value.problem


@pytest.mark.parametrize(
    "column, value, label",
    [
        (2, "OCTOBER", "Month (abbv)"),
        (2, "13", "Month (abbv)"),
        (0, "FY2023", "Fiscal Year"),
        (0, "2023 (YTD)", "Fiscal Year"),
        (8, " ", "Citizenship"),
    ],
)
def test_a_month_year_or_empty_value_that_cannot_be_read_is_named(
    bodies: dict[str, bytes], column: int, value: str, label: str
) -> None:
    lines = lines_of(bodies[FY22_FY25_JAN])
    fields = next(csv.reader([lines[4]]))  # file row 5
    fields[column] = value
    lines[4] = ",".join(f'"{f}"' if "," in f else f for f in fields)
    with pytest.raises(BadValue) as caught:
        cbp_encounters_monthly.parse_aor("\r\n".join(lines).encode(), file="f")
    assert (caught.value.row, caught.value.column) == (5, label)
    assert caught.value.seen == value


# ------------------------------------------------------------------ state and sbo layouts


def test_state_layout() -> None:
    content = (FIXTURES / "state_fy22_fy23_jan_excerpt_constructed.csv").read_bytes()
    result = cbp_encounters_monthly.parse_state(content, file="state")
    frame = result.frame()
    assert list(frame.columns) == cbp_encounters_monthly.FRAME_COLUMNS["state"]
    assert {"DC", "PR", "GU", "TX"} <= set(frame["state"])
    assert "CHINA, PEOPLES REPUBLIC OF" in set(frame["citizenship"])
    assert frame["encounters"].tolist() == [5, 2, 0, 40, 120, 75, 1, 3]
    oct_2022 = frame[frame["fiscal_year_published"] == "2023 (FYTD)"]
    assert sorted(oct_2022["month"]) == [dt.date(2022, 10, 1), dt.date(2023, 1, 1)]
    assert result.summary()["counts_as_float_strings"] is True


def test_sbo_layout_sums_back_to_the_real_figures() -> None:
    content = (FIXTURES / "sbo_fy22_fy25_may_uac_excerpt_constructed.csv").read_bytes()
    frame = cbp_encounters_monthly.parse_sbo(content, file="sbo").frame()
    assert list(frame.columns) == cbp_encounters_monthly.FRAME_COLUMNS["sbo"]
    assert set(frame["citizenship_grouping"]) == {
        "El Salvador",
        "Guatemala",
        "Honduras",
        "Mexico",
        "Other",
    }
    assert set(frame["demographic"]) == {cbp_encounters_monthly.UC} and set(
        frame["demographic_published"]
    ) == {"UAC"}
    for month in ("2024-06", "2024-12", "2025-05"):
        iom = sum(int(float(r["n"])) for r in iom_rows() if r["t"] == month and r["demog"] == "UAC")
        year, number = map(int, month.split("-"))
        assert frame[frame["month"] == dt.date(year, number, 1)]["encounters"].sum() == iom
    june = frame[frame["month"] == dt.date(2024, 6, 1)]
    assert set(june["month_grouping"]) == {"Remaining"} and set(june["fiscal_year"]) == {2024}


def test_detect_kind_by_header(bodies: dict[str, bytes]) -> None:
    assert cbp_encounters_monthly.detect_kind("whatever.csv", bodies[FY22_FY25_MAY]) == "aor"
    assert (
        cbp_encounters_monthly.detect_kind(
            "a.csv", (FIXTURES / "state_fy22_fy23_jan_excerpt_constructed.csv").read_bytes()
        )
        == "state"
    )
    assert (
        cbp_encounters_monthly.detect_kind(
            "b.csv", (FIXTURES / "sbo_fy22_fy25_may_uac_excerpt_constructed.csv").read_bytes()
        )
        == "sbo"
    )
    with pytest.raises(LayoutChanged, match="none of CBP's encounter layouts") as caught:
        cbp_encounters_monthly.detect_kind(
            "drugs.csv", b"FY,Month (abbv),Component,Region,Drug Type,Count\r\n"
        )
    assert caught.value.file == "drugs.csv" and caught.value.row == 1
    with pytest.raises(LayoutChanged, match="HTML"):
        cbp_encounters_monthly.detect_kind("page.csv", b"<html><body>Access Denied</body></html>")


# ------------------------------------------------------------------ discovery


def test_discover_reads_the_links_off_the_page() -> None:
    page = (FIXTURES / "landing_page_constructed.html").read_bytes()
    asked: list[str] = []

    def get_page(url: str) -> bytes:
        asked.append(url)
        return page

    links = cbp_encounters_monthly.discover(
        get_page, landing_url=LANDING, run_at=RUN_AT, options={}
    )
    assert asked == [LANDING]
    assert all(isinstance(link, Link) for link in links)
    assert [(link.kind, link.url) for link in links] == [
        (
            "aor",
            "https://www.cbp.gov/sites/default/files/2026-07/"
            "nationwide-encounters-fy23-fy26-jun-aor.csv",
        ),
        (
            "state",
            "https://www.cbp.gov/sites/default/files/2026-07/"
            "nationwide-encounters-fy23-fy26-jun-state.csv",
        ),
        (
            "aor",
            "https://www.cbp.gov/sites/default/files/assets/documents/2023-Nov/"
            "nationwide-encounters-fy20-fy23-aor.csv",
        ),
        ("sbo", "https://www.cbp.gov/sites/default/files/2026-07/sbo-encounters-fy23-fy26-jun.csv"),
    ]
    first = links[0]
    assert (
        first.label == "FY23 - FY26 (FYTD) Nationwide Encounters by Area of Responsibility - June"
    )
    assert first.period == "FY2023-FY2026"
    assert first.extra == {
        "file_name": "nationwide-encounters-fy23-fy26-jun-aor.csv",
        "folder": "2026-07",
        "first_fiscal_year": "2023",
        "last_fiscal_year": "2026",
        "through_month": "JUN",
    }
    assert links[2].extra["folder"] == "2023-Nov" and links[2].extra["through_month"] == ""
    assert Link.from_dict(first.as_dict()) == first

    only_aor = cbp_encounters_monthly.discover(
        get_page, landing_url=LANDING, run_at=RUN_AT, options={"kinds": ["aor"]}
    )
    assert [link.kind for link in only_aor] == ["aor", "aor"]


def test_a_page_without_a_recognisable_csv_link_is_a_layout_change() -> None:
    page = b"""<html><body><h1>Nationwide Encounters</h1>
    <p>Explore the data in our <a href="/dashboard">dashboard</a>.</p>
    <a href="/files/nationwide-drugs-fy23-fy26-jun.csv">drugs</a></body></html>"""
    with pytest.raises(LayoutChanged) as caught:
        cbp_encounters_monthly.discover(
            lambda url: page, landing_url=LANDING, run_at=RUN_AT, options={}
        )
    error = caught.value
    assert error.file == LANDING and "no recognisable encounters CSV" in error.problem
    assert "nationwide-drugs-fy23-fy26-jun.csv" in (error.seen or "")
    with pytest.raises(LayoutChanged, match="an empty page"):
        cbp_encounters_monthly.discover(
            lambda url: b"", landing_url=LANDING, run_at=RUN_AT, options={}
        )


# ------------------------------------------------------------------ validation (GX)


def test_the_suite_passes_on_real_files(
    parsed: dict[str, cbp_encounters_monthly.ParsedFile],
) -> None:
    for name in (MARCH_2021, FY22_FY25_MAY):
        report = quality.validate(
            "cbp_encounters_aor",
            parsed[name].frame(),
            source=cbp_encounters_monthly.SOURCE,
            file=name,
            parameters={"latest_possible_date": RUN_AT.date()},
            prepare=cbp_encounters_monthly.KINDS["aor"].prepare,
        )
        assert [o.describe() for o in report.outcomes if not o.success] == []
        assert not [o for o in report.outcomes if o.error]
        assert len(report.outcomes) == len(quality.load_suite("cbp_encounters_aor")["expectations"])


def test_the_state_and_sbo_suites_pass_on_their_fixtures() -> None:
    for kind, name in (
        ("state", "state_fy22_fy23_jan_excerpt_constructed.csv"),
        ("sbo", "sbo_fy22_fy25_may_uac_excerpt_constructed.csv"),
    ):
        frame = (
            cbp_encounters_monthly.KINDS[kind]
            .parse((FIXTURES / name).read_bytes(), file=name)
            .frame()
        )
        report = quality.validate(
            cbp_encounters_monthly.KINDS[kind].suite,
            frame,
            source=cbp_encounters_monthly.SOURCE,
            file=name,
            parameters={"latest_possible_date": RUN_AT.date()},
            prepare=cbp_encounters_monthly.KINDS[kind].prepare,
        )
        assert [o.describe() for o in report.outcomes if not o.success] == []


def test_the_suite_fails_a_bad_frame_and_warns_on_odd_rows(
    parsed: dict[str, cbp_encounters_monthly.ParsedFile],
) -> None:
    # A negative count or a month outside its fiscal year never gets this far: the parser
    # refuses the one and cannot build the other (tests/sources/test_parser_guarantees.py).
    frame = parsed[FY22_FY25_MAY].frame()
    frame.loc[0, "month_grouping"] = "YTD"  # file row 2: unknown grouping
    frame.loc[1, "demographic"] = "Unaccompanied Children"  # file row 3: unmapped label
    frame.loc[3, "fiscal_year"] = 2026  # file row 5: a future month
    frame.loc[3, "month"] = dt.date(2025, 11, 1)
    figure = [c for c in frame.columns if c != "source_row"]
    frame.loc[10, figure] = frame.loc[11, figure].to_numpy()  # a figure repeated
    t8 = frame.index[(frame["title_of_authority"] == "Title 8") & (frame.index > 20)][0]
    frame.loc[t8, "title_of_authority"] = "Title 42"  # T42 in 2025 and wrong type
    frame.loc[t8, "month"] = dt.date(2025, 1, 1)
    frame.loc[t8, "fiscal_year"] = 2025
    report = quality.validate(
        "cbp_encounters_aor",
        frame,
        source=cbp_encounters_monthly.SOURCE,
        file="bad",
        parameters={"latest_possible_date": RUN_AT.date()},
        prepare=cbp_encounters_monthly.KINDS["aor"].prepare,
    )
    failed = {(o.expectation, o.column) for o in report.failures}
    assert ("expect_column_values_to_be_in_set", "month_grouping") in failed
    assert ("expect_column_values_to_be_in_set", "demographic") in failed
    assert ("expect_column_values_to_be_between", "month") in failed
    assert ("expect_compound_columns_to_be_unique", None) in failed
    warned = {(o.expectation, o.column) for o in report.warnings}
    assert ("expect_column_values_to_be_between", "title_42_month") in warned
    assert ("expect_column_pair_values_to_be_equal", None) in warned
    grouping = next(o for o in report.failures if o.column == "month_grouping")
    assert grouping.rows == [2] and grouping.severity == "fail"
    with pytest.raises(quality.ValidationFailed, match="cbp_encounters_aor"):
        report.raise_for_failures()
