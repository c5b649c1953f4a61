"""The demo driver's stand-ins for what production does differently (returnwatch_replay.demo)."""

from __future__ import annotations

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
