"""Incidents: findings open, update and resolve them; each opening and resolving queues one alert.

What this module owns: ``process_findings()``, the only writer of ``monitor.incidents``, and
the events it queues in ``monitor.alerts``: facts (the incident, the finding, what resolved
it), not words; ``alerts.compose`` renders them when they are handed to the outbox.

An incident is keyed by ``(monitor, series)``, at most one open per key; only a monitor that
evaluated a series can resolve it; event monitors (``QUIET_RESOLVE``) resolve quietly. Ids are
deterministic and state only moves forward in time, so re-running a run changes nothing; all
in one transaction. The rules in full: docs/internals.md#monitor-incidents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.duck import scalar
from returnwatch.monitor import store
from returnwatch.monitor.findings import SEVERITY_RANK, Finding

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

Key = tuple[str, str]

# Monitors whose findings are events: their incidents close on the next run without a message.
QUIET_RESOLVE = frozenset({"revision"})


@dataclass(frozen=True)
class AlertEvent:
    """An alert this run put in the outbox (status ``pending``)."""

    alert_id: str
    incident_id: str | None
    event: str  # opened / resolved (later: updated)
    audience: str
    channel: str | None
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    incident_key: str | None = None
    severity: str | None = None


def incident_key(monitor: str, series: str) -> str:
    return f"{monitor}:{series}"


def incident_id_for(key: str, opening_run_id: str) -> str:
    digest = hashlib.sha256(f"{key}\x00{opening_run_id}".encode()).hexdigest()
    return "i_" + digest[:20]


def _key(key: Iterable[str]) -> Key:
    """A ``(monitor, series)`` key as a tuple, whatever sequence it came as (a list from JSON)."""
    monitor, series = key
    return (monitor, series)


def process_findings(
    con: duckdb.DuckDBPyConnection,
    findings: Iterable[Finding],
    *,
    run_at: dt.datetime,
    run_id: str,
    evaluated: Mapping[Key, Mapping[str, Any]] | Iterable[Key] = (),
) -> list[AlertEvent]:
    """Record ``findings`` and move incidents accordingly; returns the alerts enqueued.

    ``evaluated``: the ``(monitor, series)`` keys the monitors evaluated in this run (keys
    with a finding count anyway). As a mapping, each value is what the monitor saw (e.g.
    freshness details with the newest period), quoted by the "resolved" message.
    """
    findings = list(findings)
    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise ValueError(f"run {run_id}: run_at must be time-zone aware, got {run_at!r}")
    seen: dict[Key, Mapping[str, Any]] = (
        {_key(k): dict(v or {}) for k, v in evaluated.items()}
        if isinstance(evaluated, Mapping)
        else {_key(k): {} for k in evaluated}
    )

    problems: dict[Key, tuple[Finding, str]] = {}
    events: list[AlertEvent] = []
    with store.transaction(con):
        ids = store.record_findings(con, findings, run_id)
        for finding, finding_id in zip(findings, ids):
            if not finding.opens_incident:
                # Info: evaluated, nothing to page about; its details describe the all-clear.
                seen.setdefault(finding.key, finding.details)
                continue
            current = problems.get(finding.key)
            if (
                current is None
                or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[current[0].severity]
            ):
                problems[finding.key] = (finding, finding_id)

        # Most evaluated keys have no incident at all (hundreds of series, all quiet): only the
        # keys with a problem or with an open incident need a look.
        open_keys = {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT incident_key FROM monitor.incidents WHERE state = 'open'"
            ).fetchall()
        }
        for key in sorted(set(seen) | set(problems)):
            if key not in problems and incident_key(*key) not in open_keys:
                continue
            latest = _latest_incident(con, key)
            if latest is not None and latest["updated_at"] > run_at:
                log.info(
                    "%s: run %s (%s) is older than the incident's last update (%s); "
                    "incident left as it is",
                    incident_key(*key),
                    run_id,
                    run_at.isoformat(),
                    latest["updated_at"].isoformat(),
                )
                continue
            open_incident = latest if latest is not None and latest["state"] == "open" else None
            if key in problems:
                finding, finding_id = problems[key]
                if open_incident is not None:
                    _update(con, open_incident, finding, finding_id, run_at, run_id)
                else:
                    event = _open(con, key, finding, finding_id, run_at, run_id)
                    if event is not None:
                        events.append(event)
            elif open_incident is not None:
                event = _resolve(con, open_incident, seen.get(key, {}), run_at, run_id)
                if event is not None:
                    events.append(event)
    return events


def seen_again(
    con: duckdb.DuckDBPyConnection, key: Key, *, summary: str, run_at: dt.datetime, run_id: str
) -> None:
    """The open incident of ``key`` seen again, unchanged, by a run that records no finding
    for it (the watchdog): its summary and ``updated_at`` follow; nothing is enqueued."""
    con.execute(
        "UPDATE monitor.incidents SET summary = ?, updated_at = ?, updated_run_id = ? "
        "WHERE incident_key = ? AND state = 'open' AND updated_at <= ?",
        [summary, run_at, run_id, incident_key(*key), run_at],
    )


# --------------------------------------------------------------------------- internals


def _latest_incident(con: duckdb.DuckDBPyConnection, key: Key) -> dict[str, Any] | None:
    # The open incident if any, else the newest: at most one is open per key.
    rows = store.rows_as_dicts(
        con.execute(
            "SELECT * FROM monitor.incidents WHERE incident_key = ? "
            "ORDER BY (state = 'open') DESC, updated_at DESC LIMIT 1",
            [incident_key(*key)],
        )
    )
    return rows[0] if rows else None


def _update(
    con: duckdb.DuckDBPyConnection,
    incident: dict[str, Any],
    finding: Finding,
    finding_id: str,
    run_at: dt.datetime,
    run_id: str,
) -> None:
    max_severity = max(incident["max_severity"], finding.severity, key=SEVERITY_RANK.__getitem__)
    if SEVERITY_RANK[finding.severity] > SEVERITY_RANK[incident["max_severity"]]:
        # Escalation changes the record; this version sends no second alert for it.
        log.info(
            "incident %s (%s) escalated from %s to %s",
            incident["incident_id"],
            incident["incident_key"],
            incident["max_severity"],
            finding.severity,
        )
    con.execute(
        """
        UPDATE monitor.incidents SET kind = ?, severity = ?, max_severity = ?, updated_at = ?,
            updated_run_id = ?, last_finding_id = ?, summary = ?
        WHERE incident_id = ?
        """,
        [
            finding.kind,
            finding.severity,
            max_severity,
            run_at,
            run_id,
            finding_id,
            finding.message,
            incident["incident_id"],
        ],
    )


def _open(
    con: duckdb.DuckDBPyConnection,
    key: Key,
    finding: Finding,
    finding_id: str,
    run_at: dt.datetime,
    run_id: str,
) -> AlertEvent | None:
    from returnwatch.routing import audience_for

    ikey = incident_key(*key)
    incident_id = incident_id_for(ikey, run_id)
    taken = scalar(
        con, "SELECT count(*) FROM monitor.incidents WHERE incident_id = ?", [incident_id]
    )
    if taken:
        # This very run opened it before, and a later run has since resolved it.
        return None
    audience = audience_for(finding.monitor)
    incident = {
        "incident_id": incident_id,
        "incident_key": ikey,
        "monitor": finding.monitor,
        "series": finding.series,
        "source": finding.source,
        "kind": finding.kind,
        "state": "open",
        "severity": finding.severity,
        "max_severity": finding.severity,
        "audience": audience,
        "opened_at": run_at,
        "opened_run_id": run_id,
        "updated_at": run_at,
        "updated_run_id": run_id,
        "first_finding_id": finding_id,
        "last_finding_id": finding_id,
        "summary": finding.message,
    }
    columns = list(incident)
    con.execute(
        f"INSERT INTO monitor.incidents ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})",
        [incident[c] for c in columns],
    )
    return _enqueue(con, incident, "opened", finding=finding.as_dict(), run_id=run_id)


def _resolve(
    con: duckdb.DuckDBPyConnection,
    incident: dict[str, Any],
    seen: Mapping[str, Any],
    run_at: dt.datetime,
    run_id: str,
) -> AlertEvent | None:
    con.execute(
        """
        UPDATE monitor.incidents SET state = 'resolved', resolved_at = ?, resolved_run_id = ?,
            updated_at = ?, updated_run_id = ?
        WHERE incident_id = ?
        """,
        [run_at, run_id, run_at, run_id, incident["incident_id"]],
    )
    incident = {
        **incident,
        "state": "resolved",
        "resolved_at": run_at,
        "resolved_run_id": run_id,
        "updated_at": run_at,
    }
    if incident["monitor"] in QUIET_RESOLVE:
        log.info(
            "incident %s (%s) closed quietly: an event, not a condition",
            incident["incident_id"],
            incident["incident_key"],
        )
        return None
    opening = con.execute(
        "SELECT period, details FROM monitor.findings WHERE finding_id = ?",
        [incident["first_finding_id"]],
    ).fetchone()
    opening_finding = {"period": opening[0], "details": _json(opening[1])} if opening else {}
    return _enqueue(
        con,
        incident,
        "resolved",
        finding=None,
        run_id=run_id,
        resolution=seen,
        opening=opening_finding,
    )


def _enqueue(
    con: duckdb.DuckDBPyConnection,
    incident: dict[str, Any],
    event: str,
    *,
    finding: dict[str, Any] | None,
    run_id: str,
    resolution: Mapping[str, Any] | None = None,
    opening: Mapping[str, Any] | None = None,
) -> AlertEvent | None:
    from returnwatch.routing import channel_for

    # Facts only: the words are rendered in one place, alerts.compose (at the hand-off to the
    # outbox). The summary line is what goes out if that rendering ever fails.
    facts = {
        "incident": incident,
        "finding": finding,
        "resolution": dict(resolution) if resolution is not None else None,
        "opening": dict(opening) if opening is not None else None,
    }
    text = incident["summary"] if event != "resolved" else f"Resolved: {incident['summary']}"
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": text[:2900]}}]
    alert_id = f"{incident['incident_id']}:{event}"
    channel = channel_for(incident["audience"])
    added = store.enqueue_alert(
        con,
        alert_id=alert_id,
        incident_id=incident["incident_id"],
        event=event,
        audience=incident["audience"],
        channel=channel,
        text=text,
        blocks=blocks,
        run_id=run_id,
        facts=facts,
    )
    if not added:
        return None
    return AlertEvent(
        alert_id=alert_id,
        incident_id=incident["incident_id"],
        event=event,
        audience=incident["audience"],
        channel=channel,
        text=text,
        blocks=blocks,
        incident_key=incident["incident_key"],
        severity=incident["severity"],
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})
