"""Small typed helpers over DuckDB's Python API, shared by the warehouse, monitor and alerts.

This module sits at the bottom of the import graph: it imports nothing from returnwatch, so any
module may use it without tying itself to another (tests/test_import_layers.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing this module stays free: DAG files parse without loading DuckDB
    import duckdb


def scalar(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> Any:
    """The first column of the first row of a query that always returns a row.

    For aggregates such as ``count(*)`` or ``max(...)``, which yield exactly one row even over
    an empty table (``max`` then yields NULL, returned as ``None``). DuckDB's ``fetchone()`` is
    typed ``tuple | None``; a query that returns no row here is a programming error, so it
    raises rather than passing ``None`` on as if it were the value.
    """
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise LookupError(f"query returned no row, expected exactly one: {sql}")
    return row[0]
