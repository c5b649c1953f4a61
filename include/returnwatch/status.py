"""``returnwatch status``: is every source healthy? One line per source, from the warehouse.

Per source: its freshness state at the latest monitor run (by publishing calendar), the newest
period it has published, when a new file last arrived, open incidents and revisions in the
last 90 days. It reads a read-only connection (the snapshot by default, so it never waits for
the pipeline's write lock) and never writes.
"""

from __future__ import annotations

from typing import Any

from returnwatch.sources import SOURCE_MODULES

STATE_MARK = {"fresh": "ok", "late": "LATE", "stopped": "STOPPED", "no_data": "NO-DATA"}


def _rows(con: Any, sql: str) -> list[tuple]:
    try:
        return con.execute(sql).fetchall()
    except Exception:  # a monitor table a later run creates may not exist yet
        return []


def render(con: Any) -> str:
    freshness = {row[0]: row[1:] for row in _rows(con, """
        select source, state, newest_period, last_new_file_at, run_at
        from monitor.source_freshness
        qualify row_number() over (partition by source order by run_at desc) = 1""")}
    incidents: dict[str, list[tuple]] = {}
    for source, kind, severity, opened_at, summary in _rows(con, """
            select source, kind, severity, opened_at, summary from monitor.incidents
            where state = 'open' order by opened_at"""):
        incidents.setdefault(source, []).append((kind, severity, opened_at, summary))
    revisions = dict(_rows(con, """
        select source, count(*) from monitor.revisions
        where detected_at >= now() - interval 90 day group by 1"""))

    header = f"{'source':<24} {'state':<8} {'newest period':<13} {'last new file':<13} " \
             f"{'open incidents':>14} {'revisions 90d':>13}"
    out = [header, "-" * len(header)]
    for source in SOURCE_MODULES:
        state, newest, new_file_at, _ = freshness.get(source, (None, None, None, None))
        out.append(f"{source:<24} {STATE_MARK.get(state, state or 'unknown'):<8} "
                   f"{_day(newest):<13} {_day(new_file_at):<13} "
                   f"{len(incidents.get(source, [])):>14} {revisions.get(source, 0):>13}")
    judged = [row[3] for row in freshness.values() if row[3] is not None]
    out.append("")
    out.append(f"judged by the monitor run of {max(judged):%Y-%m-%d %H:%M} UTC" if judged
               else "no monitor run yet: run the `monitor` DAG (or `make demo`)")
    for source, rows in incidents.items():
        for kind, severity, opened_at, summary in rows:
            out.append(f"  open since {opened_at:%Y-%m-%d} [{severity}] {source} {kind}: "
                       f"{summary.splitlines()[0][:140]}")
    return "\n".join(out)


def _day(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d}"
