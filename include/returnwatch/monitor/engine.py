"""The data monitors of a monitor run: anomalies, policy rules and revisions, each judging only
what it has not judged before.

What this module owns:

- ``evaluate()``: the anomaly metrics, policy rules, revision monitor and unmarted-files
  monitor over the warehouse: findings, the keys evaluated, the new marks;
- ``record_marks()``: writes the marks to ``monitor.judged``;
- ``revision_findings``: the rows of ``monitor.revisions`` that matter, as the ``revisions``
  section of ``config/monitors.yaml`` says (``RevisionsConfig``, in ``monitor.monitors_config``).

Only each series' newest period pages; catch-up, first-run history, old periods and
constructed figures are ``info``. The rules of the mark and of revisions:
docs/internals.md#monitor-the-data-monitors-engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from returnwatch.duck import scalar
from returnwatch.monitor import monitors_config, sql_names
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.monitors_config import RevisionsConfig, RevisionTable

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

log = logging.getLogger(__name__)

ANOMALY = "anomaly"
POLICY_RULE = "policy_rule"
REVISION = "revision"
UNMARTED = "unmarted"  # files whose rows reach no mart (monitor/unmarted.py)
DATA_MONITORS: tuple[str, ...] = (ANOMALY, POLICY_RULE, REVISION, UNMARTED)
# The revision monitor keeps one mark (the newest detected_at judged), under this series.
REVISION_MARK = "*"
# A revision mark meaning "judged: there was nothing" (first run on an empty table).
EMPTY_MARK = "1970-01-01T00:00:00+00:00"

Key = tuple[str, str]


# --------------------------------------------------------------------------- config


# ``RevisionsConfig`` and ``RevisionTable`` are part of the one model of the file, in
# ``monitor.monitors_config``.


def load_revisions_config(directory: Path | str | None = None) -> RevisionsConfig:
    """The ``revisions`` section of config/monitors.yaml (validated, cached per folder)."""
    return monitors_config.load(directory).revisions


# --------------------------------------------------------------------------- marks


@dataclass(frozen=True)
class Judged:
    """A row of ``monitor.judged``."""

    period: str
    previous: str | None
    run_id: str


def load_judged(con: duckdb.DuckDBPyConnection) -> dict[Key, Judged]:
    rows = con.execute("SELECT monitor, series, period, previous, run_id FROM monitor.judged")
    return {(m, s): Judged(p, prev, r) for m, s, p, prev, r in rows.fetchall()}


def _mark(key: Key, judged: dict[Key, Judged], run_id: str) -> str | None:
    """The mark this run judges from: None on the series' first run."""
    row = judged.get(key)
    if row is None:
        return None
    return row.previous if row.run_id == run_id else row.period


def record_marks(
    con: duckdb.DuckDBPyConnection, marks: dict[Key, str], *, run_id: str, run_at: dt.datetime
) -> None:
    """Move the marks forward (never back); call inside the run's transaction."""
    if not marks:
        return
    judged = load_judged(con)
    now = dt.datetime.now(dt.UTC)
    rows: list[Any] = []
    for (monitor, series), period in sorted(marks.items()):
        row = judged.get((monitor, series))
        if row is None:
            previous = None
        elif row.run_id == run_id:
            previous = row.previous  # a re-run: the mark before this run stays
        else:
            previous = row.period
        if row is not None:
            period = max(period, row.period)
        rows.append([monitor, series, period, previous, run_id, run_at, now])
    # One statement for all the marks (a run moves a few hundred): DuckDB's fixed cost per
    # statement made a row-by-row INSERT most of the run's time. Keys are unique (a dict's).
    for chunk in _chunks(rows, MARKS_PER_STATEMENT):
        placeholders = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        con.execute(
            f"""
            INSERT OR REPLACE INTO monitor.judged (monitor, series, period, previous, run_id,
                run_at, judged_at)
            VALUES {placeholders}
            """,
            [value for row in chunk for value in row],
        )


# Rows per multi-row INSERT: keeps each statement's parameter list of a bounded size.
MARKS_PER_STATEMENT = 500


def _chunks(rows: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# --------------------------------------------------------------------------- result


@dataclass
class DataMonitorResult:
    """What the data monitors found in one run."""

    findings: list[Finding] = field(default_factory=list)
    # Keys evaluated in this run -> what the monitor saw (quoted by "resolved" messages).
    evaluated: dict[Key, dict[str, Any]] = field(default_factory=dict)
    marks: dict[Key, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def history(self) -> int:
        return sum(1 for f in self.findings if f.details.get("history"))


def evaluate(
    con: duckdb.DuckDBPyConnection,
    *,
    run_at: dt.datetime,
    run_id: str,
    monitors: Iterable[str] = DATA_MONITORS,
) -> DataMonitorResult:
    """Run the data monitors over the warehouse (reads only; nothing is written here)."""
    wanted = list(monitors)
    unknown = [m for m in wanted if m not in DATA_MONITORS]
    if unknown:
        raise ValueError(f"unknown data monitor(s) {unknown}; known: {list(DATA_MONITORS)}")
    judged = load_judged(con)
    result = DataMonitorResult()
    catalog = _Catalog.read(con)
    steps = {ANOMALY: _anomalies, POLICY_RULE: _rules, REVISION: _revisions, UNMARTED: _unmarted}
    for name in wanted:
        started = time.perf_counter()
        steps[name](con, result, judged, run_at=run_at, run_id=run_id, catalog=catalog)
        result.seconds[name] = round(time.perf_counter() - started, 3)
    for line in result.skipped:
        log.info("skipped: %s", line)
    return result


# --------------------------------------------------------------------------- placing


# A newest period first judged this long after it ended is old news: recorded, not alerted
# (a new installation, or a backfill on an empty one, whose newest figures are months old; a
# source that stopped long ago). The longest normal wait is SEGOB's: month M around day 7 of
# M+2, plus 14 days' grace, ~52 days after M ends.
OLD_PERIOD_AFTER = {"month": dt.timedelta(days=92), "day": dt.timedelta(days=14)}


def _is_old(newest: str, frequency: str, run_at: dt.datetime) -> bool:
    """Whether ``newest`` ended more than ``OLD_PERIOD_AFTER`` before ``run_at``."""
    end = _mark_date(newest)
    if frequency == "month":
        end = end.replace(day=monthrange(end.year, end.month)[1])
    return run_at.date() - end > OLD_PERIOD_AFTER[frequency]


def _place(
    finding: Finding, *, newest: str, mark: str | None, constructed: set[str], old: bool = False
) -> Finding | None:
    """What becomes of a finding: kept (it may page), history (info) or dropped (judged).

    ``old``: the newest period ended long before this run (``_is_old``); judged for the first
    time, it is recorded as history too. Once judged, it keeps its incident as it was.
    """
    period = finding.period or ""
    if mark is not None and newest < mark:
        return None  # the series went back (rows withdrawn): judged
    if period != newest:
        if mark is not None and period <= mark:
            return None  # judged in an earlier run
        finding = _as_info(finding, history="history" if mark is None else "catch_up")
    elif old and (mark is None or period > mark):
        finding = _as_info(finding, history="old_period")
    if period in constructed and finding.severity != "info":
        finding = _as_info(finding, constructed_figures=True)
    return finding


_HISTORY_WORDS = {"old_period": "first judged long after the period ended"}


def _as_info(finding: Finding, **note: Any) -> Finding:
    if finding.severity == "info" and all(finding.details.get(k) == v for k, v in note.items()):
        return finding
    details = {
        **finding.details,
        **note,
        "severity_found": finding.details.get("severity_found", finding.severity),
    }
    history = str(note.get("history"))  # every caller names the history or the constructed flag
    suffix = (
        "; constructed figures: recorded, not alerted"
        if note.get("constructed_figures")
        else f"; {_HISTORY_WORDS.get(history, history)}: recorded, not alerted"
    )
    return dataclasses.replace(
        finding, severity="info", details=details, message=finding.message + suffix
    )


def _period_iso(value: Any, frequency: str) -> str:
    import pandas as pd

    ts = pd.Timestamp(value)
    return ts.strftime("%Y-%m") if frequency == "month" else ts.date().isoformat()


def _mark_date(mark: str) -> dt.date:
    return dt.date.fromisoformat(mark + "-01" if len(mark) == 7 else mark[:10])


# --------------------------------------------------------------------------- tables


@dataclass
class _Catalog:
    """What one run needs to know of the warehouse's tables, read once per run: each
    ``information_schema`` query costs milliseconds, and the steps asked the same ones per
    metric and rule. The data monitors only read, so it holds for the whole run."""

    tables: set[str]  # "schema.table", views included
    flags: dict[str, list[str]]  # "schema.table" -> its BOOLEAN *figures_constructed columns
    has_lineage: bool  # marts.mart_source_files has its ``constructed`` column
    constructed: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> _Catalog:
        from returnwatch.monitor.store import existing_tables

        tables = existing_tables(con)
        flags: dict[str, list[str]] = {}
        has_lineage = False
        for schema, name, column in con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE (column_name LIKE '%figures_constructed' AND data_type = 'BOOLEAN') "
            "OR (table_schema = 'marts' AND table_name = 'mart_source_files' "
            "AND column_name = 'constructed')"
        ).fetchall():
            if column.endswith("figures_constructed"):
                flags.setdefault(f"{schema}.{name}", []).append(column)
            if (schema, name, column) == ("marts", "mart_source_files", "constructed"):
                has_lineage = True
        return cls(tables=tables, flags=flags, has_lineage=has_lineage)

    def exists(self, qualified: str) -> bool:
        return qualified in self.tables


def _constructed_periods(
    con: duckdb.DuckDBPyConnection,
    table: str,
    period_column: str,
    frequency: str,
    catalog: _Catalog,
) -> set[str]:
    """Periods resting on figures made by hand, as the files' own records say: a
    ``*figures_constructed`` column true, or (any mart) a file behind the period whose
    ``raw.files.constructed`` is true, through the lineage mart ``marts.mart_source_files``.
    Read once per table in a run (several metrics share a table); callers only read it."""
    key = (table, period_column, frequency)
    if key not in catalog.constructed:
        catalog.constructed[key] = _read_constructed_periods(
            con, table, period_column, frequency, catalog
        )
    return catalog.constructed[key]


def _read_constructed_periods(
    con: duckdb.DuckDBPyConnection,
    table: str,
    period_column: str,
    frequency: str,
    catalog: _Catalog,
) -> set[str]:
    schema, name = table.split(".", 1)
    out: set[str] = set()
    flags = catalog.flags.get(table, [])
    if flags:
        where = " OR ".join(f'"{c}"' for c in flags)
        rows = con.execute(f'SELECT DISTINCT "{period_column}" FROM {table} WHERE {where}')
        out |= {_period_iso(r[0], frequency) for r in rows.fetchall() if r[0] is not None}
    if catalog.has_lineage:
        rows = con.execute(
            "SELECT DISTINCT period FROM marts.mart_source_files WHERE mart = ? AND constructed",
            [name],
        )
        out |= {_period_iso(r[0], frequency) for r in rows.fetchall() if r[0] is not None}
    elif schema == "raw":
        # A rule on a raw table: the files behind its rows.
        try:
            rows = con.execute(
                f'SELECT DISTINCT t."{period_column}" FROM {table} t JOIN raw.files f '
                "ON f.sha256 = t.source_file WHERE f.constructed"
            )
            out |= {_period_iso(r[0], frequency) for r in rows.fetchall() if r[0] is not None}
        except Exception:  # noqa: BLE001 - a raw table without source_file: nothing to join
            pass
    return out


# --------------------------------------------------------------------------- anomalies


def _anomalies(
    con: duckdb.DuckDBPyConnection,
    result: DataMonitorResult,
    judged: dict[Key, Judged],
    *,
    run_at: dt.datetime,
    run_id: str,
    catalog: _Catalog,
) -> None:
    import duckdb
    import numpy as np

    from returnwatch import settings
    from returnwatch.monitor import anomalies as an
    from returnwatch.monitor import figures

    cfg = an.load_config()
    config_dir = settings.config_dir()
    for metric, monitor in cfg.metrics.items():
        if not catalog.exists(monitor.table):
            result.skipped.append(f"anomaly {metric}: table {monitor.table} does not exist yet")
            continue
        try:
            frame = an.metric_rows(con, monitor)
            constructed = _constructed_periods(
                con, monitor.table, monitor.period_column, monitor.frequency, catalog
            )
        except duckdb.Error as exc:
            result.skipped.append(
                f"anomaly {metric}: cannot read {monitor.table}: {_first_line(exc)}"
            )
            continue
        series = an.series_frames(frame, monitor)
        found = an.evaluate_series(
            series,
            metric,
            monitor,
            run_at=run_at,
            params=cfg.params(monitor),
            regimes=cfg.regimes,
            annotate_within_periods=cfg.annotate_within_periods,
        )
        # Each figure's documented severity policy (config/monitors.yaml `figures`); the
        # config folder resolved once, not per finding.
        found = [figures.apply_severity_policy(f, config_dir) for f in found]
        by_series: dict[str, list[Finding]] = {}
        for finding in found:
            by_series.setdefault(finding.series, []).append(finding)
        for name, values in series.items():
            # The newest period with a figure (position of the last non-NaN value: cheaper
            # than dropna per series).
            present = np.flatnonzero(values.notna().to_numpy())
            if not len(present):
                continue
            key = (ANOMALY, f"{metric}:{name}")
            newest = _period_iso(values.index[present[-1]], monitor.frequency)
            mark = _mark(key, judged, run_id)
            old = _is_old(newest, monitor.frequency, run_at)
            for finding in by_series.get(key[1], []):
                placed = _place(finding, newest=newest, mark=mark, constructed=constructed, old=old)
                if placed is not None:
                    result.findings.append(placed)
            result.evaluated[key] = {
                "label": monitor.label,
                "metric": metric,
                "newest_period": newest,
            }
            result.marks[key] = newest


# --------------------------------------------------------------------------- rules


def _rules(
    con: duckdb.DuckDBPyConnection,
    result: DataMonitorResult,
    judged: dict[Key, Judged],
    *,
    run_at: dt.datetime,
    run_id: str,
    catalog: _Catalog,
) -> None:
    import duckdb

    from returnwatch.monitor import rules as rl

    for name, rule in rl.load_rules().items():
        if not catalog.exists(rule.table):
            result.skipped.append(f"policy_rule {name}: table {rule.table} does not exist yet")
            continue
        key = (POLICY_RULE, name)
        try:
            # The rule's newest period: the table's, wherever the figure is published (not
            # only rows the rule selects: a rule about Title 42 must not judge May 2023 again).
            newest_value = scalar(
                con,
                f'SELECT max("{rule.period_column}") FROM {rule.table} '
                f'WHERE "{rule.value_column}" IS NOT NULL',
            )
            if newest_value is None:
                result.evaluated[key] = {"label": rule.label, "newest_period": None}
                continue
            newest = _period_iso(newest_value, rule.period)
            mark = _mark(key, judged, run_id)
            since = None if mark is None else _mark_date(min(mark, newest))
            found = rl.evaluate_rules(con, run_at=run_at, rules={name: rule}, since=since)
            constructed = _constructed_periods(
                con, rule.table, rule.period_column, rule.period, catalog
            )
        except (duckdb.Error, KeyError) as exc:
            result.skipped.append(
                f"policy_rule {name}: cannot evaluate on {rule.table}: {_first_line(exc)}"
            )
            continue
        old = _is_old(newest, rule.period, run_at)
        for finding in found:
            placed = _place(finding, newest=newest, mark=mark, constructed=constructed, old=old)
            if placed is not None:
                result.findings.append(placed)
        result.evaluated[key] = {"label": rule.label, "newest_period": newest}
        result.marks[key] = newest


# --------------------------------------------------------------------------- unmarted


def _unmarted(
    con: duckdb.DuckDBPyConnection,
    result: DataMonitorResult,
    judged: dict[Key, Judged],
    *,
    run_at: dt.datetime,
    run_id: str,
    catalog: _Catalog,
) -> None:
    """Loaded files whose rows reach no mart; HHS daily publications that disagree. Judged
    afresh every run (no mark): a file that reaches a mart later resolves its incident."""
    from returnwatch.monitor import unmarted

    found = unmarted.evaluate(con, run_at=run_at)
    result.findings += found.findings
    result.evaluated.update(found.evaluated)
    result.skipped += found.skipped


# --------------------------------------------------------------------------- revisions


def _revisions(
    con: duckdb.DuckDBPyConnection,
    result: DataMonitorResult,
    judged: dict[Key, Judged],
    *,
    run_at: dt.datetime,
    run_id: str,
    catalog: _Catalog,
) -> None:
    import duckdb

    cfg = load_revisions_config()
    mark_key = (REVISION, REVISION_MARK)
    mark = _mark(mark_key, judged, run_id)
    after = mark or EMPTY_MARK
    newest_row = scalar(
        con,
        "SELECT max(detected_at) FROM monitor.revisions WHERE detected_at > CAST(? AS TIMESTAMPTZ)",
        [after],
    )
    result.marks[mark_key] = (
        newest_row.astimezone(dt.UTC).isoformat() if newest_row is not None else after
    )
    # Every open revision incident was evaluated by this run: with no new restatement it closes.
    for (series,) in con.execute(
        "SELECT DISTINCT series FROM monitor.incidents WHERE monitor = ? AND state = 'open'",
        [REVISION],
    ).fetchall():
        result.evaluated.setdefault((REVISION, series), {})
    if newest_row is None:
        return
    pairs = con.execute(
        "SELECT DISTINCT raw_table, figure FROM monitor.revisions WHERE detected_at > "
        "CAST(? AS TIMESTAMPTZ) ORDER BY 1, 2",
        [after],
    ).fetchall()
    for table, figure in pairs:
        spec = cfg.tables.get(table)
        if spec is None:
            result.skipped.append(
                f"revision {table}.{figure}: table not configured under "
                "revisions.tables (recorded, not judged)"
            )
            continue
        if not sql_names.IDENTIFIER.match(figure) or not catalog.exists(table):
            result.skipped.append(f"revision {table}.{figure}: cannot be read")
            continue
        try:
            cells = _revision_totals(con, table, figure, spec, after)
        except duckdb.Error as exc:
            result.skipped.append(f"revision {table}.{figure}: {_first_line(exc)}")
            continue
        found = revision_findings(
            cells,
            table=table,
            figure=figure,
            spec=spec,
            run_at=run_at,
            tolerance=cfg.tolerance,
            absolute_floor=cfg.absolute_floor,
        )
        for finding in found:
            if mark is None:
                # First run: restatements already in the warehouse are history.
                finding = _as_info(finding, history="history")
            result.findings.append(finding)
            result.evaluated.setdefault((REVISION, finding.series), {})


def _revision_totals(
    con: duckdb.DuckDBPyConnection, table: str, figure: str, spec: RevisionTable, after: str
) -> pd.DataFrame:
    """Per (new file, old file, period, series_by values): both files' totals."""
    period = spec.period_column
    groups = spec.series_by
    json_groups = "".join(f", json_extract_string(key, '$.{g}') AS \"{g}\"" for g in groups)
    raw_groups = "".join(f', CAST("{g}" AS VARCHAR) AS "{g}"' for g in groups)
    join_groups = "".join(f' AND t."{g}" IS NOT DISTINCT FROM r."{g}"' for g in groups)
    group_cols = "".join(f', r."{g}"' for g in groups)
    return con.execute(
        f"""
        WITH r AS (
            SELECT DISTINCT new_file, old_file, new_vintage, old_vintage,
                   CAST(json_extract_string(key, '$.{period}') AS DATE) AS period
                   {json_groups}
            FROM monitor.revisions
            WHERE raw_table = ? AND figure = ? AND detected_at > CAST(? AS TIMESTAMPTZ)
        ),
        files AS (SELECT new_file AS f FROM r UNION SELECT old_file FROM r),
        t AS (
            SELECT source_file, CAST("{period}" AS DATE) AS period {raw_groups},
                   sum("{figure}")::DOUBLE AS total
            FROM {table} WHERE source_file IN (SELECT f FROM files)
            GROUP BY ALL
        )
        SELECT r.new_file, r.old_file, r.new_vintage, r.old_vintage, r.period {group_cols},
               o.total AS old_total, n.total AS new_total
        FROM r
        LEFT JOIN t AS o ON o.source_file = r.old_file AND o.period = r.period
            {join_groups.replace("t.", "o.")}
        LEFT JOIN t AS n ON n.source_file = r.new_file AND n.period = r.period
            {join_groups.replace("t.", "n.")}
        ORDER BY r.new_vintage, r.new_file, r.period
    """,
        [table, figure, after],
    ).df()


def revision_findings(
    cells: pd.DataFrame,
    *,
    table: str,
    figure: str,
    spec: RevisionTable,
    run_at: dt.datetime,
    tolerance: float,
    absolute_floor: float,
) -> list[Finding]:
    """One finding per newer file and series: restated settled periods (warning) or only
    provisional ones (info); nothing when every change is within the tolerance.

    ``cells``: ``_revision_totals`` rows (new_file, old_file, new_vintage, old_vintage, period,
    series_by columns, old_total, new_total). Pure (pandas only). Of several newer files of one
    series in one run, only the newest may page; the older ones are catch-up (info).
    """
    import pandas as pd

    from returnwatch.monitor.anomalies import detect_restatements

    if cells.empty:
        return []
    cells = cells.copy()
    period = pd.to_datetime(cells["period"])
    end = period + pd.offsets.MonthEnd(0) if spec.frequency == "month" else period
    settled_by = pd.to_datetime(cells["old_vintage"]) - pd.Timedelta(days=spec.settled_after_days)
    cells["settled"] = (end <= settled_by).to_numpy()
    groups = ["new_file", *spec.series_by]
    out: list[Finding] = []
    newest_file: dict[str, Any] = {}
    for key, part in cells.groupby(groups, dropna=False, sort=False):
        keys = key if isinstance(key, tuple) else (key,)
        new_file, group_values = keys[0], [str(v) for v in keys[1:]]
        series = ":".join([f"{table}.{figure}", *group_values])
        # One old figure per period: the newest older vintage the cells were compared with.
        part = part.sort_values(["period", "old_vintage"]).drop_duplicates("period", keep="last")
        found = {}
        for settled in (True, False):
            rows = part[part["settled"] == settled]
            index = pd.DatetimeIndex(pd.to_datetime(rows["period"]))
            found[settled] = detect_restatements(
                pd.Series(rows["old_total"].to_numpy(float), index=index),
                pd.Series(rows["new_total"].to_numpy(float), index=index),
                tolerance=tolerance,
                absolute_floor=absolute_floor,
            )
        settled_rows, provisional_rows = found[True], found[False]
        if settled_rows.empty and provisional_rows.empty:
            continue
        first = part.iloc[0]
        restated = settled_rows if not settled_rows.empty else provisional_rows
        listed = [
            {
                "period": _period_iso(r.period, spec.frequency),
                "old": r.old,
                "new": r.new,
                "change": r.change,
                "relative_change": round(float(r.relative_change), 4),
            }
            for r in restated.itertuples(index=False)
        ]
        shown = ", ".join(
            f"{x['period']} {x['old']:,.0f} → {x['new']:,.0f} ({x['relative_change']:+.1%})"
            for x in listed[:4]
        )
        more = f" and {len(listed) - 4} more" if len(listed) > 4 else ""
        what = "settled" if not settled_rows.empty else "provisional"
        new_vintage = pd.Timestamp(first["new_vintage"]).date()
        old_vintage = pd.Timestamp(part["old_vintage"].max()).date()
        finding = Finding(
            monitor=REVISION,
            kind="revision_restated" if what == "settled" else "revision_provisional",
            source=spec.source,
            series=series,
            severity="warning" if what == "settled" else "info",
            message=(
                f"{spec.label} ({series}): the file of {new_vintage.isoformat()} restates "
                f"{len(listed)} {what} figure(s) of the file of {old_vintage.isoformat()} "
                f"beyond {tolerance:.0%}: {shown}{more}"
            ),
            run_at=run_at,
            period=listed[-1]["period"],
            value=float(len(listed)),
            expected=f"within {tolerance:.0%} (and {absolute_floor:g})",
            details={
                "table": table,
                "figure": figure,
                "label": spec.label,
                "series_by": dict(zip(spec.series_by, group_values)),
                "new_file": new_file,
                "new_vintage": new_vintage.isoformat(),
                "old_files": sorted(set(part["old_file"])),
                "old_vintage": old_vintage.isoformat(),
                "restated": listed,
                "settled": what == "settled",
                "provisional_restated": len(provisional_rows),
                "tolerance": tolerance,
                "absolute_floor": absolute_floor,
                "settled_after_days": spec.settled_after_days,
                "method": "vintage_comparison",
            },
        )
        if series not in newest_file or new_vintage >= newest_file[series][0]:
            newest_file[series] = (new_vintage, len(out))
        out.append(finding)
    newest_positions = {pos for _, pos in newest_file.values()}
    return [
        f if i in newest_positions else _as_info(f, history="catch_up") for i, f in enumerate(out)
    ]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


__all__ = [
    "ANOMALY",
    "DATA_MONITORS",
    "POLICY_RULE",
    "REVISION",
    "UNMARTED",
    "DataMonitorResult",
    "Judged",
    "RevisionTable",
    "RevisionsConfig",
    "evaluate",
    "load_judged",
    "load_revisions_config",
    "record_marks",
    "revision_findings",
]
