"""Timeouts on real DAGs through ``dag.test()``: a publisher that never answers and a warehouse
task stuck on a stalled subprocess fail within their ``execution_timeout``, leave no task
running (the pool slot is free) and send ops one alert each, through the project's failure
callback on a real failing task. The production timeouts themselves are checked in
test_dag_integrity.py; here they are shortened so the test takes seconds."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from returnwatch import airflow_env, settings

AT = dt.datetime(2025, 6, 17, 15, tzinfo=dt.UTC)
SHORT = dt.timedelta(seconds=3)


class StallingServer:
    """Accepts connections on 127.0.0.1 and never answers (a publisher that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stop.is_set():  # bounded by the test: stop is set in teardown
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.held.append(conn)

    def __enter__(self) -> StallingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture(scope="module")
def dags() -> dict:
    airflow_env.prepare_metadata_db()
    from returnwatch_replay.demo import load_dags

    return load_dags()


@pytest.fixture
def stalling() -> Iterator[StallingServer]:
    with StallingServer() as server:
        yield server


def states(run) -> dict[str, str]:
    return {
        ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()
    }


def shortened(dag, task_id: str) -> None:
    for task in dag.tasks:  # a failure must fail the test now, not after the retry delays
        task.retries = 0
    assert dag.task_dict[task_id].execution_timeout >= dt.timedelta(minutes=5)
    dag.task_dict[task_id].execution_timeout = SHORT


def test_a_fetch_that_never_answers_times_out_and_alerts_once(
    dags, data_dir, slack_standin, stalling, monkeypatch
) -> None:
    monkeypatch.setenv("RETURNWATCH_HHS_UC_DAILY_BASE_URL", stalling.url)
    dag = dags["hhs_uc_daily"]
    shortened(dag, "file.fetch_file")
    run = dag.test(logical_date=AT, run_after=AT)
    assert states(run) == {
        "discover_files": "success",
        "file.fetch_file": "failed",
        "file.parse_file": "upstream_failed",
        "file.validate_file": "upstream_failed",
        "file.load_file": "upstream_failed",
    }
    assert stalling.held, "the fetch did reach the stalling server"
    [post] = slack_standin.calls("chat.postMessage")
    assert post.payload["blocks"][0]["text"]["text"] == "Task failed: hhs_uc_daily.file.fetch_file"
    assert "Timeout" in post.payload["text"]
    assert_no_slot_held()


STALLED = "import sys; sys.stdin.read()"  # a child that waits forever on its input


def test_a_stalled_subprocess_in_a_warehouse_task_times_out_and_alerts_once(
    dags, data_dir, slack_standin, monkeypatch
) -> None:
    """As a dbt build that hangs: the monitor's warehouse task blocks on a child process."""
    import returnwatch.monitor as monitor_pkg

    children: list[subprocess.Popen] = []

    def hangs(**kwargs):
        child = subprocess.Popen([sys.executable, "-c", STALLED], stdin=subprocess.PIPE)
        children.append(child)
        child.wait()  # interrupted by the task's timeout

    monkeypatch.setattr(monitor_pkg, "run_monitors", hangs)
    dag = dags["monitor"]
    shortened(dag, "evaluate_monitors")
    try:
        run = dag.test(logical_date=AT, run_after=AT)
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert states(run)["evaluate_monitors"] == "failed"
    assert {s for t, s in states(run).items() if t != "evaluate_monitors"} == {"upstream_failed"}
    [post] = slack_standin.calls("chat.postMessage")
    assert post.payload["blocks"][0]["text"]["text"] == "Task failed: monitor.evaluate_monitors"
    assert "Timeout" in post.payload["text"]
    assert_no_slot_held()
    # The warehouse is free for the next writer.
    from returnwatch import warehouse

    warehouse.connect(wait_seconds=1).close()


def assert_no_slot_held() -> None:
    from airflow.models.pool import Pool

    from returnwatch.airflow_support import WAREHOUSE_POOL

    pool = Pool.get_pool(WAREHOUSE_POOL)
    assert pool is not None and pool.occupied_slots() == 0
    assert settings.warehouse_path().parent.is_dir()
