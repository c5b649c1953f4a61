"""Constructed or not is the file's own record: set when it is parsed, carried by raw.files to
the marts, and what keeps a hand-made file from ever alerting advocates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from returnwatch import ingest, warehouse
from returnwatch.monitor import run_monitors
from returnwatch.provenance import is_constructed
from returnwatch_replay import series as real
from tests.monitor.hhs_history import at

RUN_AT = dt.datetime(2026, 1, 5, 15, tzinfo=dt.UTC)


def test_the_name_or_the_marker_decides_never_the_host() -> None:
    # A real file served by the loopback replay mirror is real.
    assert not is_constructed("http://127.0.0.1:8765/cbp/2024-10/nationwide-encounters-aor.csv")
    assert is_constructed("http://127.0.0.1/tests/sbo_fy22_fy25_may_uac_excerpt_constructed.csv")
    assert is_constructed("manual:/home/me/Downloads/section5_minors_constructed.xls")
    assert not is_constructed("manual:/home/me/Downloads/cuadro5.2.1_.xls")
    assert is_constructed("https://portal/cuadro5.2.1_.xls",
                          b"...Nota de la replica: CUADRO CONSTRUIDO A MANO. ...")


def test_a_constructed_file_ingested_by_hand_is_recorded_as_constructed(
        data_dir: Path, real_hhs_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "hhs_daily_excerpt_constructed.csv"
    path.write_bytes(real_hhs_bytes)
    ingest.ingest_file("hhs_uc_daily", path, vintage=dt.date(2025, 12, 22), run_at=RUN_AT,
                       run_id="manual/1")
    with warehouse.session() as con:
        assert con.execute("SELECT constructed FROM raw.files").fetchall() == [(True,)]


def _publish(con, rows: pd.DataFrame, constructed: bool) -> None:
    """The CBP mart through January 2021 and its lineage: January's file as flagged."""
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    part = rows[rows["month"] <= pd.Timestamp("2021-01-01")]
    con.register("mart_rows", part)
    con.execute("CREATE OR REPLACE TABLE marts.cbp_uc_encounters_monthly AS "
                "SELECT * FROM mart_rows")
    con.unregister("mart_rows")
    con.execute("""CREATE OR REPLACE TABLE marts.mart_source_files AS
        SELECT 'cbp_uc_encounters_monthly' AS mart, DATE '2021-01-01' AS period,
               'manual:cbp_jan_2021_constructed.csv' AS url, ? AS constructed""", [constructed])


def test_a_constructed_file_loaded_by_hand_never_alerts_advocates(data_dir: Path) -> None:
    mexican = real.cbp_uc_rows()
    mexican = mexican[mexican["citizenship"] == "MEXICO"]
    with warehouse.session() as con:
        # The same January 2021 figures (18 records, a contested period: a warning that
        # opens an incident) resting on a constructed file: recorded as info, no alert.
        _publish(con, mexican, constructed=True)
        report = run_monitors(run_at=at("2021-02-21"), run_id="monitor/a", con=con,
                              monitors=("policy_rule",))
        assert report.alerts == []
        jan = con.execute("SELECT severity, details->>'constructed_figures' FROM "
                          "monitor.findings WHERE period = '2021-01'").fetchall()
        assert jan == [("info", "true")]
    with warehouse.session() as con:
        # Control: the same figures from a real file do alert.
        _publish(con, mexican, constructed=False)
        con.execute("DELETE FROM monitor.judged")
        report = run_monitors(run_at=at("2021-02-22"), run_id="monitor/b", con=con,
                              monitors=("policy_rule",))
        assert len(report.alerts) == 1
