"""Composing an alert for the outbox: every finding of its run, vintage, status line, chart.

Monitors queue an alert's facts in the warehouse (``monitor.alerts``); when
``alerts.handoff`` moves it into the outbox it calls ``compose()`` once, with the warehouse at
hand: the run's findings of the incident become one message, with the vintage and link of the
file the figure came from, the legal title's group total, routing overrides, the status line
and the chart. The outbox row is written composed, before any call to Slack. Composition never
loses an alert: on an error the row goes out as enqueued and ops get one alert.
Details: docs/internals.md#alerts-composing-a-message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from returnwatch.alerts.outbox import Outbox
from returnwatch.routing import alerts_config, audience_for, channel_for

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


Chart = tuple[bytes, int, int]  # PNG, width, height


def compose(
    con: duckdb.DuckDBPyConnection, box: Outbox, row: dict[str, Any], *, now: dt.datetime
) -> tuple[dict[str, Any], Chart | None, dict[str, str] | None]:
    """Render ``row`` (a pending ``monitor.alerts`` row of the warehouse) for the outbox:
    the values that replace the row's (text, blocks, audience, channel, severity,
    composed_at), its chart if any, and when composing failed the ops notice to queue after
    it (``outbox.notify_ops`` arguments). Reads the warehouse ``con``; writes nothing."""
    text, blocks, audience, severity, chart = row["text"], None, row["audience"], None, None
    problem = None
    try:
        if row["incident_id"]:
            text, blocks, audience, severity, chart = _compose_incident(con, box, row)
    except Exception as exc:  # noqa: BLE001 - a richer message is not worth a lost alert
        # Sent as enqueued, and never silently: a logged error and one ops alert.
        log.error(
            "alert %s: could not be composed, sent as enqueued (%s: %s)",
            row["alert_id"],
            type(exc).__name__,
            str(exc)[:300],
            exc_info=True,
        )
        text, blocks, chart = row["text"], None, None
        with contextlib.suppress(Exception):  # the plainer rendering, if that works
            rendered = from_facts(row)
            if rendered is not None:
                text, blocks = rendered
        problem = {
            "key": f"compose:{row['alert_id']}",
            "header": "An alert could not be composed",
            "body": (
                f"Alert {row['alert_id']} went out with the text it was queued with: "
                f"composing it failed with {type(exc).__name__}: {str(exc)[:300]}. "
                "Its chart and related findings are missing. The task log of the "
                "delivery has the traceback; this is a returnwatch bug to report."
            ),
        }
    values = {
        "text": text,
        "blocks": (
            json.dumps(blocks, ensure_ascii=False) if blocks is not None else _text(row["blocks"])
        ),
        "audience": audience,
        "channel": channel_for(audience) or row["channel"],
        "severity": severity,
        "composed_at": now,
    }
    return values, chart, problem


def _text(blocks: Any) -> str:
    return blocks if isinstance(blocks, str) else json.dumps(blocks or [], ensure_ascii=False)


def _compose_incident(
    con: duckdb.DuckDBPyConnection, box: Outbox, row: dict[str, Any]
) -> tuple[str, list[dict[str, Any]] | None, str, str | None, Chart | None]:
    from returnwatch.alerts import charts
    from returnwatch.alerts.messages import (
        incident_message,
        replace_status_in_text,
        with_status_line,
    )
    from returnwatch.monitor.store import rows_as_dicts

    incident = rows_as_dicts(
        con.execute("SELECT * FROM monitor.incidents WHERE incident_id = ?", [row["incident_id"]])
    )
    if not incident:
        rendered = from_facts(row)
        return (
            (rendered[0], rendered[1], row["audience"], None, None)
            if rendered is not None
            else (row["text"], None, row["audience"], None, None)
        )
    inc = incident[0]
    event = row["event"]
    findings = _findings(con, inc, row["run_id"]) if event != "resolved" else []
    lead = max(findings, key=_rank) if findings else None
    audience = (
        audience_for(inc["monitor"], lead["kind"], lead["severity"]) if lead else row["audience"]
    )
    vintage, document = _figure_file(con, inc, lead)
    totals = _title_totals(con, inc, lead)
    status = (
        incident_status(
            box,
            inc["incident_id"],
            state=inc["state"],
            opened_at=inc["opened_at"],
            resolved_at=inc["resolved_at"],
        )
        if event == "opened"
        else None
    )
    if inc["monitor"] == "freshness" or (
        event == "resolved"
        and inc["monitor"] not in ("anomaly", "policy_rule", "revision", "discrepancy")
    ):
        # Words from what the monitor saw (a freshness "resolved" quotes it; it is stored
        # nowhere else); a row queued by an older version carries its final words already.
        rendered = from_facts(row)
        if rendered is not None:
            text, blocks = rendered
        else:
            text, blocks = (
                row["text"],
                json.loads(row["blocks"])
                if isinstance(row["blocks"], str)
                else list(row["blocks"]),
            )
        if status:
            text, blocks = replace_status_in_text(text, status), with_status_line(blocks, status)
    else:
        opening = None
        if event == "resolved":
            first = rows_as_dicts(
                con.execute(
                    "SELECT kind, period, value, details FROM monitor.findings "
                    "WHERE finding_id = ?",
                    [inc["first_finding_id"]],
                )
            )
            opening = _with_details(first[0]) if first else None
        message = incident_message(
            event,
            incident=inc,
            finding=lead,
            opening=opening,
            run_id=row["run_id"],
            related=findings or None,
            vintage=vintage,
            document_url=document,
            status=status,
            totals=totals,
        )
        text, blocks = message.text, message.blocks
    chart = None
    if alerts_config().delivery.charts and event != "resolved":
        chart_findings = findings or []
        if inc["monitor"] == "freshness" and not chart_findings:
            chart_findings = _findings(con, inc, inc["opened_run_id"])
        spec = charts.spec_for(inc, chart_findings, con, note=_note(inc["source"], vintage))
        if spec is not None:
            width, height = charts.CHART_SIZE_PX
            chart = (charts.render_png(spec), width, height)
    return text, blocks, audience, (lead or {}).get("severity") or inc["severity"], chart


def from_facts(row: dict[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    """The message of a queued alert from the facts its monitor stored (``monitor.alerts.facts``:
    the incident as it was, the finding, what resolved it), without the warehouse's context;
    None for a row without facts."""
    from returnwatch.alerts.messages import incident_message

    raw = row.get("facts")
    facts = json.loads(raw) if isinstance(raw, str) else raw
    if not facts or not facts.get("incident"):
        return None
    message = incident_message(
        row["event"],
        incident=facts["incident"],
        finding=facts.get("finding"),
        resolution=facts.get("resolution"),
        opening=facts.get("opening"),
        run_id=row["run_id"],
    )
    return message.text, message.blocks


def _rank(finding: dict[str, Any]) -> tuple[int, str]:
    return ({"critical": 2, "warning": 1}.get(finding["severity"], 0), finding["period"] or "")


def _findings(
    con: duckdb.DuckDBPyConnection, incident: dict[str, Any], run_id: str | None
) -> list[dict[str, Any]]:
    from returnwatch.monitor.store import rows_as_dicts

    rows = rows_as_dicts(
        con.execute(
            "SELECT monitor, kind, source, series, severity, period, value, expected, message, "
            "details, run_at FROM monitor.findings WHERE run_id = ? AND monitor = ? AND series = ? "
            "AND severity IN ('warning', 'critical') ORDER BY period, kind",
            [run_id, incident["monitor"], incident["series"]],
        )
    )
    return [_with_details(r) for r in rows]


def _with_details(row: dict[str, Any]) -> dict[str, Any]:
    details = row.get("details")
    return {**row, "details": json.loads(details) if isinstance(details, str) else (details or {})}


def _newest_file(con: duckdb.DuckDBPyConnection, source: str) -> tuple[Any, str | None]:
    try:
        found = con.execute(
            "SELECT vintage, url FROM raw.files WHERE source = ? "
            "ORDER BY vintage DESC, loaded_at DESC LIMIT 1",
            [source],
        ).fetchone()
    except Exception:  # noqa: BLE001 - no raw layer (a monitor-only warehouse)
        return None, None
    if not found:
        return None, None
    url = found[1] if str(found[1]).startswith(("http://", "https://")) else None
    return found[0], url


def _figure_file(
    con: duckdb.DuckDBPyConnection, incident: dict[str, Any], lead: dict[str, Any] | None
) -> tuple[Any, str | None]:
    """(vintage, url) of the file the lead finding's figure came from.

    The figure's raw tables come from config/monitors.yaml ``figures`` (anomalies) or the
    rule's mart (policy rules); the period's file from ``marts.mart_source_files``. Falls back
    to the newest file of those tables, then of the source."""
    from returnwatch.monitor import figures

    tables: list[str] = []
    mart = None
    details = (lead or {}).get("details") or {}
    try:
        figure = figures.figure_for(str(incident.get("series") or ""))
        if incident["monitor"] == "anomaly" and figure is not None:
            tables = [t.split(".", 1)[-1] for t in figure.raw_tables]
            from returnwatch.monitor import anomalies as an

            metric = an.load_config().metrics.get(str(incident["series"]).split(":")[0])
            mart = metric.table.split(".", 1)[-1] if metric else None
        elif details.get("table"):
            mart = str(details["table"]).split(".", 1)[-1]
    except Exception:  # noqa: BLE001 - config trouble: fall back to the source's file
        tables, mart = [], None
    period = str((lead or {}).get("period") or "")
    month = period + "-01" if len(period) == 7 else period[:10]
    queries: list[tuple[str, list[Any]]] = []
    wanted = (" AND raw_table IN (" + ", ".join("?" for _ in tables) + ")") if tables else ""
    if mart and month:
        queries.append(
            (
                "SELECT vintage, url FROM marts.mart_source_files WHERE mart = ? "
                "AND period = ?::DATE" + wanted + " ORDER BY vintage DESC, "
                "fetched_at DESC LIMIT 1",
                [mart, month, *tables],
            )
        )
    if tables:
        queries.append(
            (
                "SELECT vintage, url FROM raw.files WHERE source = ?"
                + wanted
                + " ORDER BY vintage DESC, loaded_at DESC LIMIT 1",
                [incident["source"], *tables],
            )
        )
    for sql, params in queries:
        try:
            found = con.execute(sql, params).fetchone()
        except Exception:  # noqa: BLE001 - a table not built yet: try the next way
            continue
        if found:
            url = found[1] if str(found[1]).startswith(("http://", "https://")) else None
            return found[0], url
    return _newest_file(con, incident["source"])


def _title_totals(
    con: duckdb.DuckDBPyConnection, incident: dict[str, Any], lead: dict[str, Any] | None
) -> dict[str, Any] | None:
    """For a CBP series of one citizenship and one title: all titles, this month and the one
    before (the December 2020 "Title 8 rose while the total fell")."""
    parts = str(incident.get("series") or "").split(":")
    period = str((lead or {}).get("period") or "")
    if len(parts) != 4 or parts[0] != "cbp_uc_encounters" or len(period) != 7:
        return None
    citizenship, title = parts[2], parts[3]
    month = dt.date.fromisoformat(period + "-01")
    before = (month - dt.timedelta(days=1)).replace(day=1)
    try:
        rows = dict(
            con.execute(
                "SELECT month::DATE, sum(encounters) FROM marts.cbp_uc_encounters_monthly "
                "WHERE citizenship = ? AND month::DATE IN (?, ?) GROUP BY ALL",
                [citizenship, month, before],
            ).fetchall()
        )
    except Exception:  # noqa: BLE001 - no mart yet
        return None
    if month not in rows:
        return None
    return {
        "title": title,
        "value": float(rows[month]),
        "previous": float(rows[before]) if before in rows else None,
    }


def _note(source: str, vintage: Any) -> str:
    from returnwatch.alerts.messages import _source_info

    title = _source_info(source)[0]
    return f"Source: {title}" + (f" · file of {vintage:%d %B %Y}" if vintage else "")


def incident_status(
    box: Outbox,
    incident_id: str,
    *,
    state: str | None,
    opened_at: dt.datetime | None,
    resolved_at: dt.datetime | None,
) -> str:
    """The status line of an incident's opening message: the incident's state (from the
    warehouse, as the caller read it) with its controls and sent updates (from the outbox)."""
    from returnwatch.alerts.messages import status_line

    if state is None:
        return "Status: unknown"
    acked_by = box.execute(
        "SELECT acknowledged_by FROM incident_controls WHERE incident_id = ?", [incident_id]
    ).fetchone()
    updates = box.scalar(
        "SELECT count(*) FROM alerts WHERE incident_id = ? AND event = 'updated' "
        "AND status = 'sent'",
        [incident_id],
    )
    return status_line(
        state,
        opened=opened_at,
        resolved=resolved_at,
        acknowledged_by=acked_by[0] if acked_by else None,
        updates=int(updates or 0),
    )
