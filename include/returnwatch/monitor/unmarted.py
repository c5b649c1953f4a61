"""Loaded files whose rows reach no mart, and days the two HHS daily publications disagree on.

What this module owns (the ``unmarted`` data monitor, run by ``monitor.engine``):

- ``file_not_in_marts`` (warning, ops): a loaded file none of whose rows is behind a mart row
  (``marts.mart_source_files``) while some period it carries comes from no other file;
- ``daily_sources_disagree`` (warning, ops): a day the healthdata.gov export and a daily
  report PDF publish with different figures.

Files are judged after ``FILE_GRACE`` and as of ``run_at``; without the marts the monitor is
skipped. Details: docs/internals.md#monitor-files-that-reach-no-mart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.monitor.findings import Finding

if TYPE_CHECKING:
    import duckdb

MONITOR = "unmarted"
LINEAGE = "marts.mart_source_files"
HHS_DAILY_MART = "marts.hhs_uc_daily"
# Long enough for the load -> transform chain (minutes) to have run, short enough that a file
# the models drop is reported by the next daily monitor run.
FILE_GRACE = dt.timedelta(hours=6)
# The column naming the period a raw row describes, by preference. Daily columns are compared
# day by day with the lineage; monthly ones month by month.
_PERIOD_COLUMNS = (("report_date", "day"), ("month", "month"), ("repatriation_date", "month"))


@dataclass
class UnmartedResult:
    findings: list[Finding] = field(default_factory=list)
    evaluated: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def evaluate(con: duckdb.DuckDBPyConnection, *, run_at: dt.datetime) -> UnmartedResult:
    """Findings about files that reach no mart and about conflicting HHS daily figures."""
    from returnwatch.warehouse import table_exists

    result = UnmartedResult()
    if not table_exists(con, LINEAGE):
        result.skipped.append(f"{MONITOR}: {LINEAGE} does not exist yet (marts not built)")
        return result
    _files(con, result, run_at=run_at)
    if table_exists(con, HHS_DAILY_MART):
        _conflicts(con, result, run_at=run_at)
    return result


# --------------------------------------------------------------------------- files


def _files(con: duckdb.DuckDBPyConnection, result: UnmartedResult, *, run_at: dt.datetime) -> None:
    files = con.execute(
        f"""
        SELECT f.sha256, f.source, f.url, f.vintage, f.raw_table, f.rows_loaded, f.loaded_at,
               EXISTS (SELECT 1 FROM {LINEAGE} AS l WHERE l.source_file = f.sha256) AS in_marts,
               EXISTS (SELECT 1 FROM {LINEAGE} AS l JOIN raw.files AS g
                       ON g.sha256 = l.source_file WHERE g.raw_table = f.raw_table)
                   AS table_in_marts
        FROM raw.files AS f
        WHERE f.loaded_at <= ? ORDER BY f.loaded_at, f.sha256
        """,
        [run_at - FILE_GRACE],
    ).fetchall()
    for sha, source, url, vintage, raw_table, rows_loaded, _, in_marts, table_in_marts in files:
        series = f"file:{sha[:16]}"
        result.evaluated[(MONITOR, series)] = {"label": f"file {url}", "sha256": sha}
        if in_marts:
            continue
        table = raw_table if "." in raw_table else f"raw.{raw_table}"
        unsupplied = _periods_from_no_other_file(con, table, source, sha) if rows_loaded else None
        if unsupplied == []:
            continue  # superseded: every period it carries comes from another file
        if not rows_loaded:
            reason = "the file loaded no rows"
        elif not table_in_marts:
            reason = (
                f"no mart is built from {table}: its rows are loaded and staged, but no "
                "model feeds them to a mart (a file kind the models do not read)"
            )
        else:
            reason = (
                "the models drop its rows before any mart (a label, layout or category "
                "they do not read)"
            )
        periods = [p.isoformat() for p in unsupplied or []]
        shown = ", ".join(periods[:6]) + (
            f" and {len(periods) - 6} more" if len(periods) > 6 else ""
        )
        message = (
            f"File {url} (sha256 {sha[:12]}, {table}, vintage {vintage}) reaches no "
            f"mart: {reason}" + (f"; periods only it carries: {shown}" if periods else "")
        )
        result.findings.append(
            Finding(
                monitor=MONITOR,
                kind="file_not_in_marts",
                source=source,
                series=series,
                severity="warning",
                message=message,
                run_at=run_at,
                period=periods[-1] if periods else None,
                value=float(rows_loaded or 0),
                expected="its rows in a mart (marts.mart_source_files)",
                details={
                    "label": f"{source} file",
                    "url": url,
                    "sha256": sha,
                    "raw_table": table,
                    "vintage": vintage,
                    "rows_loaded": rows_loaded,
                    "reason": reason,
                    "periods": periods,
                },
            )
        )


def _periods_from_no_other_file(
    con: duckdb.DuckDBPyConnection, table: str, source: str, sha: str
) -> list[dt.date] | None:
    """The periods of file ``sha`` that no other file of ``source`` brings to a mart.

    None when the raw table has no period column this module knows (every period unknown).
    """
    schema, name = table.split(".", 1)
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ?",
            [schema, name],
        ).fetchall()
    }
    found = [(c, grain) for c, grain in _PERIOD_COLUMNS if c in columns]
    if not found:
        return None
    column, grain = found[0]

    def period(expr: str) -> str:
        return (
            f"CAST({expr} AS DATE)"
            if grain == "day"
            else f"CAST(date_trunc('month', {expr}) AS DATE)"
        )

    rows = con.execute(
        f"""
        SELECT DISTINCT {period(f't."{column}"')} AS period
        FROM {table} AS t
        WHERE t.source_file = ? AND t."{column}" IS NOT NULL
          AND {period(f't."{column}"')} NOT IN (
              SELECT {period("l.period")} FROM {LINEAGE} AS l
              JOIN raw.files AS g ON g.sha256 = l.source_file
              WHERE g.source = ? AND l.source_file <> ?)
        ORDER BY period
        """,
        [sha, source, sha],
    ).fetchall()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- HHS conflicts


def _conflicts(
    con: duckdb.DuckDBPyConnection, result: UnmartedResult, *, run_at: dt.datetime
) -> None:
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
            "AND table_name = 'hhs_uc_daily'"
        ).fetchall()
    }
    if not {"figures_in_conflict", "other_source_file"} <= columns:
        result.skipped.append(f"{MONITOR}: {HHS_DAILY_MART} has no figures_in_conflict column")
        return
    rows = con.execute(
        f"""
        SELECT d.report_date, d.figures_in_conflict, d.daily_source, d.source_file,
               d.other_source_file, f.url, o.url
        FROM {HHS_DAILY_MART} AS d
        LEFT JOIN raw.files AS f ON f.sha256 = d.source_file
        LEFT JOIN raw.files AS o ON o.sha256 = d.other_source_file
        WHERE d.other_source_file IS NOT NULL AND f.loaded_at <= ? AND o.loaded_at <= ?
        ORDER BY d.report_date
        """,
        [run_at, run_at],
    ).fetchall()
    for day, figures, chosen, sha, other_sha, url, other_url in rows:
        series = f"hhs_uc_daily:{day.isoformat()}"
        result.evaluated[(MONITOR, series)] = {"label": f"HHS daily figures of {day}"}
        if not figures:
            continue
        message = (
            f"HHS daily figures of {day}: the healthdata.gov export and the daily report "
            f"PDF disagree on {', '.join(figures)}; the mart keeps the {chosen} row "
            f"({url}), not {other_url}"
        )
        result.findings.append(
            Finding(
                monitor=MONITOR,
                kind="daily_sources_disagree",
                source="hhs_uc_daily",
                series=series,
                severity="warning",
                message=message,
                run_at=run_at,
                period=day.isoformat(),
                value=float(len(figures)),
                expected="the same figures in both publications",
                details={
                    "label": "HHS daily figures",
                    "figures": list(figures),
                    "chosen_source": chosen,
                    "chosen_file": sha,
                    "chosen_url": url,
                    "other_file": other_sha,
                    "other_url": other_url,
                },
            )
        )


__all__ = ["FILE_GRACE", "MONITOR", "UnmartedResult", "evaluate"]
