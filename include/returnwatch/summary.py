"""A short, plain-text account of what the warehouse holds: printed at the end of the demo
and by ``returnwatch summary``; ``collect()`` is the same as data for ``summary --json``
(docs/cli-json.schema.json, ``summary``). Reads only; every figure comes from the warehouse
tables."""

from __future__ import annotations

import json
from typing import Any

from returnwatch import settings, warehouse


def render(*, demo_seconds: float | None = None, dag_runs: int | None = None) -> str:
    path = settings.warehouse_path()
    if not path.exists():
        return f"No warehouse yet at {path}: run `make demo` first."
    # Read-only (never the write lock): the snapshot if a writer holds the live file.
    with warehouse.reading() as (con, where):
        out: list[str] = []
        heading = "returnwatch — summary"
        if demo_seconds is not None:
            heading += f" (demo: {dag_runs} DAG runs in {demo_seconds:.0f} s)"
        out += [heading, "=" * len(heading), ""]
        out += _loads(con) + [""] + _headlines(con) + [""] + _latest(con) + [""]
        out += _freshness(con) + [""] + _alerts(con)
        out += ["", *_where(), f"  (read from the {where})"]
        return "\n".join(out)


def _rows(con: Any, sql: str) -> list[tuple]:
    try:
        return con.execute(sql).fetchall()
    except Exception:  # a table a later stage creates may not exist yet
        return []


# The column that says which period a raw row describes, by preference.
_PERIOD_COLUMNS = ("report_date", "month", "repatriation_date")


def _loads(con: Any) -> list[str]:
    out = ["Loaded (every vintage kept; latest period = newest period in any vintage)"]
    for source, files, rows, first, last in _rows(
        con,
        """
        select f.source, count(*), sum(f.rows_loaded), min(f.vintage), max(f.vintage)
        from raw.files f group by 1 order by 1""",
    ):
        out.append(f"  {source}: {files} file(s), {rows:,} raw rows, vintages {first} … {last}")
        # Constructed or not is each file's own record (raw.files.constructed), never the
        # table's name: the same table holds real files in production.
        for table, table_files, table_rows, made_up in _rows(
            con,
            f"""
                select raw_table, count(*), sum(rows_loaded),
                       count(*) filter (where coalesce(constructed, false))
                from raw.files where source = '{source}' group by 1 order by 1""",
        ):
            latest = _latest_period(con, table)
            note = (
                f"  [{made_up} of {table_files} file(s) CONSTRUCTED by hand: not real "
                "figures, never alerted]"
                if made_up
                else ""
            )
            out.append(
                f"    {table}: {table_rows:,} rows from {table_files} file(s), "
                f"latest period {latest}{note}"
            )
    revised = _rows(
        con,
        """select source, count(*), count(distinct new_file)
                           from monitor.revisions group by 1 order by 1""",
    )
    for source, figures, files in revised:
        out.append(
            f"  revisions: {source}: {figures} figure(s) restated by {files} newer file(s) "
            "(monitor.revisions)"
        )
    mart = _rows(con, "select count(*), min(report_date), max(report_date) from marts.hhs_uc_daily")
    if mart and mart[0][0]:
        count, first, last = mart[0]
        out.append(f"  marts.hhs_uc_daily: {count} published days, {first} … {last}")
    return out


def _headlines(con: Any) -> list[str]:
    """The cross-source figures the project exists for, newest months with both sides."""
    rows = _rows(
        con,
        """
        select month, cbp_count, segob_count, difference, pct_difference, segob_figures_constructed
        from marts.cbp_segob_discrepancy_monthly
        where comparison = 'unaccompanied_minors' and both_sides_published
        order by month desc limit 3""",
    )
    if not rows:
        return ["Headline figures: none yet (transform has not run, or no month has both sides)"]
    out = [
        "Unaccompanied Mexican children: CBP encounters vs SEGOB repatriation events "
        "(marts.cbp_segob_discrepancy_monthly; not the same events: their ratio is "
        "Amnesty's minimum return rate)",
        "  month      CBP    SEGOB  difference",
    ]
    constructed = False
    for month, cbp, segob, difference, pct, made_up in rows:
        constructed = constructed or bool(made_up)
        share = "" if pct is None else f" ({pct:+.0%})"
        out.append(f"  {month:%Y-%m}  {cbp:>5,}  {segob:>6,}  {difference:>+9,}{share}")
    if constructed:
        out.append(
            "  [the SEGOB side of these months rests on CONSTRUCTED files "
            "(segob_figures_constructed): not real figures]"
        )
    return out


def _latest_period(con: Any, table: str) -> str:
    schema, _, name = table.partition(".")
    columns = {
        row[0]
        for row in _rows(
            con,
            f"""
        select column_name from information_schema.columns
        where table_schema = '{schema}' and table_name = '{name}'""",
        )
    }
    column = next((c for c in _PERIOD_COLUMNS if c in columns), None)
    if column is None:
        return "?"
    found = _rows(con, f"select max({column}) from {table}")
    value = found[0][0] if found else None
    if value is None:
        return "none"
    return f"{value:%Y-%m}" if column == "month" else f"{value}"


def _latest(con: Any) -> list[str]:
    rows = _rows(
        con,
        """
        select report_date, cbp_apprehended_excl_mexico, cbp_in_custody, cbp_transferred_out,
               hhs_in_care, hhs_discharged
        from marts.hhs_uc_daily order by report_date desc limit 5""",
    )
    if not rows:
        return ["Latest figures: none yet (transform has not run)"]
    out = [
        "Latest HHS/DHS daily figures (healthdata.gov ehpz-xc9n; first column excludes Mexican children)",
        "  date         apprehended  in CBP  transferred  in HHS care  discharged",
    ]
    for date, *figures in rows:
        cells = ["–" if v is None else f"{v:,}" for v in figures]
        out.append(
            f"  {date}  {cells[0]:>11}  {cells[1]:>6}  {cells[2]:>11}  {cells[3]:>11}  {cells[4]:>10}"
        )
    return out


def _freshness(con: Any) -> list[str]:
    out = ["Freshness (by publishing calendar)"]
    rows = _rows(
        con,
        """
        select source, state, newest_period, expected_period, run_at, last_check_at
        from monitor.source_freshness
        qualify row_number() over (partition by source order by run_at desc) = 1
        order by source""",
    )
    for source, state, newest, expected, run_at, checked in rows:
        line = (
            f"  {source}: {state} at {run_at:%Y-%m-%d %H:%M} UTC — newest period {newest}, "
            f"expected {expected}"
        )
        if checked is not None:
            line += f"; site last checked {checked:%Y-%m-%d}"
            if state == "unchecked":
                # Its DAG has not checked the site within its schedule plus grace.
                line += " — NOT CHECKED since then (runbook: source_unchecked)"
            if (
                state in ("fresh", "unchecked")
                and newest is not None
                and expected is not None
                and newest < expected
            ):
                # Monthly sources count a month missed only if it was due at the last check.
                line += " (months due since then are not verified yet)"
        out.append(line)
    kinds = _rows(
        con, "select kind, severity, count(*) from monitor.findings group by 1, 2 order by 1, 2"
    )
    if kinds:
        out.append("  findings: " + ", ".join(f"{k} ({s}) ×{n}" for k, s, n in kinds))
    return out


def _alerts(con: Any) -> list[str]:
    # The date shown is the run's (replayed) date, not the wall clock of the demo.
    rows = _rows(
        con,
        """
        select coalesce(case a.event when 'resolved' then i.resolved_at else i.opened_at end,
                        a.created_at) as happened,
               a.event, a.audience, a.delivered_via, a.status, a.text
        from monitor.alerts a left join monitor.incidents i using (incident_id)
        order by a.seq""",
    )
    out = [f"Alerts: {len(rows)}"]
    for happened, event, audience, via, status, text in rows:
        first_line = (text or "").splitlines()[0] if text else ""
        out.append(
            f"  {happened:%Y-%m-%d} {event:<8} to {audience} ({status} via {via or '-'}): {first_line}"
        )
    incidents = _rows(con, "select state, count(*) from monitor.incidents group by 1 order by 1")
    if incidents:
        out.append("  incidents: " + ", ".join(f"{n} {s}" for s, n in incidents))
    return out


def _where() -> list[str]:
    return [
        "Where things are",
        f"  warehouse (live, one writer): {settings.warehouse_path()}",
        f"  snapshot for analysts (read-only, refreshed after each build): {settings.snapshot_path()}",
        f"  raw files as received: {settings.archive_dir()}",
        '  query it:  .venv/bin/python -c "import duckdb; '
        f"print(duckdb.connect('{settings.snapshot_path()}', read_only=True)"
        ".sql('from marts.hhs_uc_daily order by report_date desc limit 5'))\"",
        "  Airflow UI with these runs:  make ui   → http://127.0.0.1:8080",
    ]


# ------------------------------------------------------------------------- summary --json ---


def collect() -> dict[str, Any]:
    """``returnwatch summary --json``: what ``render()`` prints, as data. Freshness and open
    incidents are ``returnwatch status``'s (``status.collect``), so both always agree."""
    from returnwatch import status

    with warehouse.reading() as (con, where):
        loads = []
        for source, files, rows, first, last in _rows(
            con,
            """
                select source, count(*), sum(rows_loaded), min(vintage), max(vintage)
                from raw.files group by 1 order by 1""",
        ):
            # Constructed or not is each file's own record (raw.files.constructed).
            tables = [
                {
                    "table": table,
                    "files": table_files,
                    "rows": int(table_rows),
                    "latest_period": _latest_period(con, table),
                    "constructed": bool(made_up),
                }
                for table, table_files, table_rows, made_up in _rows(
                    con,
                    f"""
                          select raw_table, count(*), sum(rows_loaded),
                                 count(*) filter (where coalesce(constructed, false))
                          from raw.files where source = '{source}' group by 1 order by 1""",
                )
            ]
            loads.append(
                {
                    "source": source,
                    "files": files,
                    "rows": int(rows),
                    "first_vintage": first,
                    "last_vintage": last,
                    "tables": tables,
                }
            )
        headlines = [
            {
                "month": month,
                "cbp_count": cbp,
                "segob_count": segob,
                "difference": difference,
                "pct_difference": pct,
                "segob_figures_constructed": bool(made_up),
            }
            for month, cbp, segob, difference, pct, made_up in _rows(
                con,
                """
                select month, cbp_count, segob_count, difference, pct_difference,
                       segob_figures_constructed
                from marts.cbp_segob_discrepancy_monthly
                where comparison = 'unaccompanied_minors' and both_sides_published
                order by month desc limit 3""",
            )
        ]
        latest = [
            dict(
                zip(
                    (
                        "report_date",
                        "cbp_apprehended_excl_mexico",
                        "cbp_in_custody",
                        "cbp_transferred_out",
                        "hhs_in_care",
                        "hhs_discharged",
                    ),
                    row,
                )
            )
            for row in _rows(
                con,
                """
                      select report_date, cbp_apprehended_excl_mexico, cbp_in_custody,
                             cbp_transferred_out, hhs_in_care, hhs_discharged
                      from marts.hhs_uc_daily order by report_date desc limit 5""",
            )
        ]
        alerts = [
            {"event": event, "audience": audience, "status": state, "delivered_via": via}
            for event, audience, state, via in _rows(
                con,
                """
                      select event, audience, status, delivered_via from monitor.alerts
                      order by seq""",
            )
        ]
        incidents = dict(
            _rows(con, "select state, count(*) from monitor.incidents group by 1 order by 1")
        )
        current = status.collect(con)
    document = {
        "command": "summary",
        "read_from": where,
        "loads": loads,
        "headlines": headlines,
        "latest_hhs_daily": latest,
        "status": current.as_dict(),
        "alerts": alerts,
        "incidents_by_state": incidents,
    }
    return json.loads(json.dumps(document, default=_iso))


def _iso(value: Any) -> Any:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
