"""``returnwatch sql``: an SQL prompt on the analysts' read-only snapshot of the warehouse.

The snapshot (``data/snapshot/warehouse.duckdb``) is replaced atomically after each successful
build, so this never meets the pipeline's write lock and never shows a half-built state. The
DuckDB command-line shell on PyPI lags DuckDB 2.0 (it cannot open these files), so this is a
small prompt over the Python client: statements end with ``;``, results print as DuckDB's
boxed tables, ``.tables`` lists the relations, ``.schema NAME`` shows columns, ``.quit`` leaves.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import duckdb

HELP = """\
Statements end with ';' and may span lines. Commands:
  .tables            the schemas' tables and views (marts.*, staging.*, raw.*, monitor.*)
  .schema NAME       the columns of NAME (e.g. .schema marts.hhs_uc_daily)
  .help              this text
  .quit              leave (Ctrl-D works too)"""

TABLES_SQL = """
    select table_schema || '.' || table_name as name, table_type as type
    from information_schema.tables
    where table_schema not in ('information_schema', 'pg_catalog')
    order by table_schema, table_name"""


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise FileNotFoundError(f"no snapshot at {path}: run `make demo` or `make dbt` first")
    return duckdb.connect(str(path), read_only=True)


def run_statement(con: duckdb.DuckDBPyConnection, sql: str, out: TextIO, *,
                  max_rows: int = 40, csv: bool = False) -> None:
    relation = con.sql(sql)
    if relation is None:  # a statement without a result (SET, PRAGMA ...)
        return
    if csv:
        relation.to_df().to_csv(out, index=False)
    else:
        out.write(relation.__str__() if max_rows <= 0 else _shown(relation, max_rows))
        out.write("\n")


def _shown(relation: duckdb.DuckDBPyRelation, max_rows: int) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        relation.show(max_rows=max_rows, max_width=200)
    return buffer.getvalue().rstrip("\n")


def command(con: duckdb.DuckDBPyConnection, line: str, out: TextIO) -> bool:
    """Run a dot-command; False means quit."""
    name, _, arg = line.strip().partition(" ")
    if name in {".quit", ".exit"}:
        return False
    if name == ".help":
        out.write(HELP + "\n")
    elif name == ".tables":
        run_statement(con, TABLES_SQL, out, max_rows=500)
    elif name == ".schema" and arg.strip():
        run_statement(con, f"describe {arg.strip().rstrip(';')}", out, max_rows=500)
    else:
        out.write(f"unknown command {line.strip()!r}; .help lists them\n")
    return True


def repl(con: duckdb.DuckDBPyConnection, path: Path, *, inp: TextIO = sys.stdin,
         out: TextIO = sys.stdout) -> None:
    interactive = inp.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        out.write(f"returnwatch sql — read-only snapshot {path}\n{HELP}\n")
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
            if not command(con, line, out):
                break
            continue
        buffer.append(line)
        text = "\n".join(buffer).strip()
        if not text.endswith(";"):
            continue
        buffer.clear()
        try:
            run_statement(con, text, out)
        except duckdb.Error as error:
            out.write(f"Error: {error}\n")
    if buffer and "".join(buffer).strip():
        try:
            run_statement(con, "\n".join(buffer), out)
        except duckdb.Error as error:
            out.write(f"Error: {error}\n")
