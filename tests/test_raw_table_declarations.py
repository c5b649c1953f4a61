"""One declaration per raw table, and everything else checked against it.

A raw table's columns are written in the source module's ``RAW_DDL`` (names, types, NOT NULL,
comments): that is the declaration. The dbt source that documents the table for analysts and
the Great Expectations suite that checks a parsed file before it is loaded must agree with it,
column for column; the parser's frame is checked against the same table when a file is loaded
(``warehouse.load_file``). A column added in one place and forgotten in another fails here,
not in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from returnwatch import sources
from returnwatch.warehouse import RAW_DDL as WAREHOUSE_RAW_DDL

ROOT = Path(__file__).resolve().parents[1]
STAGING = ROOT / "dbt_project" / "models" / "staging"
EXPECTATIONS = ROOT / "expectations"
# Added at load time, not by the parser: the file's sha256 and its publication date.
LOAD_COLUMNS = {"source_file", "vintage"}


def declared_columns() -> dict[str, list[str]]:
    """Raw table -> its columns, as the DDL creates them."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for statement in WAREHOUSE_RAW_DDL + sources.raw_ddl():
        con.execute(statement)
    tables = [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()
    ]
    return {
        table: [row[0] for row in con.execute(f"DESCRIBE raw.{table}").fetchall()]
        for table in tables
    }


def dbt_source_columns() -> dict[str, list[str]]:
    """Raw table -> the columns its dbt source documents."""
    documented: dict[str, list[str]] = {}
    for path in STAGING.glob("*/_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            if source.get("schema", source["name"]) != "raw":
                continue
            for table in source["tables"]:
                documented[table["name"]] = [c["name"] for c in table.get("columns", [])]
    return documented


def file_kinds() -> list[tuple[str, object]]:
    return [
        (source, kind)
        for source in sources.SOURCE_MODULES
        for kind in sources.module(source).KINDS.values()
    ]


DECLARED = declared_columns()


@pytest.mark.parametrize("table", sorted(DECLARED))
def test_the_dbt_source_documents_every_declared_column(table: str) -> None:
    documented = dbt_source_columns()
    assert table in documented, f"raw.{table} has no dbt source: analysts cannot find it"
    assert sorted(documented[table]) == sorted(DECLARED[table]), (
        f"raw.{table}: dbt source columns differ from the DDL; "
        f"only in DDL {sorted(set(DECLARED[table]) - set(documented[table]))}, "
        f"only in dbt {sorted(set(documented[table]) - set(DECLARED[table]))}"
    )


def test_every_dbt_raw_source_is_a_declared_table() -> None:
    assert sorted(set(dbt_source_columns()) - set(DECLARED)) == []


def derived_columns(kind, table: str) -> set[str]:
    """Columns the kind's ``prepare`` adds for its suite (checked, never loaded)."""
    if kind.prepare is None:
        return set()
    import pandas as pd

    empty = pd.DataFrame({column: pd.Series(dtype="object") for column in DECLARED[table]})
    if "month" in empty:  # prepare steps read it as a date
        empty["month"] = pd.Series(dtype="datetime64[ns]")
    return set(kind.prepare(empty).columns) - set(empty.columns)


@pytest.mark.parametrize(("source", "kind"), file_kinds(), ids=lambda v: getattr(v, "kind", v))
def test_the_suite_checks_the_declared_columns(source: str, kind) -> None:
    suite = json.loads((EXPECTATIONS / f"{kind.suite}.json").read_text())
    parsed_columns = set(DECLARED[kind.raw_table]) - LOAD_COLUMNS
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_table_columns_to_match_set":
            assert sorted(expectation["kwargs"]["column_set"]) == sorted(parsed_columns), (
                f"{kind.suite}: the suite's columns differ from raw.{kind.raw_table}'s "
                f"(less source_file and vintage)"
            )
    checkable = parsed_columns | derived_columns(kind, kind.raw_table)
    for expectation in suite["expectations"]:
        for column in (
            expectation["kwargs"].get("column"),
            *expectation["kwargs"].get("column_list", ()),
        ):
            assert column is None or column in checkable, (
                f"{kind.suite}: {expectation['type']} names {column!r}, "
                f"not a column of raw.{kind.raw_table} nor one its prepare step adds"
            )
