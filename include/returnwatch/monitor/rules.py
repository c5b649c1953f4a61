"""Policy rules: conditions advocates write down, each resting on a legal or published source.

What this module owns:

- the ``rules`` section of ``config/monitors.yaml`` (pydantic: ``PolicyRule`` and its parts);
- ``evaluate_rule()``: pure, over a pandas DataFrame of rows (CBP rows, a mart): which periods
  break the rule, as ``Finding`` records citing the rule, its sources and the rows that broke it;
- ``rule_rows()`` / ``evaluate_rules()``: the small DuckDB adapter (one SELECT per rule, on a
  ``marts.*`` or ``raw.*`` table, optionally the newest vintage per key), then the pure function.

A rule is not statistics: "a child expelled under Title 42 after the court order" is a finding
whether it is one child or a thousand, and whatever the months before looked like.

Semantics, precisely:

- ``where``: column -> ``{in: [...]}`` / ``{not_in: [...]}``. ``not_in`` never matches an empty
  value: a row with no citizenship is not evidence of a non-Mexican child.
- Rows are grouped by period (``period_column``, a month or a day) and ``aggregate``d
  (sum/max/min/mean of ``value_column``); the ``condition`` (``above``/``at_least``/``below``)
  is applied to that per-period figure.
- ``applies.from`` / ``applies.until`` (inclusive dates): a period counts when it *starts* on or
  after ``from`` and on or before ``until``. A monthly period that straddles ``from`` (November
  2020 for an order of 18 November) cannot tell events before the date from events after it:
  it gives an ``info`` finding (``rule_partial_period``), recorded, never alerted.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from returnwatch.monitor import sql_names
from returnwatch.monitor.findings import Finding

if TYPE_CHECKING:
    import duckdb

MONITOR = "policy_rule"


# --------------------------------------------------------------------------- config


class RuleSource(BaseModel):
    """What a rule rests on: a court order, a Federal Register notice, a statute, a report."""

    model_config = ConfigDict(extra="forbid")

    citation: str
    url: str | None = None
    date: dt.date | None = None
    note: str | None = None


class ColumnFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> ColumnFilter:
        if (self.in_ is None) == (self.not_in is None):
            raise ValueError("give exactly one of `in` or `not_in`")
        return self

    def describe(self, column: str) -> str:
        if self.in_ is not None:
            return f"{column} in {self.in_}"
        return f"{column} not in {self.not_in}"


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    above: float | None = None
    at_least: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Condition:
        given = [v for v in (self.above, self.at_least, self.below) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of above / at_least / below")
        return self

    def describe(self) -> str:
        if self.above is not None:
            return f"> {self.above:g}"
        if self.at_least is not None:
            return f">= {self.at_least:g}"
        return f"< {self.below:g}"

    def holds(self, values: pd.Series) -> pd.Series:
        if self.above is not None:
            return values > self.above
        if self.at_least is not None:
            return values >= self.at_least
        return values < self.below  # type: ignore[operator]


class Applies(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: dt.date = Field(alias="from")
    until: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Applies:
        if self.until is not None and self.until < self.from_:
            raise ValueError(f"until {self.until} is before from {self.from_}")
        return self


class LatestVintage(BaseModel):
    """For raw tables holding every vintage: keep the newest row per key."""

    model_config = ConfigDict(extra="forbid")

    vintage_column: str = "vintage"
    key_columns: list[str] = Field(min_length=1)


class PolicyRule(BaseModel):
    """One rule (``rules.<name>`` in config/monitors.yaml)."""

    model_config = ConfigDict(extra="forbid")

    label: str                                  # one line advocates read in the alert
    severity: Literal["warning", "critical"] = "critical"
    source: str                                 # returnwatch source of the figures
    table: str                                  # schema.table the rule reads
    period_column: str = "month"
    period: Literal["month", "day"] = "month"
    value_column: str
    aggregate: Literal["sum", "max", "min", "mean"] = "sum"
    where: dict[str, ColumnFilter] = Field(default_factory=dict)
    condition: Condition
    applies: Applies
    sources: list[RuleSource] = Field(min_length=1)
    show_columns: list[str] = Field(default_factory=list)   # columns quoted per broken row
    latest_vintage: LatestVintage | None = None

    @field_validator("table")
    @classmethod
    def _qualified_table(cls, value: str) -> str:
        return sql_names.qualified_table(value)

    @field_validator("period_column", "value_column", "show_columns", "where")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        return sql_names.column_names(value)

    def columns(self) -> list[str]:
        """Every column the rule reads."""
        return list(dict.fromkeys([self.period_column, self.value_column, *self.where,
                                   *self.show_columns]))


class _MonitorsFile(BaseModel):
    # Only this module's section is validated here; the other modules validate theirs.
    model_config = ConfigDict(extra="allow")

    rules: dict[str, PolicyRule] = Field(default_factory=dict)


@functools.cache
def _load(directory: str) -> dict[str, PolicyRule]:
    from returnwatch import config

    return config.load_yaml("monitors.yaml", _MonitorsFile, Path(directory)).rules


def load_rules(directory: Path | str | None = None) -> dict[str, PolicyRule]:
    """The ``rules`` section of config/monitors.yaml (validated, cached per folder)."""
    from returnwatch import settings

    return _load(str(directory or settings.config_dir()))


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


def evaluate_rule(frame: pd.DataFrame, name: str, rule: PolicyRule, *,
                  run_at: dt.datetime, since: Any = None) -> list[Finding]:
    """Findings for every period that breaks ``rule`` in ``frame`` (pure).

    ``since`` (a date) keeps only periods starting on or after it (a daily run looks at recent
    periods; a backfill passes None). Each finding cites the rule, its sources and the rows
    that broke it (``details.rows``: ``show_columns`` and the value, largest first).
    """
    missing = [c for c in rule.columns() if c not in frame.columns]
    if missing:
        raise KeyError(f"rule {name}: table {rule.table} has no column(s) {missing}; "
                       f"columns are {list(frame.columns)}")
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
    out: list[Finding] = []
    for part, partial in ((rows[starts_inside], False), (rows[straddles], True)):
        if part.empty:
            continue
        per_period = part.groupby("_start")[rule.value_column].agg(rule.aggregate)
        broken = per_period[rule.condition.holds(per_period)]
        for period, value in broken.items():
            evidence = part[part["_start"] == period]
            out.append(_finding(name, rule, evidence, period, float(value), run_at, partial))
    return sorted(out, key=lambda f: (f.period or "", f.kind))


def _finding(name: str, rule: PolicyRule, evidence: pd.DataFrame, period: pd.Timestamp,
             value: float, run_at: dt.datetime, partial: bool) -> Finding:
    shown = evidence.sort_values(rule.value_column, ascending=False, kind="stable")
    cited = [{**{c: _plain(r[c]) for c in rule.show_columns},
              rule.value_column: _plain(r[rule.value_column])}
             for _, r in shown.iterrows()]
    label_period = _iso(period, rule.period)
    sources = [s.model_dump(mode="json", exclude_none=True) for s in rule.sources]
    applies = {"from": rule.applies.from_.isoformat(),
               "until": rule.applies.until.isoformat() if rule.applies.until else None}
    where = [f.describe(c) for c, f in rule.where.items()]
    if partial:
        message = (f"{rule.label} ({name}) {label_period}: {value:,.4g} in a period that "
                   f"straddles the rule's start {applies['from']}; monthly figures cannot say "
                   "which came after it")
    else:
        message = (f"{rule.label} ({name}) {label_period}: {rule.aggregate} of "
                   f"{rule.value_column} = {value:,.4g} {rule.condition.describe()}; "
                   f"{len(cited)} row(s); source: {rule.sources[0].citation}")
    return Finding(
        monitor=MONITOR, kind="rule_partial_period" if partial else "rule_violation",
        source=rule.source, series=name,
        severity="info" if partial else rule.severity,
        message=message, run_at=run_at, period=label_period, value=value,
        expected=f"{rule.aggregate}({rule.value_column}) not {rule.condition.describe()}",
        details={"rule": name, "label": rule.label, "condition":
                 f"{rule.aggregate}({rule.value_column}) {rule.condition.describe()}",
                 "where": where, "applies": applies, "sources": sources,
                 "table": rule.table, "rows": cited, "row_count": len(cited),
                 "partial_period": partial})


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
                                       ORDER BY "{lv.vintage_column}" DESC) = 1""").df()


def evaluate_rules(con: duckdb.DuckDBPyConnection, *, run_at: dt.datetime,
                   rules: dict[str, PolicyRule] | None = None,
                   since: Any = None) -> list[Finding]:
    """Findings of every configured rule, reading each rule's table from DuckDB."""
    out: list[Finding] = []
    for name, rule in (rules if rules is not None else load_rules()).items():
        out += evaluate_rule(rule_rows(con, rule), name, rule, run_at=run_at, since=since)
    return out


__all__ = ["MONITOR", "Applies", "ColumnFilter", "Condition", "LatestVintage", "PolicyRule",
           "RuleSource", "evaluate_rule", "evaluate_rules", "load_rules", "matching_rows",
           "rule_rows"]
