"""``returnwatch alerts``: incidents and their alerts from the command line (no Slack needed).

    returnwatch alerts list [--all]          open incidents (all with --all), newest first
    returnwatch alerts show ID [--chart F]   one incident: its alerts' text, status, thread
    returnwatch alerts ack ID [--by NAME]    acknowledged: no more "updated" alerts
    returnwatch alerts mute ID --for HOURS   no alert at all for this incident until then
    returnwatch alerts requeue               failed and unknown alerts back to pending
    returnwatch alerts send                  deliver pending alerts now (Slack or console)

ID is an incident id (``i_...``) or a unique prefix of one. Importing this module loads click
only; the warehouse is opened inside the commands.
"""

from __future__ import annotations

import datetime as dt
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


def _resolve_id(con: duckdb.DuckDBPyConnection, prefix: str) -> str:
    ids = [r[0] for r in con.execute(
        "SELECT incident_id FROM monitor.incidents WHERE starts_with(incident_id, ?)",
        [prefix]).fetchall()]
    if len(ids) != 1:
        raise click.ClickException(
            f"no incident {prefix!r}" if not ids else f"{prefix!r} matches {len(ids)} incidents")
    return ids[0]


def _control(con: duckdb.DuckDBPyConnection, incident_id: str, now: dt.datetime,
             **values: Any) -> None:
    from returnwatch.alerts.delivery import ensure_schema

    ensure_schema(con)
    con.execute("INSERT INTO monitor.incident_controls (incident_id, updated_at) VALUES (?, ?) "
                "ON CONFLICT (incident_id) DO NOTHING", [incident_id, now])
    for column, value in values.items():
        con.execute(f"UPDATE monitor.incident_controls SET {column} = ?, updated_at = ? "
                    "WHERE incident_id = ?", [value, now, incident_id])


def mute_incident(con: duckdb.DuckDBPyConnection, incident_id: str, *, hours: float,
                  now: dt.datetime | None = None) -> dt.datetime:
    """No alert for ``incident_id`` for ``hours``; returns the end of the mute."""
    now = now or dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(hours=hours)
    _control(con, incident_id, now, muted_until=until)
    return until


def acknowledge_incident(con: duckdb.DuckDBPyConnection, incident_id: str, *, by: str,
                         now: dt.datetime | None = None) -> None:
    """Someone is on it: its "updated" alerts are suppressed; "resolved" still goes out."""
    now = now or dt.datetime.now(dt.UTC)
    _control(con, incident_id, now, acknowledged_at=now, acknowledged_by=by)


def incident_rows(con: duckdb.DuckDBPyConnection, *, everything: bool = False
                  ) -> list[dict[str, Any]]:
    from returnwatch.alerts.delivery import ensure_schema
    from returnwatch.monitor.store import rows_as_dicts

    ensure_schema(con)
    where = "" if everything else "WHERE i.state = 'open'"
    return rows_as_dicts(con.execute(
        f"SELECT i.incident_id, i.state, i.monitor, i.series, i.severity, i.audience, "
        f"i.opened_at, i.resolved_at, i.summary, c.acknowledged_by, c.muted_until, "
        f"(SELECT count(*) FROM monitor.alerts a WHERE a.incident_id = i.incident_id) AS alerts "
        f"FROM monitor.incidents i LEFT JOIN monitor.incident_controls c USING (incident_id) "
        f"{where} ORDER BY i.opened_at DESC, i.incident_id"))


@alerts.command("list")
@click.option("--all", "everything", is_flag=True, help="Resolved incidents too.")
def list_(everything: bool) -> None:
    """Open incidents (with --all, every incident), newest first."""
    with _session() as con:
        rows = incident_rows(con, everything=everything)
    if not rows:
        click.echo("No open incidents." if not everything else "No incidents.")
        return
    for r in rows:
        flags = []
        if r["acknowledged_by"]:
            flags.append(f"ack {r['acknowledged_by']}")
        if r["muted_until"] is not None and r["muted_until"] > dt.datetime.now(dt.UTC):
            flags.append(f"muted until {r['muted_until']:%Y-%m-%d %H:%M}")
        click.echo(f"{r['incident_id']}  {r['state']:<8} {r['severity']:<8} "
                   f"{r['audience']:<9} {r['opened_at']:%Y-%m-%d}  {r['monitor']}:{r['series']}"
                   + (f"  [{', '.join(flags)}]" if flags else ""))
        click.echo(f"    {r['summary'][:110]}")


@alerts.command()
@click.argument("incident")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the incident's chart (PNG) to this file.")
def show(incident: str, chart_path: str | None) -> None:
    """One incident and the text of each of its alerts."""
    from returnwatch.alerts.delivery import ensure_schema

    with _session() as con:
        ensure_schema(con)
        incident_id = _resolve_id(con, incident)
        inc = con.execute("SELECT state, monitor, series, source, opened_at, resolved_at, "
                          "slack_channel, slack_ts FROM monitor.incidents "
                          "WHERE incident_id = ?", [incident_id]).fetchone()
        rows = con.execute("SELECT alert_id, event, status, delivered_via, sent_at, text, "
                           "suppressed_reason, last_error FROM monitor.alerts "
                           "WHERE incident_id = ? ORDER BY seq", [incident_id]).fetchall()
        chart = con.execute("SELECT c.png FROM monitor.alert_charts c JOIN monitor.alerts a "
                            "USING (alert_id) WHERE a.incident_id = ? ORDER BY a.seq DESC "
                            "LIMIT 1", [incident_id]).fetchone()
    state, monitor, series, source, opened, resolved, channel, ts = inc
    click.echo(f"{incident_id}: {monitor}:{series} ({source}), {state}; opened {opened}"
               + (f", resolved {resolved}" if resolved else "")
               + (f"; Slack thread {channel}/{ts}" if ts else ""))
    for alert_id, event, status, via, sent_at, text, suppressed, error in rows:
        click.echo(f"\n--- {event}: {status}" + (f" via {via} at {sent_at}" if via else "")
                   + (f" ({suppressed})" if suppressed else "")
                   + (f" (last error: {error})" if error and status != "sent" else "")
                   + f"  [{alert_id}]")
        click.echo(text)
    if chart_path:
        if not chart:
            raise click.ClickException("this incident has no chart")
        with open(chart_path, "wb") as out:
            out.write(bytes(chart[0]))
        click.echo(f"\nchart written to {chart_path}")


@alerts.command()
@click.argument("incident")
@click.option("--by", default=None, help="Who is on it (default: $USER).")
def ack(incident: str, by: str | None) -> None:
    """Acknowledge an incident: no more "updated" alerts for it."""
    import getpass

    with _session() as con:
        incident_id = _resolve_id(con, incident)
        acknowledge_incident(con, incident_id, by=by or getpass.getuser())
    click.echo(f"{incident_id} acknowledged")


@alerts.command()
@click.argument("incident")
@click.option("--for", "hours", type=click.FloatRange(min=0.1, max=24 * 90), required=True,
              help="Hours to stay quiet.")
def mute(incident: str, hours: float) -> None:
    """Mute an incident: no alert for it (kept as 'suppressed') for HOURS."""
    with _session() as con:
        incident_id = _resolve_id(con, incident)
        until = mute_incident(con, incident_id, hours=hours)
    click.echo(f"{incident_id} muted until {until:%Y-%m-%d %H:%M} UTC")


@alerts.command()
def requeue() -> None:
    """Put failed and unknown alerts back to pending (after fixing a channel or the token, or
    after checking the channel for an alert held as unknown)."""
    from returnwatch.alerts.delivery import requeue_failed

    with _session() as con:
        click.echo(f"{requeue_failed(con)} alert(s) back to pending")


@alerts.command()
def send() -> None:
    """Deliver pending alerts now (Slack with a token, else the console)."""
    from returnwatch.alerts.delivery import deliver_pending

    with _session() as con:
        report = deliver_pending(con)
    click.echo(f"{len(report.sent)} sent via {report.via or '-'}, {report.pending_left} pending, "
               f"{len(report.failed)} failed, {len(report.suppressed)} suppressed")
