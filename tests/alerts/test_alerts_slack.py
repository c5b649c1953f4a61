"""Delivering alerts through slack-sdk to the loopback Slack stand-in, and its failure modes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pytest

from returnwatch import settings
from returnwatch.alerts import deliver_pending, requeue_failed
from returnwatch.monitor import run_monitors
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.incidents import process_findings
from tests.monitor.hhs_history import SOURCE, at

LANDING = "https://healthdata.gov/National/HHS-Unaccompanied-Alien-Children-Program/ehpz-xc9n"
RUN_17 = "monitor/scheduled__2025-06-17T16:00:00+00:00"


def later(minutes: float) -> dt.datetime:
    """A clock past the outbox's backoff (tests control time; nothing sleeps)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


def june_gap(con, history) -> list[str]:
    """The real June 2025 silence, as seen by the monitor on Tuesday 17 June: one alert queued."""
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    for day in ("2025-06-12", "2025-06-13", "2025-06-16", "2025-06-17"):
        history.check(at(day, 15), "unchanged")
    return run_monitors(run_at=at("2025-06-17"), run_id=RUN_17, con=con).alerts


def alert_rows(con) -> list[tuple]:
    return con.execute(
        "SELECT event, status, attempts, delivered_via FROM monitor.alerts ORDER BY seq"
    ).fetchall()


def ops_problem(con, series: str, run_id: str) -> None:
    finding = Finding(
        monitor="ingest",
        kind="layout_changed",
        source=SOURCE,
        series=series,
        severity="warning",
        message=f"{series}: unknown header",
        run_at=at("2025-06-17"),
    )
    process_findings(
        con, [finding], run_at=at("2025-06-17"), run_id=run_id, evaluated=[("ingest", series)]
    )


def test_alert_reaches_slack_with_readable_blocks_and_no_token(
    con, history, slack_standin, monkeypatch
) -> None:
    monkeypatch.setenv("RETURNWATCH_AIRFLOW_BASE_URL", "http://localhost:8080/")
    [alert_id] = june_gap(con, history)

    report = deliver_pending(con)
    assert (report.via, report.sent, report.pending_left) == ("slack", [alert_id], 0)

    [call] = slack_standin.calls("chat.postMessage")
    assert call.headers["Authorization"] == f"Bearer {slack_standin.token}"
    payload = call.payload
    assert payload["channel"] == "#returnwatch-ops"  # freshness goes to ops (config/alerts.yaml)
    header, status, what, why, context = payload["blocks"]
    assert status["block_id"] == "rw_status"
    assert status["elements"][0]["text"].startswith("Status: open since Tuesday 17 June 2025")
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "emoji": True, "text": "HHS daily figures are late"},
    }
    assert what["text"]["text"] == (
        "healthdata.gov has published no new figures since those for *Tuesday 10 June 2025*. "
        "It normally posts every weekday except federal holidays, each time with the previous "
        "day's figures. Figures for *3 publishing days* are now missing: 11, 12 and 15 June."
    )
    assert "file has not changed" in why["text"]["text"]
    links = context["elements"][0]["text"]
    assert f"<{LANDING}|Source: HHS Unaccompanied Alien Children Program (daily)>" in links
    assert (
        "<http://localhost:8080/dags/monitor/runs/"
        "scheduled__2025-06-17T16%3A00%3A00%2B00%3A00|Airflow run>"
    ) in links
    # What to do: the runbook section of the incident's kind (late, and the same file again).
    assert (
        "<http://localhost:8080/returnwatch/docs/runbook.md#same_file_again|What to do (runbook)>"
    ) in links
    assert payload["text"].startswith("HHS daily figures are late\nStatus: open since")
    assert "\n\nhealthdata.gov has published" in payload["text"]
    assert payload["metadata"]["event_payload"]["alert_id"] == alert_id
    body = call.raw.decode()
    assert slack_standin.token not in body and "xoxb" not in body

    [(status, via, ts, channel)] = con.execute(
        "SELECT status, delivered_via, slack_ts, slack_channel FROM monitor.alerts"
    ).fetchall()
    answered = call.answered
    assert (status, via, ts, channel) == ("sent", "slack", answered["ts"], answered["channel"])
    assert con.execute("SELECT slack_channel, slack_ts FROM monitor.incidents").fetchall() == [
        (answered["channel"], answered["ts"])
    ]

    assert deliver_pending(con).sent == []  # sent rows are never sent again
    assert len(slack_standin.calls("chat.postMessage")) == 1


def test_resolved_goes_into_the_incident_thread(con, history, slack_standin) -> None:
    june_gap(con, history)
    deliver_pending(con)
    history.publish("2025-06-17", received=at("2025-06-18", 15))
    run_monitors(run_at=at("2025-06-18"), run_id="monitor/scheduled__2025-06-18", con=con)
    deliver_pending(con)

    opened, resolved = slack_standin.calls("chat.postMessage")
    assert resolved.payload["thread_ts"] == opened.answered["ts"]
    assert resolved.payload["channel"] == opened.answered["channel"]
    assert resolved.payload["reply_broadcast"] is True
    assert resolved.payload["blocks"][0]["text"]["text"] == "HHS daily figures are arriving again"
    assert (
        "Resolved: figures resumed on *Wednesday 18 June 2025*"
        in (resolved.payload["blocks"][1]["text"]["text"])
    )
    assert alert_rows(con) == [("opened", "sent", 1, "slack"), ("resolved", "sent", 1, "slack")]


def test_rate_limited_then_accepted_posts_once(con, history, slack_standin) -> None:
    june_gap(con, history)
    slack_standin.rate_limit_next(1, retry_after=1)
    started = time.monotonic()
    report = deliver_pending(con)
    assert time.monotonic() - started >= 1, "Retry-After was honoured"
    assert len(report.sent) == 1
    calls = slack_standin.calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert len(slack_standin.posted()) == 1
    assert alert_rows(con) == [("opened", "sent", 1, "slack")]


def test_a_long_retry_after_leaves_the_alert_for_next_run(con, history, slack_standin) -> None:
    june_gap(con, history)
    slack_standin.rate_limit_next(1, retry_after=3600)
    started = time.monotonic()
    report = deliver_pending(con)
    assert time.monotonic() - started < 5
    assert report.sent == [] and len(report.retry_later) == 1
    assert deliver_pending(con).sent == [], "backoff: not tried again at once"
    assert deliver_pending(con, now=later(2)).sent == report.retry_later


def test_slack_down_keeps_the_alert_pending_then_delivers_it_once(
    con, history, slack_standin
) -> None:
    [alert_id] = june_gap(con, history)
    slack_standin.fail_next(1, status=503)
    report = deliver_pending(con)
    assert (report.sent, report.retry_later, report.pending_left) == ([], [alert_id], 1)
    [(status, attempts, error)] = con.execute(
        "SELECT status, attempts, last_error FROM monitor.alerts"
    ).fetchall()
    assert (status, attempts) == ("pending", 1)
    assert "HTTP 503" in error and slack_standin.token not in error

    assert deliver_pending(con, now=later(2)).sent == [alert_id]
    assert deliver_pending(con, now=later(3)).sent == []
    assert len(slack_standin.posted()) == 1
    assert alert_rows(con) == [("opened", "sent", 2, "slack")]


def test_when_slack_is_down_the_rest_waits_in_order(con, slack_standin) -> None:
    ops_problem(con, "first", "run-1")
    ops_problem(con, "second", "run-2")
    slack_standin.fail_next(1, status=500)
    report = deliver_pending(con)
    assert len(report.retry_later) == 1 and report.sent == []
    assert len(slack_standin.calls("chat.postMessage")) == 1, "the second was not tried"
    deliver_pending(con, now=later(2))
    texts = [p["text"] for p in slack_standin.posted()]
    assert [t.split("\n\n")[2] for t in texts] == [
        "Details: first: unknown header",
        "Details: second: unknown header",
    ]
    assert all(p["channel"] == "#returnwatch-ops" for p in slack_standin.posted())


def test_a_refused_message_fails_alone_and_can_be_requeued(con, slack_standin) -> None:
    ops_problem(con, "first", "run-1")
    ops_problem(con, "second", "run-2")
    slack_standin.fail_next(1, error="channel_not_found")
    report = deliver_pending(con)
    assert len(report.failed) == 1 and len(report.sent) == 1
    assert [r[1] for r in alert_rows(con)] == ["failed", "sent"]
    assert requeue_failed(con) == 1
    assert deliver_pending(con).sent == report.failed
    assert len(slack_standin.posted()) == 2


def test_attempts_are_bounded_for_a_message_slack_keeps_refusing(con, slack_standin) -> None:
    ops_problem(con, "first", "run-1")
    slack_standin.fail_next(5, error="invalid_blocks")  # refused: not worth retrying
    assert len(deliver_pending(con).failed) == 1
    assert deliver_pending(con, now=later(60)).sent == []
    assert len(slack_standin.calls("chat.postMessage")) == 1


def test_an_outage_older_than_the_limit_gives_up(con, history, slack_standin) -> None:
    june_gap(con, history)
    slack_standin.fail_next(1, status=500)
    deliver_pending(con)
    report = deliver_pending(con, now=later(73 * 60))
    assert len(report.failed) == 1 and "not delivered within 72 hours" in report.errors[0]
    assert alert_rows(con) == [("opened", "failed", 1, None)]


def test_a_slow_slack_is_cut_off_by_the_timeout(
    con, history, slack_standin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("sources.yaml", "monitors.yaml"):
        shutil.copy(settings.config_dir() / name, tmp_path / name)
    text = (settings.config_dir() / "alerts.yaml").read_text()
    (tmp_path / "alerts.yaml").write_text(text.replace("timeout_seconds: 10", "timeout_seconds: 1"))
    monkeypatch.setenv("RETURNWATCH_CONFIG_DIR", str(tmp_path))
    june_gap(con, history)
    slack_standin.fail_next(1, status=200, delay=3)
    started = time.monotonic()
    report = deliver_pending(con)
    assert time.monotonic() - started < 2.9
    assert len(report.retry_later) == 1
    assert "timed out" in report.errors[0].lower()


def test_a_wrong_token_never_shows_in_errors(con, history, slack_standin, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-999-wrong-token-value")
    june_gap(con, history)
    report = deliver_pending(con)
    assert report.sent == [] and len(report.retry_later) == 1
    stored = con.execute("SELECT last_error FROM monitor.alerts").fetchone()[0]
    assert "invalid_auth" in stored
    assert "wrong-token" not in stored and "wrong-token" not in " ".join(report.errors)


def test_the_airflow_connection_wins_over_the_environment(
    con, history, slack_standin, monkeypatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-999-not-this-one")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_DEFAULT",
        json.dumps({"conn_type": "slack", "password": slack_standin.token}),
    )
    june_gap(con, history)
    assert len(deliver_pending(con).sent) == 1


def test_without_a_token_alerts_go_to_the_console(con, history, capsys) -> None:
    [alert_id] = june_gap(con, history)
    report = deliver_pending(con)
    assert (report.via, report.sent) == ("console", [alert_id])
    out = capsys.readouterr().out
    assert "HHS daily figures are late" in out and "Tuesday 10 June 2025" in out
    assert f"Source: HHS Unaccompanied Alien Children Program (daily): {LANDING}" in out
    assert alert_rows(con) == [("opened", "sent", 1, "console")]
    assert deliver_pending(con).sent == []


def test_the_standin_speaks_the_upload_and_update_calls(slack_standin) -> None:
    from slack_sdk import WebClient

    client = WebClient(token=slack_standin.token, base_url=slack_standin.base_url, timeout=5)
    assert client.auth_test()["team_id"] == "T0TEST"
    posted = client.chat_postMessage(channel="#returnwatch-alerts", text="hello")
    updated = client.chat_update(channel=posted["channel"], ts=posted["ts"], text="hello again")
    assert updated["ts"] == posted["ts"]
    upload = client.files_upload_v2(
        channel=posted["channel"],
        content=b"\x89PNG fake chart",
        filename="chart.png",
        title="Chart",
    )
    assert upload["file"]["size"] == len(b"\x89PNG fake chart")
    methods = [r.method for r in slack_standin.received]
    assert methods == [
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert "Authorization" not in slack_standin.calls("upload")[0].headers
    bad = WebClient(token="xoxb-000-other", base_url=slack_standin.base_url, timeout=5)
    with pytest.raises(Exception, match="invalid_auth"):
        bad.auth_test()
