"""No swallowed failure on the alert path: a failure to compose or to send an alert is a logged
error and an ops alert. The failure callback on a real failing task (``dag.test()`` of a
source DAG whose fetch never answers) is in tests/dags/test_timeouts.py."""

from __future__ import annotations

import datetime as dt
import logging

from returnwatch import warehouse
from returnwatch.alerts import compose, delivery
from returnwatch.alerts.dispatch import dispatch
from tests.alerts.test_alerts_digest import T0, ops_problem


def test_an_alert_that_cannot_be_composed_goes_out_and_ops_are_told(
    con, slack_standin, monkeypatch, caplog
) -> None:
    def broken(con, box, row):
        raise KeyError("details")

    monkeypatch.setattr(compose, "_compose_incident", broken)
    ops_problem(con, 0, "bad_file", severity="critical")
    with caplog.at_level(logging.ERROR, logger="returnwatch.alerts.compose"):
        report = delivery.deliver_pending(con, now=T0)
    # The alert still goes out, as enqueued, and ops hear about it in the same run.
    assert report.sent[0].endswith(":opened") and len(report.sent) == 2
    assert "could not be composed" in caplog.text and "KeyError" in caplog.text
    assert delivery.deliver_pending(con, now=T0 + dt.timedelta(minutes=5)).sent == []
    original, notice = slack_standin.calls("chat.postMessage")
    assert notice.payload["text"].startswith("An alert could not be composed")
    assert "KeyError: 'details'" in notice.payload["text"]


def test_a_callback_that_cannot_reach_outbox_or_slack_spools_for_the_dispatcher(
    data_dir, slack_standin, monkeypatch, caplog
) -> None:
    from types import SimpleNamespace

    from airflow.utils.state import TaskInstanceState

    def unavailable(context):
        raise OSError("No space left on device")

    working = delivery._alert_task_failure
    monkeypatch.setattr(delivery, "_alert_task_failure", unavailable)
    ti = SimpleNamespace(
        dag_id="transform",
        task_id="publish_snapshot",
        run_id="manual__1",
        try_number=3,
        max_tries=2,
        map_index=-1,
        state=TaskInstanceState.FAILED,
    )
    with caplog.at_level(logging.ERROR, logger="returnwatch.alerts.delivery"):
        delivery.on_task_failure({"ti": ti, "exception": RuntimeError("disk full")})
    assert "could not alert ops about the failed task (OSError" in caplog.text
    assert len(list(delivery.spool_dir().glob("*.json"))) == 1
    assert slack_standin.calls("chat.postMessage") == []

    monkeypatch.setattr(delivery, "_alert_task_failure", working)
    with warehouse.session() as con:
        report = dispatch(run_id="dispatch_alerts/x", now=T0, dag_facts=lambda d: None, con=con)
    assert report["spooled"] == ["task_failed:transform:manual__1:publish_snapshot:3"]
    [post] = slack_standin.calls("chat.postMessage")
    text = post.payload["text"]
    assert text.startswith("Task failed: transform.publish_snapshot")
    assert "RuntimeError: disk full" in text and "No space left on device" in text
    assert list(delivery.spool_dir().glob("*.json")) == []
