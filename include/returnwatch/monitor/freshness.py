"""Freshness: is each source still publishing on its calendar? Judged from the data.

What this module owns:

- the ``freshness`` section of ``config/monitors.yaml`` (``rules()``; the models are in
  ``monitor.monitors_config``);
- ``assess_freshness()``: a ``FreshnessState`` for one source at one moment;
- ``evaluate_freshness()``: the finding that state calls for, or None.

The newest period is read from the source's raw table and compared with its publishing
calendar (``monitor.calendar``); the archive manifest says why data is late. Judged "as of
run_at", so a re-run gives the same answer. States, findings and checks:
docs/internals.md#monitor-freshness.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from returnwatch import config
from returnwatch.monitor import monitors_config
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.monitors_config import FreshnessRule

if TYPE_CHECKING:
    import duckdb

MONITOR = "freshness"
State = Literal["fresh", "unchecked", "late", "stopped", "no_data"]


# --------------------------------------------------------------------------- config


# The models of this section (``FreshnessRule``, its calendars) are part of the one model of
# the file, in ``monitor.monitors_config``.


def rules() -> dict[str, FreshnessRule]:
    """Freshness rules per source, from config/monitors.yaml (validated, cached per folder)."""
    return monitors_config.load().freshness


def rule(source: str) -> FreshnessRule:
    try:
        return rules()[source]
    except KeyError:
        raise config.ConfigError(
            f"source {source!r} has no freshness rule in config/monitors.yaml"
        ) from None


# --------------------------------------------------------------------------- assessment


@dataclass
class FreshnessState:
    """What freshness saw for one source at one moment (one row of monitor.source_freshness)."""

    source: str
    run_at: dt.datetime
    state: State
    newest_period: dt.date | None
    expected_period: dt.date | None
    missed_periods: list[dt.date]
    late_after_missed: int
    stopped_after_missed: int
    # From the archive manifest (None / 0 when the archive has no checks for the source). A
    # "check" is one fetch round: every manifest row of one run (one per URL for multi-file
    # sources) taken together.
    last_check_at: dt.datetime | None = None
    last_check_outcome: str | None = None
    last_check_error: str | None = None
    last_check_http_status: int | None = None
    last_new_file_at: dt.datetime | None = None
    consecutive_failed_checks: int = 0
    checks_since_new_file: int = 0
    unchanged_checks_since_new_file: int = 0
    # When the newest file in the warehouse was received (manifest run_at, else raw.files).
    newest_file_received_at: dt.datetime | None = None
    # The newest period that arrived in the raw tables; newest_period is the newest that also
    # reached the marts when the rule names a mart (equal otherwise).
    newest_arrived_period: dt.date | None = None
    # Why late: source_unreachable / same_file_again / not_checked / no_new_figures / never_loaded.
    cause: str | None = None
    # "day" or "month": what a period is (the calendar's).
    frequency: str = "day"
    # count_missed "checked": the moment the releases were judged at (the last check), and the
    # releases due since then that nobody looked for.
    judged_at: dt.datetime | None = None
    unverified_periods: list[dt.date] = field(default_factory=list)
    # URLs in the last check, and how many of them failed (multi-file sources).
    last_check_files: int = 0
    last_check_failed_files: int = 0
    finding: Finding | None = field(default=None, repr=False)

    @property
    def missed_publishing_days(self) -> int:
        return len(self.missed_periods)

    def details(self) -> dict[str, Any]:
        """JSON-able facts, stored with the finding and quoted by alert messages."""
        iso = _iso
        monthly = self.frequency == "month"
        return {
            "state": self.state,
            "cause": self.cause,
            "frequency": self.frequency,
            "newest_period": iso(self.newest_period),
            "expected_period": iso(self.expected_period),
            "missed_publishing_days": self.missed_publishing_days,
            "missed_periods": [d.isoformat() for d in self.missed_periods],
            "missing_since": iso(self.missed_periods[0]) if self.missed_periods else None,
            "unverified_periods": [d.isoformat() for d in self.unverified_periods],
            "judged_at": iso(self.judged_at),
            "late_after_missed": self.late_after_missed,
            "stopped_after_missed": self.stopped_after_missed,
            "last_check_at": iso(self.last_check_at),
            "last_check_outcome": self.last_check_outcome,
            "last_check_error": self.last_check_error,
            "last_check_http_status": self.last_check_http_status,
            "last_check_files": self.last_check_files,
            "last_check_failed_files": self.last_check_failed_files,
            "last_new_file_at": iso(self.last_new_file_at),
            "consecutive_failed_checks": self.consecutive_failed_checks,
            "checks_since_new_file": self.checks_since_new_file,
            "unchanged_checks_since_new_file": self.unchanged_checks_since_new_file,
            "newest_file_received_at": iso(self.newest_file_received_at),
            "newest_arrived_period": iso(self.newest_arrived_period),
            # Words for messages about monthly sources ("January 2021", "February 2021 to
            # April 2025"); None for daily ones.
            "newest_label": _month_name(self.newest_period) if monthly else None,
            "expected_label": _month_name(self.expected_period) if monthly else None,
            "missed_label": _month_span(self.missed_periods) if monthly else None,
        }


def assess_freshness(
    con: duckdb.DuckDBPyConnection,
    source: str,
    *,
    run_at: dt.datetime,
    archive: Any = None,
    freshness_rule: FreshnessRule | None = None,
    tables: Collection[str] | None = None,
) -> FreshnessState:
    """The freshness state of ``source`` as of ``run_at``, with its finding (``.finding``).

    ``freshness_rule`` defaults to the source's rule in config/monitors.yaml. ``tables``: the
    warehouse's tables ("schema.table", ``store.existing_tables``) when the caller has read
    them (a monitor run, for all sources at once); otherwise each is looked up.
    """
    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise ValueError(f"freshness of {source}: run_at must be time-zone aware, got {run_at!r}")
    rule_ = freshness_rule or rule(source)
    calendar = rule_.calendar.build()
    checks = _Checks.from_archive(_archive(archive), source, run_at)

    newest, newest_file_sha, newest_file_loaded = _newest_period(
        con, source, rule_, checks.future_files, tables
    )
    arrived = newest
    newest, newest_file_sha, newest_file_loaded = _reached_marts(
        con,
        source,
        rule_,
        checks.future_files,
        (newest, newest_file_sha, newest_file_loaded),
        tables,
    )
    # "checked": releases count as missed only if they were due when returnwatch last looked.
    judged_at = run_at
    if rule_.count_missed == "checked" and checks.last is not None:
        judged_at = min(run_at, checks.last.run_at)
    missed = calendar.missed_periods(newest, judged_at)
    unverified = [p for p in calendar.missed_periods(newest, run_at) if p not in set(missed)]
    expected = calendar.newest_due_period(run_at)
    if newest is None and arrived is None:
        status: State = "no_data"
    elif len(missed) >= rule_.stopped_after_missed:
        status = "stopped"
    elif len(missed) >= rule_.late_after_missed:
        status = "late"
    elif is_unchecked(checks.last.run_at if checks.last else None, run_at, rule_):
        # On time as far as anyone knows, but nobody has looked: not "fresh". Late and stopped
        # stay (they are worse); their cause then says "not_checked".
        status = "unchecked"
    else:
        status = "fresh"

    state = FreshnessState(
        source=source,
        run_at=run_at,
        state=status,
        newest_period=newest,
        expected_period=expected,
        missed_periods=missed,
        late_after_missed=rule_.late_after_missed,
        stopped_after_missed=rule_.stopped_after_missed,
        last_check_at=checks.last.run_at if checks.last else None,
        last_check_outcome=checks.last.outcome if checks.last else None,
        last_check_error=checks.last.error if checks.last else None,
        last_check_http_status=checks.last.http_status if checks.last else None,
        last_new_file_at=checks.last_new.run_at if checks.last_new else None,
        consecutive_failed_checks=checks.consecutive_failed,
        checks_since_new_file=len(checks.since_new),
        unchanged_checks_since_new_file=sum(
            1 for e in checks.since_new if e.outcome in ("unchanged", "not_modified")
        ),
        newest_file_received_at=checks.received_at.get(newest_file_sha or "", newest_file_loaded),
        frequency=calendar.frequency,
        judged_at=judged_at if rule_.count_missed == "checked" else None,
        unverified_periods=unverified,
        last_check_files=checks.last.files if checks.last else 0,
        last_check_failed_files=checks.last.failed_files if checks.last else 0,
        newest_arrived_period=arrived,
    )
    state.cause = _cause(state, rule_, checks)
    state.finding = _finding(state, rule_, calendar)
    return state


def is_unchecked(last_check_at: dt.datetime | None, now: dt.datetime, rule_: FreshnessRule) -> bool:
    """Whether a source's site went unchecked for longer than its rule allows.

    ``checks_expected_within_hours`` is the fetching DAG's interval plus grace (two daily runs
    for the daily DAGs). A source with no check at all (data loaded by hand, a warehouse
    without an archive) is not called unchecked here: the watchdog names a DAG that never ran.
    """
    if last_check_at is None:
        return False
    return now - last_check_at > dt.timedelta(hours=rule_.checks_expected_within_hours)


def evaluate_freshness(
    con: duckdb.DuckDBPyConnection, source: str, *, run_at: dt.datetime, archive: Any = None
) -> Finding | None:
    """The finding freshness raises for ``source`` at ``run_at``, or None when all is well.

    ``assess_freshness`` gives the full state (for ``monitor.source_freshness``).
    """
    return assess_freshness(con, source, run_at=run_at, archive=archive).finding


# --------------------------------------------------------------------------- internals


@dataclass
class _Round:
    """One fetch round: the manifest rows a run wrote for a source (one per URL it checked).

    A single-file source has one row per round. A multi-file source (CBP's CSVs, SEGOB's
    workbooks, HHS's fiscal-year pages) has one per file, so it is judged as a whole:
    ``new`` if any file was new, ``failed`` only if every file failed (one dead link among
    thirty is not "the site is down"), else the same files again (``unchanged`` /
    ``not_modified``).
    """

    run_at: dt.datetime
    outcome: str
    error: str | None
    http_status: int | None
    files: int
    failed_files: int
    new_files: list[str]

    @classmethod
    def of(cls, entries: list[Any]) -> _Round:
        outcomes = [e.outcome for e in entries]
        failed = [e for e in entries if e.outcome == "failed"]
        if "new" in outcomes:
            outcome = "new"
        elif len(failed) == len(entries):
            outcome = "failed"
        elif "unchanged" in outcomes:
            outcome = "unchanged"
        else:
            outcome = "not_modified"
        last_failed = failed[-1] if failed else None
        return cls(
            run_at=entries[0].run_at,
            outcome=outcome,
            error=last_failed.error if last_failed else None,
            http_status=(
                last_failed.http_status
                if outcome == "failed" and last_failed
                else entries[-1].http_status
            ),
            files=len(entries),
            failed_files=len(failed),
            new_files=[e.sha256 for e in entries if e.outcome == "new" and e.sha256],
        )


@dataclass
class _Checks:
    """The manifest's fetch rounds known at run_at, reduced to what freshness needs."""

    last: _Round | None = None  # newest round (any outcome)
    last_new: _Round | None = None  # newest round that brought new bytes
    since_new: list[_Round] = field(default_factory=list)  # rounds after last_new
    consecutive_failed: int = 0  # failed rounds at the end, newest backwards
    received_at: dict[str, dt.datetime] = field(default_factory=dict)  # sha256 -> first run_at
    future_files: list[str] = field(default_factory=list)  # received only after run_at

    @classmethod
    def from_archive(cls, archive: Any, source: str, run_at: dt.datetime) -> _Checks:
        if archive is None:
            return cls()
        checks = cls()
        entries = archive.entries(source)
        for entry in entries:
            if entry.sha256 and entry.sha256 not in checks.received_at:
                checks.received_at[entry.sha256] = entry.run_at
        checks.future_files = [sha for sha, at in checks.received_at.items() if at > run_at]
        by_run: dict[dt.datetime, list[Any]] = {}
        for entry in entries:
            if entry.run_at <= run_at:
                by_run.setdefault(entry.run_at, []).append(entry)
        known = [_Round.of(by_run[at]) for at in sorted(by_run)]
        if not known:
            return checks
        checks.last = known[-1]
        new_positions = [i for i, e in enumerate(known) if e.outcome == "new"]
        if new_positions:
            checks.last_new = known[new_positions[-1]]
            checks.since_new = known[new_positions[-1] + 1 :]
        else:
            checks.since_new = known
        for entry in reversed(known):
            if entry.outcome != "failed":
                break
            checks.consecutive_failed += 1
        return checks


def _archive(archive: Any) -> Any:
    if archive is not None:
        return archive
    from returnwatch.archive import Archive

    return Archive()


def _newest_period(
    con: duckdb.DuckDBPyConnection,
    source: str,
    rule_: FreshnessRule,
    future_files: list[str],
    tables: Collection[str] | None = None,
) -> tuple[dt.date | None, str | None, dt.datetime | None]:
    """Newest period in the raw tables (``table`` and ``also_tables``) among this source's
    files known at run_at: (newest period, sha256 of a file holding it, when it was fetched)."""
    found = [
        _newest_in(con, source, table, rule_.period_column, future_files, tables=tables)
        for table in [rule_.table, *rule_.also_tables]
    ]
    return max(found, key=lambda f: (f[0] is not None, f[0] or dt.date.min))


def _reached_marts(
    con: duckdb.DuckDBPyConnection,
    source: str,
    rule_: FreshnessRule,
    future_files: list[str],
    arrived: tuple[Any, Any, Any],
    tables: Collection[str] | None = None,
) -> tuple[Any, Any, Any]:
    """The newest period that arrived AND reached the rule's mart (``arrived`` when the rule
    names no mart or the mart is not built yet): a file whose rows feed no mart does not keep
    the source fresh."""
    if rule_.mart is None or arrived[0] is None or not _exists(con, rule_.mart.table, tables):
        return arrived
    # Any file's rows count as having reached the mart, a later file's included: when a replay
    # or a backfill judges a past day, the mart already holds the newer release that superseded
    # the day's file for the same periods. What had arrived by then caps it.
    marted = _newest_in(
        con,
        source,
        rule_.mart.table,
        rule_.mart.period_column,
        [],
        at_most=arrived[0],
        tables=tables,
    )
    return marted if marted[0] is None or marted[0] < arrived[0] else arrived


def _exists(con: duckdb.DuckDBPyConnection, table: str, tables: Collection[str] | None) -> bool:
    """Whether ``table`` exists: from the caller's list when it has one (read once per run,
    not once per table and source), else asked of the warehouse."""
    if tables is not None:
        return table in tables
    from returnwatch.warehouse import table_exists

    return table_exists(con, table)


def _newest_in(
    con: duckdb.DuckDBPyConnection,
    source: str,
    table: str,
    period_column: str,
    future_files: list[str],
    *,
    at_most: dt.date | None = None,
    tables: Collection[str] | None = None,
) -> tuple[dt.date | None, str | None, dt.datetime | None]:
    """Newest period in one table (rows tied to their file by ``source_file``), not after
    ``at_most`` when given. A raw table that does not exist yet (raw tables are created by
    their first load) holds nothing."""
    if not _exists(con, table, tables):
        return None, None, None
    row = con.execute(
        f"""
        SELECT t.{period_column} AS period, f.sha256, f.fetched_at
        FROM {table} AS t
        JOIN raw.files AS f ON f.sha256 = t.source_file
        WHERE f.source = ? AND NOT list_contains(?::VARCHAR[], f.sha256)
          AND t.{period_column} IS NOT NULL
          AND (CAST(? AS DATE) IS NULL OR CAST(t.{period_column} AS DATE) <= CAST(? AS DATE))
        ORDER BY t.{period_column} DESC, f.fetched_at ASC
        LIMIT 1
        """,
        [source, future_files, at_most, at_most],
    ).fetchone()
    if row is None:
        return None, None, None
    period = row[0].date() if isinstance(row[0], dt.datetime) else row[0]
    return period, row[1], row[2]


def _cause(state: FreshnessState, rule_: FreshnessRule, checks: _Checks) -> str | None:
    unreachable = state.consecutive_failed_checks >= rule_.unreachable_after_failed_checks
    window = dt.timedelta(hours=rule_.checks_expected_within_hours)
    unchecked = checks.last is None or state.run_at - checks.last.run_at > window
    if state.state == "unchecked":
        return "not_checked"
    if state.state == "fresh":
        # Data still on time, but the site has stopped answering: worth a record, not a page.
        if unreachable:
            return "source_unreachable"
        # "checked" sources: on time when last looked at, but releases fell due since then.
        if rule_.count_missed == "checked" and unchecked and state.unverified_periods:
            return "not_checked"
        return None
    if state.state == "no_data":
        return "never_loaded"
    if state.newest_arrived_period is not None and (
        state.newest_period is None or state.newest_arrived_period > state.newest_period
    ):
        # Figures arrived but did not reach the marts (file_not_in_marts names the file).
        return "not_in_marts"
    if unreachable:
        return "source_unreachable"
    if unchecked:
        # Our own fetcher has not looked: say so, so nobody blames the publisher for it.
        return "not_checked"
    received = state.newest_file_received_at
    if checks.last_new is not None and received is not None and checks.last_new.run_at > received:
        # A newer file did arrive after the one holding the newest period, without a newer
        # period: the publisher re-issued its figures (or changed the file) but added none.
        return "no_new_figures"
    if checks.since_new and all(
        e.outcome in ("unchanged", "not_modified") for e in checks.since_new
    ):
        return "same_file_again"
    # New files did arrive (or checks were mixed), but none carried newer figures.
    return "no_new_figures"


# Finding kinds by cause while late or stopped: the three the issue keeps apart, from the
# archive's manifest and the data ("site unreachable", "same file again", "new file, no new
# period"); anything else is freshness_late / freshness_stopped.
_KIND_BY_CAUSE = {
    "source_unreachable": "source_unreachable",
    "same_file_again": "same_file_again",
    "no_new_figures": "new_file_no_new_period",
}


def _finding(state: FreshnessState, rule_: FreshnessRule, calendar: Any) -> Finding | None:
    if state.state == "fresh" and state.cause is None:
        return None
    if state.state in ("fresh", "unchecked"):
        # Advocates are not paged for our own fetcher: the watchdog tells ops (an ops finding
        # naming the DAG); freshness records the state.
        kind, severity = state.cause or "source_unreachable", "info"
    elif state.state == "no_data":
        kind, severity = "freshness_no_data", "info"
    else:
        severity = "critical" if state.state == "stopped" else "warning"
        kind = _KIND_BY_CAUSE.get(state.cause or "", f"freshness_{state.state}")
    return Finding(
        monitor=MONITOR,
        kind=kind,
        source=state.source,
        series=state.source,
        severity=severity,  # type: ignore[arg-type]
        message=_one_line(state, rule_),
        run_at=state.run_at,
        period=_period_text(state.newest_period, state.frequency),
        value=float(state.missed_publishing_days),
        expected=_period_text(state.expected_period, state.frequency),
        details={
            **state.details(),
            "label": rule_.label,
            "calendar": calendar.describe(),
            "site": _site(state.source),
        },
    )


def _one_line(state: FreshnessState, rule_: FreshnessRule) -> str:
    """The finding's message: one line for the warehouse and the logs."""
    if state.frequency == "month":
        return _one_line_monthly(state, rule_)
    newest = _iso(state.newest_period) or "none"
    text = (
        f"{rule_.label} ({state.source}) {state.state}: newest period {newest}, "
        f"due {_iso(state.expected_period)}, {state.missed_publishing_days} publishing "
        f"day(s) missed"
    )
    return text + _cause_and_failures(state)


def _one_line_monthly(state: FreshnessState, rule_: FreshnessRule) -> str:
    newest = _month_name(state.newest_period) or "none"
    text = (
        f"{rule_.label} ({state.source}) {state.state}: newest month {newest}, "
        f"due through {_month_name(state.expected_period)}"
    )
    if state.missed_periods:
        text += (
            f"; nothing since {_month_name(state.missed_periods[0])} "
            f"({len(state.missed_periods)} monthly release(s) missed)"
        )
    if state.unverified_periods:
        text += (
            f"; {len(state.unverified_periods)} release(s) due since returnwatch last "
            f"checked ({_iso(state.last_check_at)}) unverified"
        )
    return text + _cause_and_failures(state)


def _cause_and_failures(state: FreshnessState) -> str:
    """The tail both one-line messages share: why, and how many checks failed in a row."""
    text = f"; cause {state.cause}" if state.cause else ""
    if state.consecutive_failed_checks:
        text += f"; last {state.consecutive_failed_checks} check(s) failed"
    return text


def _month_name(value: dt.date | None) -> str | None:
    return f"{value:%B %Y}" if value is not None else None


def _month_span(months: list[dt.date]) -> str | None:
    if not months:
        return None
    if len(months) == 1:
        return _month_name(months[0])
    return f"{_month_name(months[0])} to {_month_name(months[-1])}"


def _period_text(value: dt.date | None, frequency: str) -> str | None:
    if value is None:
        return None
    return f"{value:%Y-%m}" if frequency == "month" else value.isoformat()


def _site(source: str) -> str | None:
    """The publisher's host name for messages (healthdata.gov), from config/sources.yaml."""
    try:
        return urlsplit(config.source(source).landing_page).hostname
    except config.ConfigError:
        return None


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
