"""Monitors: what should exist by now, what is there, and which incidents that opens or closes.

- ``calendar``: publishing calendars, daily and monthly (which periods are due at a moment).
- ``freshness``: freshness of each source, judged from the data and the archive's manifest.
- ``anomalies``, ``rules``: a figure breaking from its own history; a policy rule broken.
- ``revisions``: figures restated between vintages (recorded at load time); ``engine`` runs
  anomalies, rules and the revision monitor, each judging only what it has not judged before
  (``monitor.judged``), so backfills and catch-up runs never page about old periods.
- ``findings``: the ``Finding`` record; ``store``: the ``monitor`` schema and its shared writes.
- ``incidents``: findings -> incidents -> alerts queued in ``monitor.alerts``.

``run_monitors()`` is what the ``monitor`` DAG calls. Importing this package is light (no
pandas, matplotlib or duckdb at import time); the modules load what they need when called.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

FRESHNESS = "freshness"
# Every monitor run_monitors knows, in the order they run.
ALL_MONITORS: tuple[str, ...] = (FRESHNESS, "anomaly", "policy_rule", "revision", "unmarted")


@dataclass
class MonitorReport:
    """What one monitor run saw and did (also returned to Airflow as the task's XCom)."""

    run_id: str
    run_at: dt.datetime
    sources: list[str]
    states: dict[str, str] = field(default_factory=dict)  # source -> fresh/late/...
    # Finding.as_dict() of every finding except history (recorded in monitor.findings only).
    findings: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # alert ids enqueued now
    incidents_opened: int = 0
    incidents_resolved: int = 0
    monitors: list[str] = field(default_factory=list)  # monitors that ran
    evaluated: int = 0  # (monitor, series) keys evaluated
    history_findings: int = 0  # old periods recorded as info (first run, catch-up)
    skipped: list[str] = field(default_factory=list)  # metrics/rules whose table is missing
    seconds: dict[str, float] = field(default_factory=dict)  # evaluation time per monitor

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["run_at"] = self.run_at.isoformat()
        return row


def run_monitors(
    *,
    run_at: dt.datetime,
    run_id: str,
    sources: list[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    archive: Any = None,
    monitors: Iterable[str] | None = None,
) -> MonitorReport:
    """Run the monitors at ``run_at`` and move incidents.

    ``monitors`` defaults to all of ``ALL_MONITORS``: freshness of each source (``sources``
    defaults to every source with a rule in config/monitors.yaml), the anomaly metrics, the
    policy rules and the revision monitor (``monitor.engine``). A metric or rule whose table
    does not exist yet is skipped and named in ``report.skipped``.

    Writes ``monitor.findings``, ``monitor.incidents``, ``monitor.alerts`` (pending),
    ``monitor.source_freshness``, ``monitor.judged`` and ``monitor.runs`` in one transaction.
    Sending the alerts is ``alerts.deliver_pending``'s job (a separate task, so a Slack outage
    never undoes this).
    """
    if con is None:
        from returnwatch import warehouse

        with warehouse.session() as own:
            return run_monitors(
                run_at=run_at,
                run_id=run_id,
                sources=sources,
                con=own,
                archive=archive,
                monitors=monitors,
            )

    import time

    from returnwatch import config
    from returnwatch.monitor import freshness, incidents, store

    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise ValueError(f"run {run_id}: run_at must be time-zone aware, got {run_at!r}")
    wanted = list(ALL_MONITORS if monitors is None else monitors)
    unknown = [m for m in wanted if m not in ALL_MONITORS]
    if unknown:
        raise ValueError(f"unknown monitor(s) {unknown}; known: {list(ALL_MONITORS)}")
    started = dt.datetime.now(dt.UTC)
    rules = freshness.rules()
    names = (list(rules) if sources is None else list(sources)) if FRESHNESS in wanted else []
    for name in names:
        if name not in rules:
            raise config.ConfigError(
                f"source {name!r} has no freshness rule in config/monitors.yaml"
            )
    report = MonitorReport(run_id=run_id, run_at=run_at, sources=names, monitors=wanted)
    states: list[Any] = []
    try:
        if archive is None and names:
            from returnwatch.archive import Archive

            archive = Archive()
        began = time.perf_counter()
        # Which tables exist, read once for every source (freshness only reads).
        tables = store.existing_tables(con) if names else set()
        states = [
            freshness.assess_freshness(
                con,
                name,
                run_at=run_at,
                archive=archive,
                freshness_rule=rules[name],
                tables=tables,
            )
            for name in names
        ]
        if FRESHNESS in wanted:
            report.seconds[FRESHNESS] = round(time.perf_counter() - began, 3)
        found = [s.finding for s in states if s.finding is not None]
        evaluated: dict[tuple[str, str], dict[str, Any]] = {
            (freshness.MONITOR, s.source): {**s.details(), "label": rules[s.source].label}
            for s in states
        }
        data = None
        data_monitors = [m for m in wanted if m != FRESHNESS]
        if data_monitors:
            from returnwatch.monitor import engine

            data = engine.evaluate(con, run_at=run_at, run_id=run_id, monitors=data_monitors)
            found += data.findings
            evaluated.update(data.evaluated)
            report.skipped = data.skipped
            report.seconds.update(data.seconds)
        with store.transaction(con):
            events = incidents.process_findings(
                con, found, run_at=run_at, run_id=run_id, evaluated=evaluated
            )
            for state in states:
                _record_state(con, state, run_id)
            if data is not None:
                engine.record_marks(con, data.marks, run_id=run_id, run_at=run_at)
            report.states = {s.source: s.state for s in states}
            report.findings = [f.as_dict() for f in found if not f.details.get("history")]
            report.history_findings = sum(1 for f in found if f.details.get("history"))
            report.evaluated = len(evaluated)
            report.alerts = [e.alert_id for e in events]
            report.incidents_opened = sum(1 for e in events if e.event == "opened")
            report.incidents_resolved = sum(1 for e in events if e.event == "resolved")
            _record_run(con, report, started, status="succeeded", error=None, recorded=len(found))
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0][:500]
        try:
            _record_run(
                con, report, started, status="failed", error=f"{type(exc).__name__}: {first_line}"
            )
        except Exception:
            log.exception("could not record the failed monitor run %s", run_id)
        raise
    for state in states:
        log.info(
            "freshness %s: %s (newest %s, due %s, %d missed%s)",
            state.source,
            state.state,
            state.newest_period,
            state.expected_period,
            state.missed_publishing_days,
            f", {state.cause}" if state.cause else "",
        )
    log.info(
        "monitors %s: %d key(s) evaluated, %d finding(s) (%d history), %d alert(s), "
        "%d skipped; seconds %s",
        ", ".join(wanted),
        report.evaluated,
        len(found),
        report.history_findings,
        len(report.alerts),
        len(report.skipped),
        report.seconds,
    )
    return report


def _record_state(con: duckdb.DuckDBPyConnection, state: Any, run_id: str) -> None:
    con.execute(
        """
        INSERT OR REPLACE INTO monitor.source_freshness (source, run_id, run_at, evaluated_at,
            state, newest_period, expected_period, missed_publishing_days, missed_periods,
            late_after_missed, stopped_after_missed, last_check_at, last_check_outcome,
            last_new_file_at, consecutive_failed_checks, checks_since_new_file, finding_kind)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            state.source,
            run_id,
            state.run_at,
            dt.datetime.now(dt.UTC),
            state.state,
            state.newest_period,
            state.expected_period,
            state.missed_publishing_days,
            json.dumps([d.isoformat() for d in state.missed_periods]),
            state.late_after_missed,
            state.stopped_after_missed,
            state.last_check_at,
            state.last_check_outcome,
            state.last_new_file_at,
            state.consecutive_failed_checks,
            state.checks_since_new_file,
            state.finding.kind if state.finding else None,
        ],
    )


def _record_run(
    con: duckdb.DuckDBPyConnection,
    report: MonitorReport,
    started: dt.datetime,
    *,
    status: str,
    error: str | None,
    recorded: int | None = None,
) -> None:
    con.execute(
        """
        INSERT OR REPLACE INTO monitor.runs (run_id, run_at, started_at, finished_at, status,
            sources, findings, incidents_opened, incidents_resolved, alerts_enqueued, error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            report.run_id,
            report.run_at,
            started,
            dt.datetime.now(dt.UTC),
            status,
            json.dumps(report.sources),
            len(report.findings) if recorded is None else recorded,
            report.incidents_opened,
            report.incidents_resolved,
            len(report.alerts),
            error,
        ],
    )


__all__ = ["ALL_MONITORS", "MonitorReport", "run_monitors"]
