"""Alert sending under faults: the worker delivering an alert is killed (SIGKILL) just before
or just after Slack accepted the message, before the outbox recorded it. The next delivery
must leave Slack with exactly one message per alert and the outbox as a clean run leaves it.

Slack is the loopback stand-in (tests/support/slack_standin.py); the alert is an ops
"bad file" incident as ``ingest.report_bad_file`` opens it.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from returnwatch import warehouse
from returnwatch.alerts import deliver_pending
from returnwatch.alerts import outbox as outbox_store
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.incidents import process_findings

RUN_AT = dt.datetime(2025, 6, 17, 16, tzinfo=dt.UTC)
WORKER_TIMEOUT_SECONDS = 120


def open_bad_file_incident(run_id: str) -> None:
    finding = Finding(
        monitor="ingest",
        kind="layout_changed",
        source="hhs_uc_daily",
        series="hhs_uc_daily",
        severity="warning",
        message="hhs_uc_daily: the export's header lost 'Children in HHS Care'",
        run_at=RUN_AT,
    )
    with warehouse.session() as con:
        process_findings(
            con, [finding], run_at=RUN_AT, run_id=run_id, evaluated=[("ingest", "hhs_uc_daily")]
        )


def outbox() -> list[tuple[Any, ...]]:
    """The outbox's rows (data/outbox.sqlite3), checked against the warehouse's copy."""
    columns = "alert_id, event, audience, status, delivered_via, slack_ts IS NOT NULL"
    with outbox_store.session() as box:
        rows = [tuple(r) for r in box.execute(f"SELECT {columns} FROM alerts ORDER BY seq")]
        threads = box.execute("SELECT count(*) FROM threads").fetchone()[0]
    with warehouse.session() as con:
        copy = con.execute(f"SELECT {columns} FROM monitor.alerts ORDER BY seq").fetchall()
    assert [tuple(r) for r in copy] == rows
    return [*rows, ("threads", threads)]


def _deliver_killed(kill_at: str) -> None:
    from returnwatch.alerts import slack

    real_post = slack.SlackPoster.post

    def post(self: Any, **kwargs: Any) -> Any:
        if kill_at == "before_post":
            os.kill(os.getpid(), signal.SIGKILL)
        posted = real_post(self, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # Slack has it; the outbox does not know yet
        return posted

    slack.SlackPoster.post = post
    deliver_pending()


def run_killed(kill_at: str) -> None:
    worker = multiprocessing.get_context("fork").Process(target=_deliver_killed, args=(kill_at,))
    worker.start()
    worker.join(WORKER_TIMEOUT_SECONDS)
    if worker.is_alive():
        worker.kill()
        worker.join(10)
        pytest.fail(f"delivery still running after {WORKER_TIMEOUT_SECONDS} s")
    assert worker.exitcode == -signal.SIGKILL


@pytest.mark.parametrize("kill_at", ["before_post", "after_post"])
def test_a_delivery_killed_around_the_post_sends_once_and_ends_as_a_clean_run(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack_standin, kill_at: str
) -> None:
    open_bad_file_incident("ingest/1")
    run_killed(kill_at)
    posts_after_kill = len(slack_standin.calls("chat.postMessage"))
    assert posts_after_kill == (1 if kill_at == "after_post" else 0)
    deliver_pending()
    deliver_pending()  # and a later run has nothing left to send
    assert len(slack_standin.calls("chat.postMessage")) == 1
    crashed = outbox()

    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(tmp_path / "clean"))
    open_bad_file_incident("ingest/1")
    deliver_pending()
    assert len(slack_standin.calls("chat.postMessage")) == 2  # the clean run's one post
    assert crashed == outbox()
    assert [row[3] for row in crashed[:-1]] == ["sent"]
