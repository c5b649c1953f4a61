"""Running dbt, and publishing what it built for analysts.

What this module owns:

- how Airflow runs the dbt project (``cosmos_configs()``), from a precompiled manifest;
- that manifest (``dbt_parse()``, ``ensure_manifest()``);
- builds outside Airflow (``dbt_build()``: in-process through ``dbtRunner``);
- the analysts' copy (``publish_snapshot()``): the warehouse and every ``marts.*`` table as
  Parquet under ``data/snapshot/``, each replaced atomically.

Only ``returnwatch.settings`` is imported at module level (the DAG file imports this module).
Why the warehouse path is absolute and more: docs/internals.md#transform-dbt-and-the-snapshot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from returnwatch import settings
from returnwatch.duck import scalar

if TYPE_CHECKING:
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig

PROFILE_NAME = "returnwatch"  # dbt_project/profiles.yml
TARGET_NAME = "warehouse"
# dbt selector leaving the models' `unit_tests:` out of a build of the live warehouse: they test
# the SQL on constructed rows, which the test suite's build does. Measured on the demo's history
# (6 unit tests), they add ~1.7 s of CPU to a ~13 s build (dbt_project/README.md#unit-tests).
UNIT_TESTS_EXCLUDED = "resource_type:unit_test"
MARTS_SCHEMA = "marts"

# Files and folders that are dbt's output, not its input: they do not make the manifest stale.
_NOT_PROJECT_SOURCES = {"target", "logs", "dbt_packages", ".gitignore"}


class ManifestMissing(FileNotFoundError):
    """The dbt manifest the transform DAG is drawn from has not been generated."""


class DbtBuildFailed(RuntimeError):
    """dbt build ended with an error: a model failed or an error-severity test did."""


def manifest_path() -> Path:
    return settings.dbt_project_dir() / "target" / "manifest.json"


def manifest_missing_message() -> str:
    return (
        f"dbt manifest not found at {manifest_path()}: the transform DAG draws its dbt tasks "
        f"from it. Generate it with `python -m returnwatch.transform parse` (or `make dbt`), "
        f"then wait for the DAG to be parsed again."
    )


def raise_manifest_missing() -> None:
    """Stand-in for the dbt tasks when the manifest is missing: fail, saying what to run."""
    raise ManifestMissing(manifest_missing_message())


def dbt_env() -> dict[str, str]:
    """Environment for dbt run now, in this process: the warehouse as an absolute path."""
    return {
        "RETURNWATCH_WAREHOUSE": str(settings.warehouse_path()),
        "DO_NOT_TRACK": "1",
    }


def cosmos_dbt_env() -> dict[str, str]:
    """Environment for dbt in the DAG's tasks, fixed when the DAG file is parsed.

    Only what cannot change between parse and run: the warehouse itself is resolved by the
    profile from ``RETURNWATCH_DATA_DIR`` as the task runs, with the project's own ``data/``
    (absolute, unlike the profile's last-resort ``../data``) when that is not set.
    """
    return {
        "RETURNWATCH_DEFAULT_DATA_DIR": str(settings.PROJECT_DIR / "data"),
        "DO_NOT_TRACK": "1",
        **KEEP_OPEN,  # the tasks release it (configure_dbt_tasks)
        # Cosmos runs dbt in a temporary copy of the project, deleted after the task, so dbt's
        # debug-level log file there is never read (~0.8 s of a build); what dbt prints at info
        # level is in the task's log, where ops read it.
        "DBT_LOG_LEVEL_FILE": "none",
    }


# --------------------------------------------------------------------------------- Airflow ---


class CosmosConfigs(NamedTuple):
    """Keyword arguments for ``cosmos.DbtTaskGroup`` (``DbtTaskGroup(**configs._asdict())``)."""

    project_config: ProjectConfig
    profile_config: ProfileConfig
    execution_config: ExecutionConfig
    render_config: RenderConfig
    operator_args: dict[str, Any]


def cosmos_configs() -> CosmosConfigs:
    """How the transform DAG runs dbt through Cosmos. Cheap: reads no file, runs no dbt.

    Raises ``ManifestMissing`` if the manifest has not been generated.

    Execution: ``ExecutionMode.WATCHER`` runs one ``dbt build`` for the whole project in a
    producer task; each model and its tests still appear as their own Airflow tasks, which
    watch the producer's per-node results (XCom) instead of starting dbt again. Every DAG run
    thus pays dbt's start-up (~5-9 s here, most of a build) once, however many models the
    project grows to; ``ExecutionMode.LOCAL`` with ``TestBehavior.BUILD`` would pay it once per
    model. The watcher tasks take over only on a retry: a model whose node failed re-runs just
    that model (``dbt run --select``) and its tests task re-runs ``dbt test --select``.

    Tests: ``TestBehavior.NONE``: the producer's ``dbt build`` runs every test next to its
    model, and a failed error-severity test fails the producer, which fails the DAG run, stops
    the snapshot publish (``dbt_producer_watcher_done`` is upstream of it) and tells ops; its
    log names the test. The producer is never retried (``configure_dbt_tasks``): Cosmos
    skips a retried producer instead of building again, which would let the publish go ahead
    after a failed test.

    What each Cosmos option cost, one warm run of the project under ``dag.test()`` on the
    demo's warehouse, CPU seconds (``make bench-cosmos``; 2 cores, December 2026): a plain
    ``dbt build`` on the command line 17.0 (in-process, dbt loaded, 6.7); this option, 36
    tasks, 14.8 (0.9x the command line); watcher with a tests task per model (``AFTER_EACH``,
    62 tasks) 34.1, without the ``warehouse`` pool 39.8 (``dag.test()`` runs one task at a
    time, so the pool changes nothing there); watcher with one tests task after all
    (``AFTER_ALL``: a second ``dbt test`` of everything) 20.2; local with the dbt runner, one
    dbt invocation per model: tests in each model's build (``BUILD``) 51.4, after all 51.1,
    after each model 88.0. ``BUILD`` does not exist in watcher mode. Since then, on a quiet
    machine: the command line 11.8, in-process 4.1, this option 9.2 (0.8x; 8.9 s wall), local
    with the dbt runner and no tests 34.2, after three changes: dbt keeps the warehouse open
    for the whole build (``KEEP_OPEN``), no per-event XCom backup (Airflow setting
    ``cosmos.enable_watcher_reliable_retry``: the producer is never retried) and no dbt log
    file in Cosmos's throwaway copy. What is left above the in-process build is Airflow's
    per-task work, so it grows with the number of models, not with the data.

    The watcher tasks run in reschedule mode instead of deferring: they then need no
    triggerer, and ``dag.test()``, which runs one task at a time, cannot park a deferred
    watcher whose producer has not started yet. Between pokes they hold neither a worker nor
    the one-slot ``warehouse`` pool.
    """
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    if not manifest_path().is_file():
        raise ManifestMissing(manifest_missing_message())
    project_dir = settings.dbt_project_dir()
    return CosmosConfigs(
        project_config=ProjectConfig(
            dbt_project_path=project_dir,
            manifest_path=manifest_path(),
            project_name=PROFILE_NAME,
            env_vars=cosmos_dbt_env(),
            install_dbt_deps=False,  # no dbt packages: the generic tests live in the project
        ),
        profile_config=ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=TARGET_NAME,
            profiles_yml_filepath=project_dir / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            # dbt in the Airflow task's own process: no second interpreter start-up.
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.NONE,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # Analyses are SQL for analysts to compile and read, never built: Cosmos has no task
            # for them (it warned once per analysis on every parse), and `dbt build` skips them.
            # The producer's `dbt build` also gets this exclude: the unit tests stay out of it.
            exclude=["resource_type:analysis", UNIT_TESTS_EXCLUDED],
            # Cosmos's per-model Assets are named after the warehouse file's absolute path and
            # exist only at run time; the DAG emits the declared `marts` Asset instead.
            emit_datasets=False,
        ),
        operator_args={
            "install_deps": False,
            "deferrable": False,
            "mode": "reschedule",
            "poke_interval": 5,
        },
    )


def configure_dbt_tasks(group: Any) -> None:
    """Set ``retries=0`` on the watcher producer of a ``DbtTaskGroup`` (see ``cosmos_configs``),
    and let every task that may run dbt close the warehouse dbt kept open (``KEEP_OPEN``) when
    it is done: the producer, and a watcher task that falls back on running its own model."""
    from cosmos.operators.base import AbstractDbtBase
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    for task in group.children.values():
        if isinstance(task, DbtProducerWatcherOperator):
            task.retries = 0
        if isinstance(task, AbstractDbtBase):
            task._post_execute_hook = release_dbt_warehouse
            callbacks = task.on_failure_callback or []
            callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
            task.on_failure_callback = [*callbacks, release_dbt_warehouse]


# dbt-duckdb closes the DuckDB database whenever no dbt thread holds a connection, which in a
# build is after nearly every node: the file is reopened and checkpointed ~100 times a build
# (~30% of its time). With this set, the profile's ``keep_open`` holds it for the whole build;
# whoever sets it runs dbt in its own process and calls ``release_dbt_warehouse`` after, or
# the warehouse's write lock would stay with this process (a test session, the demo).
KEEP_OPEN = {"RETURNWATCH_DBT_KEEP_OPEN": "True"}


def release_dbt_warehouse(*_: Any) -> None:
    """Close the warehouse that dbt-duckdb kept open in this process (``KEEP_OPEN``).

    Takes and ignores any arguments: it is also a task's post-execute hook and failure callback.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # a process that never loaded dbt holds nothing
        return
    environment = DuckDBConnectionManager._ENV  # dbt-duckdb's one database per process
    DuckDBConnectionManager.close_all_connections()  # forgets it, without closing it
    if environment is not None:
        environment.close()


# ------------------------------------------------------------------------------- dbt in-process ---


@dataclass(frozen=True)
class BuildResult:
    """What one ``dbt build`` did: overall success and each node's status."""

    success: bool
    # dbt unique_id -> status: success/error/skipped (models), pass/warn/fail/error (tests).
    statuses: dict[str, str] = field(default_factory=dict)
    # dbt unique_id -> dbt's message for nodes that did not simply succeed or pass.
    messages: dict[str, str] = field(default_factory=dict)
    exception: str | None = None
    target_dir: Path | None = None

    def with_status(self, *statuses: str) -> list[str]:
        return sorted(node for node, status in self.statuses.items() if status in statuses)

    @property
    def warned(self) -> list[str]:
        return self.with_status("warn")

    @property
    def failed(self) -> list[str]:
        return self.with_status("error", "fail", "runtime error")

    def raise_for_status(self) -> None:
        if self.success:
            return
        lines = [f"dbt build failed on warehouse {settings.warehouse_path()}"]
        if self.exception:
            lines.append(f"dbt raised: {self.exception}")
        lines += [f"{node}: {self.messages.get(node, self.statuses[node])}" for node in self.failed]
        if self.target_dir:
            lines.append(f"details: {self.target_dir / 'run_results.json'}")
        raise DbtBuildFailed("\n".join(lines))


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _invoke(args: list[str]) -> Any:
    """Run one dbt command in this process against the committed profile; return dbtRunnerResult."""
    from dbt.cli.main import dbtRunner

    project_dir = settings.dbt_project_dir()
    try:
        with _environ({**dbt_env(), **KEEP_OPEN}):
            return dbtRunner().invoke(
                [*args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
            )
    finally:
        release_dbt_warehouse()


def dbt_parse(*, quiet: bool = False) -> Path:
    """(Re)generate ``dbt_project/target/manifest.json``; return its path. ``quiet`` keeps
    dbt's lines off the console (errors still show).

    dbt parses into a scratch folder and the manifest is moved into place in one rename, so the
    scheduler parsing the DAG at the same moment reads either the old or the new manifest.
    """
    target = manifest_path().parent
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".parse-", dir=target) as scratch:
        with _environ({"DBT_QUIET": "true"} if quiet else {}):
            result = _invoke(["parse", "--target-path", scratch, "--log-path", scratch])
        produced = Path(scratch) / "manifest.json"
        if not result.success or not produced.is_file():
            raise DbtBuildFailed(
                f"dbt parse of {settings.dbt_project_dir()} failed: "
                f"{result.exception or 'see the dbt log above'}"
            )
        os.replace(produced, manifest_path())
        # Keep dbt's partial-parse cache next to the manifest for the next parse or build, and
        # which warehouse it was made for (parse_state_warehouse).
        cache = Path(scratch) / "partial_parse.msgpack"
        if cache.is_file():
            os.replace(cache, target / "partial_parse.msgpack")
            _parse_state_for().write_text(str(settings.warehouse_path()))
    return manifest_path()


def _parse_state_for() -> Path:
    return manifest_path().parent / "partial_parse.warehouse"


def parse_state_warehouse() -> str | None:
    """The warehouse file the project's partial-parse state was made for, if known.

    dbt reuses that state (Cosmos copies it into each build's throwaway project) only when the
    profile's connection (the warehouse path among it) is the same; with another data folder
    the first build of an Airflow home parses the whole project again (~4 s of CPU).
    """
    try:
        return _parse_state_for().read_text().strip() or None
    except FileNotFoundError:
        return None


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for root, dirs, files in os.walk(project_dir):
        if Path(root) == project_dir:
            dirs[:] = [d for d in dirs if d not in _NOT_PROJECT_SOURCES]
        for name in files:
            if name not in _NOT_PROJECT_SOURCES:
                newest = max(newest, (Path(root) / name).stat().st_mtime)
    return newest


def manifest_is_stale(*, for_this_warehouse: bool = False) -> bool:
    """Whether the manifest is missing or older than a file of the dbt project; with
    ``for_this_warehouse``, also whether its partial-parse state was made for another warehouse
    file than this process's (``parse_state_warehouse``: builds here would parse again)."""
    path = manifest_path()
    if not path.is_file() or path.stat().st_mtime < _newest_source_mtime(
        settings.dbt_project_dir()
    ):
        return True
    return for_this_warehouse and parse_state_warehouse() != str(settings.warehouse_path())


def ensure_manifest(*, quiet: bool = False, for_this_warehouse: bool = False) -> Path:
    """The manifest path, parsing the project first if the manifest is missing or older than it
    (or, with ``for_this_warehouse``, made for another warehouse: ``manifest_is_stale``)."""
    stale = manifest_is_stale(for_this_warehouse=for_this_warehouse)
    return dbt_parse(quiet=quiet) if stale else manifest_path()


def dbt_build(
    select: str | Sequence[str] | None = None, *, quiet: bool = False, unit_tests: bool = False
) -> BuildResult:
    """Run ``dbt build`` (models and their tests) in this process against the live warehouse.

    dbt's own output (run_results.json, logs) goes to ``<data dir>/dbt/``, not into the source
    tree, so builds against different data folders (tests, a demo) do not overwrite each other.
    ``quiet`` keeps dbt's per-node lines off the console (they stay in its log file), for
    commands with output of their own (``returnwatch backfill``).
    ``unit_tests`` also runs the models' dbt ``unit_tests:`` (SQL logic on constructed rows; the
    test suite's build does); they check the project, not the data, so a build of the live
    warehouse leaves them out (``UNIT_TESTS_EXCLUDED``).
    Returns a ``BuildResult``; call ``raise_for_status()`` on it to stop on failure.
    """
    out = settings.data_dir() / "dbt"
    args = ["build", "--target-path", str(out / "target"), "--log-path", str(out / "logs")]
    if select:
        args += ["--select", *([select] if isinstance(select, str) else select)]
    if not unit_tests:
        args += ["--exclude", UNIT_TESTS_EXCLUDED]
    with _environ({"DBT_QUIET": "true"} if quiet else {}):
        result = _invoke(args)
    statuses: dict[str, str] = {}
    messages: dict[str, str] = {}
    for node_result in getattr(result.result, "results", None) or []:
        node = node_result.node.unique_id
        statuses[node] = str(getattr(node_result.status, "value", node_result.status)).lower()
        if statuses[node] not in ("success", "pass") and node_result.message:
            messages[node] = str(node_result.message)
    return BuildResult(
        success=bool(result.success),
        statuses=statuses,
        messages=messages,
        exception=str(result.exception) if result.exception else None,
        target_dir=out / "target",
    )


# -------------------------------------------------------------------------------- snapshot ---


@dataclass(frozen=True)
class SnapshotResult:
    path: Path
    published_at: dt.datetime
    # marts table -> rows exported, and where its Parquet copy is.
    tables: dict[str, int]
    parquet: dict[str, Path]
    # The publication both the snapshot (table snapshot.build) and every Parquet file (its
    # key-value metadata "build_id") carry: equal ids mean the same build.
    build_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (Airflow XCom, CLI output)."""
        return {
            "path": str(self.path),
            "build_id": self.build_id,
            "published_at": self.published_at.isoformat(),
            "tables": dict(self.tables),
            "parquet": {name: str(path) for name, path in self.parquet.items()},
        }


def parquet_dir() -> Path:
    return settings.snapshot_path().parent / "parquet"


# Writers of the snapshot folder (publish_snapshot, status.refresh_snapshot) take this lock for
# their whole run, so one never renames a copy made before the other's rename (which left the
# snapshot on one build and the Parquet files on another). Bounded wait, then a clear error.
SNAPSHOT_LOCK_WAIT_SECONDS = 600
# Scratch folders of snapshot writers; any found while holding the lock belong to a dead one.
_SCRATCH_PREFIXES = (".publish-", ".refresh-")


class SnapshotBusy(RuntimeError):
    """Another process has been publishing or refreshing the snapshot for too long."""


def _snapshot_lock_path() -> Path:
    snapshot = settings.snapshot_path()
    return snapshot.with_name(snapshot.name + ".lock")


@contextlib.contextmanager
def snapshot_lock(wait_seconds: float = SNAPSHOT_LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Serialise the snapshot's writers (an exclusive ``flock``), and, once held, remove the
    scratch folders a killed writer left behind (only a lock holder ever creates them)."""
    import fcntl
    import time

    path = _snapshot_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        deadline = time.monotonic() + wait_seconds
        delay = 0.05
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SnapshotBusy(
                        f"another process has held {path} for more than {wait_seconds:.0f} s "
                        "(a snapshot publish or refresh); try again later"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            for stale in path.parent.iterdir():
                if stale.is_dir() and stale.name.startswith(_SCRATCH_PREFIXES):
                    shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def snapshot_build_id(path: Path | None = None) -> str | None:
    """The build id a snapshot file carries (``snapshot.build``), None if it has none."""
    import duckdb

    with contextlib.closing(
        duckdb.connect(str(path or settings.snapshot_path()), read_only=True)
    ) as con:
        try:
            row = con.execute("SELECT build_id FROM snapshot.build").fetchone()
        except duckdb.CatalogException:
            return None
    return row[0] if row else None


def publish_snapshot() -> SnapshotResult:
    """Copy the live warehouse to the read-only snapshot and export ``marts.*`` to Parquet.

    Call it after a successful build, from a task in the ``warehouse`` pool: it takes the write
    lock on the live file for the time of a checkpoint and a file copy.

    Atomicity: every file is written under a temporary name in its final folder and renamed
    over the old one (``os.replace``). Readers that opened the previous snapshot keep reading
    it (their open file outlives the rename); new readers get the new one. The Parquet files
    are exported from the new snapshot before anything is renamed, so they hold the same rows,
    and carry the same build id as the snapshot's ``snapshot.build`` table: a reader who opens
    both between the renames (milliseconds) can tell. Publishing and the monitor's refresh are
    serialised by ``snapshot_lock``.
    """
    import uuid

    import duckdb

    from returnwatch import warehouse

    live = settings.warehouse_path()
    snapshot = settings.snapshot_path()
    exports = parquet_dir()
    if not live.is_file():
        raise FileNotFoundError(
            f"no warehouse at {live} to publish: run the source DAGs and dbt first"
        )
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    exports.mkdir(parents=True, exist_ok=True)

    with (
        snapshot_lock(),
        tempfile.TemporaryDirectory(prefix=".publish-", dir=snapshot.parent) as scratch,
    ):
        published_at = dt.datetime.now(dt.UTC)
        build_id = f"{published_at:%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:12]}"
        # Same base name as the live file: dbt's views name their catalog ("warehouse"), which
        # DuckDB derives from the file name.
        staged = Path(scratch) / live.name
        con = warehouse.connect(live)
        try:
            # Everything committed moves from the WAL into the file; while this connection is
            # open no other process can write, so the bytes copied are one consistent state.
            con.execute("CHECKPOINT")
            shutil.copyfile(live, staged)
        finally:
            con.close()
        with contextlib.closing(duckdb.connect(str(staged))) as stamp:
            stamp.execute("CREATE SCHEMA IF NOT EXISTS snapshot")
            stamp.execute(
                "CREATE OR REPLACE TABLE snapshot.build AS SELECT ? AS build_id, "
                "CAST(? AS TIMESTAMPTZ) AS published_at",
                [build_id, published_at],
            )
            stamp.execute("CHECKPOINT")

        staged_parquet: dict[str, Path] = {}
        tables: dict[str, int] = {}
        with contextlib.closing(duckdb.connect(str(staged), read_only=True)) as snap:
            names = [
                row[0]
                for row in snap.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
                    [MARTS_SCHEMA],
                ).fetchall()
            ]
            for name in names:
                out = Path(scratch) / f"{name}.parquet"
                relation = f'{MARTS_SCHEMA}."{name}"'
                select = _parquet_select_list(snap, name)
                snap.execute(
                    f"COPY (SELECT {select} FROM {relation}) TO '{sql_path(out)}' "
                    f"(FORMAT parquet, KV_METADATA {{build_id: '{build_id}'}})"
                )
                tables[name] = scalar(snap, f"SELECT count(*) FROM {relation}")
                staged_parquet[name] = out

        replace_snapshot(staged)
        published: dict[str, Path] = {}
        for name, staged_file in staged_parquet.items():
            published[name] = exports / f"{name}.parquet"
            os.replace(staged_file, published[name])
        # A mart that no longer exists must not live on as a stale Parquet file.
        for old in exports.glob("*.parquet"):
            if old.stem not in published:
                old.unlink()

    return SnapshotResult(
        path=snapshot,
        published_at=published_at,
        tables=tables,
        parquet=published,
        build_id=build_id,
    )


# Parquet has no 128-bit integers: DuckDB would write HUGEINT (what sum() of integers returns)
# as DOUBLE, and a count would reach analysts as a float. 64 bits hold any count here, and the
# cast fails loudly instead of rounding if one ever does not fit.
_PARQUET_CASTS = {"HUGEINT": "BIGINT", "UHUGEINT": "UBIGINT"}


def _parquet_select_list(con: Any, table: str) -> str:
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [MARTS_SCHEMA, table],
    ).fetchall()
    return ", ".join(
        f'CAST("{column}" AS {_PARQUET_CASTS[data_type]}) AS "{column}"'
        if data_type in _PARQUET_CASTS
        else f'"{column}"'
        for column, data_type in columns
    )


def replace_snapshot(staged: Path) -> Path:
    """Put a staged copy in place as the analysts' snapshot, read-only, in one rename.

    Readers of the previous copy keep reading it (their open file outlives the rename); new
    readers get the new one. ``publish_snapshot`` and ``status.refresh_snapshot`` end here,
    holding ``snapshot_lock``.
    """
    snapshot = settings.snapshot_path()
    os.chmod(staged, 0o444)  # a snapshot is for reading; changes belong in the live file
    # A WAL left by someone who opened the old snapshot for writing belongs to the old file.
    wal = snapshot.with_name(snapshot.name + ".wal")
    if wal.exists():
        wal.unlink()
    os.replace(staged, snapshot)
    return snapshot


def sql_path(path: Path) -> str:
    """A file path as the body of a SQL string literal (quotes doubled)."""
    return str(path).replace("'", "''")


# ---------------------------------------------------------------------------------- command ---


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m returnwatch.transform parse [--if-stale]|build|publish``.

    ``build`` refreshes the manifest if the project changed, runs ``dbt build`` and, if it
    succeeded, publishes the snapshot; it exits 1 when the build failed.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m returnwatch.transform", description=main.__doc__
    )
    parser.add_argument("command", choices=["parse", "build", "publish"])
    parser.add_argument("--select", nargs="*", help="dbt node selection for build")
    parser.add_argument(
        "--if-stale",
        action="store_true",
        help="parse only if the manifest is missing or older than the project (make install)",
    )
    args = parser.parse_args(argv)
    if args.command == "parse":
        print(
            ensure_manifest(quiet=True, for_this_warehouse=True) if args.if_stale else dbt_parse()
        )
        return 0
    if args.command == "build":
        ensure_manifest()
        result = dbt_build(args.select)
        if result.warned:
            print("dbt tests that warned:", ", ".join(result.warned))
        try:
            result.raise_for_status()
        except DbtBuildFailed as failure:
            print(failure, file=sys.stderr)
            return 1
        print(publish_snapshot().as_dict())
        return 0
    print(publish_snapshot().as_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
