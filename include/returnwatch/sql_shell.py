"""``returnwatch sql``: a sandboxed SQL prompt on the analysts' snapshot (or, with ``--live``,
the live warehouse, one statement at a time).

What this module owns:

- the sandbox (``open_sandboxed()``, ``check_statement()``): read-only connections, external
  access and extension loading off, configuration locked, and the statements that move data
  in or out (COPY, EXPORT, ATTACH, INSTALL, LOAD, ...) refused with one line saying why;
- where statements run (``Session``): the snapshot opened once; the live file per statement,
  closed before the result prints;
- the prompt (``repl()``): ``;``-terminated statements, ``.tables``, ``.schema``, ``.quit``.

Why a sandbox: docs/internals.md#the-sql-shell.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import duckdb

HELP = """\
Statements end with ';' and may span lines. Commands:
  .tables            the schemas' tables and views (marts.*, staging.*, raw.*, monitor.*)
  .schema NAME       the columns of NAME (e.g. .schema marts.hhs_uc_daily)
  .help              this text
  .quit              leave (Ctrl-D works too)
Read-only and sandboxed: no files, URLs, extensions or settings (use --csv to save a result)."""

TABLES_SQL = """
    select table_schema || '.' || table_name as name, table_type as type
    from information_schema.tables
    where table_schema not in ('information_schema', 'pg_catalog')
    order by table_schema, table_name"""

# Set when the database starts and not changeable afterwards.
_STARTUP_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}

# Statement kinds refused before they reach DuckDB, with the reason shown to the analyst.
_REFUSED = {
    "COPY": "COPY reads or writes files; this shell only reads the warehouse "
    "(use --csv to save a result)",
    "COPY_DATABASE": "COPY FROM DATABASE writes a database; this shell only reads",
    "EXPORT": "EXPORT DATABASE writes files; this shell only reads the warehouse",
    "ATTACH": "ATTACH opens another database; this shell reads only the one it opened",
    "DETACH": "DETACH is not needed in this shell",
    "LOAD": "INSTALL and LOAD of extensions are off in this shell",
    "PREPARE": "PREPARE/EXECUTE are off in this shell (write the statement itself)",
    "EXECUTE": "PREPARE/EXECUTE are off in this shell (write the statement itself)",
    "LOGICAL_PLAN": "this statement kind is not allowed in this shell",
    "RELATION": "this statement kind is not allowed in this shell",
    "MULTI": "this statement kind is not allowed in this shell",
    "INVALID": "this statement kind is not allowed in this shell",
}

# PRAGMAs that only read (the rest, e.g. import_database or copy_database, are refused).
_READ_ONLY_PRAGMAS = {
    "show_tables",
    "show_tables_expanded",
    "table_info",
    "show",
    "version",
    "platform",
    "database_list",
    "database_size",
    "storage_info",
    "metadata_info",
    "functions",
    "collations",
    "show_databases",
}
_PRAGMA_NAME = re.compile(r"\s*pragma\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)

# DuckDB's own refusals, reworded to say that they are the sandbox and not a fault.
_SANDBOX_ERRORS = (
    ("file system operations are disabled", "file and URL access is off in this shell"),
    ("Loading external extensions is disabled", "extensions are off in this shell"),
    ("the configuration has been locked", "settings are locked in this shell"),
)

# How long a --live statement waits for a writer (a load or a dbt build) to let go.
LIVE_WAIT_SECONDS = 60.0


class Refused(Exception):
    """A statement the sandbox does not run; the message is one line saying why."""


class LiveBusy(Exception):
    """The live warehouse stayed locked by a writer for the whole bounded wait."""


def parquet_dir() -> Path:
    """The snapshot's Parquet exports: the only files a sandboxed statement may read."""
    from returnwatch import transform

    return transform.parquet_dir()


def open_sandboxed(path: Path, *, readable: Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``path`` read-only in the sandbox; ``readable`` is a folder whose files (Parquet
    exports) statements may still read. Raises duckdb errors (a lock among them) as they come."""
    con = duckdb.connect(str(path), read_only=True, config=dict(_STARTUP_CONFIG))
    try:
        # allowed_directories can only be set on a running database and only while external
        # access is on: the order of these three matters.
        if readable is not None:
            con.execute("SET allowed_directories = ?", [[str(readable.resolve()) + "/"]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ``sql`` if any statement in it is of a kind the sandbox does not run."""
    for statement in con.extract_statements(sql):
        kind = statement.type.name
        if kind in _REFUSED:
            raise Refused(f"refused: {_REFUSED[kind]}")
        if kind == "PRAGMA":
            match = _PRAGMA_NAME.match(statement.query)
            if not match or match.group(1).lower() not in _READ_ONLY_PRAGMAS:
                raise Refused(
                    "refused: only read-only PRAGMAs (show_tables, table_info, "
                    "version, ...) run in this shell"
                )


def one_line(error: BaseException) -> str:
    """A DuckDB error as the analyst should read it: the sandbox's refusals as one line."""
    text = str(error)
    for marker, reason in _SANDBOX_ERRORS:
        if marker in text:
            return f"refused: {reason} ({text.splitlines()[0]})"
    return text


def render(relation: duckdb.DuckDBPyRelation | None, *, max_rows: int, csv: bool) -> str:
    """The whole result as text, so the connection can close before anything is printed."""
    if relation is None:  # a statement without a result (CREATE TEMP ..., USE ...)
        return ""
    if csv:
        buffer = io.StringIO()
        relation.to_df().to_csv(buffer, index=False)
        return buffer.getvalue()
    if max_rows <= 0:
        return str(relation) + "\n"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        relation.show(max_rows=max_rows, max_width=200)
    return buffer.getvalue().rstrip("\n") + "\n"


class Session:
    """Where ``returnwatch sql`` runs its statements.

    Snapshot: one sandboxed connection for the session (temporary tables and ``USE`` last).
    Live: a sandboxed read-only connection per statement, closed before the result is printed;
    while a writer holds the file, wait up to ``wait_seconds``, telling ``notice`` once.
    """

    def __init__(
        self,
        path: Path,
        *,
        live: bool = False,
        wait_seconds: float = LIVE_WAIT_SECONDS,
        notice: Callable[[str], None] | None = None,
        readable: Path | None = None,
    ) -> None:
        if not path.exists():
            what = "warehouse" if live else "snapshot"
            raise FileNotFoundError(f"no {what} at {path}: run `make demo` or `make dbt` first")
        self.path = path
        self.live = live
        self.wait_seconds = wait_seconds
        self.notice = notice or (lambda message: print(message, file=sys.stderr))
        self.readable = readable if readable is not None else parquet_dir()
        self._con = None if live else open_sandboxed(path, readable=self.readable)
        # Live: statements are checked on an empty in-memory database before the file is
        # opened, so a refused one never waits for (or holds) the lock.
        self._parser = duckdb.connect() if live else None

    def close(self) -> None:
        for con in (self._con, self._parser):
            if con is not None:
                con.close()
        self._con = self._parser = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, sql: str, *, max_rows: int = 40, csv: bool = False) -> str:
        """Run ``sql`` and return its printed result. Raises ``Refused`` (the sandbox),
        ``LiveBusy`` (the live file stayed locked) or ``duckdb.Error`` (the statement)."""
        if self._con is not None:
            check_statement(self._con, sql)
            return render(self._con.sql(sql), max_rows=max_rows, csv=csv)
        if self._parser is None:  # neither connection: the session was closed
            raise RuntimeError(f"SQL session on {self.path} is closed")
        check_statement(self._parser, sql)
        con = self._open_live()
        try:
            return render(con.sql(sql), max_rows=max_rows, csv=csv)
        finally:
            con.close()

    def _open_live(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.wait_seconds
        delay, told = 0.1, False
        while True:
            try:
                return open_sandboxed(self.path, readable=self.readable)
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                if time.monotonic() >= deadline:
                    raise LiveBusy(
                        f"the live warehouse {self.path} is still being written (a load or a "
                        f"dbt build holds its lock) after {self.wait_seconds:.0f} s; try again, "
                        f"or query the snapshot (returnwatch sql without --live)"
                    ) from None
                if not told:
                    self.notice(
                        f"waiting up to {self.wait_seconds:.0f} s: a load or a dbt "
                        f"build is writing the live warehouse"
                    )
                    told = True
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 2.0)


def run_and_print(
    session: Session, sql: str, out: TextIO, *, max_rows: int = 40, csv: bool = False
) -> bool:
    """Run one statement for the prompt; an error is printed as one ``Error:`` line and the
    prompt goes on. True if it ran."""
    try:
        out.write(session.run(sql, max_rows=max_rows, csv=csv))
        return True
    except (Refused, LiveBusy) as error:
        out.write(f"Error: {error}\n")
    except duckdb.Error as error:
        out.write(f"Error: {one_line(error)}\n")
    return False


def command(session: Session, line: str, out: TextIO) -> bool:
    """Run a dot-command; False means quit."""
    name, _, arg = line.strip().partition(" ")
    if name in {".quit", ".exit"}:
        return False
    if name == ".help":
        out.write(HELP + "\n")
    elif name == ".tables":
        run_and_print(session, TABLES_SQL, out, max_rows=500)
    elif name == ".schema" and arg.strip():
        run_and_print(session, f"describe {arg.strip().rstrip(';')}", out, max_rows=500)
    else:
        out.write(f"unknown command {line.strip()!r}; .help lists them\n")
    return True


def repl(session: Session, *, inp: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    interactive = inp.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        what = (
            "live warehouse, opened read-only for each statement"
            if session.live
            else "read-only snapshot"
        )
        out.write(f"returnwatch sql — {what} {session.path}\n{HELP}\n")
    buffer: list[str] = []
    while True:
        prompt = ("...> " if buffer else "sql> ") if interactive else ""
        try:
            line = input(prompt) if interactive else inp.readline()
        except EOFError:
            break
        if not interactive and line == "":
            break
        line = line.rstrip("\n")
        if not buffer and line.strip().startswith("."):
            if not command(session, line, out):
                break
            continue
        buffer.append(line)
        text = "\n".join(buffer).strip()
        if not text.endswith(";"):
            continue
        buffer.clear()
        run_and_print(session, text, out)
    if buffer and "".join(buffer).strip():
        run_and_print(session, "\n".join(buffer), out)
