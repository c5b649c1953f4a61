"""Revisions: a figure a publisher changed between two vintages of its files.

Every vintage of every file stays in ``raw.*``. When a new file is loaded, each of its figures
(``FileKind.value_columns`` per ``FileKind.key_columns``) is compared with the same figure in
the newest *older* vintage that has it; every difference becomes a ``monitor.revisions`` row
(key, old, new, both vintages, both files). This runs inside the load's transaction, so rows
and revisions commit together. Whether a revision matters (a settled figure, beyond a
tolerance) is the revision monitor's call, not this module's: here every change is recorded.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from returnwatch.sources.base import FileKind


def record(
    con: duckdb.DuckDBPyConnection,
    kind: FileKind,
    *,
    source: str,
    sha256: str,
    vintage: dt.date,
    run_id: str,
) -> int:
    """Write the revisions the file ``sha256`` (already inserted) makes; return how many."""
    if not kind.key_columns or not kind.value_columns:
        return 0
    table = f"raw.{kind.raw_table}"
    keys = ", ".join(f'"{c}"' for c in kind.key_columns)
    key_json = (
        "to_json({" + ", ".join(f"'{c}': new.\"{c}\"" for c in kind.key_columns) + "})::VARCHAR"
    )
    # Keys repeated inside one file: either summed (finer rows of one figure) or left out
    # (a file's own conflicting duplicates are its parser's finding, not a revision).
    having = "HAVING count(*) = 1" if kind.unique_keys_only else ""
    total = 0
    for figure in kind.value_columns:
        value = (
            f'sum("{figure}")::DOUBLE'
            if not kind.unique_keys_only
            else f'any_value("{figure}")::DOUBLE'
        )
        inserted = con.execute(
            f"""
            INSERT INTO monitor.revisions
            WITH per_file AS (
                SELECT t.source_file, f.vintage, f.loaded_at, {keys}, {value} AS v
                FROM {table} t JOIN raw.files f ON f.sha256 = t.source_file
                GROUP BY ALL {having}
            ),
            new AS (SELECT * FROM per_file WHERE source_file = $sha),
            older AS (
                SELECT * FROM per_file
                WHERE source_file <> $sha AND vintage <= $vintage
                QUALIFY row_number() OVER (PARTITION BY {keys}
                                           ORDER BY vintage DESC, loaded_at DESC) = 1
            )
            SELECT md5(concat_ws('|', $sha, $table, $figure, {key_json})),
                   $source, $table, $figure, {key_json},
                   older.v, new.v, new.v - older.v, older.vintage, new.vintage,
                   older.source_file, new.source_file, $run_id, now()
            FROM new JOIN older USING ({keys})
            WHERE new.v IS DISTINCT FROM older.v
            ON CONFLICT DO NOTHING
        """,
            {
                "sha": sha256,
                "vintage": vintage,
                "table": table,
                "figure": figure,
                "source": source,
                "run_id": run_id,
            },
        ).fetchone()
        total += int(inserted[0]) if inserted else 0
    return total
