"""The watchdog: is returnwatch itself still looking? Ops findings about our own DAGs.

What this module owns: ``evaluate_watchdog()``, run by the ``dispatch_alerts`` DAG (outside
the DAGs it watches). Its findings (monitor ``watchdog``, routed to ops):

- ``source_unchecked``: a source's site not checked within ``checks_expected_within_hours``,
  with why as far as Airflow says (paused, not scheduled, failing or not running);
- ``monitor_not_completed``: no successful ``monitor`` run for ``MONITOR_STALE_HOURS``.

A fresh installation is not an outage; the clock is the caller's ``now``.
Details: docs/internals.md#monitor-the-watchdog.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from returnwatch.monitor.findings import Finding

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

MONITOR = "watchdog"
MONITOR_DAG = "monitor"
# The monitor DAG runs daily at 16:00 UTC and takes about a minute (docs/runbook.md#timeouts):
# 26 hours is one missed run plus two hours of slack.
MONITOR_STALE_HOURS = 26


@dataclass(frozen=True)
class DagFacts:
    """What Airflow's metadata says about a DAG (any field None when Airflow did not say)."""

    dag_id: str
    is_paused: bool | None = None
    next_dagrun: dt.datetime | None = None
    failed_runs: int | None = None

    def reason(self, now: dt.datetime) -> str:
        """Why the DAG made no check, in the words of the alert."""
        if self.is_paused:
            return "paused"
        if self.is_paused is False and self.next_dagrun is None:
            return "not scheduled"
        if self.is_paused is None:
            return "unknown (Airflow could not be asked)"
        return "failing or not running"


DagFactsLookup = Callable[[str], "DagFacts | None"]


def evaluate_watchdog(
    con: duckdb.DuckDBPyConnection,
    *,
    now: dt.datetime,
    archive: Any = None,
    dag_facts: DagFactsLookup | None = None,
) -> tuple[list[Finding], dict[tuple[str, str], dict[str, Any]]]:
    """The watchdog's findings at ``now`` and every key it evaluated (for resolving)."""
    from returnwatch.monitor import freshness

    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"watchdog: now must be time-zone aware, got {now!r}")
    if archive is None:
        from returnwatch.archive import Archive

        archive = Archive()
    facts = dag_facts or (lambda dag_id: None)
    findings: list[Finding] = []
    evaluated: dict[tuple[str, str], dict[str, Any]] = {}
    for source, rule in freshness.rules().items():
        last = max((e.run_at for e in archive.entries(source) if e.run_at <= now), default=None)
        dag = _facts(facts, source)
        details = {
            "dag_id": source,
            "last_check_at": _iso(last),
            "expected_within_hours": rule.checks_expected_within_hours,
            "dag_paused": dag.is_paused if dag else None,
            "dag_next_run": _iso(dag.next_dagrun) if dag else None,
            "dag_failed_runs": dag.failed_runs if dag else None,
        }
        evaluated[(MONITOR, source)] = details
        stale = freshness.is_unchecked(last, now, rule)
        if not stale and not (last is None and dag is not None and dag.is_paused):
            continue
        reason = dag.reason(now) if dag else "unknown (Airflow could not be asked)"
        details["reason"] = reason
        findings.append(
            Finding(
                monitor=MONITOR,
                kind="source_unchecked",
                source=source,
                series=source,
                severity="warning",
                run_at=now,
                details=details,
                message=_unchecked_message(
                    rule.label, source, last, now, rule.checks_expected_within_hours, reason, dag
                ),
            )
        )
    finished = _last_monitor_run(con)
    evaluated[(MONITOR, MONITOR_DAG)] = {"last_completed_at": _iso(finished)}
    if finished is not None and now - finished > dt.timedelta(hours=MONITOR_STALE_HOURS):
        dag = _facts(facts, MONITOR_DAG)
        reason = dag.reason(now) if dag else "unknown (Airflow could not be asked)"
        findings.append(
            Finding(
                monitor=MONITOR,
                kind="monitor_not_completed",
                source=MONITOR_DAG,
                series=MONITOR_DAG,
                severity="warning",
                run_at=now,
                details={
                    "dag_id": MONITOR_DAG,
                    "last_completed_at": _iso(finished),
                    "stale_after_hours": MONITOR_STALE_HOURS,
                    "reason": reason,
                },
                message=(
                    f"The monitor DAG has not completed a run since "
                    f"{finished:%Y-%m-%d %H:%M} UTC ({_age(now - finished)} ago; expected "
                    f"daily): freshness, anomalies and policy rules are not being judged. "
                    f"DAG {MONITOR_DAG}: {reason}."
                ),
            )
        )
    return findings, evaluated


def run_watchdog(
    con: duckdb.DuckDBPyConnection,
    *,
    now: dt.datetime,
    run_id: str,
    archive: Any = None,
    dag_facts: DagFactsLookup | None = None,
) -> list[Any]:
    """Evaluate and move the watchdog's incidents; returns the alerts enqueued."""
    from returnwatch.monitor.incidents import process_findings

    findings, evaluated = evaluate_watchdog(con, now=now, archive=archive, dag_facts=dag_facts)
    events = process_findings(con, findings, run_at=now, run_id=run_id, evaluated=evaluated)
    for finding in findings:
        log.warning("watchdog: %s", finding.message)
    return events


def _facts(lookup: DagFactsLookup, dag_id: str) -> DagFacts | None:
    try:
        return lookup(dag_id)
    except Exception as exc:  # noqa: BLE001 - the finding still goes out, without the why
        log.warning(
            "watchdog: Airflow did not say how DAG %s is (%s: %s)",
            dag_id,
            type(exc).__name__,
            str(exc)[:200],
        )
        return None


def _last_monitor_run(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    import duckdb

    try:
        row = con.execute(
            "SELECT max(finished_at) FROM monitor.runs WHERE status = 'succeeded'"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    value = row[0] if row else None
    return value.astimezone(dt.UTC) if value is not None else None


def _unchecked_message(
    label: str,
    source: str,
    last: dt.datetime | None,
    now: dt.datetime,
    hours: float,
    reason: str,
    dag: DagFacts | None,
) -> str:
    when = (
        f"since {last:%Y-%m-%d %H:%M} UTC ({_age(now - last)} ago)" if last is not None else "ever"
    )
    text = (
        f"{label}: returnwatch has not checked the site {when}; a check is expected "
        f"within {hours:g} hours. The DAG that should have made it, {source}, is {reason}"
    )
    if dag is not None and dag.failed_runs:
        text += f" ({dag.failed_runs} failed run(s) on record)"
    return text + ". The figures shown for this source are as of that last check."


def _age(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 72 else f"{hours / 24:.0f} days"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
