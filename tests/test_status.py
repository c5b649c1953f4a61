"""`returnwatch status`: one line per source from the monitor tables, open incidents listed;
the status data behind it, and the monitor DAG's refresh of the snapshot's copy."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import duckdb

from returnwatch import settings, status, transform, warehouse
from returnwatch.monitor import run_monitors
from returnwatch.sources import SOURCE_MODULES
from tests.monitor.hhs_history import HhsHistory, at


def test_no_monitor_run_yet_lists_every_source_as_unknown(data_dir: Path) -> None:
    with warehouse.session() as con:
        text = status.render(con)
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[2 : 2 + len(SOURCE_MODULES)]] == list(SOURCE_MODULES)
    assert all(" unknown " in line for line in lines[2 : 2 + len(SOURCE_MODULES)])
    assert "no monitor run yet" in text


def test_a_source_that_never_loaded_is_reported_after_a_monitor_run(data_dir: Path) -> None:
    with warehouse.session() as con:
        run_monitors(run_at=at("2025-12-22"), run_id="test/status", con=con)
        text = status.render(con)
    assert "judged by the monitor run of 2025-12-22 16:00 UTC" in text
    hhs = next(line for line in text.splitlines() if line.startswith("hhs_uc_daily "))
    # Nothing was ever loaded: not "ok", and no newest period.
    assert hhs.split()[1] == "NO-DATA" and hhs.split()[2] == "-"


# ------------------------------------------------------------- data, and the snapshot's copy


def _late_hhs_snapshot(con) -> HhsHistory:
    """Real HHS rows through 10 June 2025 and the real gap after it, judged on 17 June 2025,
    then published as the analysts' snapshot (as ``transform`` does after a build)."""
    hhs = HhsHistory(con)
    hhs.publish("2025-06-10", received=at("2025-06-11", 15))
    for day in ("2025-06-12", "2025-06-13", "2025-06-16", "2025-06-17"):
        hhs.check(at(day, 15), "unchanged")
    run_monitors(run_at=at("2025-06-17"), run_id="test/status/0617", con=con)
    transform.publish_snapshot()
    return hhs


def test_a_late_source_and_its_incident_in_the_terminal(data_dir: Path) -> None:
    with warehouse.session() as con:
        _late_hhs_snapshot(con)
        current = status.collect(con)
        text = status.render(con)
    hhs = next(s for s in current.sources if s.source == "hhs_uc_daily")
    assert (hhs.state, hhs.newest_period, hhs.expected_period, hhs.missed_periods) == (
        "late",
        dt.date(2025, 6, 10),
        dt.date(2025, 6, 15),
        3,
    )
    assert hhs.calendar == "daily" and hhs.open_incidents == 1
    assert [(i.source, i.kind, i.severity) for i in current.incidents] == [
        ("hhs_uc_daily", "same_file_again", "warning")
    ]
    line = next(line for line in text.splitlines() if line.startswith("hhs_uc_daily "))
    assert line.split()[1:4] == ["LATE", "2025-06-10", "2025-06-11"]
    assert "open since 2025-06-17 [warning] hhs_uc_daily same_file_again: " in text


def test_monitor_refresh_brings_the_latest_verdict_into_the_snapshot_and_nothing_else(
    data_dir: Path,
) -> None:
    with warehouse.session() as con:
        hhs = _late_hhs_snapshot(con)
        # 18 June: figures through the 17th arrive; the monitors find the source fresh again.
        hhs.publish("2025-06-17", received=at("2025-06-18", 15))
        run_monitors(run_at=at("2025-06-18"), run_id="test/status/0618", con=con)
        live_rows = con.execute("select count(*) from raw.hhs_uc_daily").fetchone()[0]
    snapshot = settings.snapshot_path()
    published_rows = _snapshot_rows(snapshot, "raw.hhs_uc_daily")
    assert published_rows < live_rows
    before = status.read_snapshot()
    assert _state(before, "hhs_uc_daily") == "late"  # the snapshot still shows the 17th

    refreshed = status.refresh_snapshot()

    assert refreshed is not None and refreshed.tables["source_freshness"] > 0
    after = status.read_snapshot()
    assert _state(after, "hhs_uc_daily") == "fresh" and after.incidents == []
    assert after.judged_at == at("2025-06-18")
    # The data layers stay as the last build published them: only monitor results move.
    assert _snapshot_rows(snapshot, "raw.hhs_uc_daily") == published_rows
    assert snapshot.stat().st_mode & 0o777 == 0o444
    assert not list(snapshot.parent.glob(".refresh-*"))


def test_no_snapshot_yet_means_nothing_to_refresh(data_dir: Path) -> None:
    with warehouse.session() as con:
        run_monitors(run_at=at("2025-06-17"), run_id="test/status/none", con=con)
    assert status.refresh_snapshot() is None
    assert not settings.snapshot_path().exists() and status.read_snapshot() is None


def _state(current: status.Status | None, source: str) -> str | None:
    assert current is not None
    return next(s.state for s in current.sources if s.source == source)


def _snapshot_rows(path: Path, table: str) -> int:
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        return con.execute(f"select count(*) from {table}").fetchone()[0]
