"""returnwatch.transform and the transform DAG: the analysts' snapshot, the manifest, the wiring.

The snapshot tests build the live warehouse by hand (a marts table of real figures from
``include/replay/hhs_uc/healthdata_ehpz-xc9n_copy_mihirg42.csv``), so they run without dbt.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from returnwatch import settings, transform, warehouse

# Real figures: the newest rows of the replay copy (Date, apprehended, in CBP, transferred,
# in HHS care, discharged).
REAL_ROWS = [
    ("2025-12-21", 6, 18, 11, 2484, 14),
    ("2025-12-18", 11, 50, 6, 2472, 16),
    ("2025-12-17", 7, 31, 11, 2481, 10),
    ("2025-12-16", 8, 54, 15, 2468, 9),
]
NEXT_REAL_ROW = ("2025-12-15", 11, 42, 9, 2470, 7)

READ_IN_OTHER_PROCESS = textwrap.dedent("""
    import json, sys, duckdb
    path, sql = sys.argv[1], sys.argv[2]
    try:
        con = duckdb.connect(path, read_only=True)
        print(json.dumps({"rows": con.execute(sql).fetchall()}, default=str))
    except duckdb.Error as exc:
        print(json.dumps({"error": str(exc)}))
""")


def read_elsewhere(path: Path, sql: str) -> dict:
    """Run a query in a separate process, as an analyst's notebook would."""
    out = subprocess.run(
        [sys.executable, "-c", READ_IN_OTHER_PROCESS, str(path), sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def insert_rows(con: duckdb.DuckDBPyConnection, rows) -> None:
    con.executemany("INSERT INTO marts.hhs_uc_daily VALUES (CAST(? AS DATE), ?, ?, ?, ?, ?)", rows)


@pytest.fixture
def live(data_dir: Path) -> Path:
    """A live warehouse with two marts tables, as dbt would leave it."""
    con = warehouse.connect()
    try:
        con.execute("CREATE SCHEMA marts")
        con.execute("""
            CREATE TABLE marts.hhs_uc_daily (
                report_date DATE, cbp_apprehended_excl_mexico INTEGER, cbp_in_custody INTEGER,
                cbp_transferred_out INTEGER, hhs_in_care INTEGER, hhs_discharged INTEGER)
        """)
        insert_rows(con, REAL_ROWS)
        con.execute(
            "CREATE TABLE marts.hhs_uc_weekly AS SELECT date_trunc('week', report_date) AS week, "
            "sum(hhs_discharged) AS hhs_discharged FROM marts.hhs_uc_daily GROUP BY 1"
        )
    finally:
        con.close()
    return settings.warehouse_path()


def snapshot_count(path: Path | None = None) -> int:
    with duckdb.connect(str(path or settings.snapshot_path()), read_only=True) as con:
        return con.execute("SELECT count(*) FROM marts.hhs_uc_daily").fetchone()[0]


def leftovers() -> list[str]:
    folder = settings.snapshot_path().parent
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name)


def test_publish_copies_the_warehouse_and_exports_every_mart(live: Path) -> None:
    result = transform.publish_snapshot()

    assert result.path == settings.snapshot_path()
    assert result.tables == {"hhs_uc_daily": 4, "hhs_uc_weekly": 1}
    assert set(result.parquet) == {"hhs_uc_daily", "hhs_uc_weekly"}
    assert (
        result.parquet["hhs_uc_daily"]
        == settings.data_dir() / "snapshot" / "parquet" / "hhs_uc_daily.parquet"
    )
    assert leftovers() == []
    assert json.loads(json.dumps(result.as_dict()))["tables"] == result.tables
    assert settings.snapshot_path().stat().st_mode & 0o222 == 0, "the snapshot is a read-only file"

    with duckdb.connect(str(result.path), read_only=True) as snap:
        for table, parquet in result.parquet.items():
            expected = snap.execute(f"SELECT * FROM marts.{table} ORDER BY ALL").fetchall()
            assert expected, table
            assert (
                snap.execute(f"SELECT * FROM read_parquet('{parquet}') ORDER BY ALL").fetchall()
                == expected
            )
            # Same columns and types, except that Parquet has no HUGEINT (sum() of integers):
            # those counts are exported as BIGINT, not as DOUBLE.
            columns = [
                (name, {"HUGEINT": "BIGINT"}.get(kind, kind))
                for name, kind, *_ in snap.execute(f"DESCRIBE marts.{table}").fetchall()
            ]
            exported = [
                (name, kind)
                for name, kind, *_ in snap.execute(
                    f"DESCRIBE SELECT * FROM read_parquet('{parquet}')"
                ).fetchall()
            ]
            assert exported == columns
        live_rows = sorted(
            tuple(str(v) if isinstance(v, dt.date) else v for v in row)
            for row in snap.execute("SELECT * FROM marts.hhs_uc_daily").fetchall()
        )
    assert live_rows == sorted(REAL_ROWS)


def test_snapshot_is_readable_while_the_live_file_is_written(live: Path) -> None:
    transform.publish_snapshot()
    old_inode = settings.snapshot_path().stat().st_ino
    reader = duckdb.connect(str(settings.snapshot_path()), read_only=True)  # an analyst's session
    writer = warehouse.connect()  # the pipeline, holding the live file's write lock
    try:
        insert_rows(writer, [NEXT_REAL_ROW])
        # Another process cannot open the live file at all while it is being written...
        assert "lock" in read_elsewhere(live, "SELECT 1")["error"].lower()
        # ...but reads the snapshot fine.
        assert read_elsewhere(
            settings.snapshot_path(), "SELECT count(*) FROM marts.hhs_uc_daily"
        ) == {"rows": [[4]]}
        writer.close()

        transform.publish_snapshot()

        assert settings.snapshot_path().stat().st_ino != old_inode, (
            "replaced by rename, not rewritten"
        )
        assert read_elsewhere(
            settings.snapshot_path(), "SELECT count(*) FROM marts.hhs_uc_daily"
        ) == {"rows": [[5]]}
        # The analyst who opened the old snapshot keeps a consistent, working session on it.
        assert reader.execute("SELECT count(*) FROM marts.hhs_uc_daily").fetchone()[0] == 4
        assert (
            reader.execute("SELECT max(hhs_in_care) FROM marts.hhs_uc_daily").fetchone()[0] == 2484
        )
    finally:
        reader.close()
        writer.close()
    assert leftovers() == []


def test_an_interrupted_publish_leaves_the_previous_snapshot_whole(live: Path, monkeypatch) -> None:
    transform.publish_snapshot()
    parquet = transform.parquet_dir() / "hhs_uc_daily.parquet"
    before = (settings.snapshot_path().read_bytes(), parquet.read_bytes())
    with warehouse.connect() as con:
        insert_rows(con, [NEXT_REAL_ROW])

    real_replace = os.replace

    def fail_on_snapshot(src, dst):
        if str(dst).endswith(".duckdb"):
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(transform.os, "replace", fail_on_snapshot)
    with pytest.raises(OSError, match="simulated"):
        transform.publish_snapshot()

    assert (settings.snapshot_path().read_bytes(), parquet.read_bytes()) == before
    assert snapshot_count() == 4
    assert leftovers() == []


def test_a_mart_that_disappeared_loses_its_parquet_file(live: Path) -> None:
    transform.publish_snapshot()
    assert (transform.parquet_dir() / "hhs_uc_weekly.parquet").exists()
    with warehouse.connect() as con:
        con.execute("DROP TABLE marts.hhs_uc_weekly")

    result = transform.publish_snapshot()

    assert set(result.parquet) == {"hhs_uc_daily"}
    assert sorted(p.name for p in transform.parquet_dir().iterdir()) == ["hhs_uc_daily.parquet"]


def test_publish_without_a_warehouse_says_what_is_missing(data_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no warehouse at .*warehouse.duckdb"):
        transform.publish_snapshot()


# ------------------------------------------------------------------------------- manifest ---


def test_ensure_manifest_parses_only_when_the_project_changed(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "dbt_project"
    (project / "models").mkdir(parents=True)
    (project / "target").mkdir()
    model = project / "models" / "m.sql"
    model.write_text("select 1")
    manifest = project / "target" / "manifest.json"
    manifest.write_text("{}")
    monkeypatch.setattr(settings, "dbt_project_dir", lambda: project)
    parses = []
    monkeypatch.setattr(transform, "dbt_parse", lambda quiet=False: parses.append(1) or manifest)

    now = time.time()
    os.utime(model, (now - 60, now - 60))
    assert transform.ensure_manifest() == manifest and parses == []
    os.utime(model, (now + 60, now + 60))  # edited after the last parse
    transform.ensure_manifest()
    assert parses == [1]
    manifest.unlink()
    transform.ensure_manifest()
    assert parses == [1, 1]
    # `make install` builds it this way: `parse --if-stale` parses only a stale manifest.
    manifest.write_text("{}")
    os.utime(manifest, (now + 120, now + 120))  # parsed after the edit, for this warehouse
    (project / "target" / "partial_parse.warehouse").write_text(str(settings.warehouse_path()))
    assert transform.main(["parse", "--if-stale"]) == 0 and parses == [1, 1]
    os.utime(model, (now + 3600, now + 3600))
    assert transform.main(["parse", "--if-stale"]) == 0 and parses == [1, 1, 1]


def test_a_parse_state_made_for_another_warehouse_is_stale_for_the_demo(
    tmp_path: Path, monkeypatch
) -> None:
    # dbt reuses its partial-parse state only for the same warehouse path: the demo and
    # `make install` parse again when it was made for another data folder; others need not.
    project = tmp_path / "dbt_project"
    (project / "target").mkdir(parents=True)
    (project / "target" / "manifest.json").write_text("{}")
    monkeypatch.setattr(settings, "dbt_project_dir", lambda: project)
    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(tmp_path / "a"))
    assert not transform.manifest_is_stale()
    assert transform.manifest_is_stale(for_this_warehouse=True)  # for no known warehouse
    (project / "target" / "partial_parse.warehouse").write_text(str(settings.warehouse_path()))
    assert not transform.manifest_is_stale(for_this_warehouse=True)
    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(tmp_path / "b"))
    assert transform.manifest_is_stale(for_this_warehouse=True)
    assert not transform.manifest_is_stale()


# ------------------------------------------------------------------------------------ DAG ---


def parse_transform_dag():
    """The transform DAG as the DAG processor parses it, and the dbt/subprocess calls it made.

    Parsing must not run dbt (no ``dbt ls``, no build): Cosmos renders from the precompiled
    manifest. How long the parse takes is measured by ``make bench`` (DagBag parse time)."""
    import subprocess

    from airflow.dag_processing.dagbag import DagBag
    from dbt.cli.main import dbtRunner

    calls: list[str] = []

    def forbidden(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} called while parsing the transform DAG")

        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dbtRunner, "invoke", forbidden("dbtRunner.invoke"))
        patch.setattr(subprocess, "Popen", forbidden("subprocess.Popen"))
        bag = DagBag(dag_folder=str(settings.PROJECT_DIR / "dags" / "transform.py"))
    assert bag.import_errors == {}
    return bag.dags["transform"], calls


def test_dag_wiring(data_dir: Path) -> None:
    from airflow.sdk import AssetAny

    from returnwatch.assets import MARTS, RAW_ASSETS

    transform.ensure_manifest()
    dag, calls = parse_transform_dag()
    assert calls == [], "parsing must not run dbt"

    # One task per model and seed (the UI's per-model view); the tests run in the producer's
    # build (TestBehavior.NONE renders no tests task).
    assert {
        "dbt.dbt_producer_watcher",
        "dbt.stg_hhs__uc_daily_run",
        "dbt.hhs_uc_daily_run",
        "dbt.countries_seed",
        "publish_snapshot",
    } <= set(dag.task_dict)
    assert not [task for task in dag.task_dict if task.endswith("test")]
    # Analyses are never built: no task, and Cosmos has nothing to warn about.
    manifest = json.loads(transform.manifest_path().read_text())
    analyses = [n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "analysis"]
    assert analyses and not [t for t in dag.task_dict for name in analyses if name in t]
    assert isinstance(dag.timetable.asset_condition, AssetAny)
    assert set(dag.timetable.asset_condition.objects) == set(RAW_ASSETS)
    assert (dag.catchup, dag.max_active_runs) == (False, 1)
    producer = dag.task_dict["dbt.dbt_producer_watcher"]
    # The models' unit tests check the SQL in the test suite, not the data: not in this build.
    assert transform.UNIT_TESTS_EXCLUDED in producer.exclude.split()
    for task in dag.tasks:
        retries = 0 if task is producer else 2  # a retried producer skips: a failure would hide
        assert (task.owner, task.pool, task.retries) == ("returnwatch", "warehouse", retries), (
            task.task_id
        )
    publish = dag.task_dict["publish_snapshot"]
    assert publish.outlets == [MARTS]
    assert "dbt.dbt_producer_watcher_done" in publish.upstream_task_ids
    # The warehouse is not frozen at parse time: the profile reads RETURNWATCH_DATA_DIR at run
    # time, and falls back on the project's data/ as an absolute path.
    assert "RETURNWATCH_WAREHOUSE" not in producer.env
    assert producer.env["RETURNWATCH_DEFAULT_DATA_DIR"] == str(settings.PROJECT_DIR / "data")
    # dbt holds the warehouse open for the whole build; the producer closes it after, whether
    # the build passed or failed (test_dag_runs_end_to_end_with_dag_test runs it).
    assert producer.env["RETURNWATCH_DBT_KEEP_OPEN"] == "True"
    assert producer.env["DBT_LOG_LEVEL_FILE"] == "none"  # the temporary copy's log: never read
    # So does a watcher task that falls back on running its model itself.
    for task in (producer, dag.task_dict["dbt.hhs_uc_daily_run"]):
        assert task._post_execute_hook is transform.release_dbt_warehouse
        assert transform.release_dbt_warehouse in task.on_failure_callback


def test_a_build_leaves_the_unit_tests_out_unless_asked(data_dir: Path, monkeypatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(transform, "_invoke", lambda args: calls.append(args) or _NoRun())

    transform.dbt_build()
    transform.dbt_build("stg_cbp__encounters_aor")
    transform.dbt_build(unit_tests=True)

    excluded = [
        args[args.index("--exclude") + 1] if "--exclude" in args else None for args in calls
    ]
    assert excluded == [transform.UNIT_TESTS_EXCLUDED, transform.UNIT_TESTS_EXCLUDED, None]
    assert calls[1][calls[1].index("--select") + 1] == "stg_cbp__encounters_aor"


class _NoRun:
    """What ``dbtRunner.invoke`` returns, for a build that ran nothing."""

    success = True
    result = None
    exception = None


def test_dag_imports_without_a_manifest_and_says_what_to_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(transform, "manifest_path", lambda: tmp_path / "missing" / "manifest.json")
    dag, _ = parse_transform_dag()

    assert set(dag.task_dict) == {"dbt", "publish_snapshot"}
    with pytest.raises(transform.ManifestMissing, match="python -m returnwatch.transform parse"):
        dag.task_dict["dbt"].python_callable()
    with pytest.raises(transform.ManifestMissing):
        transform.cosmos_configs()


# The DAG is parsed while RETURNWATCH_DATA_DIR points elsewhere, as when a long-lived process
# (the demo, the e2e tests) parses the DAGs once and then runs them against several data dirs.
DAG_TEST = textwrap.dedent("""
    import json, os, time
    from returnwatch import airflow_env
    airflow_env.prepare_metadata_db()
    from airflow.dag_processing.dagbag import DagBag
    run_data_dir = os.environ["RETURNWATCH_DATA_DIR"]
    os.environ["RETURNWATCH_DATA_DIR"] = "{decoy}"
    dag = DagBag(dag_folder="{dag_file}").dags["transform"]
    os.environ["RETURNWATCH_DATA_DIR"] = run_data_dir
    for task in dag.tasks:  # a failure must fail the test now, not after the retry delays
        task.retries = 0
    from dbt.adapters.duckdb.environments import Environment
    opened, initialize_db = [], Environment.initialize_db.__func__
    def counted(cls, *args, **kwargs):
        opened.append(1)
        return initialize_db(cls, *args, **kwargs)
    Environment.initialize_db = classmethod(counted)
    started = time.perf_counter()
    run = dag.test()
    seconds = time.perf_counter() - started
    import duckdb
    from returnwatch import settings
    # Another configuration of the same file in this process: refused while dbt holds it.
    duckdb.connect(str(settings.warehouse_path()), read_only=True).close()
    print(json.dumps({{"state": str(run.state), "seconds": seconds, "opened": len(opened),
                      "tasks": {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}}}))
""")


def load_hhs_daily_rows() -> None:
    """HHS's real daily export (the replay copy) into raw.hhs_uc_daily."""
    from returnwatch.sources import hhs_uc_daily as hhs

    parsed = hhs.parse(
        settings.replay_data_dir()
        .joinpath("hhs_uc", "healthdata_ehpz-xc9n_copy_mihirg42.csv")
        .read_bytes(),
        file="replay copy",
    )
    with warehouse.session() as con:
        warehouse.load_file(
            con,
            table="hhs_uc_daily",
            frame=parsed.frame(),
            source="hhs_uc_daily",
            sha256="ab" * 32,
            url="http://127.0.0.1/ehpz-xc9n.csv",
            vintage=dt.date(2025, 12, 22),
            fetched_at=dt.datetime.now(dt.UTC),
        )


def test_an_in_process_build_opens_the_warehouse_once_and_lets_it_go(data_dir: Path) -> None:
    """dbt holds the file open for the whole build (not one open per node), then closes it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.duckdb.environments import Environment

    load_hhs_daily_rows()
    opened = []
    initialize_db = Environment.initialize_db.__func__

    def counted(cls, *args, **kwargs):
        opened.append(1)
        return initialize_db(cls, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Environment, "initialize_db", classmethod(counted))
        result = transform.dbt_build("+hhs_uc_daily", quiet=True)
    result.raise_for_status()
    assert len(result.statuses) > 3 and len(opened) == 1
    assert DuckDBConnectionManager._ENV is None
    # Another configuration of the same file in this process: refused while dbt holds it.
    duckdb.connect(str(settings.warehouse_path()), read_only=True).close()


@pytest.mark.e2e
def test_dag_runs_end_to_end_with_dag_test(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    """One DAG run in its own process and Airflow home, on a warehouse with real rows."""
    from returnwatch import airflow_env

    load_hhs_daily_rows()
    transform.ensure_manifest()
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    env = {
        **os.environ,
        **airflow_env.defaults(),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
    }
    script = DAG_TEST.format(
        dag_file=settings.PROJECT_DIR / "dags" / "transform.py", decoy=tmp_path / "decoy"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\ndag.test of transform: {run['seconds']:.1f} s")
    assert run["state"] == "success", run
    assert set(run["tasks"].values()) == {"success"}, run["tasks"]
    # One dbt build opened the warehouse once, not once per node (transform.KEEP_OPEN), and
    # released it after (the script opened it read-only in the same process).
    assert run["opened"] == 1, run["opened"]
    assert not (tmp_path / "decoy").exists(), "dbt built the warehouse seen at parse time"
    assert snapshot_count() == 720
    assert (transform.parquet_dir() / "hhs_uc_daily.parquet").exists()


def test_cosmos_keeps_dbt_parse_state_in_this_airflow_home() -> None:
    """Not in the machine's shared temporary folder, where another checkout's state (other
    paths) made the next build parse the whole project again."""
    from cosmos import settings as cosmos_settings

    assert Path(cosmos_settings.cache_dir).is_relative_to(settings.airflow_home())
