"""`returnwatch sql`: statements across lines, dot-commands, errors that do not end the session,
and the file opened read-only."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pytest

from returnwatch import sql_shell


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts; create table marts.t as select 1 as a, 'x' as b")
    con.close()
    return path


def session(path: Path, text: str) -> str:
    out = io.StringIO()
    con = sql_shell.connect(path)
    try:
        sql_shell.repl(con, path, inp=io.StringIO(text), out=out)
    finally:
        con.close()
    return out.getvalue()


def test_statements_commands_and_errors(snapshot: Path) -> None:
    text = session(snapshot, ".tables\nselect a + 41 as answer\nfrom marts.t;\nselect nope;\n"
                             ".schema marts.t\n.quit\nselect 'never run';\n")
    assert "marts.t" in text and "42" in text
    assert "Error:" in text and "nope" in text  # the error is shown, the session goes on
    assert "varchar" in text.lower()  # .schema ran after the error
    assert "never run" not in text


def test_the_snapshot_is_opened_read_only(snapshot: Path) -> None:
    text = session(snapshot, "create table marts.u as select 1;\n")
    assert "read-only" in text.lower()


def test_a_missing_snapshot_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make demo"):
        sql_shell.connect(tmp_path / "absent.duckdb")
