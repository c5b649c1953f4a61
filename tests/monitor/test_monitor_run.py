"""``run_monitors`` over a warehouse filled the way production fills it: the replay mirror
serving the publishers' real files as of 17 June 2025, fetched, parsed, validated and loaded
by ``returnwatch.ingest`` (no Airflow)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from returnwatch import ingest
from returnwatch.monitor import run_monitors
from returnwatch_replay.mirror import ReplayMirror
from tests.monitor.hhs_history import at

DAY = dt.date(2025, 6, 17)
SOURCES = ("hhs_uc_daily", "cbp_encounters_monthly", "hhs_uc_monthly")


@pytest.fixture
def mirror(data_dir, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplayMirror]:
    with ReplayMirror(as_of=DAY) as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


def fetch_and_load(source: str, run_at: dt.datetime) -> int:
    """What the source's DAG does: discover (multi-file) or fetch, then parse/validate/load."""
    run_id = f"{source}/scheduled__{run_at:%Y-%m-%d}"
    if source == "hhs_uc_daily":
        fetched = [ingest.fetch(source, run_at=run_at)]
    else:
        fetched = [
            ingest.fetch_link(link, run_at=run_at)
            for link in ingest.discover(source, run_at=run_at)
        ]
    loaded = 0
    for item in fetched:
        if item["is_new"]:
            done = ingest.load(
                ingest.validate(ingest.parse(item), run_at=run_at), run_at=run_at, run_id=run_id
            )
            loaded += done["rows_loaded"]
    return loaded


def test_run_monitors_on_ingested_real_files(mirror, con) -> None:
    """17 June 2025, after the sources' DAGs: HHS's daily figures have been stuck at 10 June
    for a week (late: one alert); CBP's May 2025 file came out on 16 June (fresh); HHS's
    monthly pages end with January 2021 (stopped since February 2021: one alert); SEGOB was
    not fetched (no data: recorded). The marts are not built: every metric and rule is skipped
    by name, and nothing crashes."""
    run_at = at(DAY, 15)
    for source in SOURCES:
        assert fetch_and_load(source, run_at) > 0, source
    report = run_monitors(run_at=at(DAY), run_id="monitor/scheduled__2025-06-17", con=con)
    assert report.states == {
        "hhs_uc_daily": "late",
        "cbp_encounters_monthly": "fresh",
        "segob_bulletin_monthly": "no_data",
        "hhs_uc_monthly": "stopped",
    }
    opened = con.execute(
        "SELECT incident_key, kind, severity FROM monitor.incidents ORDER BY incident_key"
    ).fetchall()
    # First fetch of each: a new file arrived, with no period newer than 10 June / January 2021.
    assert opened == [
        ("freshness:hhs_uc_daily", "new_file_no_new_period", "warning"),
        ("freshness:hhs_uc_monthly", "new_file_no_new_period", "critical"),
    ]
    assert len(report.alerts) == 2
    stopped = next(f for f in report.findings if f["series"] == "hhs_uc_monthly")
    assert stopped["details"]["missing_since"] == "2021-02-01"
    # 9 metrics and rules without their mart, and the unmarted monitor without the lineage.
    assert len(report.skipped) == 9 + 1 and report.seconds.keys() == {
        "freshness",
        "anomaly",
        "policy_rule",
        "revision",
        "unmarted",
    }
    # The next day, the same conditions: updates, no new alert.
    again = run_monitors(
        run_at=at(DAY + dt.timedelta(days=1)), run_id="monitor/scheduled__2025-06-18", con=con
    )
    assert again.alerts == [] and again.states["hhs_uc_monthly"] == "stopped"


def test_an_empty_warehouse_runs_every_monitor_quietly(con) -> None:
    report = run_monitors(run_at=at(DAY), run_id="monitor/empty", con=con)
    assert report.alerts == [] and set(report.states.values()) == {"no_data"}
    assert con.execute("SELECT status FROM monitor.runs").fetchall() == [("succeeded",)]
