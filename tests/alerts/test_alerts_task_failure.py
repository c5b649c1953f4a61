"""The Airflow failure callback: one ops alert, only when the task has no retry left."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.utils.state import TaskInstanceState

from returnwatch import warehouse
from returnwatch.alerts import on_task_failure, outbox
from returnwatch.alerts.delivery import is_final_failure
from tests.alerts.outbox_sql import outbox_execute


def context(*, try_number: int, max_tries: int = 2, state=None, error: Exception | None = None):
    ti = SimpleNamespace(
        dag_id="hhs_uc_daily",
        task_id="file.fetch_file",
        run_id="scheduled__2025-06-17T15:00:00+00:00",
        try_number=try_number,
        max_tries=max_tries,
        map_index=0,  # the one file hhs_uc_daily lists
        state=state,
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "exception": error,
        "task": SimpleNamespace(task_id="file.fetch_file", retries=max_tries),
    }


def alerts(con) -> list[tuple]:
    """The outbox's rows: a task failure goes there directly, never through the warehouse."""
    return outbox_execute("SELECT audience, event, status, text FROM alerts ORDER BY seq")


ERROR = RuntimeError(
    "healthdata.gov answered 503 for https://user:hunter2@healthdata.gov/x"
    "?token=abc123 with header Bearer xoxb-1234-secret\nsecond line"
)


def test_no_alert_while_retries_remain(con, slack_standin) -> None:
    on_task_failure(context(try_number=1, state=TaskInstanceState.UP_FOR_RETRY, error=ERROR))
    on_task_failure(context(try_number=2, error=ERROR))  # no state: try 2 of 3
    assert alerts(con) == []
    assert slack_standin.received == []


def test_final_failure_alerts_ops_once(con, slack_standin) -> None:
    final = context(try_number=3, state=TaskInstanceState.FAILED, error=ERROR)
    on_task_failure(final)
    on_task_failure(final)  # a callback run twice still gives one alert
    [(audience, event, status, text)] = alerts(con)
    assert (audience, event, status) == ("ops", "task_failed", "sent")
    [posted] = slack_standin.posted()
    assert posted["channel"] == "#returnwatch-ops"
    assert posted["blocks"][0]["text"]["text"] == "Task failed: hhs_uc_daily.file.fetch_file"
    assert (
        "Task file.fetch_file of DAG hhs_uc_daily failed on try 3 of 3 in run "
        "scheduled__2025-06-17T15:00:00+00:00, with no retry left."
    ) in text
    assert "RuntimeError: healthdata.gov answered 503" in text
    assert "second line" not in text
    for secret in ("hunter2", "abc123", "xoxb-1234-secret"):
        assert secret not in text and secret not in str(posted)


def test_a_task_failed_for_good_with_retries_left_still_alerts(con, slack_standin) -> None:
    # AirflowFailException ends a task at once: state FAILED on try 1.
    on_task_failure(context(try_number=1, state=TaskInstanceState.FAILED, error=ERROR))
    assert len(alerts(con)) == 1


def test_is_final_failure_without_state_uses_the_try_number() -> None:
    assert not is_final_failure(context(try_number=1, max_tries=2))
    assert is_final_failure(context(try_number=3, max_tries=2))
    assert is_final_failure(context(try_number=1, max_tries=0))


def test_a_locked_warehouse_does_not_delay_the_alert(
    con, slack_standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*args, **kwargs):
        raise warehouse.WarehouseLocked("warehouse is locked by another process")

    monkeypatch.setattr(warehouse, "connect", locked)
    on_task_failure(context(try_number=3, state=TaskInstanceState.FAILED, error=ERROR))
    assert len(slack_standin.posted()) == 1
    assert [row[:3] for row in alerts(con)] == [("ops", "task_failed", "sent")]


def test_an_unreachable_outbox_does_not_stop_the_alert(
    con, slack_standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(outbox, "open_outbox", unreachable)
    on_task_failure(context(try_number=3, state=TaskInstanceState.FAILED, error=ERROR))
    assert len(slack_standin.posted()) == 1  # sent directly
    monkeypatch.undo()
    assert alerts(con) == []  # not recorded: the outbox was unreachable


def test_without_a_token_the_failure_is_printed(con, capsys) -> None:
    on_task_failure(context(try_number=3, state=TaskInstanceState.FAILED, error=ERROR))
    out = capsys.readouterr().out
    assert "Task failed: hhs_uc_daily.file.fetch_file" in out and "hunter2" not in out
    assert [row[:3] for row in alerts(con)] == [("ops", "task_failed", "sent")]
