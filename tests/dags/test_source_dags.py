"""Every source DAG comes from ``returnwatch.source_dags.source_dag``: one DAG file per source
of config/sources.yaml, each a declaration (constants and one call of the factory), and the
DAGs it builds keep what ops rely on: the steps' pools and retries, the Asset emitted by the
load only, the single-file source listing its one configured file without a request."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from returnwatch import config, settings

DAGS_DIR = settings.PROJECT_DIR / "dags"


def factory_calls(tree: ast.Module) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "source_dag"
    ]


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", sorted(config.sources()))
def test_each_source_dag_file_is_a_declaration_calling_the_factory(source: str) -> None:
    path = DAGS_DIR / f"{source}.py"
    assert path.exists(), f"config/sources.yaml has {source}; dags/{source}.py is missing"
    text = path.read_text(encoding="utf-8")
    assert "from returnwatch.source_dags import source_dag" in text
    tree = parsed(path)
    [call] = factory_calls(tree)
    assert {k.arg for k in call.keywords} == {"source", "cron", "tags", "doc_md", "outlet"}
    # Nothing but a docstring, constants and `dag = source_dag(...)`: no task, no DAG by hand.
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # the module docstring
        assert isinstance(statement, ast.Assign), ast.unparse(statement)[:80]
        [target] = statement.targets
        assert isinstance(target, ast.Name), ast.unparse(statement)[:80]
        if target.id == "dag":
            assert statement.value is call
        else:
            assert target.id.isupper() and isinstance(statement.value, ast.Constant), target.id


def test_no_other_dag_file_calls_the_factory() -> None:
    calling = {p.stem for p in DAGS_DIR.glob("*.py") if factory_calls(parsed(p))}
    assert calling == set(config.sources())


@pytest.fixture(scope="module")
def dags() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    return bag.dags


@pytest.mark.parametrize("source", sorted(config.sources()))
def test_the_factorys_dag_keeps_what_ops_rely_on(dags: dict, source: str) -> None:
    from returnwatch import assets
    from returnwatch.airflow_support import DAGRUN_TIMEOUTS, TASK_TIMEOUT, WAREHOUSE_POOL
    from returnwatch.source_dags import SOURCE_TAG, TASK_IDS

    dag = dags[source]
    assert SOURCE_TAG in dag.tags and set(dag.task_dict) == TASK_IDS
    assert Path(dag.fileloc) == DAGS_DIR / f"{source}.py", "the UI shows the DAG file's code"
    assert dag.dagrun_timeout == DAGRUN_TIMEOUTS[source]
    assert (dag.max_active_runs, dag.catchup) == (1, False)
    tasks = dag.task_dict
    assert tasks["file.fetch_file"].retries >= 2 and tasks["file.fetch_file"].pool != WAREHOUSE_POOL
    for step in ("file.parse_file", "file.validate_file"):
        assert (tasks[step].pool, tasks[step].retries) == (WAREHOUSE_POOL, 0), step
    assert tasks["file.load_file"].pool == WAREHOUSE_POOL
    assert all(t.execution_timeout == TASK_TIMEOUT for t in tasks.values())
    # Only a load emits the source's Asset (and a skipped load emits nothing).
    emitting = {t.task_id: [o.name for o in t.outlets] for t in tasks.values() if t.outlets}
    assert list(emitting) == ["file.load_file"]
    [name] = emitting["file.load_file"]
    assert name in {a.name for a in assets.RAW_ASSETS}


def test_each_source_emits_its_own_raw_asset(dags: dict) -> None:
    from returnwatch import assets

    emitted = {
        source: tuple(o.name for o in dags[source].task_dict["file.load_file"].outlets)
        for source in config.sources()
    }
    assert sorted(name for (name,) in emitted.values()) == sorted(a.name for a in assets.RAW_ASSETS)


def test_a_source_without_discovery_lists_its_configured_file_without_a_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HHS's daily export goes through the same tasks as a one-file list; the address is the
    one ``ingest.fetch`` (and the CLI) asks for, so its conditional GET carries over."""
    from returnwatch import fetch, ingest

    def no_request(*args: object, **kwargs: object) -> None:
        raise AssertionError("listing a fixed-address source made a request")

    monkeypatch.setattr(fetch, "page_getter", no_request)
    monkeypatch.setattr(fetch, "fetch", no_request)
    [link] = ingest.discover("hhs_uc_daily", run_at=dt.datetime(2025, 6, 17, 15, tzinfo=dt.UTC))
    cfg = config.source("hhs_uc_daily")
    assert link == ingest.configured_file("hhs_uc_daily")
    assert link["url"] == f"{cfg.url}?accessType=DOWNLOAD" and link["kind"] == "export_csv"
    assert link["source"] == "hhs_uc_daily" and link["period"] is None
