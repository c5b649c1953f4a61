"""Integration test of the production stack: Debian's PostgreSQL and Redis on the loopback,
Airflow with the CeleryExecutor and one worker, docker-compose.yaml's settings, and the whole
pipeline (four sources, ``transform``, ``monitor``) on the replay mirror.

How the stack is started and the pipeline driven (and why each DAG runs exactly once) is in
``tests/deploy/conftest.py``; starting and stopping the processes is
``tests/support/production_stack.py``. The mirror serves the sites as of today, i.e. every file
it holds (34 files of the monthly sources plus the HHS export, up to December 2025).

What is checked, each against something the pipeline did not produce itself:

- every DAG ran once and succeeded; ``transform`` was started by the Asset event of a source;
- every task ran on the Celery worker (its Celery task id is in Celery's result table);
- the one-slot ``warehouse`` pool held: no two task instances of the pool ran at the same time;
- the warehouse holds exactly the files the mirror serves, with every row the source's parser
  reads from those bytes, and the real HHS file's days (as the e2e tests count them);
- ``transform`` published the analysts' snapshot with the marts; ``monitor`` judged every source.
- the latency benchmark: the files the mirror published at a known instant went publish ->
  archive -> marts -> Slack (stand-in) in order; p50/max per stage are printed and left for
  ``make bench`` (tests/support/pipeline_latency.py), where the target is judged.

Skipped only when PostgreSQL or Redis is not installed (``make system-deps``). Takes about
5 minutes on 2 cores (the stack starts in ~30 s, the pipeline takes ~4.5 min); the time and the
stack's peak memory are printed at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import httpx
import pytest

from returnwatch import settings
from returnwatch.airflow_support import WAREHOUSE_POOL
from returnwatch.sources import hhs_uc_daily as hhs
from tests.support import pipeline_latency
from tests.support.production_stack import (
    ALL_DAGS,
    LOOPBACK,
    MONTHLY_SOURCES,
    SOURCE_DAGS,
    PipelineReport,
    ProductionStack,
    compose_airflow_environment,
    read_compose,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REAL_HHS_CSV = settings.replay_data_dir() / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv"


def query(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Read a DuckDB file read-only (the pipeline has ended and every DAG is paused)."""
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        return con.execute(sql, params or []).fetchall()


def metadata(stack: ProductionStack, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Read Airflow's metadata DB (PostgreSQL) directly."""
    with contextlib.closing(stack.metadata_db()) as con, con.cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchall()


def pipeline_runs(report: PipelineReport) -> list[tuple[str, str]]:
    return [(run.dag_id, run.run_id) for run in report.runs.values()]


def test_the_stack_runs_the_compose_files_settings(tmp_path: Path) -> None:
    """Every Airflow setting of docker-compose.yaml reaches the stack, pointed at the loopback
    (checked without starting anything, so it also runs where PostgreSQL is missing)."""
    stack = ProductionStack(tmp_path)
    shared = compose_airflow_environment(read_compose())
    assert set(shared) <= set(stack.env)
    for key in shared:
        value = stack.env[key]
        assert "${" not in value, f"{key}: {value!r} kept a compose variable"
        assert not value.startswith("/opt/"), f"{key}: {value!r} is a container path"
        if "://" in value:
            assert urlsplit(value).hostname == LOOPBACK, (
                f"{key} points at {urlsplit(value).hostname}"
            )
    assert stack.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert stack.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert stack.data_dir == tmp_path / "data"
    assert stack.passwords_file.is_relative_to(stack.airflow_home)


# Task instances of the pipeline's runs that were executed (skipped ones never reach a worker).
EXECUTED_TIS = """
    SELECT ti.dag_id, ti.task_id, ti.map_index, ti.try_number, ti.state, ti.pool,
           ti.start_date, ti.end_date, ti.external_executor_id, ti.hostname
    FROM task_instance ti
    WHERE (ti.dag_id, ti.run_id) IN %s AND ti.start_date IS NOT NULL AND ti.end_date IS NOT NULL
      AND ti.state NOT IN ('skipped', 'upstream_failed', 'removed')
      -- The scheduler marks an EmptyOperator done itself, without sending it to an executor.
      AND ti.operator <> 'EmptyOperator'
"""


def test_every_dag_ran_once_and_succeeded(
    production_stack: ProductionStack, pipeline_ran: PipelineReport
) -> None:
    assert set(pipeline_ran.runs) == set(ALL_DAGS), pipeline_ran.summary()
    failed = [run for run in pipeline_ran.runs.values() if not run.succeeded]
    details = [
        f"{run.dag_id} {run.run_id}: failed tasks "
        + ", ".join(
            f"{task}[{index}]"
            for task, index in metadata(
                production_stack,
                "SELECT task_id, map_index FROM task_instance "
                "WHERE dag_id = %s AND run_id = %s AND state = 'failed'",
                [run.dag_id, run.run_id],
            )
        )
        for run in failed
    ]
    assert not failed, (
        f"{details}; task logs under {production_stack.airflow_home / 'logs'}"
        f"\n{pipeline_ran.summary()}"
    )
    # The sources and the monitor were triggered for their cron slot; transform by an Asset.
    for dag_id in (*SOURCE_DAGS, "monitor"):
        assert pipeline_ran.runs[dag_id].run_type == "manual"
    assert pipeline_ran.runs["transform"].run_type == "asset_triggered"
    # ... and the scheduler added no run for a slot the test had taken. (A cron slot that came
    # due after the stack started, if the test crossed 15:00 UTC say, rightly has its own run.)
    other_runs = metadata(
        production_stack,
        """
        SELECT dag_id, run_id, run_type, logical_date FROM dag_run
        WHERE (dag_id, run_id) NOT IN %s
          AND NOT (run_type = 'scheduled' AND logical_date > %s)""",
        [tuple(pipeline_runs(pipeline_ran)), production_stack.started_at],
    )
    assert other_runs == [], f"runs the test did not start: {other_runs}"


def test_every_task_ran_on_the_celery_worker(
    production_stack: ProductionStack, pipeline_ran: PipelineReport
) -> None:
    executed = metadata(production_stack, EXECUTED_TIS, [tuple(pipeline_runs(pipeline_ran))])
    # 34 files x 4 steps, the HHS export's 4 steps, dbt's tasks, the snapshot, the monitors.
    assert len(executed) > 150, f"only {len(executed)} task instances ran"
    # CeleryExecutor records each task's Celery id on the task instance; the worker stored the
    # outcome of that Celery task in the result backend (PostgreSQL, table celery_taskmeta).
    celery_status = dict(metadata(production_stack, "SELECT task_id, status FROM celery_taskmeta"))
    not_on_celery = [
        (dag, task, index)
        for dag, task, index, *_, celery_id, _host in executed
        if celery_status.get(celery_id) != "SUCCESS"
    ]
    assert not_on_celery == [], f"task instances with no finished Celery task: {not_on_celery[:10]}"
    worker_log = production_stack.component("celery-worker").tail(100_000)
    assert worker_log.count("Executing workload in Celery") >= len(executed)
    # The worker preloads Great Expectations (returnwatch.worker_preload) with its loggers quiet.
    assert "Skipping registering function" not in worker_log, (
        "GX's import chatter in the worker log"
    )


def test_the_warehouse_pool_let_one_writer_run_at_a_time(
    production_stack: ProductionStack, pipeline_ran: PipelineReport
) -> None:
    [(slots,)] = metadata(
        production_stack, "SELECT slots FROM slot_pool WHERE pool = %s", [WAREHOUSE_POOL]
    )
    assert slots == 1
    runs = tuple(pipeline_runs(pipeline_ran))
    # Every try of every task in the pool: the current try, and earlier tries (retries) from
    # the history table. A sensor's reschedules between tries hold no slot and are not here.
    # EmptyOperators (Cosmos's dbt_producer_watcher_done) are left out: the scheduler marks
    # them done itself, with no worker, no process and no pool slot (seen overlapping a dbt
    # watcher's last poke in one CI run).
    intervals = metadata(
        production_stack,
        """
        SELECT dag_id || '.' || task_id || '[' || map_index || '] try ' || try_number,
               start_date, end_date
        FROM task_instance
        WHERE pool = %(pool)s AND (dag_id, run_id) IN %(runs)s
          AND start_date IS NOT NULL AND end_date IS NOT NULL AND state <> 'skipped'
          AND operator <> 'EmptyOperator'
        UNION ALL
        SELECT dag_id || '.' || task_id || '[' || map_index || '] try ' || try_number,
               start_date, end_date
        FROM task_instance_history
        WHERE pool = %(pool)s AND (dag_id, run_id) IN %(runs)s
          AND start_date IS NOT NULL AND end_date IS NOT NULL
          AND operator <> 'EmptyOperator'
        ORDER BY 2, 3
    """,
        {"pool": WAREHOUSE_POOL, "runs": runs},
    )
    writers = Counter(name.split(".", 1)[0] for name, _, _ in intervals)
    assert set(writers) == set(ALL_DAGS), f"pool tasks per DAG: {writers}"
    assert overlapping(intervals) == [], "warehouse tasks ran at the same time"

    # The check can fail: the worker did run two tasks at once (a fetch beside a load), so
    # without the pool two writers would have met.
    everything = [
        (f"{dag}.{task}[{index}]", start, end)
        for dag, task, index, _try, _state, _pool, start, end, *_ in metadata(
            production_stack, EXECUTED_TIS, [runs]
        )
    ]
    assert overlapping(sorted(everything, key=lambda t: (t[1], t[2]))), (
        "no two tasks ever ran at once: the pool was never put to the test"
    )


def overlapping(intervals: list[tuple[str, dt.datetime, dt.datetime]]) -> list[tuple[str, str]]:
    """Pairs of (name, start, end) intervals, sorted by start, where one starts before the
    previous one ended."""
    pairs, latest = [], None
    for name, start, end in intervals:
        if latest is not None and start < latest[2]:
            pairs.append((latest[0], name))
        if latest is None or end > latest[2]:
            latest = (name, start, end)
    return pairs


def served_files(mirror_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """What the mirror serves now, read in this process with the sources' own link discovery
    and parsers: sha256 -> {source, raw table, rows}."""
    from returnwatch import config, ingest, sources
    from returnwatch.fetch import page_getter

    for name, value in mirror_env.items():
        monkeypatch.setenv(name, value)
    now = dt.datetime.now(dt.UTC)
    served: dict[str, dict] = {}
    hhs_cfg = config.source("hhs_uc_daily")
    links = [
        {
            "source": "hhs_uc_daily",
            "kind": None,
            "url": str(httpx.URL(hhs_cfg.url).copy_merge_params(hhs_cfg.params)),
        }
    ]
    for source in MONTHLY_SOURCES:
        cfg = config.source(source)
        links += [
            {"source": source, **link.as_dict()}
            for link in sources.module(source).discover(
                page_getter(cfg), landing_url=cfg.url, run_at=now, options=cfg.options
            )
        ]
    for link in links:
        content = httpx.get(link["url"], timeout=60).raise_for_status().content
        sha256 = hashlib.sha256(content).hexdigest()
        kind = ingest.file_kind(link["source"], link["kind"])
        served[sha256] = {
            "source": link["source"],
            "table": f"raw.{kind.raw_table}",
            "rows": len(kind.parse(content, file=sha256).frame()),
        }
    return served


def test_the_warehouse_holds_every_file_the_mirror_serves(
    production_stack: ProductionStack,
    pipeline_ran: PipelineReport,
    replay_mirror,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouse = production_stack.data_dir / "warehouse.duckdb"
    served = served_files(replay_mirror.env(), monkeypatch)
    loaded = {
        sha: (source, table, rows)
        for sha, source, table, rows in query(
            warehouse, "SELECT sha256, source, raw_table, rows_loaded FROM raw.files"
        )
    }
    assert set(loaded) == set(served), (
        f"files served but not loaded: {sorted(set(served) - set(loaded))}; "
        f"loaded but not served: {sorted(set(loaded) - set(served))}"
    )
    assert Counter(s for s, _, _ in loaded.values()) == Counter(
        f["source"] for f in served.values()
    )
    for sha, (source, table, rows) in loaded.items():
        assert (table, rows) == (served[sha]["table"], served[sha]["rows"]), f"{source} {sha}"
    expected_rows: Counter[str] = Counter()
    for file in served.values():
        expected_rows[file["table"]] += file["rows"]
    for table, rows in expected_rows.items():
        assert query(warehouse, f"SELECT count(*) FROM {table}") == [(rows,)], table

    # The HHS export holds every day of the real file (the mirror has published them all by
    # now), counted as the e2e tests count them: one row per report date.
    real_days = {r["report_date"] for r in hhs.parse(REAL_HHS_CSV.read_bytes(), file="real").rows}
    assert query(
        warehouse,
        "SELECT count(*), count(DISTINCT report_date), min(report_date), "
        "max(report_date) FROM raw.hhs_uc_daily",
    ) == [(len(real_days), len(real_days), min(real_days), max(real_days))]
    # CBP's two vintages are both kept; the older file's January 2021 figure for Border Patrol
    # unaccompanied children is the one tests/e2e/test_monthly_sources.py checks (5,688).
    assert query(
        warehouse,
        """
        SELECT sum(encounters) FROM raw.cbp_encounters_aor a JOIN raw.files f
          ON f.sha256 = a.source_file
        WHERE month = '2021-01-01' AND component = 'U.S. Border Patrol'
          AND demographic = 'UC / Single Minors' AND f.vintage = '2024-10-15'""",
    ) == [(5688,)]


def test_transform_published_the_snapshot_and_monitor_judged_every_source(
    production_stack: ProductionStack, pipeline_ran: PipelineReport
) -> None:
    data = production_stack.data_dir
    snapshot = data / "snapshot" / "warehouse.duckdb"
    assert snapshot.is_file(), "transform publishes the analysts' snapshot"
    marts = {
        name
        for (name,) in query(
            snapshot,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'",
        )
    }
    assert {
        "hhs_uc_daily",
        "cbp_uc_encounters_monthly",
        "cbp_segob_discrepancy_monthly",
        "inm_minor_returns_monthly",
    } <= marts
    assert {p.stem for p in (data / "snapshot" / "parquet").glob("*.parquet")} == {
        name
        for name in marts
        if query(
            snapshot,
            "SELECT table_type FROM information_schema.tables WHERE "
            "table_schema = 'marts' AND table_name = ?",
            [name],
        )
        == [("BASE TABLE",)]
    }
    live = data / "warehouse.duckdb"
    [(mart_days,)] = query(snapshot, "SELECT count(*) FROM marts.hhs_uc_daily")
    assert query(live, "SELECT count(DISTINCT report_date) FROM raw.hhs_uc_daily") == [(mart_days,)]

    monitor_run = f"monitor/{pipeline_ran.runs['monitor'].run_id}"
    assert query(live, "SELECT status FROM monitor.runs WHERE run_id = ?", [monitor_run]) == [
        ("succeeded",)
    ]
    judged = {
        source
        for (source,) in query(
            live,
            "SELECT DISTINCT source FROM monitor.source_freshness WHERE run_id = ?",
            [monitor_run],
        )
    }
    assert judged == set(SOURCE_DAGS)


def test_time_and_memory_of_the_stack(
    production_stack: ProductionStack, pipeline_ran: PipelineReport
) -> None:
    """Prints the figures the issue asks for; checks that they measured the whole stack."""
    memory = pipeline_ran.memory
    components = {c.name for c in production_stack.components}
    assert set(memory["peak_rss_mib_by_component"]) == components
    assert all(memory["peak_rss_mib_by_component"][name] > 0 for name in components)
    assert memory["samples"] >= pipeline_ran.seconds / 2, "sampled about once a second"
    print("\n" + pipeline_ran.summary())
    print("stack start-up:", {k: round(v, 1) for k, v in production_stack.timings.items()})


def test_latency_from_publish_to_slack(
    production_stack: ProductionStack, pipeline_ran: PipelineReport, stack_slack
) -> None:
    """The latency benchmark (method: tests/support/pipeline_latency.py): every new file went
    publish -> archive -> marts -> Slack in that order, on clocks the pipeline keeps. Prints the
    p50/max per stage and leaves them for `make bench`; the target is checked there, not here."""
    assert pipeline_ran.published_at is not None
    latency = pipeline_latency.measure(
        stack=production_stack,
        runs=pipeline_ran.runs,
        published_at=pipeline_ran.published_at,
        held_back=pipeline_ran.held_back,
        slack_messages=stack_slack.received,
    )
    files = latency["files"]
    # The held-back files are the newer CBP vintage, SEGOB's 2025 bulletins and the HHS export.
    assert {f["source"] for f in files} == {
        "cbp_encounters_monthly",
        "segob_bulletin_monthly",
        "hhs_uc_daily",
    }, files
    assert latency["slack_messages_after_marts"] > 0, "no alert reached Slack after the build"
    for file in files:
        instants = [dt.datetime.fromisoformat(i) for i in file["instants"]]
        assert instants == sorted(instants), f"steps out of order for {file}"
    print("\n" + pipeline_latency.table(latency))
    print("written to", pipeline_latency.write(latency))
