"""The HHS CSV parser on the real export copy, and on variants of it that real exports show.

Variants are made from the real file's own lines (a header with the '*', a later export's
'March 23 2021' dates and plain integers, spreadsheet serial dates...), so every figure in
these tests is a published one.
"""

from __future__ import annotations

import datetime as dt

import pytest

from returnwatch.sources import hhs_uc_daily
from returnwatch.sources.errors import BadValue, LayoutChanged

HEADER_NO_STAR = (
    "Date,Children apprehended and placed in CBP custody,Children in CBP custody,"
    "Children transferred out of CBP custody,Children in HHS Care,Children discharged from HHS Care"
)


def lines(real_hhs_bytes: bytes) -> list[str]:
    return real_hhs_bytes.decode().split("\r\n")


def rebuild(header: str, rows: list[str]) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def test_real_file_every_published_day(real_hhs_bytes: bytes) -> None:
    parsed = hhs_uc_daily.parse(real_hhs_bytes, file="real")
    assert len(parsed.rows) == 720  # PROVENANCE.md: 720 data rows
    assert parsed.blank_rows == 450  # ... + 450 blank trailing rows
    summary = parsed.summary()
    assert (summary["first_date"], summary["last_date"]) == ("2023-01-12", "2025-12-21")
    assert parsed.order == "newest_first"
    assert parsed.footnote_star_in_header is False  # this copy dropped the '*'
    assert parsed.conflicting_dates == {}


def test_real_first_row_values_and_thousands_separator(real_hhs_bytes: bytes) -> None:
    # Line 2 of the file: "December 21, 2025",6,18,11,"2,484",14
    first = hhs_uc_daily.parse(real_hhs_bytes, file="real").rows[0]
    assert first == {
        "report_date": dt.date(2025, 12, 21),
        "apprehended_placed_in_cbp_custody": 6,
        "in_cbp_custody": 18,
        "transferred_out_of_cbp_custody": 11,
        "in_hhs_care": 2484,
        "discharged_from_hhs_care": 14,
        "source_row": 2,
    }


def test_real_oldest_row(real_hhs_bytes: bytes) -> None:
    # "January 12, 2023",33,53,34,"6,566",436 is line 721.
    last = hhs_uc_daily.parse(real_hhs_bytes, file="real").rows[-1]
    assert last["report_date"] == dt.date(2023, 1, 12)
    assert (last["in_hhs_care"], last["discharged_from_hhs_care"], last["source_row"]) == (
        6566,
        436,
        721,
    )


def test_frame_has_raw_columns_and_nullable_counts(real_hhs_bytes: bytes) -> None:
    frame = hhs_uc_daily.parse(real_hhs_bytes, file="real").frame()
    assert list(frame.columns) == ["report_date", *hhs_uc_daily.COUNT_COLUMNS, "source_row"]
    assert str(frame["in_hhs_care"].dtype) == "Int64"
    assert int(frame["in_hhs_care"].sum()) > 0


def test_header_with_the_publishers_star(real_hhs_bytes: bytes) -> None:
    source = lines(real_hhs_bytes)
    header = source[0].replace("CBP custody,", "CBP custody*,", 1)
    parsed = hhs_uc_daily.parse(rebuild(header, source[1:4]), file="star")
    assert parsed.footnote_star_in_header is True
    assert len(parsed.rows) == 3


def test_later_export_dates_without_comma_and_oldest_first(real_hhs_bytes: bytes) -> None:
    # A later export writes `March 23 2021` unquoted with plain integers, oldest first.
    source = lines(real_hhs_bytes)[1:6]
    rows = []
    for line in reversed(source):
        date, rest = line[1:].split('",', 1)
        rows.append(date.replace(",", "") + "," + rest.replace('"', "").replace(",", ";", 0))
    # "2,484" in the original becomes 2484 in the later export: rebuild those rows by hand.
    rows = [_plain_integers(row) for row in rows]
    parsed = hhs_uc_daily.parse(rebuild(HEADER_NO_STAR, rows), file="later")
    assert parsed.order == "oldest_first"
    assert parsed.rows[-1]["report_date"] == dt.date(2025, 12, 21)
    assert parsed.rows[-1]["in_hhs_care"] == 2484


def _plain_integers(row: str) -> str:
    # "December 17 2025,7,31,11,2,481,10" -> the HHS care figure lost its quotes; rejoin it.
    parts = row.split(",")
    return ",".join(parts[:4] + [parts[4] + parts[5]] + parts[6:])


def test_empty_counts_are_missing_not_zero(real_hhs_bytes: bytes) -> None:
    # Later exports leave the first three count columns empty for 2021–early 2023.
    row = '"January 12, 2023",,,,"6,566",436'
    parsed = hhs_uc_daily.parse(rebuild(HEADER_NO_STAR, [row]), file="empty")
    assert parsed.rows[0]["apprehended_placed_in_cbp_custody"] is None
    assert parsed.rows[0]["in_hhs_care"] == 6566
    assert parsed.frame()["in_cbp_custody"].isna().all()


@pytest.mark.parametrize(
    "cell, expected",
    [
        ('"December 09, 2025"', dt.date(2025, 12, 9)),
        ("March 23 2021", dt.date(2021, 3, 23)),
        ("2025-12-09", dt.date(2025, 12, 9)),
        ("12/09/2025", dt.date(2025, 12, 9)),
        ("46000", dt.date(2025, 12, 9)),  # spreadsheet serial number of 2025-12-09
    ],
)
def test_date_spellings(cell: str, expected: dt.date) -> None:
    parsed = hhs_uc_daily.parse(
        rebuild(HEADER_NO_STAR, [f'{cell},8,54,15,"2,468",9']), file="dates"
    )
    assert parsed.rows[0]["report_date"] == expected


def test_float_counts(real_hhs_bytes: bytes) -> None:
    parsed = hhs_uc_daily.parse(
        rebuild(HEADER_NO_STAR, ['"December 16, 2025",8.0,54.0,15.0,2468.0,9.0']), file="f"
    )
    assert parsed.rows[0]["in_hhs_care"] == 2468


def test_same_date_twice_with_other_figures_is_kept_and_reported(real_hhs_bytes: bytes) -> None:
    # The later export repeats a block of dates with conflicting values: keep both, say so.
    source = lines(real_hhs_bytes)
    clash = source[2].replace('"December 18, 2025"', '"December 21, 2025"')
    parsed = hhs_uc_daily.parse(rebuild(source[0], [source[1], clash, source[1]]), file="dup")
    assert len(parsed.rows) == 3
    assert parsed.conflicting_dates == {dt.date(2025, 12, 21): [2, 3]}
    assert parsed.repeated_identical_rows == 1


def test_byte_order_mark_and_lf_line_endings(real_hhs_bytes: bytes) -> None:
    text = "\ufeff" + real_hhs_bytes.decode().replace("\r\n", "\n")
    parsed = hhs_uc_daily.parse(text.encode(), file="bom")
    assert len(parsed.rows) == 720


# --- bad input: a clear error that names source, file, row and expectation ---------------------


def test_html_error_page_instead_of_csv() -> None:
    page = b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head></html>\n"
    with pytest.raises(LayoutChanged) as caught:
        hhs_uc_daily.parse(page, file="abc123")
    message = str(caught.value)
    assert "source hhs_uc_daily" in message and "file abc123" in message and "row 1" in message
    assert "HTML page" in message and "expected the header Date" in message


def test_renamed_column(real_hhs_bytes: bytes) -> None:
    renamed = real_hhs_bytes.replace(b"Children in HHS Care", b"Children in ORR Care", 1)
    with pytest.raises(LayoutChanged) as caught:
        hhs_uc_daily.parse(renamed, file="abc123")
    assert "'Children in ORR Care'" in str(caught.value)
    assert caught.value.row == 1 and caught.value.kind == "layout_changed"


def test_missing_column(real_hhs_bytes: bytes) -> None:
    header = HEADER_NO_STAR.rsplit(",", 1)[0]
    with pytest.raises(LayoutChanged, match="missing from the header"):
        hhs_uc_daily.parse(rebuild(header, ['"December 16, 2025",8,54,15,"2,468"']), file="x")


def test_truncated_download(real_hhs_bytes: bytes) -> None:
    cut = real_hhs_bytes[: real_hhs_bytes.index(b'"2,472"') + 3]  # ends inside row 3
    with pytest.raises(BadValue) as caught:
        hhs_uc_daily.parse(cut, file="abc123")
    assert caught.value.row == 3
    assert "truncated" in str(caught.value)


def test_row_with_missing_fields(real_hhs_bytes: bytes) -> None:
    with pytest.raises(BadValue) as caught:
        hhs_uc_daily.parse(
            rebuild(
                HEADER_NO_STAR, ['"December 16, 2025",8,54,15,"2,468",9', '"December 15, 2025",8']
            ),
            file="x",
        )
    assert caught.value.row == 3 and "2 fields instead of 6" in str(caught.value)


def test_count_that_is_not_a_number() -> None:
    with pytest.raises(BadValue) as caught:
        hhs_uc_daily.parse(
            rebuild(HEADER_NO_STAR, ['"December 16, 2025",8,n/a,15,"2,468",9']), file="x"
        )
    assert caught.value.column == "in_cbp_custody" and caught.value.row == 2
    assert "'n/a'" in str(caught.value)


def test_unreadable_date() -> None:
    with pytest.raises(BadValue, match="the date cannot be read"):
        hhs_uc_daily.parse(rebuild(HEADER_NO_STAR, ['"Dec 32nd",8,54,15,"2,468",9']), file="x")


def test_empty_file() -> None:
    with pytest.raises(LayoutChanged, match="empty"):
        hhs_uc_daily.parse(b"", file="x")
    with pytest.raises(LayoutChanged, match="empty"):
        hhs_uc_daily.parse(b"\r\n\r\n", file="x")
