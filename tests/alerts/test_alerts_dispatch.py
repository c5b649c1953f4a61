"""The dispatcher (``dispatch_alerts``, every 5 minutes) on the Slack stand-in, with a test
clock: a queued alert leaves at the next tick; the outbox's backoff retries at its intervals;
quiet hours and the digest end at their minute; a writer holding the warehouse (a dbt build)
does not delay delivery (the outbox is its own file), and the dispatcher never queues in the
`warehouse` pool.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import threading
import time

import pytest

from returnwatch import settings, warehouse
from returnwatch.alerts import handoff, outbox
from returnwatch.alerts.dispatch import dispatch
from tests.alerts.test_alerts_digest import DIGEST, T0, digest_on, ops_problem  # noqa: F401

TICK = dt.timedelta(minutes=5)  # the DAG's cron: */5 * * * *


def ticks(start: dt.datetime, count: int) -> list[dt.datetime]:
    """The dispatcher's run times from the first 5-minute boundary at or after ``start``."""
    first = start.replace(second=0, microsecond=0)
    first += dt.timedelta(minutes=-first.minute % 5)
    return [first + i * TICK for i in range(count)]


def tick(con, now: dt.datetime) -> dict:
    return dispatch(
        run_id=f"dispatch_alerts/{now:%H%M}", now=now, dag_facts=lambda d: None, con=con
    )


def test_a_queued_alert_reaches_slack_at_the_next_tick(con, slack_standin) -> None:
    queued = T0 + dt.timedelta(minutes=2, seconds=10)  # 16:02:10, after the monitor's run
    ops_problem(con, 2, "bad_file", severity="critical")
    [first] = ticks(queued, 1)
    report = tick(con, first)
    assert len(report["delivery"]["sent"]) == 1
    assert first - queued <= dt.timedelta(minutes=5) < dt.timedelta(minutes=10)
    [post] = slack_standin.posted()
    assert post["channel"] == "#returnwatch-ops"


def test_backoff_retries_at_its_configured_intervals(con, slack_standin) -> None:
    """backoff_first_seconds 60, doubling: tries at 0, +1, +2, +4, +8 min after each failure;
    on a 5-minute dispatcher the tries fall on the first tick after each moment."""
    ops_problem(con, 0, "bad_file", severity="critical")
    slack_standin.outage(503)
    tried_at = []

    def tries() -> int:
        # After an unanswered post, a try starts by looking for it in the channel's history.
        return len(slack_standin.calls("chat.postMessage")) + len(
            slack_standin.calls("conversations.history")
        )

    for now in ticks(T0 + dt.timedelta(minutes=1), 6):  # 16:05 .. 16:30
        before = tries()
        tick(con, now)
        if tries() > before:
            tried_at.append(now)
    # 16:05 fails (next 16:06) -> 16:10 fails (+2 min: 16:12) -> 16:15 fails (+4: 16:19) ->
    # 16:20 fails (+8: 16:28) -> 16:25 waits -> 16:30 tries.
    assert [f"{t:%H:%M}" for t in tried_at] == ["16:05", "16:10", "16:15", "16:20", "16:30"]
    row = con.execute("SELECT attempts, next_attempt_at FROM monitor.alerts").fetchone()
    assert row[0] == 5
    assert row[1].astimezone(dt.UTC) == tried_at[-1] + dt.timedelta(minutes=16)
    slack_standin.restore()
    tick(con, tried_at[-1] + dt.timedelta(minutes=16))
    assert len(slack_standin.posted()) == 1


@pytest.fixture
def quiet_ops(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet hours 21:00-08:00 New York for ops."""
    for name in ("sources.yaml", "monitors.yaml"):
        shutil.copy(settings.config_dir() / name, tmp_path / name)
    text = (settings.config_dir() / "alerts.yaml").read_text()
    old = "  ops:\n    quiet_hours: null"
    assert old in text
    (tmp_path / "alerts.yaml").write_text(
        text.replace(
            old,
            ('  ops:\n    quiet_hours: {start: "21:00", end: "08:00", timezone: America/New_York}'),
        )
    )
    monkeypatch.setenv("RETURNWATCH_CONFIG_DIR", str(tmp_path))


def test_quiet_hours_end_at_their_minute(con, slack_standin, quiet_ops) -> None:
    # 22:10 New York (02:10 UTC): a warning for ops waits until 08:00 New York (12:00 UTC).
    evening = dt.datetime(2025, 4, 16, 2, 10, tzinfo=dt.UTC)
    con.execute("DELETE FROM monitor.alerts")
    from returnwatch.monitor.findings import Finding
    from returnwatch.monitor.incidents import process_findings

    process_findings(
        con,
        [
            Finding(
                monitor="ingest",
                kind="bad_file",
                source="hhs_uc_daily",
                series="night",
                severity="warning",
                message="night file",
                run_at=evening,
            )
        ],
        run_at=evening,
        run_id="ingest/night",
        evaluated=[("ingest", "night")],
    )
    morning = dt.datetime(2025, 4, 16, 12, tzinfo=dt.UTC)
    for now in (evening + TICK, morning - TICK):
        assert tick(con, now)["delivery"]["sent"] == []
    assert slack_standin.posted() == []
    assert len(tick(con, morning)["delivery"]["sent"]) == 1


def test_the_digest_leaves_at_its_minute(con, slack_standin, digest_on) -> None:  # noqa: F811
    for i, kind in enumerate(("bad_file", "layout_changed")):
        ops_problem(con, i, kind)
    assert tick(con, DIGEST - TICK)["delivery"]["sent"] == []
    assert len(tick(con, DIGEST)["delivery"]["sent"]) == 2
    assert len(slack_standin.posted()) == 1


HOLD_WRITER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])       # read-write: DuckDB's writer lock, as dbt holds it
con.execute("BEGIN")                    # and an open write transaction, as a build has
con.execute("CREATE TABLE IF NOT EXISTS main.build_marker AS SELECT 1 AS x")
print("locked", flush=True)
sys.stdin.readline()                    # until the test lets go
con.execute("COMMIT")
con.close()
print("released", flush=True)
"""
# The acceptance bound: a build holding the writer delays delivery by at most a minute.
WITHIN = 60.0


def test_a_writer_holding_the_warehouse_does_not_delay_delivery(data_dir, slack_standin) -> None:
    """The dispatcher sends from the outbox while another process holds the warehouse's
    writer (a real open write transaction, as a dbt build); it takes the warehouse only
    afterwards (the watchdog, the warehouse's copy), once the writer lets go."""
    with warehouse.session() as con:
        ops_problem(con, 0, "bad_file", severity="critical")
        with outbox.session() as box:  # as the monitor's task does right after its commit
            assert len(handoff.hand_off(con, box)) == 1
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(settings.warehouse_path())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    done: dict = {}
    worker = threading.Thread(
        target=lambda: done.update(
            dispatch(run_id="dispatch_alerts/locked", now=T0 + TICK, dag_facts=lambda d: None)
        )
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        # Control: the warehouse is really locked for everyone else.
        with pytest.raises(warehouse.WarehouseLocked):
            warehouse.connect(wait_seconds=0)
        started = time.monotonic()
        worker.start()
        assert slack_standin.wait_for("chat.postMessage", timeout=WITHIN), (
            f"not delivered within {WITHIN:.0f} s while the warehouse was held"
        )
        delivered = time.monotonic()
        # Still held at that moment: the alert did not wait for the writer.
        assert holder.poll() is None
        with pytest.raises(warehouse.WarehouseLocked):
            warehouse.connect(wait_seconds=0)
        assert worker.is_alive(), "the dispatcher should still be waiting for the warehouse"
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        worker.join(timeout=60)
        assert not worker.is_alive()
    finally:
        holder.kill()
        holder.wait()
    assert len(done["delivery"]["sent"]) == 1
    assert len(slack_standin.calls("chat.postMessage")) == 1
    # Informational: dispatcher start -> Slack with the writer held (was: the writer's hold).
    print(f"\nwriter held; dispatch start -> Slack: {delivered - started:.2f} s")
    # And the warehouse's copy caught up once the writer let go.
    with warehouse.session() as con:
        assert con.execute("SELECT status FROM monitor.alerts").fetchall() == [("sent",)]
