"""The outbox's own file (data/outbox.sqlite3): an installation whose outbox was the warehouse
table ``monitor.alerts`` is moved over once, idempotently, and goes on where it was (no second
post, replies in the old thread, acknowledgements kept); the warehouse keeps a copy."""

from __future__ import annotations

import datetime as dt
import threading

from returnwatch import settings
from returnwatch.alerts import deliver_pending, handoff, outbox
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.incidents import process_findings
from tests.alerts.outbox_sql import outbox_execute
from tests.alerts.test_alerts_digest import T0, ops_problem

PNG = b"\x89PNG\r\n\x1a\n-constructed-chart"
# What the version with the outbox in the warehouse added to monitor.alerts's schema.
OLD_ALERTS_DDL = [
    *(stmt for stmt in handoff.ALERTS_DDL if stmt.startswith("ALTER TABLE")),
    "CREATE TABLE IF NOT EXISTS monitor.alert_charts (alert_id VARCHAR PRIMARY KEY, "
    "png BLOB NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, "
    "created_at TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE IF NOT EXISTS monitor.incident_controls (incident_id VARCHAR PRIMARY KEY, "
    "acknowledged_at TIMESTAMPTZ, acknowledged_by VARCHAR, muted_until TIMESTAMPTZ, "
    "updated_at TIMESTAMPTZ NOT NULL)",
]


def old_installation(con) -> str:
    """A warehouse as the previous version left it: one incident whose opening was posted
    (thread C-OPS/1700000000.000100), its chart and an acknowledgement; one alert pending."""
    for statement in OLD_ALERTS_DDL:
        con.execute(statement)
    ops_problem(con, 0, "bad_file", severity="critical")
    ops_problem(con, 1, "layout_changed", severity="critical")
    [incident_id] = con.execute(
        "SELECT incident_id FROM monitor.incidents WHERE series = 'file-0'"
    ).fetchone()
    con.execute(
        "UPDATE monitor.alerts SET status = 'sent', attempts = 1, delivered_via = 'slack', "
        "sent_at = ?, slack_channel = 'C-OPS', slack_ts = '1700000000.000100', "
        "composed_at = ? WHERE incident_id = ?",
        [T0, T0, incident_id],
    )
    con.execute(
        "UPDATE monitor.incidents SET slack_channel = 'C-OPS', slack_ts = '1700000000.000100' "
        "WHERE incident_id = ?",
        [incident_id],
    )
    con.execute(
        "INSERT INTO monitor.alert_charts VALUES (?, ?, 800, 400, ?)",
        [f"{incident_id}:opened", PNG, T0],
    )
    con.execute(
        "INSERT INTO monitor.incident_controls VALUES (?, ?, 'ana', NULL, ?)",
        [incident_id, T0, T0],
    )
    return incident_id


def test_an_old_warehouse_outbox_is_moved_once_and_goes_on(con, slack_standin) -> None:
    incident_id = old_installation(con)
    with outbox.session() as box:
        moved = handoff.hand_off(con, box, now=T0)
        assert len(moved) == 2
        assert handoff.hand_off(con, box, now=T0) == []  # idempotent
    assert outbox_execute("SELECT alert_id, status FROM alerts ORDER BY seq") == [
        (f"{incident_id}:opened", "sent"),
        (moved[1], "pending"),
    ]
    assert outbox_execute("SELECT png FROM alert_charts") == [(PNG,)]
    assert outbox_execute("SELECT acknowledged_by FROM incident_controls") == [("ana",)]
    assert outbox_execute("SELECT incident_id, slack_channel, slack_ts FROM threads") == [
        (incident_id, "C-OPS", "1700000000.000100")
    ]
    # Those two now live only in the outbox.
    assert con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'monitor' "
        "AND table_name IN ('alert_charts', 'incident_controls')"
    ).fetchone() == (0,)

    # The pending one goes out once; the sent one is not posted again; the old incident's
    # resolution replies in its old thread.
    at = T0 + dt.timedelta(hours=1)
    process_findings(con, [], run_at=at, run_id="ingest/later", evaluated=[("ingest", "file-0")])
    report = deliver_pending(con, now=at)
    assert sorted(report.sent) == sorted([moved[1], f"{incident_id}:resolved"])
    posts = slack_standin.posted()
    assert len(posts) == 2
    [reply] = [p for p in posts if p.get("thread_ts")]
    assert reply["thread_ts"] == "1700000000.000100" and reply["channel"] == "C-OPS"
    assert deliver_pending(con, now=at + dt.timedelta(minutes=5)).sent == []
    assert len(slack_standin.posted()) == 2

    # The warehouse's copy follows the outbox, for analysts.
    assert con.execute(
        "SELECT alert_id, status FROM monitor.alerts ORDER BY seq"
    ).fetchall() == outbox_execute("SELECT alert_id, status FROM alerts ORDER BY seq")


def test_a_crash_between_the_two_commits_is_handed_over_by_the_next_run(con) -> None:
    """The monitor committed its incident and queued alert; the worker died before the
    hand-off. The next delivery holding the warehouse hands it over, once."""
    ops_problem(con, 0, "bad_file", severity="critical")
    assert not settings.outbox_path().exists()  # nothing handed over yet
    report = deliver_pending(con, now=T0)
    assert len(report.sent) == 1
    with outbox.session() as box:
        assert handoff.hand_off(con, box, now=T0) == []
    assert outbox_execute("SELECT status FROM alerts") == [("sent",)]


def test_a_finding_the_monitor_never_made_is_not_sent(con) -> None:
    """Nothing reaches the outbox but what the warehouse committed: a monitor transaction
    rolled back leaves neither an incident nor an alert anywhere."""
    finding = Finding(
        monitor="ingest",
        kind="bad_file",
        source="hhs_uc_daily",
        series="rolled-back",
        severity="critical",
        message="never committed",
        run_at=T0,
    )
    con.begin()
    process_findings(
        con, [finding], run_at=T0, run_id="ingest/x", evaluated=[("ingest", "rolled-back")]
    )
    con.rollback()
    assert deliver_pending(con, now=T0).sent == []
    assert outbox_execute("SELECT count(*) FROM alerts") == [(0,)]


def test_two_deliverers_at_once_post_an_alert_once(data_dir, slack_standin) -> None:
    """The dispatcher and a monitor's send_alerts (or a failure callback) may deliver at the
    same moment now that the warehouse's lock no longer keeps them apart: the outbox's
    delivery lock does. Slack answers the first post slowly, so both would find it pending."""
    from returnwatch import warehouse
    from returnwatch.alerts.delivery import deliver_outbox

    with warehouse.session() as con:
        ops_problem(con, 0, "bad_file", severity="critical")
        with outbox.session() as box:
            assert len(handoff.hand_off(con, box, now=T0)) == 1
    slack_standin.fail_next(1, status=200, delay=1.0, method="chat.postMessage")
    start = threading.Barrier(2)
    reports: list = []

    def deliver() -> None:
        with outbox.session() as box:
            start.wait(timeout=30)
            reports.append(deliver_outbox(box, now=T0 + dt.timedelta(minutes=5)))

    workers = [threading.Thread(target=deliver) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(w.is_alive() for w in workers)
    assert len(slack_standin.calls("chat.postMessage")) == 1
    assert sorted(len(r.sent) for r in reports) == [0, 1]
