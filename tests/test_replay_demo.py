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
