"""The DDL of the warehouse's ``monitor`` schema, in one place below its users.

``warehouse.init()`` creates these tables next to the raw layer's, and the monitors
(``monitor.store``) and alerts write them; keeping the statements here, importing nothing from
returnwatch, lets the warehouse create them without depending on the monitors that depend on
it (tests/test_import_layers.py). What each table means: ``monitor/store.py``.
"""

from __future__ import annotations

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

# Added when alert text moved out of the monitors (additive): what an alert is about, as the
# monitor saw it (the incident, the finding, what resolved it), from which ``alerts.compose``
# renders the message. NULL on rows queued by an older version (their text is already final).
MONITOR_DDL.append("ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS facts JSON")

# The watchdog re-records a condition only when it changes; each later run that sees it
# unchanged moves this (monitor/watchdog.py). NULL: seen only at run_at.
MONITOR_DDL.append("ALTER TABLE monitor.findings ADD COLUMN IF NOT EXISTS last_seen_at TIMESTAMPTZ")
