"""The ``monitor`` schema of the warehouse: its tables and the few writes other code shares.

What this module owns:

- ``MONITOR_DDL``: the monitor tables. ``returnwatch.warehouse.init()`` executes it next to the
  raw layer's DDL, so every writer sees the same schema.
- ``record_findings()``: the one way findings get into ``monitor.findings`` (the validation code
  and every monitor use it).
- ``enqueue_alert()``: the one way a monitor queues an alert (``monitor.alerts``).
- ``transaction()``: a transaction that joins the caller's if one is already open, so
  ``process_findings`` can be atomic on its own and inside a bigger unit of work.

Tables, and why they look like this:

- ``monitor.findings``: one row per observation per run. ``finding_id`` is derived from the run
  and the observation, so recording the same run twice adds nothing.
- ``monitor.incidents``: one row per incident; at most one ``open`` row per ``incident_key``
  (enforced by ``monitor.incidents``, the only writer; DuckDB has no partial unique index).
  ``incident_id`` is derived from the key and the run that opened it, so re-running that run
  cannot open a second incident. ``slack_channel``/``slack_ts`` are the thread root for updates.
- ``monitor.alerts``: alerts as the monitors queue them, in the transaction that moves their
  incident (``alert_id`` is the idempotency key, ``<incident_id>:<event>``, so enqueueing
  twice is a no-op). The outbox proper is a separate file (``alerts.outbox``), where
  ``alerts.handoff`` moves each new row, composed, after the commit; it then writes the
  delivery state back here, so this table is also the outbox's copy for analysts.
- ``monitor.runs``: bookkeeping of each monitor run (latest execution per run_id).
- ``monitor.source_freshness``: what freshness saw for each source at each run (history; the
  newest row per source is the current state).
- ``monitor.judged``: per (monitor, series), the newest period the data monitors (anomalies,
  rules, revisions) have judged, so a run judges only what is new and a backfill or catch-up
  never pages about old periods.

No CHECK constraints on the value lists (states, events, kinds): DuckDB cannot alter a
constraint, and later monitors add kinds and events. The allowed values are written next to
each column and enforced by the code that writes them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from returnwatch.duck import scalar
from returnwatch.monitor.findings import Finding, details_json

if TYPE_CHECKING:
    import duckdb

MONITOR_DDL: list[str] = [
    "CREATE SCHEMA IF NOT EXISTS monitor",
    # Creation order of alerts: created_at can tie inside one transaction, a sequence cannot.
    "CREATE SEQUENCE IF NOT EXISTS monitor.alert_seq START 1",
    """
    CREATE TABLE IF NOT EXISTS monitor.findings (
        finding_id   VARCHAR PRIMARY KEY,   -- hash of run_id + monitor, kind, source, series, period, message
        run_id       VARCHAR NOT NULL,      -- the run that made the observation (e.g. 'monitor/scheduled__...')
        run_at       TIMESTAMPTZ NOT NULL,  -- the moment the run stands for (logical time), not the wall clock
        recorded_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,  -- wall clock of the insert
        monitor      VARCHAR NOT NULL,      -- freshness, quality, ingest, ... (later: anomaly, revision, discrepancy)
        kind         VARCHAR NOT NULL,      -- e.g. freshness_late, freshness_stopped, source_unreachable, same_file_again
        source       VARCHAR NOT NULL,      -- key in config/sources.yaml
        series       VARCHAR NOT NULL,      -- what was observed within the monitor; (monitor, series) = incident key
        severity     VARCHAR NOT NULL,      -- info (recorded only) / warning / critical
        period       VARCHAR,               -- data period the finding is about (ISO date or month)
        value        DOUBLE,                -- the measured number (e.g. publishing days missed)
        expected     VARCHAR,               -- what was expected instead (e.g. the newest period due)
        message      VARCHAR NOT NULL,      -- one line a person can read
        details      JSON                   -- everything else the monitor knew (thresholds, checks, dates)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitor.incidents (
        incident_id      VARCHAR PRIMARY KEY,  -- hash of incident_key + the run that opened it
        incident_key     VARCHAR NOT NULL,     -- monitor || ':' || series; one open incident per key
        monitor          VARCHAR NOT NULL,
        series           VARCHAR NOT NULL,
        source           VARCHAR NOT NULL,
        kind             VARCHAR NOT NULL,     -- kind of the latest finding
        state            VARCHAR NOT NULL,     -- open / resolved
        severity         VARCHAR NOT NULL,     -- severity of the latest finding: warning / critical
        max_severity     VARCHAR NOT NULL,     -- highest severity seen while open
        audience         VARCHAR NOT NULL,     -- who is told: advocates / ops (config/alerts.yaml)
        opened_at        TIMESTAMPTZ NOT NULL, -- run_at of the opening run
        opened_run_id    VARCHAR NOT NULL,
        updated_at       TIMESTAMPTZ NOT NULL, -- run_at of the latest run that evaluated it
        updated_run_id   VARCHAR NOT NULL,
        resolved_at      TIMESTAMPTZ,          -- run_at of the run that found the problem gone
        resolved_run_id  VARCHAR,
        first_finding_id VARCHAR NOT NULL,     -- -> monitor.findings
        last_finding_id  VARCHAR NOT NULL,     -- -> monitor.findings
        summary          VARCHAR NOT NULL,     -- latest finding's message
        slack_channel    VARCHAR,              -- channel id Slack answered with for the opening message
        slack_ts         VARCHAR               -- ts of the opening message: the incident's thread
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitor.alerts (
        alert_id        VARCHAR PRIMARY KEY,   -- idempotency key: '<incident_id>:<event>' (or task-failure key)
        seq             BIGINT NOT NULL DEFAULT nextval('monitor.alert_seq'),  -- creation order
        incident_id     VARCHAR,               -- NULL for alerts about a failed task
        event           VARCHAR NOT NULL,      -- opened / updated / resolved / task_failed
        audience        VARCHAR NOT NULL,      -- advocates / ops
        channel         VARCHAR,               -- Slack channel from config/alerts.yaml at enqueue time
        text            VARCHAR NOT NULL,      -- plain-text version (notifications, console, this table)
        blocks          JSON NOT NULL,         -- Slack Block Kit blocks
        status          VARCHAR NOT NULL,      -- pending / sent / failed / unknown / suppressed
        attempts        INTEGER NOT NULL DEFAULT 0,
        run_id          VARCHAR,               -- run that enqueued it
        created_at      TIMESTAMPTZ NOT NULL,  -- wall clock of the enqueue
        last_attempt_at TIMESTAMPTZ,
        sent_at         TIMESTAMPTZ,
        delivered_via   VARCHAR,               -- slack / console
        slack_channel   VARCHAR,               -- channel id Slack answered with
        slack_ts        VARCHAR,               -- ts of the posted message
        thread_ts       VARCHAR,               -- thread it was posted in (the incident's opening message)
        last_error      VARCHAR                -- last delivery error, secrets scrubbed
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitor.runs (
        run_id              VARCHAR PRIMARY KEY,  -- latest execution of each run id
        run_at              TIMESTAMPTZ NOT NULL, -- the moment the run judged (logical time)
        started_at          TIMESTAMPTZ NOT NULL, -- wall clock
        finished_at         TIMESTAMPTZ,
        status              VARCHAR NOT NULL,     -- succeeded / failed
        sources             JSON,                 -- sources evaluated
        findings            INTEGER,              -- findings recorded (all severities)
        incidents_opened    INTEGER,
        incidents_resolved  INTEGER,
        alerts_enqueued     INTEGER,
        error               VARCHAR               -- first line of the error when failed
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitor.source_freshness (
        source                    VARCHAR NOT NULL,
        run_id                    VARCHAR NOT NULL,
        run_at                    TIMESTAMPTZ NOT NULL,  -- the moment judged (logical time)
        evaluated_at              TIMESTAMPTZ NOT NULL,  -- wall clock
        state                     VARCHAR NOT NULL,      -- fresh / late / stopped / no_data
        newest_period             DATE,                  -- newest period in raw data known at run_at
        expected_period           DATE,                  -- newest period the calendar says is due
        missed_publishing_days    INTEGER NOT NULL,      -- periods due but absent, after newest_period
        missed_periods            JSON,                  -- those periods (ISO dates)
        late_after_missed         INTEGER NOT NULL,      -- thresholds in force (config/monitors.yaml)
        stopped_after_missed      INTEGER NOT NULL,
        last_check_at             TIMESTAMPTZ,           -- newest fetch check in the archive manifest
        last_check_outcome        VARCHAR,               -- new / unchanged / not_modified / failed
        last_new_file_at          TIMESTAMPTZ,           -- newest check that brought new bytes
        consecutive_failed_checks INTEGER NOT NULL,
        checks_since_new_file     INTEGER NOT NULL,
        finding_kind              VARCHAR,               -- finding raised this run, NULL when none
        PRIMARY KEY (source, run_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitor.revisions (
        revision_id  VARCHAR PRIMARY KEY,   -- hash of new_file + raw_table + figure + key
        source       VARCHAR NOT NULL,
        raw_table    VARCHAR NOT NULL,      -- raw.<table> both files were loaded into
        figure       VARCHAR NOT NULL,      -- the value column that changed
        key          VARCHAR NOT NULL,      -- JSON object of the key columns, e.g. {"month": "2021-01-01"}
        old_value    DOUBLE,                -- NULL: the older vintage left it empty
        new_value    DOUBLE,                -- NULL: the newer vintage left it empty
        change       DOUBLE,                -- new - old (NULL when either is empty)
        old_vintage  DATE NOT NULL,
        new_vintage  DATE NOT NULL,
        old_file     VARCHAR NOT NULL,      -- sha256 of the older file (raw.files)
        new_file     VARCHAR NOT NULL,      -- sha256 of the newer file
        run_id       VARCHAR NOT NULL,
        detected_at  TIMESTAMPTZ NOT NULL
    )
    """,
]

# Added with the data monitors (additive: existing warehouses get it on their next init).
MONITOR_DDL.append(
    """
    CREATE TABLE IF NOT EXISTS monitor.judged (
        monitor    VARCHAR NOT NULL,      -- anomaly / policy_rule / revision
        series     VARCHAR NOT NULL,      -- as in monitor.findings; (monitor, series) = incident key
        period     VARCHAR NOT NULL,      -- newest period judged ('2025-05', '2025-12-21'); revision: newest detected_at judged
        previous   VARCHAR,               -- the value before run_id moved it: a re-run of that run judges from here again
        run_id     VARCHAR NOT NULL,      -- the run that last moved it
        run_at     TIMESTAMPTZ NOT NULL,  -- that run's logical time
        judged_at  TIMESTAMPTZ NOT NULL,  -- wall clock
        PRIMARY KEY (monitor, series)
    )
    """
)

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
    with transaction(con):
        for finding in findings:
            finding_id = finding.finding_id(run_id)
            ids.append(finding_id)
            con.execute(
                """
                INSERT INTO monitor.findings (finding_id, run_id, run_at, monitor, kind, source,
                    series, severity, period, value, expected, message, details)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (finding_id) DO NOTHING
                """,
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
    return ids


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
) -> bool:
    """Add a ``pending`` alert to the outbox; False (and no change) if ``alert_id`` exists."""
    if event not in ALERT_EVENTS:
        raise ValueError(f"alert {alert_id}: event {event!r} is not one of {ALERT_EVENTS}")
    exists = scalar(con, "SELECT count(*) FROM monitor.alerts WHERE alert_id = ?", [alert_id])
    if exists:
        return False
    con.execute(
        """
        INSERT INTO monitor.alerts (alert_id, incident_id, event, audience, channel, text,
            blocks, status, attempts, run_id, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)
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
        ],
    )
    return True


def rows_as_dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of the last query as dicts (column name -> value)."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
