"""``returnwatch alerts``: incidents and their alerts from the command line (no Slack needed).

    returnwatch alerts list [--all] [--json]    open incidents (all with --all), newest first
    returnwatch alerts show ID [--chart F] [--json]   one incident: alerts' text, status, thread
    returnwatch alerts ack ID [--by NAME] | mute ID --for HOURS | requeue | send

ID is an incident id (``i_...``) or a unique prefix of one. ``list`` and ``show`` only read
(warehouse opened read-only, the snapshot while a writer holds the file); ``--json`` follows
docs/cli-json.schema.json. Details: docs/internals.md#alerts-the-command-line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import duckdb


@click.group()
def alerts() -> None:
    """Incidents and alerts: list, show, acknowledge, mute."""


def _session() -> Any:
    from returnwatch import warehouse

    return warehouse.session()


@contextlib.contextmanager
def _reading() -> Iterator[Any]:
    """The warehouse read-only for list/show (see the module's docstring); one clear line if
    there is none or it cannot be read."""
    from returnwatch import warehouse

    try:
        with warehouse.reading() as (con, _where):
            yield con
    except (FileNotFoundError, warehouse.WarehouseLocked) as error:
        raise click.ClickException(str(error)) from None


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns ``monitor.<table>`` has (none if it does not exist): a warehouse from an
    older version lacks what the alerts side adds, and a reader must not add it."""
    return {
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'monitor' "
            "AND table_name = ?",
            [table],
        ).fetchall()
    }


def _pick(columns: set[str], names: list[str], alias: str = "") -> str:
    """``alias.name`` for the columns that exist, ``NULL AS name`` for the rest."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{n}" if n in columns else f"NULL AS {n}" for n in names)


def _resolve_id(con: duckdb.DuckDBPyConnection, prefix: str) -> str:
    ids = [
        r[0]
        for r in con.execute(
            "SELECT incident_id FROM monitor.incidents WHERE starts_with(incident_id, ?)", [prefix]
        ).fetchall()
    ]
    if len(ids) != 1:
        raise click.ClickException(
            f"no incident {prefix!r}" if not ids else f"{prefix!r} matches {len(ids)} incidents"
        )
    return ids[0]


@contextlib.contextmanager
def _outbox_reading() -> Iterator[Any]:
    """The outbox read-only for list/show, or None when there is none yet (an installation
    that has not delivered since the outbox left the warehouse: its copy is read instead)."""
    from returnwatch.alerts import outbox

    box = outbox.read_only()
    try:
        yield box
    finally:
        if box is not None:
            box.close()


def _control(box: Any, incident_id: str, now: dt.datetime, **values: Any) -> None:
    from returnwatch.alerts import outbox

    if not isinstance(box, outbox.Outbox):  # acknowledgements and mutes live in the outbox
        with outbox.session() as own:
            _control(own, incident_id, now, **values)
        return
    with box.transaction():
        box.execute(
            "INSERT OR IGNORE INTO incident_controls (incident_id, updated_at) VALUES (?, ?)",
            [incident_id, now],
        )
        for column, value in values.items():
            box.execute(
                f"UPDATE incident_controls SET {column} = ?, updated_at = ? WHERE incident_id = ?",
                [value, now, incident_id],
            )


def mute_incident(
    box: Any, incident_id: str, *, hours: float, now: dt.datetime | None = None
) -> dt.datetime:
    """No alert for ``incident_id`` for ``hours``; returns the end of the mute. ``box`` is
    the outbox (opened here when it is not one)."""
    now = now or dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(hours=hours)
    _control(box, incident_id, now, muted_until=until)
    return until


def acknowledge_incident(
    box: Any, incident_id: str, *, by: str, now: dt.datetime | None = None
) -> None:
    """Someone is on it: its "updated" alerts are suppressed; "resolved" still goes out."""
    now = now or dt.datetime.now(dt.UTC)
    _control(box, incident_id, now, acknowledged_at=now, acknowledged_by=by)


def incident_rows(
    con: duckdb.DuckDBPyConnection, *, everything: bool = False, box: Any = None
) -> list[dict[str, Any]]:
    """Incidents (open ones, or all), newest first, with their controls and alert count:
    incidents from the warehouse, the rest from the outbox ``box`` (or, without one, the
    warehouse's copy). Only reads."""
    from returnwatch.monitor.store import rows_as_dicts

    if not _columns(con, "incidents"):
        return []
    count = (
        "(SELECT count(*) FROM monitor.alerts a WHERE a.incident_id = i.incident_id)"
        if box is None and _columns(con, "alerts")
        else "0"
    )
    where = "" if everything else "WHERE i.state = 'open'"
    rows = rows_as_dicts(
        con.execute(
            f"SELECT i.incident_id, i.state, i.monitor, i.series, i.source, i.severity, i.audience, "
            f"i.opened_at, i.resolved_at, i.summary, NULL AS acknowledged_by, "
            f"NULL AS muted_until, {count} AS alerts "
            f"FROM monitor.incidents i {where} ORDER BY i.opened_at DESC, i.incident_id"
        )
    )
    if box is not None:
        controls = {
            r["incident_id"]: r
            for r in box.rows(
                "SELECT incident_id, acknowledged_by, muted_until FROM incident_controls"
            )
        }
        counts = dict(
            box.execute(
                "SELECT incident_id, count(*) FROM alerts WHERE incident_id IS NOT NULL "
                "GROUP BY incident_id"
            ).fetchall()
        )
        for row in rows:
            control = controls.get(row["incident_id"], {})
            row["acknowledged_by"] = control.get("acknowledged_by")
            row["muted_until"] = control.get("muted_until")
            row["alerts"] = counts.get(row["incident_id"], 0)
    return rows


_ALERT_COLUMNS = [
    "alert_id",
    "event",
    "status",
    "delivered_via",
    "sent_at",
    "text",
    "suppressed_reason",
    "last_error",
]


def incident_detail(
    con: duckdb.DuckDBPyConnection, incident_id: str, box: Any = None
) -> dict[str, Any]:
    """One incident (warehouse), its alerts in order, its thread and its newest chart (PNG
    bytes, or None) from the outbox ``box`` (without one: the warehouse's copy)."""
    from returnwatch.monitor.store import rows_as_dicts

    [incident] = rows_as_dicts(
        con.execute(
            "SELECT incident_id, state, monitor, series, source, severity, audience, opened_at, "
            "resolved_at, summary, slack_channel, slack_ts FROM monitor.incidents "
            "WHERE incident_id = ?",
            [incident_id],
        )
    )
    if box is not None:
        thread = box.execute(
            "SELECT slack_channel, slack_ts FROM threads WHERE incident_id = ?", [incident_id]
        ).fetchone()
        if thread:
            incident["slack_channel"], incident["slack_ts"] = thread
        incident["alerts"] = box.rows(
            f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE incident_id = ? ORDER BY seq",
            [incident_id],
        )
        chart = box.execute(
            "SELECT c.png FROM alert_charts c JOIN alerts a USING (alert_id) "
            "WHERE a.incident_id = ? ORDER BY a.seq DESC LIMIT 1",
            [incident_id],
        ).fetchone()
        incident["chart"] = bytes(chart[0]) if chart else None
        return incident
    alert_columns = _columns(con, "alerts")
    incident["alerts"] = (
        rows_as_dicts(
            con.execute(
                f"SELECT {_pick(alert_columns, _ALERT_COLUMNS)} FROM monitor.alerts "
                "WHERE incident_id = ? ORDER BY seq",
                [incident_id],
            )
        )
        if alert_columns
        else []
    )
    chart = (
        con.execute(
            "SELECT c.png FROM monitor.alert_charts c JOIN monitor.alerts a USING (alert_id) "
            "WHERE a.incident_id = ? ORDER BY a.seq DESC LIMIT 1",
            [incident_id],
        ).fetchone()
        if _columns(con, "alert_charts")
        else None
    )
    incident["chart"] = bytes(chart[0]) if chart else None
    return incident


def as_json(value: Any) -> str:
    """--json output: dates and times as ISO 8601 (times in UTC), keys in a stable order."""

    def default(item: Any) -> Any:
        if isinstance(item, dt.datetime):
            return (item.astimezone(dt.UTC) if item.tzinfo else item).isoformat()
        if isinstance(item, dt.date):
            return item.isoformat()
        raise TypeError(f"not JSON serialisable: {type(item).__name__}")

    return json.dumps(value, default=default, indent=2, ensure_ascii=False)


@alerts.command("list")
@click.option("--all", "everything", is_flag=True, help="Resolved incidents too.")
@click.option(
    "--json",
    "as_json_output",
    is_flag=True,
    help="One JSON document (docs/cli-json.schema.json, 'alerts_list').",
)
def list_(everything: bool, as_json_output: bool) -> None:
    """Open incidents (with --all, every incident), newest first. Only reads."""
    with _reading() as con, _outbox_reading() as box:
        rows = incident_rows(con, everything=everything, box=box)
    if as_json_output:
        click.echo(as_json({"command": "alerts list", "all": everything, "incidents": rows}))
        return
    if not rows:
        click.echo("No open incidents." if not everything else "No incidents.")
        return
    for r in rows:
        flags = []
        if r["acknowledged_by"]:
            flags.append(f"ack {r['acknowledged_by']}")
        if r["muted_until"] is not None and r["muted_until"] > dt.datetime.now(dt.UTC):
            flags.append(f"muted until {r['muted_until']:%Y-%m-%d %H:%M}")
        click.echo(
            f"{r['incident_id']}  {r['state']:<8} {r['severity']:<8} "
            f"{r['audience']:<9} {r['opened_at']:%Y-%m-%d}  {r['monitor']}:{r['series']}"
            + (f"  [{', '.join(flags)}]" if flags else "")
        )
        click.echo(f"    {r['summary'][:110]}")


@alerts.command()
@click.argument("incident")
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the incident's chart (PNG) to this file.",
)
@click.option(
    "--json",
    "as_json_output",
    is_flag=True,
    help="One JSON document (docs/cli-json.schema.json, 'alerts_show').",
)
def show(incident: str, chart_path: str | None, as_json_output: bool) -> None:
    """One incident and the text of each of its alerts. Only reads."""
    with _reading() as con, _outbox_reading() as box:
        if not _columns(con, "incidents"):
            raise click.ClickException(f"no incident {incident!r}")
        detail = incident_detail(con, _resolve_id(con, incident), box)
    chart = detail.pop("chart")
    if chart_path:
        if not chart:
            raise click.ClickException("this incident has no chart")
        with open(chart_path, "wb") as out:
            out.write(chart)
    if as_json_output:
        click.echo(
            as_json(
                {
                    "command": "alerts show",
                    "incident": detail,
                    "has_chart": chart is not None,
                    "chart_written_to": chart_path,
                }
            )
        )
        return
    d = detail
    click.echo(
        f"{d['incident_id']}: {d['monitor']}:{d['series']} ({d['source']}), {d['state']}; "
        f"opened {d['opened_at']}"
        + (f", resolved {d['resolved_at']}" if d["resolved_at"] else "")
        + (f"; Slack thread {d['slack_channel']}/{d['slack_ts']}" if d["slack_ts"] else "")
    )
    for a in d["alerts"]:
        click.echo(
            f"\n--- {a['event']}: {a['status']}"
            + (f" via {a['delivered_via']} at {a['sent_at']}" if a["delivered_via"] else "")
            + (f" ({a['suppressed_reason']})" if a["suppressed_reason"] else "")
            + (
                f" (last error: {a['last_error']})"
                if a["last_error"] and a["status"] != "sent"
                else ""
            )
            + f"  [{a['alert_id']}]"
        )
        click.echo(a["text"])
    if chart_path:
        click.echo(f"\nchart written to {chart_path}")


@alerts.command()
@click.argument("incident")
@click.option("--by", default=None, help="Who is on it (default: $USER).")
def ack(incident: str, by: str | None) -> None:
    """Acknowledge an incident: no more "updated" alerts for it."""
    import getpass

    with _reading() as con:
        incident_id = _resolve_id(con, incident)
    acknowledge_incident(None, incident_id, by=by or getpass.getuser())
    click.echo(f"{incident_id} acknowledged")


@alerts.command()
@click.argument("incident")
@click.option(
    "--for",
    "hours",
    type=click.FloatRange(min=0.1, max=24 * 90),
    required=True,
    help="Hours to stay quiet.",
)
def mute(incident: str, hours: float) -> None:
    """Mute an incident: no alert for it (kept as 'suppressed') for HOURS."""
    with _reading() as con:
        incident_id = _resolve_id(con, incident)
    until = mute_incident(None, incident_id, hours=hours)
    click.echo(f"{incident_id} muted until {until:%Y-%m-%d %H:%M} UTC")


@alerts.command()
def requeue() -> None:
    """Put failed and unknown alerts back to pending (after fixing a channel or the token, or
    after checking the channel for an alert held as unknown)."""
    from returnwatch.alerts.delivery import requeue_failed

    click.echo(f"{requeue_failed()} alert(s) back to pending")


@alerts.command()
def send() -> None:
    """Deliver pending alerts now (Slack with a token, else the console)."""
    from returnwatch.alerts.delivery import deliver_pending

    with _session() as con:
        report = deliver_pending(con)
    click.echo(
        f"{len(report.sent)} sent via {report.via or '-'}, {report.pending_left} pending, "
        f"{len(report.failed)} failed, {len(report.suppressed)} suppressed"
    )
