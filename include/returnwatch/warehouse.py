"""The DuckDB warehouse: connections, the raw layer's tables, and idempotent loads.

What this module owns:

- ``connect()``: the one way to open the warehouse; writers wait (bounded) for the lock;
- ``reading()``: read-only access for commands that only read (the snapshot while a writer
  holds the file);
- the ``raw`` schema: one table per parsed layout plus ``raw.files``; every row keeps
  ``source_file``, ``source_row`` and ``vintage``;
- ``load_file()``: one parsed file in one transaction, at most once.

The ``monitor`` schema belongs to ``monitor.store``; ``init()`` creates both.
Details: docs/internals.md#warehouse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from returnwatch import settings
from returnwatch.duck import scalar

if TYPE_CHECKING:  # pandas is heavy; only tasks that load data import it
    import pandas as pd

RAW_DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    """
    CREATE TABLE IF NOT EXISTS raw.files (
        sha256        VARCHAR PRIMARY KEY,  -- content address of the archived file
        source        VARCHAR NOT NULL,     -- key in config/sources.yaml
        url           VARCHAR NOT NULL,     -- where it was fetched from (or 'manual:<path>')
        vintage       DATE NOT NULL,        -- publication date of this file
        fetched_at    TIMESTAMPTZ NOT NULL,
        raw_table     VARCHAR NOT NULL,     -- which raw.* table holds its rows
        rows_loaded   INTEGER NOT NULL,
        loaded_at     TIMESTAMPTZ NOT NULL,
        constructed   BOOLEAN DEFAULT false -- figures made by hand (returnwatch.provenance)
    )
    """,
    # Warehouses created before the column existed.
    "ALTER TABLE raw.files ADD COLUMN IF NOT EXISTS constructed BOOLEAN DEFAULT false",
]

# How long a writer waits for another writer's lock before giving up with a clear error
# (RETURNWATCH_LOCK_WAIT_SECONDS overrides it, e.g. for a cron job that should fail fast).
LOCK_WAIT_SECONDS = 120
# How long a read-only command waits for a writer before it reads the snapshot instead.
READ_WAIT_SECONDS = 5


def lock_wait_seconds() -> float:
    """The writers' bounded wait for the lock, in seconds."""
    import os

    value = os.environ.get("RETURNWATCH_LOCK_WAIT_SECONDS", "")
    try:
        return max(0.0, float(value)) if value else float(LOCK_WAIT_SECONDS)
    except ValueError:
        raise ValueError(
            f"RETURNWATCH_LOCK_WAIT_SECONDS={value!r} is not a number of seconds"
        ) from None


class WarehouseLocked(RuntimeError):
    """Another process holds the DuckDB write lock for longer than we are willing to wait."""


@dataclass(frozen=True)
class LoadResult:
    source: str
    sha256: str
    table: str
    rows_loaded: int
    already_loaded: bool


def connect(
    path: Path | None = None, *, read_only: bool = False, wait_seconds: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (default: the live file), waiting a bounded time for the write lock
    (``wait_seconds``, default ``lock_wait_seconds()``)."""
    path = Path(path or settings.warehouse_path())
    if wait_seconds is None:
        wait_seconds = lock_wait_seconds()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    # Short at first: another worker's load holds the lock for tens of milliseconds; a build
    # for seconds, which the doubling reaches in a few tries.
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                if "lock" in str(exc).lower():
                    raise WarehouseLocked(
                        f"warehouse {path} is locked by another process (a load, a dbt build "
                        f"or an open connection) for more than {wait_seconds:.0f} s; try "
                        f"again later (RETURNWATCH_LOCK_WAIT_SECONDS sets the wait); analysts "
                        f"should open the snapshot {settings.snapshot_path()} instead"
                    ) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@contextlib.contextmanager
def reading(
    *, wait_seconds: float | None = None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A read-only connection for a command that only reads, and where it was read from.

    The live warehouse read-only (no write lock, nothing created: this works on a read-only
    data folder); if a writer holds it for more than ``wait_seconds``, the analysts' snapshot
    (copied after each build, the monitor tables after each monitor run). Raises
    ``FileNotFoundError`` when there is no warehouse yet, ``WarehouseLocked`` when the live
    file is busy and there is no snapshot.
    """
    live, snapshot = settings.warehouse_path(), settings.snapshot_path()
    wait_seconds = READ_WAIT_SECONDS if wait_seconds is None else wait_seconds
    if not live.is_file():
        raise FileNotFoundError(
            f"no warehouse at {live} yet: run `make demo` (or the source DAGs) first"
        )
    try:
        con = connect(live, read_only=True, wait_seconds=wait_seconds)
        where = f"live warehouse {live}"
    except WarehouseLocked:
        if not snapshot.is_file():
            raise
        con = duckdb.connect(str(snapshot), read_only=True)
        where = f"snapshot {snapshot} (the live file is busy with a write)"
    try:
        yield con, where
    finally:
        con.close()


@contextlib.contextmanager
def session(
    path: Path | None = None, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that is closed afterwards, with the schemas created when writing."""
    con = connect(path, read_only=read_only)
    try:
        if not read_only:
            init(con)
        yield con
    finally:
        con.close()


def init(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and monitor schemas and their tables if they do not exist.

    Every writer opens the warehouse through this, once per load: running the ~30 statements
    each time cost more CPU than the load itself, and their ``COMMENT ON`` statements are
    catalog writes that each close then checkpoints. So the statements run only when the
    warehouse lacks something they create (``_holds``); when it holds all of it, they would
    change nothing, and nothing is run.
    """
    statements = tuple(_ddl())
    if _holds(con, _expected_catalog(statements)):
        return
    for statement in statements:
        con.execute(statement)


def _ddl() -> list[str]:
    from returnwatch.schema import MONITOR_DDL
    from returnwatch.sources import raw_ddl

    return RAW_DDL + raw_ddl() + MONITOR_DDL


@dataclass(frozen=True)
class _Catalog:
    """What ``init``'s statements create: schemas, sequences, tables and their columns, and
    the tables' comments (the effect of a ``COMMENT ON``)."""

    schemas: frozenset[str]
    sequences: frozenset[tuple[str, str]]
    columns: dict[str, frozenset[str]]  # "schema.table" -> its column names
    comments: frozenset[tuple[str, str, str]]  # (schema, table, comment), commented tables


@functools.lru_cache(maxsize=4)
def _expected_catalog(statements: tuple[str, ...]) -> _Catalog:
    """What ``statements`` create, found by running them once on an empty in-memory
    database (once per process and set of statements): the DDL itself is the reference,
    so a new table, column or comment in it is never mistaken for one already there."""
    scratch = duckdb.connect(":memory:")
    try:
        for statement in statements:
            scratch.execute(statement)
        schemas = frozenset(
            name
            for (name,) in scratch.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE NOT internal"
                " AND database_name = current_database() AND schema_name <> 'main'"
            ).fetchall()
        )
        where = "database_name = current_database() AND schema_name IN (SELECT unnest(?))"
        tables = scratch.execute(
            f"SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE {where}",
            [sorted(schemas)],
        ).fetchall()
        columns: dict[str, set[str]] = {f"{s}.{t}": set() for s, t, _ in tables}
        for schema, table, column in scratch.execute(
            f"SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE {where}",
            [sorted(schemas)],
        ).fetchall():
            columns[f"{schema}.{table}"].add(column)
        sequences = scratch.execute(
            f"SELECT schema_name, sequence_name FROM duckdb_sequences() WHERE {where}",
            [sorted(schemas)],
        ).fetchall()
        return _Catalog(
            schemas=schemas,
            sequences=frozenset((s, n) for s, n in sequences),
            columns={name: frozenset(names) for name, names in columns.items()},
            comments=frozenset((s, t, c) for s, t, c in tables if c is not None),
        )
    finally:
        scratch.close()


# (warehouse file, comments) this process has found as the DDL sets them.
_COMMENTS_SEEN: set[tuple[str, frozenset[tuple[str, str, str]]]] = set()


def _holds(con: duckdb.DuckDBPyConnection, expected: _Catalog) -> bool:
    """Whether the warehouse already has everything in ``expected``.

    Tables and columns are read with ``pragma_table_info`` per table, schemas and sequences
    from their small catalog lists: a millisecond or two. duckdb_tables()/duckdb_columns()
    would read every table's storage information (marts included) for ~10 ms per connection,
    so table comments, which only change when the DDL text does, are checked that way once
    per process, warehouse file and DDL; a dropped table or column is seen every time.
    """
    if not expected.columns:
        return False
    parts = [f"SELECT '{name}', name FROM pragma_table_info('{name}')" for name in expected.columns]
    try:
        rows = con.execute(" UNION ALL ".join(parts)).fetchall()
    except duckdb.CatalogException:  # a table (or its schema) is missing
        return False
    have: dict[str, set[str]] = {}
    for table, column in rows:
        have.setdefault(table, set()).add(column)
    if any(not names <= have.get(table, set()) for table, names in expected.columns.items()):
        return False
    present = set(
        con.execute(
            "SELECT schema_name, sequence_name FROM duckdb_sequences()"
            " WHERE database_name = current_database()"
            " UNION ALL SELECT schema_name, NULL FROM duckdb_schemas()"
            " WHERE database_name = current_database()"
        ).fetchall()
    )
    if not expected.sequences | {(s, None) for s in expected.schemas} <= present:
        return False
    if expected.comments:
        row = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        seen = (row[0], expected.comments) if row and row[0] else None
        if seen is None or seen not in _COMMENTS_SEEN:
            comments = set(
                con.execute(
                    "SELECT schema_name, table_name, comment FROM duckdb_tables()"
                    " WHERE database_name = current_database() AND comment IS NOT NULL"
                ).fetchall()
            )
            if not expected.comments <= comments:
                return False
            if seen is not None:
                _COMMENTS_SEEN.add(seen)
    return True


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``schema.table`` exists (raw tables appear with their first load, marts with
    the first build, monitor tables with ``init``)."""
    schema, name = qualified.split(".", 1)
    return bool(
        scalar(
            con,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name = ?",
            [schema, name],
        )
    )


def file_is_loaded(sha256: str, path: Path | None = None) -> bool:
    """Whether the file ``sha256`` is in the live warehouse's ``raw.files`` (read-only look).

    This, not the archive's "new bytes?", decides whether a source's run goes on: a file can be
    archived and never loaded (a worker killed before the load committed). A warehouse that
    does not exist yet, or has no ``raw.files`` yet, holds no file.
    """
    path = Path(path or settings.warehouse_path())
    if not path.exists():
        return False
    try:
        con = connect(path, read_only=True)
    except duckdb.ConnectionException:
        # This process already has the file open for writing (a backfill holding the lock, a
        # DAG test running tasks in one process): share that instance instead.
        con = connect(path)
    try:
        # Ask raw.files directly: a look at the catalog first (table_exists) would load the
        # whole catalog, dbt's views included, which costs ten times the lookup.
        return is_loaded(con, sha256)
    except duckdb.CatalogException:
        if table_exists(con, "raw.files"):
            raise  # not the missing table: something else is wrong, say so
        return False
    finally:
        con.close()


def is_loaded(con: duckdb.DuckDBPyConnection, sha256: str) -> bool:
    return scalar(con, "SELECT count(*) FROM raw.files WHERE sha256 = ?", [sha256]) > 0


def load_file(
    con: duckdb.DuckDBPyConnection,
    *,
    table: str,
    frame: pd.DataFrame,
    source: str,
    sha256: str,
    url: str,
    vintage: dt.date,
    fetched_at: dt.datetime,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    constructed: bool | None = None,
) -> LoadResult:
    """Insert one parsed file's rows into ``raw.<table>`` in a single transaction.

    ``frame`` holds the table's columns except ``source_file`` and ``vintage``, which are added
    here. Loading a file whose sha256 is already in ``raw.files`` changes nothing. ``also``
    runs inside the same transaction after the rows are in (e.g. recording revisions), so a
    file's rows and what was derived from them commit together or not at all.
    ``constructed``: whether the file's figures were made by hand, as its record says
    (``provenance.is_constructed`` at parse time); None: judged from its name alone.
    """
    qualified = f"raw.{table}"
    if is_loaded(con, sha256):
        return LoadResult(source, sha256, qualified, 0, already_loaded=True)
    # The table's own columns (DESCRIBE), not information_schema.columns: that one binds every
    # view in the warehouse (dbt's) to list them, several times the cost of the whole insert.
    try:
        columns = [row[0] for row in con.execute(f'DESCRIBE raw."{table}"').fetchall()]
    except duckdb.CatalogException:
        raise ValueError(f"no table {qualified} in the warehouse") from None
    # source_file and vintage are the same for every row: SQL constants, not two more
    # DataFrame columns (a year of SEGOB microdata is 250k rows).
    added = {"source_file", "vintage"}
    missing = [c for c in columns if c not in frame.columns and c not in added]
    if missing:
        raise ValueError(f"rows for {qualified} lack columns {missing}")
    select = ", ".join(
        "$sha256" if c == "source_file" else "$vintage" if c == "vintage" else f'"{c}"'
        for c in columns
    )
    con.begin()
    try:
        con.register("incoming_rows", frame)
        con.execute(
            f"INSERT INTO {qualified} SELECT {select} FROM incoming_rows",
            {"sha256": sha256, "vintage": vintage},
        )
        con.unregister("incoming_rows")
        if constructed is None:
            from returnwatch.provenance import is_constructed

            constructed = is_constructed(url)
        con.execute(
            "INSERT INTO raw.files (sha256, source, url, vintage, fetched_at, raw_table, "
            "rows_loaded, loaded_at, constructed) VALUES (?, ?, ?, ?, ?, ?, ?, now(), ?)",
            [sha256, source, url, vintage, fetched_at, qualified, len(frame), constructed],
        )
        if also is not None:
            also(con)
        con.commit()
    except BaseException:
        # A failed COMMIT (a full disk) has already ended the transaction: the rollback then
        # fails too, and must not hide the error that says what happened.
        with contextlib.suppress(duckdb.TransactionException):
            con.rollback()
        raise
    return LoadResult(source, sha256, qualified, len(frame), already_loaded=False)
