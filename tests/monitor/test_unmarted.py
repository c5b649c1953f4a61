"""The ``unmarted`` monitor: a loaded file whose rows reach no mart is an ops finding.

The files are CBP's state and SBO excerpts (``tests/fixtures/cbp/*_constructed.csv``), parsed
and loaded for real; the marts' lineage table (``marts.mart_source_files``) is written by hand
here, so each reason can be produced without a dbt build (``tests/dbt/test_file_kinds.py`` runs
the monitor on built warehouses).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from returnwatch.monitor import unmarted

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cbp"
STATE = (FIXTURES / "state_fy22_fy23_jan_excerpt_constructed.csv").read_bytes()
SBO = (FIXTURES / "sbo_fy22_fy25_may_uac_excerpt_constructed.csv").read_bytes()
# Variants made in the test from the excerpts (constructed, like them):
# a state file for February 2023 only, and an older SBO file with the same months.
STATE_FEB = STATE.replace(b"2023 (FYTD),FYTD,JAN", b"2023 (FYTD),FYTD,FEB")
SBO_OLDER = SBO.replace(b",13\r\n", b",12\r\n").replace(b",13\n", b",12\n")
D = dt.date
LOADED_AT = dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC)
LATER = LOADED_AT + dt.timedelta(days=1)


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@pytest.fixture
def con(tmp_path, monkeypatch):
    from returnwatch import warehouse
    from returnwatch.sources import cbp_encounters_monthly as cbp

    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(tmp_path / "data"))
    assert SBO_OLDER != SBO and STATE_FEB != STATE
    with warehouse.session() as connection:
        for kind, name, body, vintage in [
            ("state", "state.csv", STATE, dt.date(2023, 2, 15)),
            ("state", "state_feb_constructed.csv", STATE_FEB, dt.date(2023, 3, 15)),
            ("sbo", "sbo.csv", SBO, dt.date(2025, 6, 16)),
            ("sbo", "sbo_older_constructed.csv", SBO_OLDER, dt.date(2025, 6, 1)),
        ]:
            parsed = cbp.parse(body, file=name, kind=kind)
            warehouse.load_file(
                connection,
                table=cbp.RAW_TABLES[kind],
                frame=parsed.frame(),
                source=cbp.SOURCE,
                sha256=sha(body),
                url=f"http://127.0.0.1/cbp/{name}",
                vintage=vintage,
                fetched_at=LOADED_AT,
            )
        connection.execute("UPDATE raw.files SET loaded_at = ?", [LOADED_AT])
        yield connection


def lineage(con, files: dict[bytes, list[str]]) -> None:
    """marts.mart_source_files as dbt would build it: (mart, period, source_file)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(
        "CREATE OR REPLACE TABLE marts.mart_source_files "
        "(mart VARCHAR, period DATE, source_file VARCHAR)"
    )
    for body, months in files.items():
        for month in months:
            con.execute(
                "INSERT INTO marts.mart_source_files VALUES ('cbp_uc_encounters_monthly', ?, ?)",
                [month, sha(body)],
            )


def by_file(result) -> dict[str, object]:
    return {f.details["sha256"]: f for f in result.findings}


def test_without_the_marts_nothing_is_judged(con):
    result = unmarted.evaluate(con, run_at=LATER)
    assert result.findings == [] and result.evaluated == {}
    assert result.skipped and "mart_source_files" in result.skipped[0]


def test_a_table_no_mart_reads_is_named_with_the_file(con):
    # Only the newer SBO file reaches the marts (the state layout is not wired, say).
    lineage(con, {SBO: ["2024-06-01", "2024-12-01", "2025-05-01"]})
    result = unmarted.evaluate(con, run_at=LATER)
    found = by_file(result)
    # The older SBO file carries the same months: superseded, not a finding.
    assert sha(SBO_OLDER) not in found and sha(SBO) not in found
    state = found[sha(STATE)]
    assert (state.kind, state.severity, state.monitor) == (
        "file_not_in_marts",
        "warning",
        "unmarted",
    )
    assert "http://127.0.0.1/cbp/state.csv" in state.message
    assert "no mart is built from raw.cbp_encounters_state" in state.message
    assert state.details["periods"] == ["2021-12-01", "2022-08-01", "2022-10-01", "2023-01-01"]
    assert state.series == f"file:{sha(STATE)[:16]}"
    # Every file loaded long enough ago is evaluated (so incidents resolve).
    assert len(result.evaluated) == 4


def test_rows_the_models_drop_are_named_with_the_periods_only_that_file_has(con):
    lineage(
        con,
        {
            SBO: ["2024-06-01", "2024-12-01", "2025-05-01"],
            STATE: ["2021-12-01", "2022-08-01", "2022-10-01", "2023-01-01"],
        },
    )
    found = by_file(unmarted.evaluate(con, run_at=LATER))
    assert set(found) == {sha(STATE_FEB)}
    feb = found[sha(STATE_FEB)]
    assert "the models drop its rows" in feb.details["reason"]
    # Its other months come from the first state file; February 2023 from no file at all.
    assert feb.details["periods"] == ["2023-02-01"]


def test_a_file_loaded_within_the_grace_period_is_not_judged_yet(con):
    lineage(con, {SBO: ["2024-06-01"]})
    soon = LOADED_AT + unmarted.FILE_GRACE - dt.timedelta(minutes=1)
    result = unmarted.evaluate(con, run_at=soon)
    assert result.findings == [] and result.evaluated == {}


def test_the_monitor_run_records_it_and_queues_one_ops_alert_then_resolves(con):
    from returnwatch.alerts import delivery
    from returnwatch.monitor import run_monitors

    lineage(con, {SBO: ["2024-06-01", "2024-12-01", "2025-05-01"]})
    report = run_monitors(run_at=LATER, run_id="r1", con=con, monitors=["unmarted"])
    assert [f["kind"] for f in report.findings] == ["file_not_in_marts", "file_not_in_marts"]
    assert len(report.alerts) == 2
    audiences = {
        delivery.audience_for(f["monitor"], f["kind"], f["severity"]) for f in report.findings
    }
    assert audiences == {"ops"}
    again = run_monitors(
        run_at=LATER + dt.timedelta(hours=1), run_id="r2", con=con, monitors=["unmarted"]
    )
    assert again.alerts == []  # the same files: incidents updated, no new alert
    # The state files reach the marts: both incidents resolve.
    lineage(
        con,
        {
            SBO: ["2024-06-01", "2024-12-01", "2025-05-01"],
            STATE: ["2021-12-01", "2022-08-01", "2022-10-01", "2023-01-01"],
            STATE_FEB: ["2023-02-01"],
        },
    )
    fixed = run_monitors(
        run_at=LATER + dt.timedelta(hours=2), run_id="r3", con=con, monitors=["unmarted"]
    )
    assert fixed.findings == [] and fixed.incidents_resolved == 2


# --------------------------------------------------------------------------- freshness


class NoChecks:
    """An archive without fetch checks (files loaded by hand)."""

    def entries(self, source):
        return []


def test_freshness_is_judged_on_what_reached_the_marts(con):
    from returnwatch.monitor import freshness

    run_at = dt.datetime(2025, 7, 1, 16, tzinfo=dt.UTC)
    # Only the state files reach the marts: the SBO file's months (to May 2025) arrived only.
    lineage(
        con,
        {
            STATE: ["2021-12-01", "2022-08-01", "2022-10-01", "2023-01-01"],
            STATE_FEB: ["2023-02-01"],
        },
    )
    state = freshness.assess_freshness(
        con, "cbp_encounters_monthly", run_at=run_at, archive=NoChecks()
    )
    assert (state.newest_arrived_period, state.newest_period) == (D(2025, 5, 1), D(2023, 2, 1))
    assert state.state == "stopped" and state.cause == "not_in_marts"
    assert "cause not_in_marts" in state.finding.message
    assert state.finding.details["newest_arrived_period"] == "2025-05-01"
    # Once the SBO file reaches the marts, the source is fresh (May 2025 is the newest due).
    lineage(con, {SBO: ["2024-06-01", "2024-12-01", "2025-05-01"]})
    state = freshness.assess_freshness(
        con, "cbp_encounters_monthly", run_at=run_at, archive=NoChecks()
    )
    assert (state.state, state.newest_period, state.cause) == ("fresh", D(2025, 5, 1), None)


def test_freshness_without_marts_is_judged_on_arrival_alone(con):
    from returnwatch.monitor import freshness

    run_at = dt.datetime(2025, 7, 1, 16, tzinfo=dt.UTC)
    state = freshness.assess_freshness(
        con, "cbp_encounters_monthly", run_at=run_at, archive=NoChecks()
    )
    # Arrival counts every layout: the SBO file holds May 2025.
    assert (state.state, state.newest_period, state.newest_arrived_period) == (
        "fresh",
        D(2025, 5, 1),
        D(2025, 5, 1),
    )


def test_the_ops_alert_names_the_file_and_the_reason(con, monkeypatch):
    from returnwatch.monitor import run_monitors

    monkeypatch.setenv("RETURNWATCH_AIRFLOW_BASE_URL", "http://localhost:8080")

    lineage(
        con,
        {
            SBO: ["2024-06-01", "2024-12-01", "2025-05-01"],
            STATE: ["2021-12-01", "2022-08-01", "2022-10-01", "2023-01-01"],
        },
    )
    report = run_monitors(run_at=LATER, run_id="r1", con=con, monitors=["unmarted"])
    [alert] = report.alerts
    # The monitor queues facts; the words are rendered when the alert enters the outbox.
    from returnwatch.alerts import deliver_pending

    deliver_pending(con, now=LATER)
    [(audience, text, blocks)] = con.execute(
        "SELECT audience, text, blocks::VARCHAR FROM monitor.alerts WHERE alert_id = ?", [alert]
    ).fetchall()
    assert audience == "ops"
    assert "state_feb_constructed.csv" in text and "the models drop its rows" in text
    assert "runbook.md#file_not_in_marts" in blocks
