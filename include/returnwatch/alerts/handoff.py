"""Between the warehouse and the outbox: handing alerts over, and the warehouse's copy.

What this module owns:

- ``hand_off(con, box)``: alerts the monitors queued in ``monitor.alerts`` that the outbox
  lacks are composed (``alerts.compose``) and inserted, one SQLite transaction each;
  idempotent on ``alert_id``, so a crash between the two stores is finished by the next call;
- the one-time move of an older installation's outbox from the warehouse (``_migrate``);
- ``copy_to_warehouse(con, box)``: the outbox's changes written back into ``monitor.alerts``
  so analysts, the summary and the snapshot see what was sent.

Details: docs/internals.md#alerts-hand-off-between-warehouse-and-outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from returnwatch.alerts import outbox

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

# The warehouse's copy of the outbox (``monitor.alerts``) carries the delivery columns too.
ALERTS_DDL: list[str] = [
    # When a pending alert may next be tried (backoff after a failure, quiet hours, digest).
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMPTZ",
    # The last failure concerned Slack as a whole (down, rate limited): later rows wait too.
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS last_error_global BOOLEAN",
    # Text/blocks rendered with every finding of the run, vintage, status line (hand-off).
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS composed_at TIMESTAMPTZ",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS severity VARCHAR",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS suppressed_reason VARCHAR",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS chart_file_id VARCHAR",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS chart_error VARCHAR",
    # Parent message's status line updated (chat.update) after this reply.
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS parent_updated_at TIMESTAMPTZ",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS parent_update_error VARCHAR",
    # Digest message that carried this alert (its alert_id).
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS digest_id VARCHAR",
    # How far the copy has followed the outbox (its ``rev``), per outbox file.
    """
    CREATE TABLE IF NOT EXISTS monitor.outbox_copy (
        outbox_id  VARCHAR PRIMARY KEY,   -- meta.outbox_id of data/outbox.sqlite3
        rev        BIGINT NOT NULL,       -- newest outbox change copied into monitor.alerts
        copied_at  TIMESTAMPTZ NOT NULL
    )
    """,
]

MIGRATED = "migrated_from_warehouse"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The monitor schema (``warehouse.init``) plus the delivery columns of the copy."""
    from returnwatch import warehouse

    if not warehouse.table_exists(con, "monitor.alerts"):
        warehouse.init(con)
    for statement in ALERTS_DDL:
        con.execute(statement)


def hand_off(
    con: duckdb.DuckDBPyConnection, box: outbox.Outbox, *, now: dt.datetime | None = None
) -> list[str]:
    """Move the warehouse's new pending alerts into the outbox, composed; returns their ids.

    Must run after the monitors' transaction is committed (it composes from what they wrote).
    """
    ensure_schema(con)
    moved = _migrate(con, box, now=now) if box.meta(MIGRATED) is None else []
    from returnwatch.monitor.store import rows_as_dicts

    rows = rows_as_dicts(
        con.execute("SELECT * FROM monitor.alerts WHERE status = 'pending' ORDER BY seq")
    )
    return moved + _insert(con, box, rows, now=now)


def _insert(
    con: duckdb.DuckDBPyConnection,
    box: outbox.Outbox,
    rows: list[dict[str, Any]],
    *,
    now: dt.datetime | None,
) -> list[str]:
    from returnwatch.alerts.compose import compose

    if not rows:
        return []
    known = {
        r[0]
        for r in box.execute(
            f"SELECT alert_id FROM alerts WHERE alert_id {outbox.IN_IDS}",
            [outbox.ids_param([r["alert_id"] for r in rows])],
        ).fetchall()
    }
    added = []
    for row in rows:
        if row["alert_id"] in known:
            continue
        values = {c: row.get(c) for c in outbox.ALERT_COLUMNS if c != "seq"}
        values["blocks"] = _json_text(values["blocks"])
        values.update(_incident_facts(con, row["incident_id"]))
        chart, problem = None, None
        if row["status"] == "pending" and row.get("composed_at") is None:
            composed, chart, problem = compose(con, box, row, now=now or dt.datetime.now(dt.UTC))
            values.update(composed)
        with box.transaction():  # the row and its chart, or neither
            if box.insert_alert(values) and chart is not None:
                box.execute(
                    "INSERT OR REPLACE INTO alert_charts VALUES (?, ?, ?, ?, ?)",
                    [row["alert_id"], chart[0], chart[1], chart[2], dt.datetime.now(dt.UTC)],
                )
        if problem is not None:  # after the alert itself, so it goes out first
            outbox.notify_ops(box, **problem, now=now)
        added.append(row["alert_id"])
    if added:
        log.info("alerts: %d handed from the warehouse to the outbox", len(added))
    return added


def _incident_facts(con: duckdb.DuckDBPyConnection, incident_id: str | None) -> dict[str, Any]:
    """The incident's state as the outbox keeps it (for the thread's status line)."""
    found = (
        con.execute(
            "SELECT state, opened_at, resolved_at FROM monitor.incidents WHERE incident_id = ?",
            [incident_id],
        ).fetchone()
        if incident_id
        else None
    )
    state, opened, resolved = found or (None, None, None)
    return {"incident_state": state, "incident_opened_at": opened, "incident_resolved_at": resolved}


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value or [], ensure_ascii=False)


def _migrate(
    con: duckdb.DuckDBPyConnection, box: outbox.Outbox, *, now: dt.datetime | None
) -> list[str]:
    """Once per outbox: an older installation's outbox, from the warehouse into this file."""
    from returnwatch import warehouse
    from returnwatch.monitor.store import rows_as_dicts

    rows = rows_as_dicts(con.execute("SELECT * FROM monitor.alerts ORDER BY seq"))
    moved = _insert(con, box, rows, now=now)
    with box.transaction():
        if warehouse.table_exists(con, "monitor.alert_charts"):
            for chart in con.execute(
                "SELECT alert_id, png, width, height, created_at FROM monitor.alert_charts"
            ).fetchall():
                box.execute("INSERT OR IGNORE INTO alert_charts VALUES (?, ?, ?, ?, ?)", chart)
        if warehouse.table_exists(con, "monitor.incident_controls"):
            for control in con.execute(
                "SELECT incident_id, acknowledged_at, acknowledged_by, muted_until, updated_at "
                "FROM monitor.incident_controls"
            ).fetchall():
                box.execute(
                    "INSERT OR IGNORE INTO incident_controls VALUES (?, ?, ?, ?, ?)", control
                )
        for thread in con.execute(
            "SELECT incident_id, slack_channel, slack_ts, incident_id || ':opened' "
            "FROM monitor.incidents WHERE slack_ts IS NOT NULL AND slack_channel IS NOT NULL"
        ).fetchall():
            box.execute("INSERT OR IGNORE INTO threads VALUES (?, ?, ?, ?)", thread)
        box.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [MIGRATED, dt.datetime.now(dt.UTC).isoformat()],
        )
    # Only now (the outbox has them, committed): these live in the outbox from here on.
    con.execute("DROP TABLE IF EXISTS monitor.alert_charts")
    con.execute("DROP TABLE IF EXISTS monitor.incident_controls")
    if moved:
        log.info("alerts: %d alert(s) moved from the warehouse into the outbox", len(moved))
    return moved


def copy_to_warehouse(con: duckdb.DuckDBPyConnection, box: outbox.Outbox) -> int:
    """Write the outbox's changes since the last copy into ``monitor.alerts`` and the
    incidents' thread columns (one warehouse transaction); returns the rows copied."""
    from returnwatch.monitor.store import transaction

    ensure_schema(con)
    outbox_id = box.meta("outbox_id")
    found = con.execute(
        "SELECT rev FROM monitor.outbox_copy WHERE outbox_id = ?", [outbox_id]
    ).fetchone()
    since = int(found[0]) if found else 0
    columns = ", ".join(outbox.ALERT_COLUMNS)
    rows = box.rows(f"SELECT {columns}, rev FROM alerts WHERE rev > ? ORDER BY rev", [since])
    if not rows:
        return 0
    threads = {
        r["incident_id"]: r
        for r in box.rows(
            f"SELECT incident_id, slack_channel, slack_ts FROM threads WHERE incident_id "
            f"{outbox.IN_IDS}",
            [outbox.ids_param(sorted({r["incident_id"] for r in rows if r["incident_id"]}))],
        )
    }
    marks = ", ".join("?" for _ in outbox.ALERT_COLUMNS)
    with transaction(con):
        for row in rows:
            values = [row[c] for c in outbox.ALERT_COLUMNS]
            global_ = outbox.ALERT_COLUMNS.index("last_error_global")
            values[global_] = None if values[global_] is None else bool(values[global_])
            con.execute(
                f"INSERT OR REPLACE INTO monitor.alerts ({columns}) VALUES ({marks})", values
            )
        for incident_id, thread in threads.items():
            con.execute(
                "UPDATE monitor.incidents SET slack_channel = ?, slack_ts = ? "
                "WHERE incident_id = ?",
                [thread["slack_channel"], thread["slack_ts"], incident_id],
            )
        con.execute(
            "INSERT OR REPLACE INTO monitor.outbox_copy VALUES (?, ?, ?)",
            [outbox_id, max(r["rev"] for r in rows), dt.datetime.now(dt.UTC)],
        )
    return len(rows)
