"""The daily digest against the Slack stand-in: held openings go out as ONE message at the
digest time, once, even across retries, re-runs and a Slack outage; critical ones are not held;
later events of a digested incident reply in the digest's thread."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from returnwatch import settings
from returnwatch.alerts import deliver_pending
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.incidents import process_findings
from returnwatch.monitor.store import enqueue_alert
from tests.alerts.outbox_sql import outbox_execute

SOURCE = "segob_bulletin_monthly"
# The clock the tests control: Tuesday 15 April 2025, 12:00 to 13:00 in New York (EDT).
T0 = dt.datetime(2025, 4, 15, 16, tzinfo=dt.UTC)
DIGEST = dt.datetime(2025, 4, 16, 13, tzinfo=dt.UTC)  # Wednesday 09:00 in New York
KINDS = ("bad_file", "layout_changed", "bad_value")


@pytest.fixture
def digest_on(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config/alerts.yaml with a 09:00 New York digest for ops."""
    for name in ("sources.yaml", "monitors.yaml"):
        shutil.copy(settings.config_dir() / name, tmp_path / name)
    text = (settings.config_dir() / "alerts.yaml").read_text()
    old = "  ops:\n    quiet_hours: null\n    digest: null"
    assert old in text
    (tmp_path / "alerts.yaml").write_text(
        text.replace(
            old,
            '  ops:\n    quiet_hours: null\n    digest: {at: "09:00", timezone: America/New_York}',
        )
    )
    monkeypatch.setenv("RETURNWATCH_CONFIG_DIR", str(tmp_path))


def ops_problem(con, i: int, kind: str, severity: str = "warning") -> None:
    """An ingest finding (routed to ops) enqueued at T0 + i minutes on the test clock."""
    at = T0 + dt.timedelta(minutes=i)
    process_findings(
        con,
        [
            Finding(
                monitor="ingest",
                kind=kind,
                source=SOURCE,
                series=f"file-{i}",
                severity=severity,  # type: ignore[arg-type]
                message=f"file {i}: {kind}",
                run_at=at,
            )
        ],
        run_at=at,
        run_id=f"ingest/run-{i}",
        evaluated=[("ingest", f"file-{i}")],
    )
    # enqueue_alert stamps the wall clock; the outbox decides on created_at: use the test clock.
    con.execute(
        "UPDATE monitor.alerts SET created_at = ? WHERE run_id = ?", [at, f"ingest/run-{i}"]
    )


def three_held(con) -> None:
    for i, kind in enumerate(KINDS):
        ops_problem(con, i, kind)
        report = deliver_pending(con, now=T0 + dt.timedelta(minutes=i, seconds=30))
        assert report.sent == [], "a warning for ops waits for the digest"


def alerts(con) -> list[tuple]:
    return con.execute(
        "SELECT status, attempts, slack_ts, digest_id FROM monitor.alerts ORDER BY seq"
    ).fetchall()


def test_three_held_alerts_go_out_as_one_digest_in_order(con, slack_standin, digest_on) -> None:
    three_held(con)
    assert deliver_pending(con, now=DIGEST - dt.timedelta(minutes=1)).sent == []
    assert slack_standin.received == []

    report = deliver_pending(con, now=DIGEST)
    assert len(report.sent) == 3
    [call] = slack_standin.calls("chat.postMessage")
    payload = call.payload
    assert payload["channel"] == "#returnwatch-ops"
    header, *sections = payload["blocks"]
    assert header["text"]["text"] == "3 alerts since Tuesday 15 April 2025, 09:00"
    # Each alert's own headline (first line of its message), in creation order.
    headlines = [
        r[0].split("\n", 1)[0]
        for r in con.execute("SELECT text FROM monitor.alerts ORDER BY seq").fetchall()
    ]
    assert [h.rsplit(": ", 1)[1] for h in headlines] == [
        "a file could not be used",
        "the file layout changed",
        "a value in the file could not be read",
    ]
    assert [s["text"]["text"].split("\n")[0] for s in sections] == [f"*{h}*" for h in headlines]
    positions = [payload["text"].index(h) for h in headlines]
    assert positions == sorted(positions), "the text fallback lists them in creation order"
    incidents = [
        r[0] for r in con.execute("SELECT incident_id FROM monitor.alerts ORDER BY seq").fetchall()
    ]
    for section, incident_id in zip(sections, incidents, strict=True):
        assert f"Incident `{incident_id}`" in section["text"]["text"]
    assert payload["metadata"]["event_payload"]["alert_id"].startswith(
        "digest:ops:#returnwatch-ops:2025-04-16T09:00:00-04:00"
    )

    ts = call.answered["ts"]
    assert alerts(con) == [("sent", 1, ts, payload["metadata"]["event_payload"]["alert_id"])] * 3
    # Each incident's thread is the digest message.
    assert {r for r in con.execute("SELECT slack_ts FROM monitor.incidents").fetchall()} == {(ts,)}


def test_retries_and_reruns_post_the_digest_once(con, slack_standin, digest_on) -> None:
    three_held(con)
    deliver_pending(con, now=DIGEST)
    deliver_pending(con, now=DIGEST)  # the send task retried
    for i, kind in enumerate(KINDS):  # the runs cleared and re-run
        ops_problem(con, i, kind)
    deliver_pending(con, now=DIGEST + dt.timedelta(minutes=5))
    deliver_pending(con, now=DIGEST + dt.timedelta(days=1))  # the next day's digest time
    assert len(slack_standin.calls("chat.postMessage")) == 1
    assert [r[:2] for r in alerts(con)] == [("sent", 1)] * 3


def test_a_crash_after_slack_took_the_digest_does_not_repost(con, slack_standin, digest_on) -> None:
    three_held(con)
    deliver_pending(con, now=DIGEST)
    [call] = slack_standin.calls("chat.postMessage")
    # As if the process died between Slack's answer and the "sent" update.
    outbox_execute(
        "UPDATE alerts SET status = 'pending', slack_ts = NULL, sent_at = NULL, last_error = NULL"
    )
    report = deliver_pending(con, now=DIGEST + dt.timedelta(minutes=1))
    assert len(report.sent) == 3
    assert len(slack_standin.calls("chat.postMessage")) == 1, "found by its digest key"
    assert slack_standin.calls("conversations.history")
    assert [r[:3] for r in alerts(con)] == [("sent", 2, call.answered["ts"])] * 3


def test_slack_down_at_digest_time_then_one_digest(con, slack_standin, digest_on) -> None:
    three_held(con)
    slack_standin.fail_next(1, status=500, method="chat.postMessage")
    report = deliver_pending(con, now=DIGEST)
    assert report.sent == [] and len(report.retry_later) == 3
    assert [r[0] for r in alerts(con)] == ["pending"] * 3
    assert slack_standin.posted() == []

    report = deliver_pending(con, now=DIGEST + dt.timedelta(minutes=2))
    assert len(report.sent) == 3
    first, second = slack_standin.calls("chat.postMessage")
    assert first.status == 500 and second.status == 200
    assert len(slack_standin.posted()) == 1
    assert second.payload["blocks"][0]["text"]["text"].startswith("3 alerts since")
    assert [r[:3] for r in alerts(con)] == [("sent", 2, second.answered["ts"])] * 3
    assert deliver_pending(con, now=DIGEST + dt.timedelta(hours=1)).sent == []
    assert len(slack_standin.posted()) == 1


def test_a_critical_alert_is_not_held(con, slack_standin, digest_on) -> None:
    ops_problem(con, 0, "bad_file")
    ops_problem(con, 1, "validation_failed", severity="critical")
    report = deliver_pending(con, now=T0 + dt.timedelta(minutes=2))
    assert len(report.sent) == 1 and len(report.deferred) == 1
    [call] = slack_standin.calls("chat.postMessage")
    assert "the figures failed validation" in call.payload["text"]
    assert "alerts since" not in call.payload["text"]

    deliver_pending(con, now=DIGEST)
    _, digest = slack_standin.calls("chat.postMessage")
    assert digest.payload["blocks"][0]["text"]["text"].startswith("1 alert since")


def test_an_update_of_a_digested_incident_replies_in_the_digest_thread(
    con, slack_standin, digest_on
) -> None:
    three_held(con)
    [incident_id] = con.execute(
        "SELECT incident_id FROM monitor.alerts ORDER BY seq LIMIT 1"
    ).fetchone()
    enqueue_alert(
        con,
        alert_id=f"{incident_id}:updated:run-9",
        incident_id=incident_id,
        event="updated",
        audience="ops",
        channel=None,
        text="x",
        blocks=[],
        run_id="ingest/run-9",
    )
    assert deliver_pending(con, now=T0 + dt.timedelta(hours=1)).sent == [], (
        "an update waits behind its held opening"
    )
    deliver_pending(con, now=DIGEST)
    digest, update = slack_standin.calls("chat.postMessage")
    assert digest.payload["blocks"][0]["text"]["text"].startswith("3 alerts since")
    assert update.payload["thread_ts"] == digest.answered["ts"]
    assert slack_standin.calls("chat.update") == [], "the digest's text is left alone"
