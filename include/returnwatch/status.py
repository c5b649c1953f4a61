"""Is every source healthy? The status data, its two renderings, and keeping it current.

What this module owns:

- ``collect(con)``: the status read from the ``monitor`` tables (only reads);
- ``render(con)`` / ``render_text(status)``: ``returnwatch status`` in the terminal;
- ``needs_attention()`` / ``exit_code()`` / ``as_json_document()``: the exit code and the
  ``--json`` document (docs/cli-json.schema.json);
- ``read_snapshot()`` and ``refresh_snapshot()``: the snapshot's status, and copying the live
  ``monitor`` schema into it after a monitor run.

A table a later run creates reads as empty in an old warehouse. Details: docs/internals.md#status.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from returnwatch import settings
from returnwatch.duck import scalar
from returnwatch.sources import SOURCE_MODULES

log = logging.getLogger(__name__)

# The state in the terminal (one word, loud when wrong) and on the page (plain words).
STATE_MARK = {
    "fresh": "ok",
    "unchecked": "UNCHECKED",
    "late": "LATE",
    "stopped": "STOPPED",
    "no_data": "NO-DATA",
}
STATE_LABEL = {
    "fresh": "fresh",
    "unchecked": "not checked",
    "late": "late",
    "stopped": "stopped",
    "no_data": "no data",
}
REVISION_WINDOW_DAYS = 90
# The only states in which a source needs nobody. Anything else (late, stopped, no_data,
# unchecked, a state a newer version adds, or never judged) needs attention: a monitoring
# command must not read "ok" for a state it does not know.
HEALTHY_STATES = frozenset({"fresh"})
# `returnwatch status` exit codes (docs/operations.md): everything healthy; something needs
# attention; no status could be read (no warehouse, a bad option).
EXIT_OK, EXIT_ATTENTION, EXIT_ERROR = 0, 1, 2
# The page lists the newest revisions only: one new CBP file can restate dozens of figures.
REVISIONS_LISTED = 50
# Key columns that name the period a figure is for (sources' FileKind.key_columns); the
# other key columns name the series.
PERIOD_KEYS = ("report_date", "month", "period", "date")


@dataclass(frozen=True)
class SourceStatus:
    """One source as the latest monitor run judged it (``state`` None: never judged)."""

    source: str
    title: str | None
    calendar: str | None  # daily / monthly (config/monitors.yaml), None: no rule
    state: str | None  # fresh / unchecked / late / stopped / no_data
    newest_period: dt.date | None  # newest period in the raw data at the run
    expected_period: dt.date | None  # newest period the publishing calendar says is due
    missed_periods: int  # periods due but absent after newest_period
    last_new_file_at: dt.datetime | None
    last_check_at: dt.datetime | None
    last_check_outcome: str | None  # new / unchanged / not_modified / failed
    judged_at: dt.datetime | None  # run_at (logical time) of the run that judged it
    open_incidents: int
    recent_revisions: int
    # The watchdog has an incident open for this source's unchecked site (it runs every few
    # minutes; the monitor's own "unchecked" opens none): the page points to it only then.
    watchdog_incident: bool = False

    @property
    def mark(self) -> str:
        """The state as one short word (``ok``, ``LATE`` ...; ``unknown`` before any run)."""
        return STATE_MARK.get(self.state or "", self.state or "unknown")

    @property
    def label(self) -> str:
        """The state in plain words, as the page shows it."""
        return STATE_LABEL.get(self.state, self.state) if self.state else "not judged yet"

    def period_text(self, period: dt.date | None) -> str:
        """A period as the publisher counts it: '2025-05' for a monthly source, else the day."""
        if period is None:
            return "-"
        return f"{period:%Y-%m}" if self.calendar == "monthly" else f"{period:%Y-%m-%d}"

    @property
    def missed_text(self) -> str:
        """'3 publishing days missing' / '51 months missing' ('' when none)."""
        if not self.missed_periods:
            return ""
        unit = "month" if self.calendar == "monthly" else "publishing day"
        plural = "" if self.missed_periods == 1 else "s"
        return f"{self.missed_periods} {unit}{plural} missing"

    @property
    def unchecked(self) -> bool:
        """returnwatch has not checked the site within its schedule plus grace (the monitor
        run said so, or the watchdog has an incident open since)."""
        return self.state == "unchecked"

    @property
    def unverified(self) -> bool:
        """Periods fell due after returnwatch last checked the site, so they are neither
        found nor missed yet (a monthly source counts only what it checked)."""
        return (
            self.state == "fresh"
            and not self.missed_periods
            and self.expected_period is not None
            and self.newest_period is not None
            and self.expected_period > self.newest_period
        )


@dataclass(frozen=True)
class OpenIncident:
    source: str
    monitor: str
    series: str
    kind: str
    severity: str  # of the latest finding: warning / critical
    audience: str  # advocates / ops
    opened_at: dt.datetime
    updated_at: dt.datetime
    summary: str  # the latest finding's message

    @property
    def headline(self) -> str:
        return self.summary.splitlines()[0] if self.summary else ""


@dataclass(frozen=True)
class Revision:
    """A figure a publisher restated between two of its files."""

    source: str
    raw_table: str
    figure: str
    period: str | None  # '2021-01' (month) or '2025-06-10' (day)
    series: str  # figure and the other key values, e.g. 'encounters · MEXICO'
    old_value: float | None
    new_value: float | None
    change: float | None
    old_vintage: dt.date
    new_vintage: dt.date
    detected_at: dt.datetime


@dataclass(frozen=True)
class RuleNote:
    """A policy rule as ops and advocates must read its findings: caveat, sources, and how
    many of its findings are only `check` (to confirm with the publisher) or contested."""

    name: str
    label: str
    caveat: str
    sources: list[dict[str, str | None]]  # citation, url
    findings: dict[str, int]  # severity -> findings recorded (history included)


@dataclass(frozen=True)
class Status:
    sources: list[SourceStatus]
    incidents: list[OpenIncident]  # open, oldest first
    revisions: list[Revision]  # newest first, at most REVISIONS_LISTED
    revisions_total: int  # all recorded in the window
    judged_at: dt.datetime | None  # the latest monitor run's logical time
    revision_window_days: int = REVISION_WINDOW_DAYS
    # Where it was read and when that copy was made (set by read_snapshot()).
    read_from: str | None = None
    snapshot_at: dt.datetime | None = None
    rules: list[RuleNote] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (dates and UTC times as ISO strings): the ops view's JSON endpoint."""
        return json.loads(json.dumps(asdict(self), default=_iso))


# ---------------------------------------------------------------------------------- reading ---


def collect(
    con: Any, *, now: dt.datetime | None = None, window_days: int = REVISION_WINDOW_DAYS
) -> Status:
    """The status in the warehouse ``con`` (read only). ``now`` anchors the revision window:
    revisions are stamped with the wall clock when their file was loaded, so the default is
    the wall clock too."""
    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(days=window_days)
    freshness = {
        row["source"]: row
        for row in _rows(
            con,
            """
        select source, state, newest_period, expected_period, missed_publishing_days,
               last_new_file_at, last_check_at, last_check_outcome, run_at
        from monitor.source_freshness
        qualify row_number() over (partition by source order by run_at desc, evaluated_at desc) = 1
        """,
        )
    }
    incidents = [
        OpenIncident(**row)
        for row in _rows(
            con,
            """
        select source, monitor, series, kind, severity, audience, opened_at, updated_at, summary
        from monitor.incidents where state = 'open' order by opened_at, source, series""",
        )
    ]
    revision_rows = _rows(
        con,
        """
        select source, raw_table, figure, key, old_value, new_value, change, old_vintage,
               new_vintage, detected_at
        from monitor.revisions where detected_at >= ?
        order by detected_at desc, source, raw_table, figure, key""",
        [since],
    )
    titles, calendars = _titles(), _calendars()
    # The watchdog runs every few minutes, the monitor daily: a source it found unchecked since
    # the monitor's last run is unchecked now, whatever that run said.
    unchecked_now = {
        i.source for i in incidents if i.monitor == "watchdog" and i.kind == "source_unchecked"
    }

    sources = []
    for source in _source_order(freshness):
        row = freshness.get(source, {})
        sources.append(
            SourceStatus(
                source=source,
                title=titles.get(source),
                calendar=calendars.get(source),
                state=(
                    "unchecked"
                    if source in unchecked_now and row.get("state") in (None, "fresh")
                    else row.get("state")
                ),
                newest_period=row.get("newest_period"),
                expected_period=row.get("expected_period"),
                missed_periods=row.get("missed_publishing_days") or 0,
                last_new_file_at=row.get("last_new_file_at"),
                last_check_at=row.get("last_check_at"),
                last_check_outcome=row.get("last_check_outcome"),
                judged_at=row.get("run_at"),
                open_incidents=sum(1 for i in incidents if i.source == source),
                recent_revisions=sum(1 for r in revision_rows if r["source"] == source),
                watchdog_incident=source in unchecked_now,
            )
        )
    judged = [s.judged_at for s in sources if s.judged_at is not None]
    counts: dict[str, dict[str, int]] = {}
    for row in _rows(
        con,
        """
            select series, coalesce(details->>'severity_found', severity) as severity,
                   count(*) as n
            from monitor.findings where monitor = 'policy_rule' group by all""",
    ):
        counts.setdefault(row["series"], {})[row["severity"]] = row["n"]
    return Status(
        rules=_rule_notes(counts),
        sources=sources,
        incidents=incidents,
        revisions=[_revision(row) for row in revision_rows[:REVISIONS_LISTED]],
        revisions_total=len(revision_rows),
        judged_at=max(judged) if judged else None,
        revision_window_days=window_days,
    )


def _rule_notes(counts: dict[str, dict[str, int]]) -> list[RuleNote]:
    try:
        from returnwatch.monitor.rules import load_rules

        rules = load_rules()
    except Exception:  # noqa: BLE001 - the page shows the rest without the rules
        return []
    return [
        RuleNote(
            name=name,
            label=rule.label,
            caveat=" ".join(rule.caveat.split()),
            sources=[
                {"citation": " ".join(s.citation.split()), "url": s.url} for s in rule.sources
            ],
            findings=counts.get(name, {}),
        )
        for name, rule in rules.items()
    ]


def read_snapshot(path: Path | None = None) -> Status | None:
    """The status in the analysts' snapshot; ``None`` when no snapshot has been published."""
    import duckdb

    path = Path(path or settings.snapshot_path())
    if not path.is_file():
        return None
    # A reader keeps the file it opened even if a publish renames a new one over it.
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        status = collect(con)
    # The file is replaced in one rename when published or refreshed: its mtime is that moment.
    published = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return replace(status, read_from=str(path), snapshot_at=published)


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    import duckdb

    try:
        cursor = con.execute(sql, params or [])
    except duckdb.CatalogException:  # a monitor table a later run creates may not exist yet
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _source_order(freshness: dict[str, Any]) -> list[str]:
    """Configured sources first, in their usual order, then any other the tables name."""
    # An incident about a task rather than a source is listed with the incidents only.
    return list(SOURCE_MODULES) + sorted(set(freshness) - set(SOURCE_MODULES))


def _titles() -> dict[str, str]:
    from returnwatch import config

    try:
        return {name: source.title for name, source in config.sources().items()}
    except Exception as error:  # the page must render even when someone broke sources.yaml
        log.warning("source titles unavailable: %s", error)
        return {}


def _calendars() -> dict[str, str]:
    from returnwatch.monitor import freshness

    try:
        return {name: rule.calendar.kind for name, rule in freshness.rules().items()}
    except Exception as error:  # as for titles: the status stays readable without them
        log.warning("publishing calendars unavailable: %s", error)
        return {}


def _revision(row: dict[str, Any]) -> Revision:
    key = json.loads(row["key"]) if isinstance(row["key"], str) else dict(row["key"] or {})
    period_key = next((k for k in PERIOD_KEYS if k in key), None)
    period = key.pop(period_key) if period_key else None
    if period_key == "month" and isinstance(period, str):
        period = period[:7]  # months are stored as their first day
    series = " · ".join([row["figure"], *(str(v) for v in key.values() if v not in (None, ""))])
    return Revision(
        source=row["source"],
        raw_table=row["raw_table"],
        figure=row["figure"],
        period=period,
        series=series,
        old_value=row["old_value"],
        new_value=row["new_value"],
        change=row["change"],
        old_vintage=row["old_vintage"],
        new_vintage=row["new_vintage"],
        detected_at=row["detected_at"],
    )


def _iso(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return as_utc(value).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ------------------------------------------------------------------ scripts: exit code, JSON ---


def needs_attention(status: Status) -> list[str]:
    """Why ``returnwatch status`` exits 1: one line per unhealthy source and per open critical
    incident (empty: all healthy)."""
    reasons = [
        f"{s.source}: {s.state or 'not judged yet'}"
        for s in status.sources
        if s.state not in HEALTHY_STATES
    ]
    reasons += [
        f"{i.source}: open critical incident ({i.kind}): {i.headline[:100]}"
        for i in status.incidents
        if i.severity == "critical"
    ]
    return reasons


def exit_code(status: Status) -> int:
    return EXIT_ATTENTION if needs_attention(status) else EXIT_OK


def as_json_document(status: Status, *, read_from: str | None = None) -> dict[str, Any]:
    """``returnwatch status --json``: ``Status.as_dict()`` plus the verdict scripts act on."""
    reasons = needs_attention(status)
    document = status.as_dict()
    if read_from is not None:
        document["read_from"] = read_from
    return {
        "command": "status",
        "exit_code": EXIT_ATTENTION if reasons else EXIT_OK,
        "healthy": not reasons,
        "attention": reasons,
        **document,
    }


# --------------------------------------------------------------------------------- terminal ---


def render(con: Any) -> str:
    """``returnwatch status``: the text for the warehouse ``con``."""
    return render_text(collect(con))


def render_text(status: Status) -> str:
    header = (
        f"{'source':<24} {'state':<8} {'newest period':<13} {'last new file':<13} "
        f"{'open incidents':>14} {'revisions 90d':>13}"
    )
    out = [header, "-" * len(header)]
    for source in status.sources:
        out.append(
            f"{source.source:<24} {source.mark:<8} "
            f"{source.period_text(source.newest_period):<13} "
            f"{_day(source.last_new_file_at):<13} "
            f"{source.open_incidents:>14} {source.recent_revisions:>13}"
        )
    out.append("")
    out.append(
        f"judged by the monitor run of {as_utc(status.judged_at):%Y-%m-%d %H:%M} UTC"
        if status.judged_at
        else "no monitor run yet: run the `monitor` DAG (or `make demo`)"
    )
    for incident in status.incidents:
        out.append(
            f"  open since {as_utc(incident.opened_at):%Y-%m-%d} [{incident.severity}] "
            f"{incident.source} {incident.kind}: {incident.headline[:140]}"
        )
    return "\n".join(out)


def _day(value: Any) -> str:
    return "-" if value is None else f"{as_utc(value):%Y-%m-%d}"


def as_utc(value: Any) -> Any:
    """DuckDB hands TIMESTAMPTZ over in the session's time zone; returnwatch speaks UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


# ----------------------------------------------------------------------- snapshot refresh ---


@dataclass(frozen=True)
class SnapshotRefresh:
    path: Path
    tables: dict[str, int]  # monitor table -> rows copied
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "tables": dict(self.tables),
            "seconds": round(self.seconds, 3),
        }


def refresh_snapshot() -> SnapshotRefresh | None:
    """Copy the live warehouse's ``monitor`` tables into the analysts' snapshot.

    ``transform`` publishes the whole warehouse after a successful build; monitors run later
    (and daily, built or not), so without this the snapshot would show the judgement of the
    last build. Only the ``monitor`` schema is replaced: after a failed build the live marts
    can be half rebuilt, and those must not reach analysts. Returns None (and changes
    nothing) when no snapshot has been published yet.

    Same atomic replacement as ``transform.publish_snapshot``, under the same lock: the new copy
    is built under a temporary name next to the snapshot and renamed over it, so readers see
    the old file or the new one, never a mix, and the build id (``snapshot.build``) stays the
    one the Parquet files carry. Run it in the ``warehouse`` pool: it reads the live file (a
    stray writer holding that file makes the read-only ATTACH fail; the task's retries cover it).
    """
    import time

    import duckdb

    from returnwatch import transform

    started = time.monotonic()
    live = settings.warehouse_path()
    snapshot = settings.snapshot_path()
    if not snapshot.is_file():
        log.info(
            "no snapshot at %s yet: transform publishes the first after a successful "
            "build; nothing to refresh",
            snapshot,
        )
        return None
    if not live.is_file():
        raise FileNotFoundError(f"no live warehouse at {live} to refresh the snapshot from")

    tables: dict[str, int] = {}
    # Serialised with publish_snapshot: a copy of the snapshot taken before a publish must not
    # be renamed over it afterwards (the build's Parquet files would disagree with it).
    with (
        transform.snapshot_lock(),
        tempfile.TemporaryDirectory(prefix=".refresh-", dir=snapshot.parent) as scratch,
    ):
        # Same base name: DuckDB names the catalog after the file, and dbt's views refer to it.
        staged = Path(scratch) / snapshot.name
        shutil.copyfile(snapshot, staged)
        os.chmod(staged, 0o644)
        with contextlib.closing(duckdb.connect(str(staged))) as con:
            # Read-only: a reader never blocks another reader, and this cannot change live.
            con.execute(f"ATTACH '{transform.sql_path(live)}' AS live (READ_ONLY)")
            names = [
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables where table_catalog = 'live' "
                    "and table_schema = 'monitor' and table_type = 'BASE TABLE' order by 1"
                ).fetchall()
            ]
            con.execute("CREATE SCHEMA IF NOT EXISTS monitor")
            for name in names:
                # CREATE OR REPLACE follows columns the live table gained since the build; the
                # copy has no keys or defaults, which a read-only snapshot never needs.
                con.execute(
                    f'CREATE OR REPLACE TABLE monitor."{name}" AS '
                    f'SELECT * FROM live.monitor."{name}"'
                )
                tables[name] = scalar(con, f'select count(*) from monitor."{name}"')
            con.execute("DETACH live")
            con.execute("CHECKPOINT")
        transform.replace_snapshot(staged)
    return SnapshotRefresh(path=snapshot, tables=tables, seconds=time.monotonic() - started)
