"""Slack never twice (issue 14, item 7), on the Slack stand-in: when the history lookup that
guards a re-post is refused, the alert is held as ``unknown`` and ops are told, never re-posted
blind; the token's scopes are checked at the start of each dispatcher run."""

from __future__ import annotations

import datetime as dt
import logging

from returnwatch.alerts import deliver_pending, requeue_failed
from returnwatch.alerts.dispatch import dispatch
from tests.alerts.outbox_sql import outbox_execute
from tests.alerts.test_alerts_digest import T0, ops_problem

MINUTE = dt.timedelta(minutes=1)


def crashed_after_slack_took_it(con, slack_standin) -> None:
    """One alert posted, then the process died before recording it (the ambiguous case)."""
    ops_problem(con, 0, "bad_file", severity="critical")
    assert len(deliver_pending(con, now=T0).sent) == 1
    outbox_execute(
        "UPDATE alerts SET status = 'pending', slack_ts = NULL, sent_at = NULL, last_error = NULL"
    )


def test_a_refused_history_lookup_holds_the_alert_as_unknown_and_tells_ops(
    con, slack_standin, caplog
) -> None:
    crashed_after_slack_took_it(con, slack_standin)
    slack_standin.fail_next(1, error="missing_scope", method="conversations.history")
    with caplog.at_level(logging.ERROR, logger="returnwatch.alerts.delivery"):
        report = deliver_pending(con, now=T0 + MINUTE)
    assert report.sent == [] and len(report.unknown) == 1
    assert len(slack_standin.calls("chat.postMessage")) == 1, "not re-posted blind"
    assert "held as unknown" in caplog.text
    status, error = con.execute(
        "SELECT status, last_error FROM monitor.alerts WHERE event = 'opened'"
    ).fetchone()
    assert status == "unknown" and "missing_scope" in error

    # Ops hear it once, with what to do.
    report = deliver_pending(con, now=T0 + 2 * MINUTE)
    deliver_pending(con, now=T0 + 3 * MINUTE)
    first, notice = slack_standin.calls("chat.postMessage")
    assert notice.payload["channel"] == "#returnwatch-ops"
    text = notice.payload["text"]
    assert text.startswith("An alert may or may not have reached Slack")
    assert "Look in the channel: if it is not there, run `returnwatch alerts requeue`" in text
    assert "channels:history" in text
    assert len(slack_standin.calls("chat.postMessage")) == 2

    # A person checked the channel: requeue sends it without another lookup.
    assert requeue_failed(con) == 1
    assert con.execute(
        "SELECT status, attempts FROM monitor.alerts WHERE event = 'opened'"
    ).fetchone() == ("pending", 0)


def test_slack_down_during_the_lookup_waits_and_never_posts(con, slack_standin) -> None:
    crashed_after_slack_took_it(con, slack_standin)
    slack_standin.fail_next(1, status=503, method="conversations.history")
    report = deliver_pending(con, now=T0 + MINUTE)
    assert report.sent == [] and report.unknown == [] and len(report.retry_later) == 1
    assert len(slack_standin.calls("chat.postMessage")) == 1
    # Slack back: the lookup finds the first post, nothing is posted again.
    report = deliver_pending(con, now=T0 + 10 * MINUTE)
    assert len(report.sent) == 1 and len(slack_standin.calls("chat.postMessage")) == 1


def test_missing_scopes_are_found_at_start_and_ops_told_once(con, slack_standin, caplog) -> None:
    slack_standin.state.scopes = ["chat:write", "files:write"]
    with caplog.at_level(logging.ERROR, logger="returnwatch.alerts.delivery"):
        report = dispatch(run_id="dispatch_alerts/a", now=T0, dag_facts=lambda d: None, con=con)
    assert report["missing_scopes"] == ["channels:history/groups:history"]
    assert "lacks the scope(s) channels:history/groups:history" in caplog.text
    assert slack_standin.calls("auth.test")
    [notice] = slack_standin.calls("chat.postMessage")
    assert notice.payload["text"].startswith("Slack token lacks scopes")
    dispatch(run_id="dispatch_alerts/b", now=T0 + 5 * MINUTE, dag_facts=lambda d: None, con=con)
    assert len(slack_standin.calls("chat.postMessage")) == 1, "told once"


def test_a_token_with_every_scope_raises_nothing(con, slack_standin) -> None:
    report = dispatch(run_id="dispatch_alerts/a", now=T0, dag_facts=lambda d: None, con=con)
    assert report["missing_scopes"] == []
    assert slack_standin.calls("chat.postMessage") == []
