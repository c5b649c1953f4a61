"""Policy rules: conditions advocates write down, each resting on a legal or published source.

What this module owns:

- the ``rules`` section of ``config/monitors.yaml`` (``load_rules``; the models, ``PolicyRule``
  and its parts, are in ``monitor.monitors_config``);
- ``evaluate_rule()``: pure, over a DataFrame: which periods break the rule, as ``Finding``
  records citing the rule, its sources and the rows;
- ``rule_rows()`` / ``evaluate_rules()``: one SELECT per rule, then the pure function.

A rule is not statistics: one child is a finding. Findings are graded ``rule_check``,
``rule_contested_period`` or ``rule_violation`` and carry the rule's caveat and sources.
Semantics and grading: docs/internals.md#monitor-policy-rules.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from returnwatch.monitor import monitors_config, sql_names
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.monitors_config import (
    Applies,
    ColumnFilter,
    Condition,
    ContestedPeriod,
    HistoryCheck,
    LatestVintage,
    PolicyRule,
    RuleSource,
)

if TYPE_CHECKING:
    import duckdb

MONITOR = "policy_rule"


# --------------------------------------------------------------------------- config


# The models of this section (``PolicyRule`` and its parts) are part of the one model of the
# file, in ``monitor.monitors_config``.


def load_rules(directory: Path | str | None = None) -> dict[str, PolicyRule]:
    """The ``rules`` section of config/monitors.yaml (validated, cached per folder)."""
    return monitors_config.load(directory).rules


# --------------------------------------------------------------------------- evaluation


def _period_bounds(periods: pd.Series, unit: str) -> tuple[pd.Series, pd.Series]:
    start = pd.to_datetime(periods).dt.normalize()
    if unit == "month":
        start = start.dt.to_period("M").dt.to_timestamp()
        end = start + pd.offsets.MonthEnd(0)
    else:
        end = start
    return start, end


def _iso(ts: pd.Timestamp, unit: str) -> str:
    return ts.strftime("%Y-%m") if unit == "month" else ts.date().isoformat()


def matching_rows(frame: pd.DataFrame, rule: PolicyRule) -> pd.DataFrame:
    """The rows the rule's ``where`` selects (before dates and condition)."""
    mask = pd.Series(True, index=frame.index)
    for column, flt in rule.where.items():
        values = frame[column]
        if flt.in_ is not None:
            mask &= values.isin(flt.in_)
        else:
            mask &= values.notna() & ~values.isin(flt.not_in or [])
    return frame[mask]


def evaluate_rule(
    frame: pd.DataFrame, name: str, rule: PolicyRule, *, run_at: dt.datetime, since: Any = None
) -> list[Finding]:
    """Findings for every period that breaks ``rule`` in ``frame`` (pure).

    ``since`` (a date) keeps only periods starting on or after it (a daily run looks at recent
    periods; a backfill passes None). Each finding cites the rule, its sources and the rows
    that broke it (``details.rows``: ``show_columns`` and the value, largest first).
    """
    missing = [c for c in rule.columns() if c not in frame.columns]
    if missing:
        raise KeyError(
            f"rule {name}: table {rule.table} has no column(s) {missing}; "
            f"columns are {list(frame.columns)}"
        )
    rows = matching_rows(frame, rule)
    if rows.empty:
        return []
    start, end = _period_bounds(rows[rule.period_column], rule.period)
    rows = rows.assign(_start=start.to_numpy(), _end=end.to_numpy())
    first = pd.Timestamp(rule.applies.from_)
    last = pd.Timestamp(rule.applies.until) if rule.applies.until else None
    starts_inside = rows["_start"] >= first
    if last is not None:
        starts_inside &= rows["_start"] <= last
    straddles = (rows["_start"] < first) & (rows["_end"] >= first)
    if since is not None:
        recent = rows["_start"] >= pd.Timestamp(since)
        starts_inside &= recent
        straddles &= recent
    rises = _rises(rows, rule) if rule.history is not None else {}
    out: list[Finding] = []
    for part, partial in ((rows[starts_inside], False), (rows[straddles], True)):
        if part.empty:
            continue
        per_period = part.groupby("_start")[rule.value_column].agg(rule.aggregate)
        level = rule.condition.holds(per_period)
        risen = pd.Series([p in rises for p in per_period.index], index=per_period.index)
        broken = per_period[level | risen]
        for period, value in broken.items():
            evidence = part[part["_start"] == period]
            out.append(
                _finding(
                    name,
                    rule,
                    evidence,
                    period,
                    float(value),
                    run_at,
                    partial,
                    level=bool(level[period]),
                    rise=rises.get(period),
                )
            )
    return sorted(out, key=lambda f: (f.period or "", f.kind))


def _rises(rows: pd.DataFrame, rule: PolicyRule) -> dict[pd.Timestamp, dict[str, float]]:
    """Periods whose figure rose ``rise_at_least`` above the median of its own past periods."""
    history = rule.history
    assert history is not None
    series = rows.groupby("_start")[rule.value_column].agg(rule.aggregate).dropna().sort_index()
    out: dict[pd.Timestamp, dict[str, float]] = {}
    for i, (period, value) in enumerate(series.items()):
        past = series.iloc[max(0, i - history.periods) : i]
        if len(past) < history.min_periods:
            continue
        baseline = float(past.median())
        if value - baseline >= history.rise_at_least:
            out[period] = {
                "baseline_median": baseline,
                "baseline_periods": len(past),
                "rise": float(value - baseline),
            }
    return out


def _records(rule: PolicyRule, evidence: pd.DataFrame) -> int:
    column = rule.evidence_column or rule.value_column
    return int(pd.to_numeric(evidence[column], errors="coerce").fillna(0).sum())


def _finding(
    name: str,
    rule: PolicyRule,
    evidence: pd.DataFrame,
    period: pd.Timestamp,
    value: float,
    run_at: dt.datetime,
    partial: bool,
    *,
    level: bool = True,
    rise: dict[str, float] | None = None,
) -> Finding:
    shown = evidence.sort_values(rule.value_column, ascending=False, kind="stable")
    cited = [
        {
            **{c: _plain(r[c]) for c in rule.show_columns},
            rule.value_column: _plain(r[rule.value_column]),
        }
        for _, r in shown.iterrows()
    ]
    label_period = _iso(period, rule.period)
    sources = [s.model_dump(mode="json", exclude_none=True) for s in rule.sources]
    applies = {
        "from": rule.applies.from_.isoformat(),
        "until": rule.applies.until.isoformat() if rule.applies.until else None,
    }
    where = [f.describe(c) for c, f in rule.where.items()]
    records = _records(rule, evidence)
    contested = rule.contested_at(period)
    what = (
        f"{rule.label} {label_period}: {value:,.4g}"
        + (
            f" ({rule.aggregate} of {rule.value_column} {rule.condition.describe()})"
            if level
            else ""
        )
        + (
            f"; {rise['rise']:+.2f} above the median {rise['baseline_median']:.2f} of its "
            f"previous {rise['baseline_periods']} periods"
            if rise
            else ""
        )
    )
    check_note = (
        f"{rule.evidence_publisher}'s table shows {records:,} record(s); confirm "
        f"with {rule.evidence_publisher} before citing"
    )
    if partial:
        kind, severity = "rule_partial_period", "info"
        message = (
            f"{rule.label} ({name}) {label_period}: {value:,.4g} in a period that "
            f"straddles the rule's start {applies['from']}; monthly figures cannot say "
            "which came after it"
        )
    elif records < rule.min_records:
        kind, severity = "rule_check", "check"
        message = f"{what}. {check_note}."
    elif contested is not None:
        kind, severity = "rule_contested_period", contested.severity
        message = f"{what}. The legal status of this period was contested: {contested.why}"
    else:
        kind, severity = "rule_violation", rule.severity
        message = f"{what}; {len(cited)} row(s); source: {rule.sources[0].citation}"
    return Finding(
        monitor=MONITOR,
        kind=kind,
        source=rule.source,
        series=name,
        severity=severity,  # type: ignore[arg-type]
        message=message,
        run_at=run_at,
        period=label_period,
        value=value,
        expected=f"{rule.aggregate}({rule.value_column}) not {rule.condition.describe()}",
        details={
            "rule": name,
            "label": rule.label,
            "condition": f"{rule.aggregate}({rule.value_column}) {rule.condition.describe()}",
            "where": where,
            "applies": applies,
            "sources": sources,
            "caveat": rule.caveat,
            "records": records,
            "min_records": rule.min_records,
            "evidence_publisher": rule.evidence_publisher,
            "check_note": check_note if kind == "rule_check" else None,
            "contested": (
                None
                if contested is None
                else {
                    "from": contested.from_.isoformat(),
                    "until": contested.until.isoformat(),
                    "why": contested.why,
                }
            ),
            "level_broken": level,
            "history": rise,
            "table": rule.table,
            "rows": cited,
            "row_count": len(cited),
            "partial_period": partial,
        },
    )


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


# --------------------------------------------------------------------------- DuckDB adapter


def rule_rows(con: duckdb.DuckDBPyConnection, rule: PolicyRule) -> pd.DataFrame:
    """The rows a rule needs, from its table (newest vintage per key if asked)."""
    columns = rule.columns()
    select = ", ".join(f'"{c}"' for c in columns)
    if rule.latest_vintage is None:
        return con.execute(f"SELECT {select} FROM {rule.table}").df()
    lv = rule.latest_vintage
    for c in [lv.vintage_column, *lv.key_columns]:
        if not sql_names.IDENTIFIER.match(c):
            raise ValueError(f"{c!r} is not a plain column name")
    keys = ", ".join(f'"{c}"' for c in lv.key_columns)
    return con.execute(
        f"""SELECT {select} FROM {rule.table}
            QUALIFY row_number() OVER (PARTITION BY {keys}
                                       ORDER BY "{lv.vintage_column}" DESC) = 1"""
    ).df()


def evaluate_rules(
    con: duckdb.DuckDBPyConnection,
    *,
    run_at: dt.datetime,
    rules: dict[str, PolicyRule] | None = None,
    since: Any = None,
) -> list[Finding]:
    """Findings of every configured rule, reading each rule's table from DuckDB."""
    out: list[Finding] = []
    for name, rule in (rules if rules is not None else load_rules()).items():
        out += evaluate_rule(rule_rows(con, rule), name, rule, run_at=run_at, since=since)
    return out


__all__ = [
    "MONITOR",
    "Applies",
    "ColumnFilter",
    "Condition",
    "ContestedPeriod",
    "HistoryCheck",
    "LatestVintage",
    "PolicyRule",
    "RuleSource",
    "evaluate_rule",
    "evaluate_rules",
    "load_rules",
    "matching_rows",
    "rule_rows",
]
