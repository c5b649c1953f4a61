"""The ``monitor`` schema of the warehouse: its tables and the few writes other code shares.

What this module owns:

- ``MONITOR_DDL`` (defined in ``returnwatch.schema``, below this package and the warehouse,
  re-exported here): the monitor tables;
- ``record_findings()``: the one way findings get into ``monitor.findings``;
- ``enqueue_alert()``: the one way a monitor queues an alert's facts (``monitor.alerts``);
- ``transaction()``: a transaction that joins the caller's if one is open.

Ids derived from run and key make every write idempotent; no CHECK constraints on value
lists. Each table and why: docs/internals.md#monitor-the-monitor-schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from returnwatch.duck import scalar
from returnwatch.monitor.findings import Finding, details_json
from returnwatch.schema import MONITOR_DDL  # noqa: F401 - re-exported: the tables' old home

if TYPE_CHECKING:
    import duckdb

# Event names an alert row may carry (see monitor.alerts.event).
# delivery_problem: the outbox telling ops about itself (an alert held as unknown, missing
# Slack scopes, an alert that could not be composed); see alerts/delivery.py.
ALERT_EVENTS = ("opened", "updated", "resolved", "task_failed", "delivery_problem")


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction; joins the caller's transaction when one is already open.

    A caller that groups several steps (a load and its findings) keeps control of commit and
    rollback; a caller that does not gets atomicity here.
    """
    if in_transaction(con):
        yield  # the caller commits or rolls back
        return
    con.begin()
    try:
        yield
        con.commit()
    except BaseException:
        con.rollback()
        raise


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con`` is inside an explicit transaction.

    DuckDB has no flag for it, and a BEGIN inside a transaction fails *and aborts* the open
    transaction, so it cannot be probed by trying. In autocommit mode every statement is its
    own transaction, so two ``txid_current()`` calls differ; inside BEGIN ... COMMIT they agree.
    """
    first = scalar(con, "SELECT txid_current()")
    second = scalar(con, "SELECT txid_current()")
    return first == second


def record_findings(
    con: duckdb.DuckDBPyConnection, findings: Iterable[Finding], run_id: str
) -> list[str]:
    """Insert findings (all severities) into ``monitor.findings``; returns their ids, in order.

    Idempotent: a finding already recorded for this run (same id) is left as it is.
    """
    ids: list[str] = []
    rows: dict[str, list[Any]] = {}  # finding id -> its row; the first of a repeated id wins
    for finding in findings:
        finding_id = finding.finding_id(run_id)
        ids.append(finding_id)
        rows.setdefault(
            finding_id,
            [
                finding_id,
                run_id,
                finding.run_at,
                finding.monitor,
                finding.kind,
                finding.source,
                finding.series,
                finding.severity,
                finding.period,
                finding.value,
                finding.expected,
                finding.message,
                details_json(finding.details),
            ],
        )
    # A few statements of many rows each, not one per finding: a first run records hundreds,
    # and each statement has a fixed cost in DuckDB.
    batch = list(rows.values())
    with transaction(con):
        for start in range(0, len(batch), FINDINGS_PER_STATEMENT):
            chunk = batch[start : start + FINDINGS_PER_STATEMENT]
            placeholders = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            con.execute(
                f"""
                INSERT INTO monitor.findings (finding_id, run_id, run_at, monitor, kind, source,
                    series, severity, period, value, expected, message, details)
                VALUES {placeholders}
                ON CONFLICT (finding_id) DO NOTHING
                """,
                [value for row in chunk for value in row],
            )
    return ids


# Rows per multi-row INSERT of findings (bounds one statement's parameter list).
FINDINGS_PER_STATEMENT = 200


def enqueue_alert(
    con: duckdb.DuckDBPyConnection,
    *,
    alert_id: str,
    incident_id: str | None,
    event: str,
    audience: str,
    channel: str | None,
    text: str,
    blocks: list[dict[str, Any]],
    run_id: str | None,
    facts: dict[str, Any] | None = None,
) -> bool:
    """Queue a ``pending`` alert; False (and no change) if ``alert_id`` exists. ``facts``:
    what it is about, from which ``alerts.compose`` renders the message (``text`` is then
    the monitor's one-line summary, kept for a message that cannot be composed)."""
    if event not in ALERT_EVENTS:
        raise ValueError(f"alert {alert_id}: event {event!r} is not one of {ALERT_EVENTS}")
    exists = scalar(con, "SELECT count(*) FROM monitor.alerts WHERE alert_id = ?", [alert_id])
    if exists:
        return False
    con.execute(
        """
        INSERT INTO monitor.alerts (alert_id, incident_id, event, audience, channel, text,
            blocks, status, attempts, run_id, created_at, facts)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
        """,
        [
            alert_id,
            incident_id,
            event,
            audience,
            channel,
            text,
            json.dumps(blocks, ensure_ascii=False),
            run_id,
            dt.datetime.now(dt.UTC),
            details_json(facts) if facts is not None else None,
        ],
    )
    return True


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every table and view of the warehouse as "schema.table", in one query: a run that
    asks about many tables reads this once (``warehouse.table_exists`` is one query each)."""
    return {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    }


def rows_as_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of the last query as dicts (column name -> value)."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
