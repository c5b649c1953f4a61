"""The one model of ``config/monitors.yaml``: every section, validated together when loaded.

What this module owns: ``MonitorsFile`` and the models of its sections (``freshness``,
``anomalies``, ``rules``, ``revisions``, ``figures``), and ``load()``, which reads the file once
per config folder (``config.load_yaml``: a mistake is reported with the file, the line, the key
path and what was expected). The monitors read their section from it
(``load().freshness`` ...) and never parse YAML themselves.

It sits below the monitors that use it and stays light (no numpy, no pandas at import): DAG
files reach it through ``monitor.freshness``.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from returnwatch import config, settings
from returnwatch.monitor import sql_names
from returnwatch.monitor.calendar import WEEKDAYS, DailyCalendar, MonthlyCalendar

if TYPE_CHECKING:
    import pandas as pd


Frequency = Literal["month", "day"]
Direction = Literal["up", "down", "both"]
Cap = Literal["info", "warning", "critical"]


# --------------------------------------------------------------------------- freshness


class DailyCalendarConfig(BaseModel):
    """``calendar:`` of a daily source in config/monitors.yaml."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["daily"] = "daily"
    timezone: str
    release_weekdays: list[str] = Field(min_length=1)
    holidays: str | None = "US"
    closed_days: list[dt.date] = Field(default_factory=list)
    lag_days: int = Field(ge=0, le=31, default=1)
    due_after_hours: float = Field(ge=0, le=24 * 14, default=24)

    @field_validator("release_weekdays")
    @classmethod
    def _weekday_names(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v.lower() not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}; use {list(WEEKDAYS)}")
        return [v.lower() for v in value]

    def build(self) -> DailyCalendar:
        return DailyCalendar(
            timezone=self.timezone,
            release_weekdays=frozenset(WEEKDAYS[d] for d in self.release_weekdays),
            holiday_country=self.holidays,
            closed_days=frozenset(self.closed_days),
            lag_days=self.lag_days,
            due_after_hours=self.due_after_hours,
        )


class MonthlyCalendarConfig(BaseModel):
    """``calendar:`` of a monthly source: month M around ``release_day`` of M + lag_months."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["monthly"]
    timezone: str
    release_day: int = Field(ge=1, le=31)
    lag_months: int = Field(ge=0, le=12, default=1)
    grace_days: int = Field(ge=0, le=62, default=7)

    def build(self) -> MonthlyCalendar:
        return MonthlyCalendar(
            timezone=self.timezone,
            release_day=self.release_day,
            lag_months=self.lag_months,
            grace_days=self.grace_days,
        )


def _calendar_kind(value: Any) -> str:
    kind = (
        value.get("kind", "daily") if isinstance(value, dict) else getattr(value, "kind", "daily")
    )
    return str(kind)


# ``kind: daily`` (the default, as before monthly calendars existed) or ``kind: monthly``.
CalendarConfig = Annotated[
    Annotated[DailyCalendarConfig, Tag("daily")] | Annotated[MonthlyCalendarConfig, Tag("monthly")],
    Discriminator(
        _calendar_kind,
        custom_error_type="calendar_kind",
        custom_error_message="calendar kind must be daily (the default) or monthly",
    ),
]


class MartTable(BaseModel):
    """Where a source's figures end up: a table whose rows name their file (``source_file``)."""

    model_config = ConfigDict(extra="forbid")

    table: str
    period_column: str

    @field_validator("table")
    @classmethod
    def _qualified_table(cls, value: str) -> str:
        return sql_names.qualified_table(value)

    @field_validator("period_column")
    @classmethod
    def _column(cls, value: str) -> str:
        if not sql_names.IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a plain column name")
        return value


class FreshnessRule(BaseModel):
    """One source's freshness rule (``freshness.<source>`` in config/monitors.yaml)."""

    model_config = ConfigDict(extra="forbid")

    label: str  # what advocates call these figures: "HHS daily figures"
    table: str  # raw table holding the source's rows: raw.hhs_uc_daily
    period_column: str  # the column naming the period a row describes
    calendar: CalendarConfig
    late_after_missed: int = Field(ge=1, default=3)
    stopped_after_missed: int = Field(ge=1, default=5)
    unreachable_after_failed_checks: int = Field(ge=1, default=2)
    checks_expected_within_hours: float = Field(gt=0, default=48)
    # Which due releases count as missed. "due": every release due by now (the data's age,
    # whoever is at fault; "not_checked" is then the cause). "checked": only releases that
    # were due when returnwatch last checked the site; those due since are "unverified" and,
    # while the figures held were on time at that check, give an info finding, not an alert.
    count_missed: Literal["due", "checked"] = "due"
    # Further raw tables of the source (its other file kinds / layouts): a period has arrived
    # when it is in any of them.
    also_tables: list[str] = Field(default_factory=list)
    # Judged on what reached the marts as well as on what arrived: the newest period is the
    # newest one also in this table (docs/file-kinds.md). Ignored until the table exists.
    mart: MartTable | None = None

    @field_validator("table")
    @classmethod
    def _qualified_table(cls, value: str) -> str:
        return sql_names.qualified_table(value)

    @field_validator("also_tables")
    @classmethod
    def _qualified_tables(cls, value: list[str]) -> list[str]:
        return [sql_names.qualified_table(v) for v in value]

    @field_validator("period_column")
    @classmethod
    def _column(cls, value: str) -> str:
        if not sql_names.IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a plain column name")
        return value

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> FreshnessRule:
        if self.stopped_after_missed < self.late_after_missed:
            raise ValueError(
                f"stopped_after_missed ({self.stopped_after_missed}) must be at least "
                f"late_after_missed ({self.late_after_missed})"
            )
        return self


# --------------------------------------------------------------------------- anomalies


class DetectorParams(BaseModel):
    """How one series is judged. Defaults per frequency live in config/monitors.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transform: Literal["log", "identity"] = "log"  # log for counts; identity for rates, gaps
    level_periods: int = Field(ge=1, le=60, default=3)  # L: baseline = median of these
    noise_periods: int = Field(ge=3, le=400, default=12)  # W: noise from these changes
    min_history: int = Field(ge=2, le=400, default=12)  # published periods before judging
    threshold: float = Field(gt=0, default=3.5)  # robust score for an exceedance
    strong_threshold: float = Field(gt=0, default=7.0)  # ... alerting at once
    strong_ratio: float = Field(gt=1, default=2.5)  # x2.5 or /2.5 alerts at once
    # ... even inside a wide noise band (counts only; absolute_floor still applies)
    strong_ratio_alone: bool = False
    relative_floor: float = Field(ge=0, default=0.25)  # |value/baseline - 1| at least
    absolute_floor: float = Field(ge=0, default=10.0)  # |value - baseline| at least
    zero_floor: float = Field(ge=0, default=10.0)  # a 0 after a baseline >= this
    min_scale: float = Field(gt=0, default=0.05)  # noise floor (log units / units)
    persistence: tuple[int, int] = (2, 3)  # need N exceedances of the last M
    direction: Direction = "both"

    @model_validator(mode="after")
    def _consistent(self) -> DetectorParams:
        need, of = self.persistence
        if not 1 <= need <= of <= 12:
            raise ValueError(f"persistence {self.persistence}: need 1 <= N <= M <= 12")
        if self.strong_threshold < self.threshold:
            raise ValueError("strong_threshold must be at least threshold")
        return self

    def describe(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Regime(BaseModel):
    """A known regime change, quoted on findings near it (never used to silence one)."""

    model_config = ConfigDict(extra="forbid")

    label: str
    start: dt.date
    end: dt.date | None = None
    source: str


class MetricMonitor(BaseModel):
    """One monitored metric (``anomalies.metrics.<name>``): which rows, which series."""

    model_config = ConfigDict(extra="forbid")

    label: str  # what advocates call it
    source: str  # returnwatch source it comes from (Finding.source)
    table: str  # schema.table in the warehouse
    period_column: str
    value_columns: list[str] = Field(min_length=1)  # one series per column (and per group)
    series_by: list[str] = Field(default_factory=list)  # split into one series per group
    where: dict[str, list[str]] = Field(default_factory=dict)  # column -> allowed values
    frequency: Frequency = "month"
    # A month with no row: "zero" for tables that list only non-zero cells (CBP's), "missing"
    # where every period has a row and an absent one is a gap to report.
    absent_rows: Literal["zero", "missing"] = "missing"
    detector: dict[str, Any] = Field(default_factory=dict)  # overrides of the defaults

    @field_validator("table")
    @classmethod
    def _qualified_table(cls, value: str) -> str:
        return sql_names.qualified_table(value)

    @field_validator("period_column", "value_columns", "series_by", "where")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        return sql_names.column_names(value)

    @field_validator("detector")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Checked here so a typo is reported at its own key; the values are checked together
        # with the defaults they override (AnomaliesConfig._overrides_valid).
        unknown = sorted(set(value) - set(DetectorParams.model_fields))
        if unknown:
            raise ValueError(
                f"unknown detector setting(s) {unknown}; use {list(DetectorParams.model_fields)}"
            )
        return value


class AnomaliesConfig(BaseModel):
    """The ``anomalies:`` section of config/monitors.yaml."""

    model_config = ConfigDict(extra="forbid")

    annotate_within_periods: int = Field(ge=0, default=3)
    regimes: dict[str, Regime] = Field(default_factory=dict)
    defaults: dict[Frequency, DetectorParams] = Field(default_factory=dict)
    metrics: dict[str, MetricMonitor] = Field(default_factory=dict)

    def params(self, metric: str | MetricMonitor) -> DetectorParams:
        monitor = self.metrics[metric] if isinstance(metric, str) else metric
        base = self.defaults.get(monitor.frequency) or default_params(monitor.frequency)
        return DetectorParams.model_validate({**base.model_dump(), **monitor.detector})

    @model_validator(mode="after")
    def _overrides_valid(self) -> AnomaliesConfig:
        for name, monitor in self.metrics.items():
            try:
                self.params(monitor)
            except ValueError as exc:
                raise ValueError(f"metrics.{name}.detector: {exc}") from None
        return self


def default_params(frequency: Frequency) -> DetectorParams:
    """The built-in defaults (what the benchmark measured) for monthly or daily series."""
    if frequency == "day":
        return DetectorParams(level_periods=7, noise_periods=60, min_history=20)
    return DetectorParams()


# --------------------------------------------------------------------------- rules


class RuleSource(BaseModel):
    """What a rule rests on: a court order, a Federal Register notice, a statute, a report."""

    model_config = ConfigDict(extra="forbid")

    citation: str
    url: str | None = None
    date: dt.date | None = None
    note: str | None = None


class ContestedPeriod(BaseModel):
    """A span whose legal status was contested or mixed: findings in it say so."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: dt.date = Field(alias="from")
    until: dt.date
    why: str  # one sentence, quoted in the finding
    severity: Literal["check", "warning"] = "warning"

    def covers(self, start: pd.Timestamp) -> bool:
        import pandas as pd  # only when rules are evaluated: loading the file needs no pandas

        return pd.Timestamp(self.from_) <= start <= pd.Timestamp(self.until)


class HistoryCheck(BaseModel):
    """The figure judged against its own history: a rise above the median of past periods."""

    model_config = ConfigDict(extra="forbid")

    periods: int = Field(default=12, ge=1)
    min_periods: int = Field(default=6, ge=1)
    rise_at_least: float = Field(gt=0)


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
        return values < self.below


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

    label: str  # one line advocates read in the alert
    severity: Literal["warning", "critical"] = "critical"
    # What an advocate must keep in mind before quoting a finding (shown in Slack and ops).
    caveat: str
    # Findings resting on fewer records than this are `check` (confirm with the publisher).
    min_records: int = Field(default=10, ge=0)
    # The column counting the records a finding rests on (summed over the period's rows);
    # default: the value column itself, for `sum` rules over counts.
    evidence_column: str | None = None
    evidence_publisher: str = "CBP"  # whose table the records are in
    contested: list[ContestedPeriod] = Field(default_factory=list)
    history: HistoryCheck | None = None
    source: str  # returnwatch source of the figures
    table: str  # schema.table the rule reads
    period_column: str = "month"
    period: Literal["month", "day"] = "month"
    value_column: str
    aggregate: Literal["sum", "max", "min", "mean"] = "sum"
    where: dict[str, ColumnFilter] = Field(default_factory=dict)
    condition: Condition
    applies: Applies
    sources: list[RuleSource] = Field(min_length=1)
    show_columns: list[str] = Field(default_factory=list)  # columns quoted per broken row
    latest_vintage: LatestVintage | None = None

    @field_validator("table")
    @classmethod
    def _qualified_table(cls, value: str) -> str:
        return sql_names.qualified_table(value)

    @field_validator("period_column", "value_column", "show_columns", "where", "evidence_column")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        return value if value is None else sql_names.column_names(value)

    @model_validator(mode="after")
    def _evidence(self) -> PolicyRule:
        if self.evidence_column is None and self.aggregate != "sum" and self.min_records:
            raise ValueError(
                "a rule that does not sum counts needs `evidence_column` (the "
                "count its findings rest on) or `min_records: 0`"
            )
        return self

    def columns(self) -> list[str]:
        """Every column the rule reads."""
        return list(
            dict.fromkeys(
                [
                    self.period_column,
                    self.value_column,
                    *self.where,
                    *self.show_columns,
                    *([self.evidence_column] if self.evidence_column else []),
                ]
            )
        )

    def contested_at(self, start: pd.Timestamp) -> ContestedPeriod | None:
        return next((c for c in self.contested if c.covers(start)), None)


# --------------------------------------------------------------------------- revisions


class RevisionTable(BaseModel):
    """How the revisions of one raw table are judged (``revisions.tables.<schema.table>``)."""

    model_config = ConfigDict(extra="forbid")

    label: str
    source: str
    period_column: str
    frequency: Literal["month", "day"] = "month"
    series_by: list[str] = Field(default_factory=list)
    settled_after_days: int = Field(ge=0, default=60)

    @field_validator("period_column", "series_by")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        return sql_names.column_names(value)


class RevisionsConfig(BaseModel):
    """The ``revisions:`` section of config/monitors.yaml."""

    model_config = ConfigDict(extra="forbid")

    tolerance: float = Field(ge=0, default=0.02)
    absolute_floor: float = Field(ge=0, default=2.0)
    tables: dict[str, RevisionTable] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _qualified(cls, value: dict[str, RevisionTable]) -> dict[str, RevisionTable]:
        bad = [name for name in value if not sql_names.QUALIFIED.match(name)]
        if bad:
            raise ValueError(f"{bad} are not schema.table names like raw.cbp_encounters_aor")
        return value


# --------------------------------------------------------------------------- figures


class SeverityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    up: Cap = "critical"
    down: Cap = "critical"
    why: str  # the reason, written for reviewers


class Figure(BaseModel):
    """One monitored figure (``figures.<metric>:<column>``)."""

    model_config = ConfigDict(extra="forbid")

    name: str  # the headline's words
    counts: str  # what is counted, said in the message
    publisher_table: str
    raw_tables: list[str] = Field(min_length=1)
    severity: SeverityPolicy


# --------------------------------------------------------------------------- the file


class MonitorsFile(BaseModel):
    """config/monitors.yaml, every section (an unknown section is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")

    freshness: dict[str, FreshnessRule] = Field(default_factory=dict)
    anomalies: AnomaliesConfig = Field(default_factory=AnomaliesConfig)
    figures: dict[str, Figure] = Field(default_factory=dict)
    rules: dict[str, PolicyRule] = Field(default_factory=dict)
    revisions: RevisionsConfig = Field(default_factory=RevisionsConfig)

    @field_validator("figures")
    @classmethod
    def _figures_name_series(
        cls, value: dict[str, Figure], info: ValidationInfo
    ) -> dict[str, Figure]:
        # A figure whose key names no monitored series would never be used: say so. (anomalies
        # is declared first, so it is validated by now; if it failed, that error is reported.)
        anomalies = info.data.get("anomalies")
        if anomalies is None:
            return value
        series = {
            f"{name}:{column}"
            for name, metric in anomalies.metrics.items()
            for column in metric.value_columns
        }
        unknown = sorted(set(value) - series)
        if unknown:
            raise ValueError(
                f"{unknown} name no value column of anomalies.metrics (a figure's key is "
                f"<metric>:<value column>; known: {sorted(series)})"
            )
        return value


@functools.cache
def _load(directory: str) -> MonitorsFile:
    return config.load_yaml("monitors.yaml", MonitorsFile, Path(directory))


def load(directory: Path | str | None = None) -> MonitorsFile:
    """config/monitors.yaml from ``directory`` (default: the config folder), validated once and
    cached per folder."""
    return _load(str(directory or settings.config_dir()))
