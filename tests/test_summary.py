"""The demo's closing summary: what it says when the warehouse is empty, and the headline
comparison with its "constructed" warning."""

from __future__ import annotations

from pathlib import Path

from returnwatch import summary, warehouse


def test_an_empty_warehouse_says_what_is_missing(data_dir: Path) -> None:
    with warehouse.session():
        pass  # creates raw.* and monitor.*, no marts
    text = summary.render()
    assert "Headline figures: none yet" in text
    assert "Latest figures: none yet" in text


def test_the_headline_names_the_mart_and_flags_constructed_figures(data_dir: Path) -> None:
    with warehouse.session() as con:
        # Two months of figures made up for this test (constructed), in the mart's columns.
        con.execute("""
            create schema marts;
            create table marts.cbp_segob_discrepancy_monthly as
            select * from (values
                (date '2025-03-01', 'unaccompanied_minors', true, 439, 511, -72, -72 / 511.0, true),
                (date '2025-04-01', 'unaccompanied_minors', true, 580, 565, 15, 15 / 565.0, true),
                (date '2025-04-01', 'uc_plus_ofo_accompanied_minors', true, 999, 1, 998, 998.0, true))
            as t(month, comparison, both_sides_published, cbp_count, segob_count, difference,
                 pct_difference, segob_figures_constructed)""")
    text = summary.render()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "CBP encounters vs SEGOB" in line)
    assert lines[start + 2].split()[:4] == ["2025-04", "580", "565", "+15"]  # newest first
    assert lines[start + 3].split()[:4] == ["2025-03", "439", "511", "-72"]
    assert "999" not in text  # only the unaccompanied comparison
    assert "CONSTRUCTED" in lines[start + 4]


def test_constructed_is_labelled_from_each_files_record_not_the_table_name(data_dir: Path) -> None:
    import datetime as dt

    import pandas as pd

    known = {
        "month": pd.Timestamp("2024-01-01"),
        "sex": "total",
        "age_group": "0-11",
        "travel_condition": "unaccompanied",
        "events": 3,
    }
    with warehouse.session() as con:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns where table_schema "
            "= 'raw' and table_name = 'segob_mexican_minor_repatriations'"
        ).fetchall()
        # One row of made-up values in the table's columns (only the files' records matter).
        frame = pd.DataFrame(
            [
                {
                    c: known.get(c, 1 if "INT" in t else "x")
                    for c, t in columns
                    if c not in ("source_file", "vintage")
                }
            ]
        )
        # A real file from the publisher in the table the old summary always called CONSTRUCTED.
        warehouse.load_file(
            con,
            table="segob_mexican_minor_repatriations",
            frame=frame,
            source="segob_bulletin_monthly",
            sha256="a" * 64,
            url="https://portal.example/cuadro5.2.1_.xls",
            vintage=dt.date(2025, 2, 7),
            fetched_at=dt.datetime.now(dt.UTC),
        )
    assert "CONSTRUCTED" not in summary.render()
    with warehouse.session() as con:
        # A file ingested by hand whose name says it was made by hand.
        warehouse.load_file(
            con,
            table="segob_mexican_minor_repatriations",
            frame=frame,
            source="segob_bulletin_monthly",
            sha256="b" * 64,
            url="manual:section5_minors_constructed.xls",
            vintage=dt.date(2025, 3, 7),
            fetched_at=dt.datetime.now(dt.UTC),
        )
        assert con.execute("select sha256, constructed from raw.files order by 1").fetchall() == [
            ("a" * 64, False),
            ("b" * 64, True),
        ]
    assert "1 of 2 file(s) CONSTRUCTED" in summary.render()
