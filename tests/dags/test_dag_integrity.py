"""Every DAG imports cleanly, fast, without I/O, and carries what ops need in the UI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from returnwatch import airflow_env, config, settings

EXPECTED_DAGS = {
    "hhs_uc_daily",
    "hhs_uc_monthly",
    "cbp_encounters_monthly",
    "dispatch_alerts",
    "segob_bulletin_monthly",
    "transform",
    "monitor",
}
# Modules a DAG file must not import at parse time: Airflow re-parses DAG files every few
# seconds, so these load inside tasks only.
HEAVY_MODULES = [
    "great_expectations",
    "matplotlib",
    "slack_sdk",
    "returnwatch.quality",
    "returnwatch.warehouse",
    "returnwatch.fetch",
    "dbt.cli.main",
]
PARSE_BUDGET_SECONDS = 2.0
# The steps of a source DAG that read or write the warehouse (DuckDB has one writer).
WAREHOUSE_STEPS = ("file.parse_file", "file.validate_file", "file.load_file")

PROBE = textwrap.dedent("""
    import json, socket, sys, time
    from returnwatch import airflow_env
    airflow_env.configure()
    from airflow.dag_processing.dagbag import DagBag

    def refuse(*args, **kwargs):
        raise RuntimeError("a DAG file opened a network connection at import time")
    socket.socket.connect = refuse
    socket.create_connection = refuse

    before = set(sys.modules)
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds = time.perf_counter() - started
    dags = {}
    for dag_id, dag in bag.dags.items():
        tasks = {t.task_id: {"owner": t.owner, "retries": t.retries, "pool": t.pool,
                             "on_failure_callback": bool(t.on_failure_callback),
                             "execution_timeout": t.execution_timeout.total_seconds()
                             if t.execution_timeout else None} for t in dag.tasks}
        dags[dag_id] = {"tags": sorted(dag.tags), "doc_md": dag.doc_md or "", "tasks": tasks,
                        "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
                        "dagrun_timeout": dag.dagrun_timeout.total_seconds()
                        if dag.dagrun_timeout else None}
    print(json.dumps({"seconds": seconds, "errors": {k: str(v) for k, v in bag.import_errors.items()},
                      "dags": dags, "imported": sorted(set(sys.modules) - before)}))
""")


@pytest.fixture(scope="module")
def parsed() -> dict:
    """Parse the DAG folder in a fresh interpreter, as the dag-processor does."""
    env = {**airflow_env.defaults(), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(settings.PROJECT_DIR / "dags")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=settings.PROJECT_DIR,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_import_errors(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) == EXPECTED_DAGS


def test_dagbag_parse_time(parsed: dict, record_property) -> None:
    record_property("dagbag_parse_seconds", parsed["seconds"])
    print(f"\nDagBag parse time: {parsed['seconds']:.2f} s for {len(parsed['dags'])} DAGs")
    assert parsed["seconds"] < PARSE_BUDGET_SECONDS * 5, "far beyond the 2 s budget; see make bench"


def test_no_heavy_imports_at_parse_time(parsed: dict) -> None:
    heavy = [m for m in HEAVY_MODULES if m in parsed["imported"]]
    assert heavy == [], f"DAG files import {heavy} at parse time"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_ops_metadata(parsed: dict, dag_id: str) -> None:
    dag = parsed["dags"][dag_id]
    assert dag["tags"], "tags let ops filter the DAG list"
    assert len(dag["doc_md"]) > 200 and "fail" in dag["doc_md"].lower(), (
        "doc_md says what to do when it fails"
    )
    assert dag["max_active_runs"] == 1 and dag["catchup"] is False
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "returnwatch", task_id
        assert task["on_failure_callback"], (
            f"{dag_id}.{task_id} must alert ops on its final failure"
        )


@pytest.mark.parametrize("source", sorted(config.sources()))
def test_retries(parsed: dict, source: str) -> None:
    tasks = parsed["dags"][source]["tasks"]
    for step in ("discover_files", "file.fetch_file"):
        assert tasks[step]["retries"] >= 2, "a flaky publisher site deserves retries"
    # A file that does not parse fails the same way every time: no retry loop.
    assert tasks["file.parse_file"]["retries"] == 0
    assert tasks["file.validate_file"]["retries"] == 0


def test_warehouse_writers_share_the_one_slot_pool(parsed: dict) -> None:
    writers = {
        *((source, step) for source in config.sources() for step in WAREHOUSE_STEPS),
        ("monitor", "evaluate_monitors"),
        ("monitor", "send_alerts"),
        ("monitor", "refresh_snapshot"),
    }
    for dag_id, task_id in writers:
        assert parsed["dags"][dag_id]["tasks"][task_id]["pool"] == "warehouse", (dag_id, task_id)


def test_every_source_dag_has_the_factorys_shape(parsed: dict) -> None:
    """The DAGs tagged ``source`` are exactly the sources of config/sources.yaml, each with the
    task ids of ``source_dags.source_dag`` (tests/dags/test_source_dags.py checks each DAG file
    calls it)."""
    from returnwatch.source_dags import SOURCE_TAG, TASK_IDS

    tagged = {dag_id for dag_id, dag in parsed["dags"].items() if SOURCE_TAG in dag["tags"]}
    assert tagged == set(config.sources())
    for dag_id in tagged:
        assert set(parsed["dags"][dag_id]["tasks"]) == TASK_IDS, dag_id


def test_the_dispatcher_runs_every_5_minutes_outside_the_warehouse_pool(parsed: dict) -> None:
    """Alerts must not queue behind loads and builds in the one-slot pool (issue 19)."""
    from returnwatch.airflow_support import WAREHOUSE_POOL

    dag = parsed["dags"]["dispatch_alerts"]
    assert dag["max_active_runs"] == 1 and dag["catchup"] is False
    assert {t["pool"] for t in dag["tasks"].values()} == {"default_pool"}
    assert WAREHOUSE_POOL not in {t["pool"] for t in dag["tasks"].values()}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_every_task_and_run_has_a_timeout(parsed: dict, dag_id: str) -> None:
    """A hung task must fail, free its pool slot and alert, not hold everything (issue 19);
    the figures and how they were measured: returnwatch/airflow_support.py."""
    dag = parsed["dags"][dag_id]
    assert dag["dagrun_timeout"], f"{dag_id} has no dagrun_timeout"
    untimed = [t for t, v in dag["tasks"].items() if not v["execution_timeout"]]
    assert untimed == [], f"{dag_id}: tasks without execution_timeout"
    longest = max(v["execution_timeout"] for v in dag["tasks"].values())
    assert longest <= dag["dagrun_timeout"], "a task may not outlive its run"
