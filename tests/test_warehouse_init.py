"""``warehouse.init``: the raw and monitor schemas are created when something is missing, and
nothing is run when everything its statements create is already there (every load opens the
warehouse through it, so re-running ~30 statements each time was a load's main cost)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from returnwatch import warehouse


class Recording:
    """A connection that notes the statements run through it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.statements: list[str] = []

    def execute(self, sql: str, *args: Any) -> Any:
        self.statements.append(" ".join(sql.split()))
        return self.con.execute(sql, *args)


def ddl_effect(con: duckdb.DuckDBPyConnection) -> set[tuple[Any, ...]]:
    """Tables, columns (with type and default), sequences and comments of raw and monitor."""
    return set(
        con.execute(
            "SELECT schema_name, table_name, column_name, data_type, column_default, comment "
            "FROM duckdb_columns() WHERE schema_name IN ('raw', 'monitor') "
            "UNION ALL SELECT schema_name, table_name, NULL, NULL, NULL, comment "
            "FROM duckdb_tables() WHERE schema_name IN ('raw', 'monitor') "
            "UNION ALL SELECT schema_name, sequence_name, NULL, NULL, NULL, comment "
            "FROM duckdb_sequences() WHERE schema_name IN ('raw', 'monitor')"
        ).fetchall()
    )


@pytest.fixture
def con(tmp_path: Path) -> Any:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def test_a_new_warehouse_gets_every_statement_and_a_current_one_none(con) -> None:
    first = Recording(con)
    warehouse.init(first)  # type: ignore[arg-type]
    ddl_run = [s for s in first.statements if not s.startswith("SELECT")]
    assert len(ddl_run) == len(warehouse._ddl())
    created = ddl_effect(con)

    again = Recording(con)
    warehouse.init(again)  # type: ignore[arg-type]
    ddl_run = [s for s in again.statements if not s.startswith("SELECT")]
    assert ddl_run == []
    assert ddl_effect(con) == created

    # Running every statement anyway changes nothing: skipping them was no loss.
    for statement in warehouse._ddl():
        con.execute(statement)
    assert ddl_effect(con) == created


@pytest.mark.parametrize(
    "damage",
    [
        "DROP TABLE monitor.judged",
        "ALTER TABLE raw.files DROP COLUMN constructed",
        "ALTER TABLE monitor.findings DROP COLUMN last_seen_at",
        "DROP SEQUENCE monitor.alert_seq CASCADE",
    ],
)
def test_something_missing_is_created_again(con, damage: str) -> None:
    warehouse.init(con)
    created = ddl_effect(con)
    con.execute(damage)
    assert ddl_effect(con) != created

    warehouse.init(con)
    assert ddl_effect(con) == created


def test_a_statement_added_to_the_ddl_reaches_an_existing_warehouse(con, monkeypatch) -> None:
    warehouse.init(con)
    added = [
        *warehouse.RAW_DDL,
        "ALTER TABLE raw.files ADD COLUMN IF NOT EXISTS note VARCHAR",
        "CREATE TABLE IF NOT EXISTS raw.later (x INTEGER)",
    ]
    monkeypatch.setattr(warehouse, "RAW_DDL", added)
    warehouse.init(con)
    columns = {row[0] for row in con.execute("DESCRIBE raw.files").fetchall()}
    assert "note" in columns
    assert warehouse.table_exists(con, "raw.later")


def test_a_comment_changed_in_the_ddl_reaches_an_existing_warehouse(con, monkeypatch) -> None:
    warehouse.init(con)
    warehouse.init(con)  # the comments are now known to be current in this process
    changed = [*warehouse.RAW_DDL, "COMMENT ON TABLE raw.files IS 'one row per loaded file'"]
    monkeypatch.setattr(warehouse, "RAW_DDL", changed)
    warehouse.init(con)
    [(comment,)] = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = 'files'"
    ).fetchall()
    assert comment == "one row per loaded file"


def test_a_comment_lost_is_set_again_by_the_first_init_of_a_process(con, monkeypatch) -> None:
    warehouse.init(con)
    con.execute("COMMENT ON TABLE raw.segob_presented_by_nationality IS NULL")
    monkeypatch.setattr(warehouse, "_COMMENTS_SEEN", set())  # as a new process
    warehouse.init(con)
    [(comment,)] = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE table_name = 'segob_presented_by_nationality'"
    ).fetchall()
    assert comment and "3.1.1" in comment


def test_other_schemas_do_not_make_init_run(con) -> None:
    warehouse.init(con)
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.some_model AS SELECT 1 AS x")
    con.execute("CREATE TABLE raw.extra_by_hand (x INTEGER)")
    again = Recording(con)
    warehouse.init(again)  # type: ignore[arg-type]
    assert [s for s in again.statements if not s.startswith("SELECT")] == []
