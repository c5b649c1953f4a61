"""Data incidents end to end against the stand-in: one grouped message, its chart in the
thread, updates and "resolved" replying under the parent whose status line is updated; outages
and retries that never lose nor double a message."""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import time

import pytest

from returnwatch import settings
from returnwatch.alerts import deliver_pending
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.incidents import process_findings
from returnwatch.monitor.store import enqueue_alert

SOURCE = "segob_bulletin_monthly"
SERIES = "mexico_uc_return_rate:return_rate"
T0 = dt.datetime(2025, 4, 15, 16, tzinfo=dt.UTC)


def rate_finding(period: str, value: float, severity: str = "warning") -> Finding:
    return Finding(
        monitor="anomaly",
        kind="anomaly_spike",
        source=SOURCE,
        series=SERIES,
        severity=severity,  # type: ignore[arg-type]
        message=f"return rate {period}: {value}",
        run_at=T0,
        period=period,
        value=value,
        expected="0.8 .. 0.88",
        details={
            "metric": "mexico_uc_return_rate",
            "label": "share of unaccompanied Mexican children returned by the US",
            "method": "robust_step",
            "value": value,
            "baseline": 0.84,
            "band": [0.80, 0.88],
            "score": 7.2,
            "direction": "up",
            "baseline_periods": ["2025-01", "2025-02"],
            "params": {"transform": "identity"},
            "regimes": [],
        },
    )


def open_rate_incident(con, run_id: str = "monitor/run-1") -> None:
    process_findings(
        con,
        [rate_finding("2025-02", 0.93), rate_finding("2025-03", 0.97)],
        run_at=T0,
        run_id=run_id,
        evaluated=[("anomaly", SERIES)],
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_grouped_message_chart_in_thread_and_resolved_updates_the_parent(
    con, slack_standin
) -> None:
    open_rate_incident(con)
    report = deliver_pending(con, now=T0)
    assert len(report.sent) == 1, "two findings of one run and incident: one message"

    [opened] = slack_standin.calls("chat.postMessage")
    payload = opened.payload
    assert payload["channel"] == "#returnwatch-alerts"  # anomalies go to advocates
    assert payload["blocks"][0]["text"]["text"] == (
        "Share of unaccompanied Mexican children returned by the US rose to 97% in March 2025, "
        "from a usual 80–88%"
    )
    assert "Status: open since Tuesday 15 April 2025" in payload["text"]
    assert "• February 2025: 93% (usual 80–88%)" in payload["text"]
    assert "thread_ts" not in payload

    get_url, upload, complete = (
        slack_standin.calls("files.getUploadURLExternal"),
        slack_standin.calls("upload"),
        slack_standin.calls("files.completeUploadExternal"),
    )
    assert len(get_url) == len(upload) == len(complete) == 1
    assert png_size(upload[0].raw) == (800, 400)
    assert complete[0].payload["thread_ts"] == opened.answered["ts"]
    assert complete[0].payload["channel_id"] == opened.answered["channel"]

    # The figures come back within the band: resolved, in the thread, parent updated.
    process_findings(
        con,
        [],
        run_at=T0 + dt.timedelta(days=30),
        run_id="monitor/run-2",
        evaluated=[("anomaly", SERIES)],
    )
    deliver_pending(con, now=T0 + dt.timedelta(days=30))
    _, resolved = slack_standin.calls("chat.postMessage")
    assert resolved.payload["thread_ts"] == opened.answered["ts"]
    assert resolved.payload["channel"] == opened.answered["channel"]
    assert resolved.payload["reply_broadcast"] is True
    assert resolved.payload["blocks"][0]["text"]["text"].startswith("Resolved: Share of")
    [update] = slack_standin.calls("chat.update")
    assert update.payload["ts"] == opened.answered["ts"]
    assert "Status: resolved on Thursday 15 May 2025" in update.payload["text"]
    assert update.payload["blocks"][1]["block_id"] == "rw_status"
    assert con.execute("SELECT slack_channel, slack_ts FROM monitor.incidents").fetchall() == [
        (opened.answered["channel"], opened.answered["ts"])
    ]
    assert (
        con.execute(
            "SELECT count(*) FROM monitor.alerts WHERE parent_updated_at IS NOT NULL"
        ).fetchone()[0]
        == 1
    )


def test_an_update_replies_in_the_thread_without_broadcast(con, slack_standin) -> None:
    open_rate_incident(con)
    deliver_pending(con, now=T0)
    [incident_id] = con.execute("SELECT incident_id FROM monitor.incidents").fetchone()
    enqueue_alert(
        con,
        alert_id=f"{incident_id}:updated:run-2",
        incident_id=incident_id,
        event="updated",
        audience="advocates",
        channel=None,
        text="x",
        blocks=[],
        run_id="monitor/run-1",
    )
    deliver_pending(con, now=T0 + dt.timedelta(days=2))
    opened, update = slack_standin.calls("chat.postMessage")
    assert update.payload["thread_ts"] == opened.answered["ts"]
    assert "reply_broadcast" not in update.payload
    assert update.payload["blocks"][0]["text"]["text"].startswith("Update: ")
    [parent] = slack_standin.calls("chat.update")
    assert "1 update in the thread" in parent.payload["text"]


def test_task_retry_and_rerun_post_once(con, slack_standin) -> None:
    open_rate_incident(con)
    deliver_pending(con, now=T0)
    open_rate_incident(con)  # the monitor task retried / the run cleared and re-run
    deliver_pending(con, now=T0)
    deliver_pending(con, now=T0 + dt.timedelta(hours=1))
    assert len(slack_standin.posted()) == 1
    assert len(slack_standin.calls("files.completeUploadExternal")) == 1


def test_slack_down_for_hours_then_everything_in_order_once(con, slack_standin) -> None:
    for i in range(3):
        process_findings(
            con,
            [
                Finding(
                    monitor="ingest",
                    kind="bad_file",
                    source=SOURCE,
                    series=f"file-{i}",
                    severity="warning",
                    message=f"file {i} unreadable",
                    run_at=T0,
                )
            ],
            run_at=T0,
            run_id=f"ingest/run-{i}",
            evaluated=[("ingest", f"file-{i}")],
        )
    slack_standin.outage(503)
    clock = T0
    for _ in range(6 * 12):  # six hours, a delivery run every 5 minutes
        clock += dt.timedelta(minutes=5)
        report = deliver_pending(con, now=clock)
        assert report.sent == [] and report.failed == []
    # After the first unanswered post each try starts with the history lookup (never a
    # blind re-post), which fails too while Slack is down.
    assert len(slack_standin.calls("chat.postMessage")) == 1
    tried = len(slack_standin.calls("chat.postMessage")) + len(
        slack_standin.calls("conversations.history")
    )
    assert 3 <= tried <= 12, f"backoff: {tried} calls in six hours"
    assert (
        con.execute("SELECT count(*) FROM monitor.alerts WHERE status = 'pending'").fetchone()[0]
        == 3
    )

    slack_standin.restore()
    report = deliver_pending(con, now=clock + dt.timedelta(hours=1, minutes=1))
    assert len(report.sent) == 3
    texts = [p["text"] for p in slack_standin.posted()]
    assert [t.split("Details: ")[1][:6] for t in texts] == ["file 0", "file 1", "file 2"]
    assert deliver_pending(con, now=clock + dt.timedelta(hours=3)).sent == []


def test_retry_after_is_honoured_on_a_429(con, slack_standin) -> None:
    open_rate_incident(con)
    slack_standin.rate_limit_next(1, retry_after=1)
    deliver_pending(con, now=T0)
    first, second = slack_standin.calls("chat.postMessage")
    assert first.status == 429 and second.status == 200
    gap = second.received_at - first.received_at
    assert gap >= 0.95
    assert len(slack_standin.posted()) == 1


def test_a_timeout_that_reached_slack_is_not_posted_again(
    con, slack_standin, tmp_path, monkeypatch
) -> None:
    for name in ("sources.yaml", "monitors.yaml"):
        shutil.copy(settings.config_dir() / name, tmp_path / name)
    text = (settings.config_dir() / "alerts.yaml").read_text()
    (tmp_path / "alerts.yaml").write_text(text.replace("timeout_seconds: 10", "timeout_seconds: 1"))
    monkeypatch.setenv("RETURNWATCH_CONFIG_DIR", str(tmp_path))
    open_rate_incident(con)
    # Slack takes the message but answers too late: the client times out.
    slack_standin.fail_next(1, status=200, delay=2, method="chat.postMessage")
    report = deliver_pending(con)
    assert report.sent == [] and "timed out" in report.errors[0].lower()
    deadline = time.monotonic() + 5  # the stand-in finishes the call the client gave up on
    while slack_standin.calls("chat.postMessage")[0].answered is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    report = deliver_pending(con, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))
    assert len(report.sent) == 1
    assert len(slack_standin.calls("chat.postMessage")) == 1, "found in the history, not reposted"
    assert slack_standin.calls("conversations.history")
    [(ts,)] = con.execute("SELECT slack_ts FROM monitor.alerts").fetchall()
    assert ts == slack_standin.calls("chat.postMessage")[0].answered["ts"]


def test_quiet_hours_hold_warnings_until_morning(
    con, slack_standin, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("sources.yaml", "monitors.yaml"):
        shutil.copy(settings.config_dir() / name, tmp_path / name)
    text = (settings.config_dir() / "alerts.yaml").read_text()
    (tmp_path / "alerts.yaml").write_text(
        text.replace(
            "  advocates:\n    quiet_hours: null",
            '  advocates:\n    quiet_hours: {start: "21:00", end: "08:00", '
            "timezone: America/New_York}",
        )
    )
    monkeypatch.setenv("RETURNWATCH_CONFIG_DIR", str(tmp_path))
    open_rate_incident(con)
    night = dt.datetime(2025, 4, 16, 3, tzinfo=dt.UTC)  # 23:00 in New York
    assert deliver_pending(con, now=night).sent == []
    assert slack_standin.received == []
    morning = dt.datetime(2025, 4, 16, 12, 5, tzinfo=dt.UTC)  # 08:05 in New York
    assert len(deliver_pending(con, now=morning).sent) == 1


def test_a_muted_incident_stays_quiet(con, slack_standin) -> None:
    from returnwatch.alerts.cli import mute_incident

    open_rate_incident(con)
    [incident_id] = con.execute("SELECT incident_id FROM monitor.incidents").fetchone()
    mute_incident(con, incident_id, hours=48, now=T0)
    report = deliver_pending(con, now=T0)
    assert report.suppressed == [f"{incident_id}:opened"]
    assert slack_standin.received == []
