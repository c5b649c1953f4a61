"""The demo driver's stand-ins for what production does differently (returnwatch_replay.demo)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from types import SimpleNamespace
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.dependencies import utils
from fastapi.testclient import TestClient

from returnwatch_replay import demo


def _app_with_an_overridden_dependency() -> FastAPI:
    """An API whose authentication is overridden, as Airflow's in-process execution API is."""
    app = FastAPI()

    def authenticate() -> str:
        return "checked a token"

    def allow() -> str:
        return "allowed"

    def per_task_instance() -> str:
        return "dag bag"

    @app.get("/")
    def root(who: str = Depends(authenticate), bag: str = Depends(per_task_instance)) -> str:
        return f"{who}, {bag}"

    app.dependency_overrides[authenticate] = allow
    app.dependency_overrides[per_task_instance] = lambda: "a new dag bag"
    return app


def _analyses_of(monkeypatch, *, kept: bool) -> list[str]:
    """Names of the dependencies FastAPI analysed while serving three requests."""
    analysed: list[str] = []
    real = utils.get_dependant

    def counted(**arguments):
        analysed.append(getattr(arguments["call"], "__name__", "?"))
        return real(**arguments)

    monkeypatch.setattr(utils, "get_dependant", counted)
    client = TestClient(_app_with_an_overridden_dependency())
    if kept:
        with demo.overridden_dependencies_analysed_once():
            answers = [client.get("/").json() for _ in range(3)]
    else:
        answers = [client.get("/").json() for _ in range(3)]
    assert answers == ["allowed, a new dag bag"] * 3
    return analysed


def test_an_overridden_dependency_is_analysed_once_not_per_request(monkeypatch) -> None:
    # Without the stand-in FastAPI analyses each override on every request ...
    assert _analyses_of(monkeypatch, kept=False).count("allow") == 3
    # ... with it, once; a lambda (Airflow's per-task DAG bag) is never kept.
    analysed = _analyses_of(monkeypatch, kept=True)
    assert analysed.count("allow") == 1
    assert analysed.count("<lambda>") == 3


def test_only_the_sleeps_of_the_given_loop_are_shortened(monkeypatch) -> None:
    import time

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # what the stand-in calls "really"

    def test_loop() -> None:
        time.sleep(1)

    def elsewhere() -> None:  # a lock's back-off, a retry
        time.sleep(1)

    with demo.loop_waits_briefly(test_loop.__code__):
        test_loop()
        elsewhere()
    test_loop()  # and only while the stand-in is on
    assert slept == [demo.TEST_LOOP_WAIT_SECONDS, 1, 1]


def test_the_loop_shortened_is_the_one_that_sleeps_in_dag_test() -> None:
    import inspect

    from airflow.sdk.definitions.dag import DAG

    # The stand-in's target: the 1 s waits of dag.test()'s loop for tasks not ready yet.
    source = inspect.getsource(inspect.unwrap(DAG.test))
    assert "No tasks to run" in source and "time.sleep(1)" in source


def test_the_metadata_db_flushes_at_checkpoints_only_while_the_demo_runs() -> None:
    from airflow import settings as airflow_settings

    from returnwatch import airflow_env

    airflow_env.prepare_metadata_db()

    def synchronous() -> int:  # SQLite: 2 = FULL (a flush per commit), 1 = NORMAL
        with airflow_settings.engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA synchronous").scalar()

    assert synchronous() == 2
    with demo.metadata_db_synced_at_checkpoints():
        assert synchronous() == 1
    assert synchronous() == 2


class _SourceDag:
    """A stand-in source DAG: its run says which process ran it; the first and the last of
    the day wait for each other (so the test fails unless two processes run at once)."""

    def __init__(self, dag_id: str, minute: int, meet: Any = None, fails: bool = False) -> None:
        self.dag_id, self.meet, self.fails = dag_id, meet, fails
        self.timetable = SimpleNamespace(expression=f"{minute} 13 * * *")

    def test(self, *, logical_date: Any, run_after: Any) -> Any:
        if self.meet is not None:
            self.meet.wait(timeout=60)
        if self.fails:
            raise RuntimeError(f"{self.dag_id} broke")
        print(f"{self.dag_id} ran in {os.getpid()}")
        return SimpleNamespace(state="success", run_id=None)


def test_a_days_source_runs_are_shared_by_two_processes_each_run_once(data_dir) -> None:
    import multiprocessing

    meet = multiprocessing.get_context("fork").Barrier(2)
    dags = {
        f"source_{n}": _SourceDag(f"source_{n}", n, meet if n in (0, 4) else None) for n in range(5)
    }
    scheduler = demo.SchedulerStandIn(dags, mirror=None, report=demo.DemoReport())
    with demo.SourceLane.forked(dags) as lane, contextlib.redirect_stdout(io.StringIO()) as out:
        scheduler.lane = lane
        results = scheduler._run_sources(sorted(dags), dt.date(2025, 6, 7))
    assert [r.dag_id for r in results] == sorted(dags)  # each once, in cron order
    assert {r.state for r in results} == {"success"}
    ran_in = dict(line.split(" ran in ") for line in out.getvalue().splitlines())
    assert sorted(ran_in) == sorted(dags)
    assert ran_in["source_0"] == str(os.getpid()) and ran_in["source_4"] != str(os.getpid())
    assert scheduler.report.dag_runs == 5 and not scheduler.report.failed_runs


def test_a_run_that_breaks_in_the_lane_is_a_failed_run_with_its_traceback(data_dir) -> None:
    import multiprocessing

    meet = multiprocessing.get_context("fork").Barrier(2)  # source_1 then runs in the lane
    dags = {
        "source_0": _SourceDag("source_0", 0, meet),
        "source_1": _SourceDag("source_1", 1, meet, fails=True),
    }
    scheduler = demo.SchedulerStandIn(dags, mirror=None, report=demo.DemoReport())
    with demo.SourceLane.forked(dags) as lane, contextlib.redirect_stdout(io.StringIO()) as out:
        scheduler.lane = lane
        results = scheduler._run_sources(sorted(dags), dt.date(2025, 6, 7))
    assert [(r.dag_id, r.state) for r in results] == [
        ("source_0", "success"),
        ("source_1", "failed"),
    ]
    assert scheduler.report.failed_runs == ["source_1@2025-06-07 13:01"]
    assert "RuntimeError: source_1 broke" in out.getvalue()
