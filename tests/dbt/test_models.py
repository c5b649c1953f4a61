"""The dbt models on a small warehouse: newest vintage wins, one row per date, rows trace back.

Two files of dataset ehpz-xc9n are loaded through ``returnwatch.warehouse`` (real figures from
``include/replay/hhs_uc/healthdata_ehpz-xc9n_copy_mihirg42.csv`` unless a comment says a value
is made up), then ``dbt build`` runs once for the whole module.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import types
from pathlib import Path

import pytest

from returnwatch import settings

REAL_HHS_CSV = settings.replay_data_dir() / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv"

OLDER_VINTAGE = dt.date(2025, 12, 19)
NEWER_VINTAGE = dt.date(2025, 12, 22)
OLDER_SHA = "0" * 63 + "1"
NEWER_SHA = "0" * 63 + "2"
COUNTS = [
    "apprehended_placed_in_cbp_custody",
    "in_cbp_custody",
    "transferred_out_of_cbp_custody",
    "in_hhs_care",
    "discharged_from_hhs_care",
]
# staging/mart name of each raw count
RENAMED = dict(
    zip(
        COUNTS,
        [
            "cbp_apprehended_excl_mexico",
            "cbp_in_custody",
            "cbp_transferred_out",
            "hhs_in_care",
            "hhs_discharged",
        ],
        strict=True,
    )
)

# The publisher's footnote on the first count, verbatim (docs/sources.md A.1).
MEXICO_FOOTNOTE = (
    "*This number does not include children from Mexico, most of whom will be repatriated "
    "and will not remain in CBP custody."
)

# Made-up values, each standing for a quirk the real copy does not show:
MADE_UP_OLDER_DEC18_IN_HHS_CARE = 2465  # the older vintage's figure, revised to the real 2,472
MADE_UP_DEC17_CONFLICTING_IN_CBP = 13  # a second Dec 17 row in the newer file (real: 31)
MADE_UP_NEGATIVE_DISCHARGED = -10  # a broken row: counts are never negative


def real_figures() -> dict[dt.date, dict[str, int]]:
    """report_date -> the five counts, as published in the real copy."""
    figures = {}
    with REAL_HHS_CSV.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            day = dt.datetime.strptime(cells[0], "%B %d, %Y").date()
            counts = zip(COUNTS, cells[1:], strict=True)
            figures[day] = {col: int(cell.replace(",", "")) for col, cell in counts}
    return figures


REAL = real_figures()
D = dt.date


def rows_frame(rows: list[tuple[dt.date, dict[str, int]]]):
    """A file's rows in file order, as load_file expects them (source_row: header is line 1)."""
    import pandas as pd

    frame = pd.DataFrame(
        [
            {"report_date": day, **figures, "source_row": line}
            for line, (day, figures) in enumerate(rows, start=2)
        ]
    )
    for column in COUNTS:
        frame[column] = frame[column].astype("Int64")
    return frame


# The older file, published 2025-12-19: Dec 18 back to Dec 11, newest first like the publisher.
OLDER_ROWS = [
    (D(2025, 12, 18), {**REAL[D(2025, 12, 18)], "in_hhs_care": MADE_UP_OLDER_DEC18_IN_HHS_CARE}),
    (D(2025, 12, 17), REAL[D(2025, 12, 17)]),
    (D(2025, 12, 16), REAL[D(2025, 12, 16)]),
    (D(2025, 12, 15), REAL[D(2025, 12, 15)]),
    (D(2025, 12, 14), REAL[D(2025, 12, 14)]),
    (
        D(2025, 12, 11),
        {**REAL[D(2025, 12, 11)], "discharged_from_hhs_care": MADE_UP_NEGATIVE_DISCHARGED},
    ),
]
# The newer file, published 2025-12-22: Dec 21 back to Dec 15, then two repeated dates.
NEWER_ROWS = [
    (D(2025, 12, 21), REAL[D(2025, 12, 21)]),
    (D(2025, 12, 18), REAL[D(2025, 12, 18)]),
    (D(2025, 12, 17), REAL[D(2025, 12, 17)]),
    (D(2025, 12, 16), REAL[D(2025, 12, 16)]),
    (D(2025, 12, 15), REAL[D(2025, 12, 15)]),
    (
        D(2025, 12, 17),
        {**REAL[D(2025, 12, 17)], "in_cbp_custody": MADE_UP_DEC17_CONFLICTING_IN_CBP},
    ),
    (D(2025, 12, 16), REAL[D(2025, 12, 16)]),  # an identical repeat: not a conflict
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """A warehouse with both files loaded and one dbt build run on it: (BuildResult, data dir)."""
    from returnwatch import transform, warehouse

    data = tmp_path_factory.mktemp("dbt") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETURNWATCH_DATA_DIR", str(data))
        try:
            import returnwatch.monitor.store  # noqa: F401
        except ImportError:  # written by another engineer; only the raw tables matter here
            mp.setitem(
                sys.modules, "returnwatch.monitor.store", types.SimpleNamespace(MONITOR_DDL=[])
            )
        now = dt.datetime.now(dt.UTC)
        with warehouse.session() as con:
            for sha, vintage, rows in [
                (OLDER_SHA, OLDER_VINTAGE, OLDER_ROWS),
                (NEWER_SHA, NEWER_VINTAGE, NEWER_ROWS),
            ]:
                warehouse.load_file(
                    con,
                    table="hhs_uc_daily",
                    frame=rows_frame(rows),
                    source="hhs_uc_daily",
                    sha256=sha,
                    url="http://127.0.0.1/ehpz-xc9n.csv",
                    vintage=vintage,
                    fetched_at=now,
                )
        result = transform.dbt_build()
        yield result, data


def query(data: Path, sql: str) -> list[dict]:
    import duckdb

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def by_date(rows: list[dict]) -> dict[dt.date, dict]:
    return {row["report_date"]: row for row in rows}


def test_build_passes_and_only_warn_tests_warn(built):
    result, _ = built
    assert result.success, result.messages
    assert result.failed == []
    warned = sorted(node.split(".")[2] for node in result.warned)
    # The made-up negative count reaches staging and the mart; the made-up Dec 17 row conflicts.
    assert warned == [
        "hhs_uc_daily_counts_non_negative",
        "stg_hhs__uc_daily_counts_non_negative",
        "stg_hhs__uc_daily_no_conflicting_copies_in_file",
    ]
    tests = {node: status for node, status in result.statuses.items() if node.startswith("test.")}
    assert {status for node, status in tests.items() if node not in result.warned} == {"pass"}
    assert {status for node, status in result.statuses.items() if node.startswith("model.")} == {
        "success"
    }


def test_schemas_are_exactly_the_layers(built):
    _, data = built
    relations = query(
        data,
        "SELECT table_schema, table_name, table_type FROM information_schema.tables "
        "WHERE table_schema NOT IN ('raw', 'monitor') ORDER BY 1",
    )
    # Every layer in its schema, views or tables as the layer says (the other sources' models
    # are built too, on their empty raw tables).
    kinds = {(row["table_schema"], row["table_type"]) for row in relations}
    assert kinds == {
        ("staging", "VIEW"),
        ("intermediate", "VIEW"),
        ("marts", "BASE TABLE"),
        ("reference", "BASE TABLE"),
    }
    assert {"table_schema": "marts", "table_name": "hhs_uc_daily", "table_type": "BASE TABLE"} in (
        relations
    )
    assert {"table_schema": "staging", "table_name": "stg_hhs__uc_daily", "table_type": "VIEW"} in (
        relations
    )


def test_staging_keeps_the_newest_vintage_per_date(built):
    _, data = built
    rows = by_date(query(data, "SELECT * FROM staging.stg_hhs__uc_daily"))
    assert sorted(rows) == sorted({day for day, _ in OLDER_ROWS + NEWER_ROWS})

    dec18 = rows[D(2025, 12, 18)]
    assert dec18["hhs_in_care"] == 2472  # the revised (real) figure, not the older 2465
    assert (dec18["source_file"], dec18["source_row"], dec18["vintage"]) == (
        NEWER_SHA,
        3,
        NEWER_VINTAGE,
    )
    assert dec18["first_published_vintage"] == OLDER_VINTAGE
    assert dec18["vintages_with_date"] == 2

    # Only the older file carries Dec 14 and Dec 11: they come from it.
    dec14 = rows[D(2025, 12, 14)]
    assert (dec14["source_file"], dec14["source_row"], dec14["vintage"]) == (
        OLDER_SHA,
        6,
        OLDER_VINTAGE,
    )
    assert dec14["vintages_with_date"] == 1
    for day, row in rows.items():
        file_rows = NEWER_ROWS if row["source_file"] == NEWER_SHA else OLDER_ROWS
        published_day, figures = file_rows[row["source_row"] - 2]  # the file's line, header = 1
        assert published_day == day
        assert {RENAMED[c]: figures[c] for c in COUNTS} == {
            RENAMED[c]: row[RENAMED[c]] for c in COUNTS
        }


def test_a_date_repeated_within_a_file_keeps_its_first_row_and_counts_conflicts(built):
    _, data = built
    rows = by_date(query(data, "SELECT * FROM staging.stg_hhs__uc_daily"))
    dec17, dec16 = rows[D(2025, 12, 17)], rows[D(2025, 12, 16)]
    assert (dec17["source_row"], dec17["cbp_in_custody"]) == (
        4,
        REAL[D(2025, 12, 17)]["in_cbp_custody"],
    )
    assert (dec17["copies_in_file"], dec17["conflicting_copies_in_file"]) == (2, 1)
    assert (dec16["source_row"], dec16["copies_in_file"], dec16["conflicting_copies_in_file"]) == (
        5,
        2,
        0,
    )
    assert rows[D(2025, 12, 21)]["conflicting_copies_in_file"] == 0


def test_mart_has_one_row_per_date_with_derived_columns(built):
    _, data = built
    mart = query(data, "SELECT * FROM marts.hhs_uc_daily ORDER BY report_date")
    staging = by_date(query(data, "SELECT * FROM staging.stg_hhs__uc_daily"))
    assert [row["report_date"] for row in mart] == sorted(staging)

    previous = None
    for row in mart:
        stg = staging[row["report_date"]]
        for column in (
            "source_file",
            "source_row",
            "vintage",
            "conflicting_copies_in_file",
            *RENAMED.values(),
        ):
            assert row[column] == stg[column], (row["report_date"], column)
        assert row["day_of_week"] == row["report_date"].strftime("%A")
        assert row["fiscal_year"] == row["report_date"].year + (row["report_date"].month >= 10)
        if previous is None:
            assert row["previous_report_date"] is None and row["hhs_care_net_change"] is None
        else:
            assert row["previous_report_date"] == previous["report_date"]
            assert (
                row["days_since_previous_report"]
                == (row["report_date"] - previous["report_date"]).days
            )
            assert row["hhs_care_net_change"] == row["hhs_in_care"] - previous["hhs_in_care"]
            assert row["hhs_care_flow_residual"] == row["hhs_in_care"] - (
                previous["hhs_in_care"] + row["cbp_transferred_out"] - row["hhs_discharged"]
            )
        previous = row

    dec18 = by_date(mart)[D(2025, 12, 18)]
    # Real figures: 2,472 in care on Dec 18, 2,481 on Dec 17; 6 transferred in, 16 discharged.
    assert (dec18["day_of_week"], dec18["fiscal_year"]) == ("Thursday", 2026)
    assert (dec18["hhs_care_net_change"], dec18["hhs_care_flow_residual"]) == (-9, 1)
    dec14 = by_date(mart)[D(2025, 12, 14)]
    assert (dec14["previous_report_date"], dec14["days_since_previous_report"]) == (
        D(2025, 12, 11),
        3,
    )


def test_every_column_is_documented(built):
    result, data = built
    manifest = json.loads((result.target_dir / "manifest.json").read_text())
    for unique_id, schema, table in [
        ("model.returnwatch.stg_hhs__uc_daily", "staging", "stg_hhs__uc_daily"),
        ("model.returnwatch.hhs_uc_daily", "marts", "hhs_uc_daily"),
    ]:
        node = manifest["nodes"][unique_id]
        documented = {name for name, col in node["columns"].items() if col["description"].strip()}
        actual = {
            row["column_name"]
            for row in query(
                data,
                f"SELECT column_name FROM information_schema.columns "
                f"WHERE table_schema = '{schema}' AND table_name = '{table}'",
            )
        }
        assert documented == actual, unique_id
        assert node["description"].strip()
    footnote = manifest["nodes"]["model.returnwatch.hhs_uc_daily"]["columns"][
        "cbp_apprehended_excl_mexico"
    ]
    assert MEXICO_FOOTNOTE in footnote["description"]
