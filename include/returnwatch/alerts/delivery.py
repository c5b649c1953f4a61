"""The outbox: who gets which alert (config/alerts.yaml), and sending each pending alert once.

What this module owns:

- routing: ``audience_for(monitor)`` and ``channel_for(audience)``;
- ``deliver_pending()``: sends the ``pending`` rows of ``monitor.alerts`` in creation order
  (Slack with a token, else the console), digests included, marking each ``sent`` or
  recording the failed attempt;
- ``requeue_failed()``: ``failed`` rows back to ``pending`` (after a config fix);
- ``on_task_failure()``: the Airflow callback telling ops about a task that failed for good.

Guarantees (sent once, attempts counted before the call, ``unknown`` outcomes never re-posted
blind, scope checks, digests): docs/internals.md#alerts-delivery and docs/alerts.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from returnwatch import config, settings
from returnwatch.duck import scalar

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- routing


class Override(BaseModel):
    """One routing exception: findings of ``monitor`` (and ``kind`` / ``severity``) -> audience."""

    model_config = ConfigDict(extra="forbid")

    monitor: str
    kind: str | None = None  # exact kind, or a prefix ending in '*' (restatement_*)
    severity: str | None = None  # warning / critical
    audience: str

    def matches(self, monitor: str, kind: str | None, severity: str | None) -> bool:
        if self.monitor != monitor:
            return False
        if self.kind is not None:
            if kind is None:
                return False
            if self.kind.endswith("*") and not kind.startswith(self.kind[:-1]):
                return False
            if not self.kind.endswith("*") and kind != self.kind:
                return False
        return self.severity is None or self.severity == severity


class QuietHours(BaseModel):
    """Hours when an audience is not disturbed: alerts wait until ``end`` (local time)."""

    model_config = ConfigDict(extra="forbid")

    start: dt.time
    end: dt.time
    timezone: str = "America/New_York"
    # Alerts of this severity go out anyway (a child expelled after a court order can't wait).
    except_severity: str | None = "critical"

    def deferred_until(self, now: dt.datetime, severity: str | None) -> dt.datetime | None:
        """When an alert of ``severity`` may go out, if ``now`` is quiet; else None."""
        from zoneinfo import ZoneInfo

        if self.except_severity and severity == self.except_severity:
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        t = local.time()
        quiet = (
            (self.start <= t < self.end)
            if self.start < self.end
            else (t >= self.start or t < self.end)
        )
        if not quiet:
            return None
        day = local.date() if t < self.end else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, self.end, tzinfo=ZoneInfo(self.timezone))


class Digest(BaseModel):
    """Gather an audience's non-urgent openings into one message a day, sent at ``at``."""

    model_config = ConfigDict(extra="forbid")

    at: dt.time
    timezone: str = "America/New_York"
    except_severity: str | None = "critical"

    def holds(self, event: str, severity: str | None) -> bool:
        """Whether an alert waits for the digest: openings, never ``except_severity`` (as
        quiet hours); updates and resolutions follow their opening (see the outbox)."""
        return event == "opened" and not (self.except_severity and severity == self.except_severity)

    def next_time(self, now: dt.datetime) -> dt.datetime:
        from zoneinfo import ZoneInfo

        local = now.astimezone(ZoneInfo(self.timezone))
        moment = dt.datetime.combine(local.date(), self.at, tzinfo=ZoneInfo(self.timezone))
        return moment if moment > local else moment + dt.timedelta(days=1)


class AudienceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quiet_hours: QuietHours | None = None
    digest: Digest | None = None


class Suppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # An incident's "updated" alerts: at most one per this many hours (later ones are kept in
    # monitor.alerts as 'suppressed'). Openings and resolutions are never suppressed.
    updates_within_hours: float = Field(ge=0, le=24 * 30, default=24)


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(ge=1, le=100, default=5)
    timeout_seconds: float = Field(gt=0, le=120, default=10)
    max_rate_limit_wait_seconds: float = Field(ge=0, le=600, default=30)
    backoff_first_seconds: float = Field(ge=0, le=3600, default=60)
    backoff_max_seconds: float = Field(ge=1, le=24 * 3600, default=3600)
    give_up_after_hours: float = Field(gt=0, le=24 * 60, default=72)
    charts: bool = True


class AlertsConfig(BaseModel):
    """config/alerts.yaml."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[str, str]
    routes: dict[str, str] = Field(default_factory=dict)
    overrides: list[Override] = Field(default_factory=list)
    default_audience: str = "ops"
    audiences: dict[str, AudienceSettings] = Field(default_factory=dict)
    suppression: Suppression = Field(default_factory=Suppression)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _audiences_have_channels(self) -> AlertsConfig:
        used = {
            *self.routes.values(),
            self.default_audience,
            *(o.audience for o in self.overrides),
            *self.audiences,
        }
        unknown = sorted(used - set(self.channels))
        if unknown:
            raise ValueError(f"audience(s) {unknown} have no entry under channels")
        return self


@functools.cache
def _alerts_config(directory: str) -> AlertsConfig:
    return config.load_yaml("alerts.yaml", AlertsConfig, Path(directory))


def alerts_config() -> AlertsConfig:
    return _alerts_config(str(settings.config_dir()))


def audience_for(monitor: str, kind: str | None = None, severity: str | None = None) -> str:
    """Who hears about a finding of ``monitor`` (and ``kind``, ``severity``): advocates / ops."""
    cfg = alerts_config()
    for override in cfg.overrides:
        if override.matches(monitor, kind, severity):
            return override.audience
    return cfg.routes.get(monitor, cfg.default_audience)


def channel_for(audience: str) -> str | None:
    """The Slack channel of an audience, from config/alerts.yaml."""
    return alerts_config().channels.get(audience)


# --------------------------------------------------------------------------- schema

# Alerts-side additions to the monitor schema (monitor/store.py owns the base tables; these are
# added here, idempotently, so the outbox can grow without touching the monitors' code).
ALERTS_DDL: list[str] = [
    # When a pending alert may next be tried (backoff after a failure, quiet hours, digest).
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMPTZ",
    # The last failure concerned Slack as a whole (down, rate limited): later rows wait too.
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS last_error_global BOOLEAN",
    # Text/blocks re-rendered at delivery with every finding of the run, vintage, status line.
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS composed_at TIMESTAMPTZ",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS severity VARCHAR",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS suppressed_reason VARCHAR",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS chart_file_id VARCHAR",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS chart_error VARCHAR",
    # Parent message's status line updated (chat.update) after this reply.
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS parent_updated_at TIMESTAMPTZ",
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS parent_update_error VARCHAR",
    # Digest message that carried this alert (its alert_id).
    "ALTER TABLE monitor.alerts ADD COLUMN IF NOT EXISTS digest_id VARCHAR",
    """
    CREATE TABLE IF NOT EXISTS monitor.alert_charts (
        alert_id   VARCHAR PRIMARY KEY,   -- -> monitor.alerts
        png        BLOB NOT NULL,
        width      INTEGER NOT NULL,
        height     INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS monitor.incident_controls (
        incident_id      VARCHAR PRIMARY KEY,  -- -> monitor.incidents
        acknowledged_at  TIMESTAMPTZ,
        acknowledged_by  VARCHAR,
        muted_until      TIMESTAMPTZ,          -- no alert for this incident until then
        updated_at       TIMESTAMPTZ NOT NULL
    )
    """,
]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The monitor schema (``warehouse.init``) plus the alerts-side columns and tables."""
    from returnwatch import warehouse

    if not warehouse.table_exists(con, "monitor.alerts"):
        warehouse.init(con)
    for statement in ALERTS_DDL:
        con.execute(statement)


# --------------------------------------------------------------------------- delivery

# Alerts about returnwatch itself: never held by quiet hours or a digest.
OPS_NOTICES = ("task_failed", "delivery_problem")


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    via: str | None = None  # slack / console / None (nothing pending)
    sent: list[str] = field(default_factory=list)  # alert ids delivered now
    retry_later: list[str] = field(default_factory=list)  # attempted, failed, still pending
    failed: list[str] = field(default_factory=list)  # gave up on (status failed)
    suppressed: list[str] = field(default_factory=list)  # muted / acknowledged / too soon
    deferred: list[str] = field(default_factory=list)  # quiet hours, digest, backoff
    unknown: list[str] = field(default_factory=list)  # may have reached Slack: held
    pending_left: int = 0  # rows still pending after this run
    errors: list[str] = field(default_factory=list)  # redacted error texts

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def deliver_pending(
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    channel_for: Callable[[str], str | None] | None = None,
    alert_ids: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> DeliveryReport:
    """Send every pending alert that is due, oldest first (only ``alert_ids`` when given).

    ``channel_for`` overrides the channel per audience (default: config/alerts.yaml, else the
    channel stored on the row). ``now`` is the clock (tests; default: the wall clock).
    Must run after the data and the findings are committed: it commits its own bookkeeping.
    """
    if con is None:
        from returnwatch import warehouse

        with warehouse.session() as own:
            return deliver_pending(own, channel_for=channel_for, alert_ids=alert_ids, now=now)
    from returnwatch.alerts.slack import SlackPoster, slack_token

    clock = _Clock(now)
    ensure_schema(con)
    report = DeliveryReport()
    rows = _pending(con, alert_ids)
    if rows:
        from returnwatch.alerts import compose

        cfg = alerts_config()
        for row in rows:
            if row["composed_at"] is None:
                compose.compose(con, row, now=clock())
        rows = _pending(con, alert_ids)
        rows = _apply_policies(con, rows, cfg, clock(), report, channel_for)
    if rows:
        token = slack_token()
        if token is None:
            report.via = "console"
            _deliver_to_console(con, rows, channel_for, report, clock)
        else:
            report.via = "slack"
            sending = alerts_config().delivery
            poster = SlackPoster(
                token,
                timeout_seconds=sending.timeout_seconds,
                max_rate_limit_wait_seconds=sending.max_rate_limit_wait_seconds,
            )
            _deliver_to_slack(con, rows, channel_for, poster, sending, report, clock)
    report.pending_left = scalar(
        con, "SELECT count(*) FROM monitor.alerts WHERE status = 'pending'"
    )
    if report.sent or report.errors or report.suppressed:
        log.info(
            "alerts: %d sent via %s, %d to retry, %d given up, %d suppressed, %d pending",
            len(report.sent),
            report.via,
            len(report.retry_later),
            len(report.failed),
            len(report.suppressed),
            report.pending_left,
        )
    return report


class _Clock:
    def __init__(self, fixed: dt.datetime | None) -> None:
        self.fixed = fixed

    def __call__(self) -> dt.datetime:
        return self.fixed if self.fixed is not None else dt.datetime.now(dt.UTC)


def requeue_failed(con: duckdb.DuckDBPyConnection, alert_ids: Sequence[str] | None = None) -> int:
    """Put ``failed`` and ``unknown`` alerts back to ``pending`` with a fresh attempt count
    (so an ``unknown`` one is posted without a history lookup: a person has checked the
    channel); returns how many."""
    ensure_schema(con)
    where, params = "status IN ('failed', 'unknown')", []
    if alert_ids is not None:
        where += " AND list_contains(?::VARCHAR[], alert_id)"
        params.append(list(alert_ids))
    count = scalar(con, f"SELECT count(*) FROM monitor.alerts WHERE {where}", params)
    con.execute(
        f"UPDATE monitor.alerts SET status = 'pending', attempts = 0, "
        f"next_attempt_at = NULL, created_at = now() WHERE {where}",
        params,
    )
    return int(count)


def _pending(
    con: duckdb.DuckDBPyConnection, alert_ids: Sequence[str] | None
) -> list[dict[str, Any]]:
    from returnwatch.monitor.store import rows_as_dicts

    where, params = "a.status = 'pending'", []
    if alert_ids is not None:
        where += " AND list_contains(?::VARCHAR[], a.alert_id)"
        params.append(list(alert_ids))
    return rows_as_dicts(
        con.execute(
            f"SELECT a.alert_id, a.incident_id, a.event, a.audience, a.channel, a.text, a.blocks, "
            f"a.attempts, a.run_id, a.created_at, a.next_attempt_at, a.last_error, "
            f"a.last_error_global, a.composed_at, a.severity, a.last_attempt_at, a.digest_id, "
            f"c.muted_until, c.acknowledged_at "
            f"FROM monitor.alerts a LEFT JOIN monitor.incident_controls c USING (incident_id) "
            f"WHERE {where} ORDER BY a.seq",
            params,
        )
    )


def _apply_policies(
    con: duckdb.DuckDBPyConnection,
    rows: list[dict[str, Any]],
    cfg: AlertsConfig,
    now: dt.datetime,
    report: DeliveryReport,
    override: Callable[[str], str | None] | None = None,
) -> list[dict[str, Any]]:
    """Mutes, acknowledgements, the update window, quiet hours, digests: what goes now."""
    due: list[dict[str, Any]] = []
    window = dt.timedelta(hours=cfg.suppression.updates_within_hours)
    for row in rows:
        reason = None
        if row["muted_until"] is not None and row["muted_until"] > now:
            reason = f"muted until {row['muted_until'].isoformat()}"
        elif row["event"] == "updated" and row["acknowledged_at"] is not None:
            reason = "incident acknowledged"
        elif row["event"] == "updated" and window:
            last = scalar(
                con,
                "SELECT max(sent_at) FROM monitor.alerts WHERE incident_id = ? AND "
                "status = 'sent' AND event IN ('opened', 'updated')",
                [row["incident_id"]],
            )
            if last is not None and now - last < window:
                reason = f"an alert for this incident went out less than {window} ago"
        if reason is not None:
            con.execute(
                "UPDATE monitor.alerts SET status = 'suppressed', suppressed_reason = ? "
                "WHERE alert_id = ?",
                [reason, row["alert_id"]],
            )
            report.suppressed.append(row["alert_id"])
            continue
        audience = cfg.audiences.get(row["audience"])
        wait = None
        if audience is not None and row["event"] not in OPS_NOTICES:
            if audience.quiet_hours is not None:
                wait = audience.quiet_hours.deferred_until(now, row["severity"])
            digest = audience.digest
            if wait is None and digest is not None and digest.holds(row["event"], row["severity"]):
                wait = _digest_wait(con, row, digest, now)
                if wait is not None and row["digest_id"] is None:
                    # The digest's idempotency key: audience, channel, digest slot. Fixed
                    # while the row waits, so retries of the digest carry the same alerts.
                    digest_id = (
                        f"digest:{row['audience']}:{_channel(row, override) or '-'}:"
                        f"{wait.isoformat()}"
                    )
                    con.execute(
                        "UPDATE monitor.alerts SET digest_id = ? WHERE alert_id = ?",
                        [digest_id, row["alert_id"]],
                    )
                    row = {**row, "digest_id": digest_id}
        if wait is not None and (row["next_attempt_at"] is None or row["next_attempt_at"] < wait):
            con.execute(
                "UPDATE monitor.alerts SET next_attempt_at = ? WHERE alert_id = ?",
                [wait, row["alert_id"]],
            )
            row = {**row, "next_attempt_at": wait}
        due.append(row)
    return due


def _digest_wait(
    con: duckdb.DuckDBPyConnection, row: dict[str, Any], digest: Digest, now: dt.datetime
) -> dt.datetime | None:
    # A digest row waits for the first digest time after it was created.
    created = row["created_at"]
    moment = digest.next_time(created if created is not None else now)
    return moment if moment > now else None


def _digest_group(
    row: dict[str, Any], rows: list[dict[str, Any]], skip: set[str]
) -> list[dict[str, Any]]:
    """The rows that go out in one message with ``row``: itself, or all rows of its digest."""
    if not row["digest_id"]:
        return [row]
    return [r for r in rows if r["digest_id"] == row["digest_id"] and r["alert_id"] not in skip]


def _digest_message(group: list[dict[str, Any]]) -> Any:
    from returnwatch.alerts.messages import digest_message

    # The key ends with the digest slot (local time): it gathers the day before it.
    slot = dt.datetime.fromisoformat(group[0]["digest_id"].split(":", 3)[3])
    return digest_message(
        [{**r, "blocks": _blocks(r["blocks"])} for r in group], since=slot - dt.timedelta(days=1)
    )


def _channel(row: dict[str, Any], override: Callable[[str], str | None] | None) -> str | None:
    # Resolved at send time, so a channel fixed in config/alerts.yaml applies to alerts still
    # waiting; the row's channel (routed at enqueue) is the fallback.
    if override is not None:
        return override(row["audience"])
    return channel_for(row["audience"]) or row["channel"]


def _deliver_to_console(
    con: duckdb.DuckDBPyConnection,
    rows: list[dict[str, Any]],
    override: Callable[[str], str | None] | None,
    report: DeliveryReport,
    clock: _Clock,
) -> None:
    from returnwatch.alerts.console import print_alert

    done: set[str] = set()  # sent this run within a digest
    for row in rows:
        if row["alert_id"] in done:
            continue
        if row["next_attempt_at"] is not None and row["next_attempt_at"] > clock():
            report.deferred.append(row["alert_id"])
            continue
        if row["digest_id"]:
            group = _digest_group(row, rows, done)
            print_alert(
                text=_digest_message(group).text,
                audience=row["audience"],
                channel=_channel(row, override),
                event="digest",
                alert_id=row["digest_id"],
            )
            ids = [r["alert_id"] for r in group]
            con.execute(
                """
                UPDATE monitor.alerts SET status = 'sent', delivered_via = 'console',
                    attempts = attempts + 1, last_attempt_at = ?, sent_at = ?, last_error = NULL
                WHERE list_contains(?::VARCHAR[], alert_id) AND status = 'pending'
                """,
                [clock(), clock(), ids],
            )
            report.sent.extend(ids)
            done.update(ids)
            continue
        chart = con.execute(
            "SELECT width, height FROM monitor.alert_charts WHERE alert_id = ?", [row["alert_id"]]
        ).fetchone()
        print_alert(
            text=row["text"],
            audience=row["audience"],
            channel=_channel(row, override),
            event=row["event"],
            alert_id=row["alert_id"],
            chart=(
                f"chart {chart[0]}x{chart[1]} PNG kept in monitor.alert_charts "
                f"(returnwatch alerts show {row['incident_id']} --chart FILE)"
                if chart
                else None
            ),
        )
        con.execute(
            """
            UPDATE monitor.alerts SET status = 'sent', delivered_via = 'console',
                attempts = attempts + 1, last_attempt_at = ?, sent_at = ?, last_error = NULL
            WHERE alert_id = ? AND status = 'pending'
            """,
            [clock(), clock(), row["alert_id"]],
        )
        report.sent.append(row["alert_id"])


def _deliver_to_slack(
    con: duckdb.DuckDBPyConnection,
    rows: list[dict[str, Any]],
    override: Callable[[str], str | None] | None,
    poster: Any,
    cfg: DeliverySettings,
    report: DeliveryReport,
    clock: _Clock,
) -> None:
    from returnwatch.alerts.slack import HistoryUnavailable, SlackDeliveryError

    held_back: set[str] = set()  # incidents whose earlier alert did not go out this run
    done: set[str] = set()  # rows that went (or were tried) within a digest this run
    for row in rows:
        alert_id, incident_id = row["alert_id"], row["incident_id"]
        if (incident_id and incident_id in held_back) or alert_id in done:
            continue
        now = clock()
        if row["next_attempt_at"] is not None and row["next_attempt_at"] > now:
            report.deferred.append(alert_id)
            if row["last_error_global"]:
                break  # Slack was down: nothing after it goes first (order is kept)
            held_back.add(incident_id or "")
            continue
        if row["created_at"] is not None and (
            now - row["created_at"] > dt.timedelta(hours=cfg.give_up_after_hours)
        ):
            _record_failure(
                con,
                alert_id,
                row["attempts"],
                dead=True,
                global_=False,
                now=now,
                cfg=cfg,
                report=report,
                error=f"not delivered within {cfg.give_up_after_hours:g} hours "
                f"(last error: {row['last_error'] or 'none'})",
            )
            held_back.add(incident_id or "")
            continue
        attempts = row["attempts"] + 1
        # One message: this row, or every row of its digest (all openings, one key for all).
        group = _digest_group(row, rows, done | set(report.failed))
        ids, key = [r["alert_id"] for r in group], row["digest_id"] or alert_id
        done.update(ids if row["digest_id"] else ())
        channel, thread_ts, parent = _channel(row, override), None, None
        if incident_id and row["event"] != "opened":
            parent = con.execute(
                "SELECT i.slack_channel, i.slack_ts, a.text, a.blocks, a.digest_id "
                "FROM monitor.incidents i "
                "LEFT JOIN monitor.alerts a ON a.alert_id = i.incident_id || ':opened' "
                "WHERE i.incident_id = ?",
                [incident_id],
            ).fetchone()
            if parent and parent[0] and parent[1]:
                channel, thread_ts = parent[0], parent[1]
                # Opened in a digest: reply in the digest's thread, leave its text alone.
                parent = None if parent[4] else parent[:4]
            else:
                parent = None
        if not channel:
            for r in group:
                _record_failure(
                    con,
                    r["alert_id"],
                    attempts,
                    dead=True,
                    global_=False,
                    now=now,
                    cfg=cfg,
                    report=report,
                    error=f"no Slack channel for audience {row['audience']!r} in "
                    "config/alerts.yaml",
                )
                held_back.add(r["incident_id"] or "")
            continue
        # A previous attempt that may have reached Slack (timeout, 5xx, or the process died
        # before recording the answer): look for the message before posting it again.
        already = None
        if row["attempts"] > 0 and _ambiguous(row["last_error"]):
            try:
                already = poster.find_posted(
                    channel=channel, alert_id=key, oldest=row["last_attempt_at"]
                )
            except HistoryUnavailable as exc:
                _hold_unknown(con, group, key, channel, str(exc), now, report)
                held_back.update(r["incident_id"] or "" for r in group)
                continue
            except SlackDeliveryError as exc:  # Slack down: the lookup waits with the rest
                # Counted as an attempt, so an outage of hours backs off as a post would.
                for r in group:
                    _record_failure(
                        con,
                        r["alert_id"],
                        row["attempts"] + 1,
                        dead=False,
                        global_=True,
                        now=now,
                        cfg=cfg,
                        error=str(exc),
                        report=report,
                    )
                break
        # Count the attempt before calling Slack (see the module docstring).
        con.execute(
            "UPDATE monitor.alerts SET attempts = ?, last_attempt_at = ? "
            "WHERE list_contains(?::VARCHAR[], alert_id)",
            [attempts, now, ids],
        )
        if row["digest_id"]:
            message = _digest_message(group)
            text, blocks, event = message.text, message.blocks, "digest"
        else:
            text, blocks, event = row["text"], _blocks(row["blocks"]), row["event"]
        try:
            posted = already or poster.post(
                channel=channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                broadcast=row["event"] == "resolved",
                metadata={
                    "event_type": "returnwatch_alert",
                    "event_payload": {
                        "alert_id": key,
                        "event": event,
                        "incident_id": incident_id or "",
                    },
                },
            )
        except SlackDeliveryError as exc:
            dead = not exc.retryable or (not exc.global_ and attempts >= cfg.max_attempts)
            for r in group:
                _record_failure(
                    con,
                    r["alert_id"],
                    attempts,
                    dead=dead,
                    global_=exc.global_,
                    now=now,
                    cfg=cfg,
                    error=str(exc),
                    report=report,
                )
                held_back.add(r["incident_id"] or "")
            if exc.global_:
                break  # Slack itself is unavailable: the rest waits, in order, for next run
            continue
        con.execute(
            """
            UPDATE monitor.alerts SET status = 'sent', delivered_via = 'slack', sent_at = ?,
                channel = ?, slack_channel = ?, slack_ts = ?, thread_ts = ?, last_error = NULL,
                last_error_global = NULL, next_attempt_at = NULL
            WHERE list_contains(?::VARCHAR[], alert_id)
            """,
            [now, channel, posted.channel, posted.ts, thread_ts, ids],
        )
        if row["event"] == "opened":
            # The opening message (or the digest) is the incident's thread: later events
            # reply under it.
            con.execute(
                "UPDATE monitor.incidents SET slack_channel = ?, slack_ts = ? "
                "WHERE list_contains(?::VARCHAR[], incident_id)",
                [posted.channel, posted.ts, [r["incident_id"] for r in group]],
            )
        report.sent.extend(ids)
        # After "sent" is recorded: neither extra can ever cause a second post.
        if not row["digest_id"]:
            _upload_chart(con, poster, alert_id, posted.channel, thread_ts or posted.ts, cfg, row)
        if parent is not None and incident_id:
            _update_parent(con, poster, alert_id, incident_id, parent, now)


def _hold_unknown(
    con: duckdb.DuckDBPyConnection,
    group: list[dict[str, Any]],
    key: str,
    channel: str,
    error: str,
    now: dt.datetime,
    report: DeliveryReport,
) -> None:
    """The alert may already be in Slack and nobody can tell: hold it, tell ops once."""
    ids = [r["alert_id"] for r in group]
    con.execute(
        "UPDATE monitor.alerts SET status = 'unknown', last_error = ?, "
        "next_attempt_at = NULL WHERE list_contains(?::VARCHAR[], alert_id)",
        [error[:1000], ids],
    )
    report.unknown.extend(ids)
    report.errors.append(error)
    log.error("alert %s held as unknown (not re-posted blind): %s", key, error)
    headline = str(group[0]["text"] or "").split("\n", 1)[0][:150]
    notify_ops(
        con,
        f"unknown:{key}",
        header="An alert may or may not have reached Slack",
        body=(
            f'The alert "{headline}" ({key}) to {channel} was sent once with no '
            f"answer, and returnwatch could not check the channel for it: {error}. "
            "It is held as unknown, not posted again. Look in the channel: if it is "
            "not there, run `returnwatch alerts requeue`. Grant the bot "
            "channels:history (groups:history for a private channel) so this does "
            "not recur (docs/operations.md, Slack app scopes)."
        ),
        now=now,
    )


def notify_ops(
    con: duckdb.DuckDBPyConnection,
    key: str,
    *,
    header: str,
    body: str,
    now: dt.datetime | None = None,
) -> bool:
    """Queue one ``delivery_problem`` alert for ops (idempotent on ``key``): the outbox
    telling ops about itself. Returns whether it was new."""
    from returnwatch.monitor.store import enqueue_alert

    audience = audience_for("delivery")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
    ]
    added = enqueue_alert(
        con,
        alert_id=f"delivery_problem:{key}",
        incident_id=None,
        event="delivery_problem",
        audience=audience,
        channel=channel_for(audience),
        text=f"{header}\n\n{body}",
        blocks=blocks,
        run_id=None,
    )
    if added:
        # Marked composed: its words are final (compose() re-renders incident alerts only).
        con.execute(
            "UPDATE monitor.alerts SET composed_at = ?, severity = 'warning' WHERE alert_id = ?",
            [now or _now(), f"delivery_problem:{key}"],
        )
    return added


def check_slack_scopes(
    con: duckdb.DuckDBPyConnection, now: dt.datetime | None = None
) -> list[str] | None:
    """At the start of a dispatcher run: the scopes Slack says the token has (``auth.test``
    and the ``x-oauth-scopes`` header), against the required ones. A missing scope is a
    logged error and one ops alert (queued, sent by this run). Returns the missing scopes, or
    None when there is no token or Slack could not be asked (delivery then reports it)."""
    from returnwatch.alerts.slack import SlackDeliveryError, SlackPoster, slack_token

    token = slack_token()
    if token is None:
        return None
    cfg = alerts_config().delivery
    poster = SlackPoster(
        token,
        timeout_seconds=cfg.timeout_seconds,
        max_rate_limit_wait_seconds=cfg.max_rate_limit_wait_seconds,
    )
    try:
        missing = poster.missing_scopes()
    except SlackDeliveryError as exc:
        log.warning("Slack scopes not checked (%s); delivery will report the problem", exc)
        return None
    if missing:
        log.error(
            "the Slack token lacks the scope(s) %s (docs/operations.md, Slack app scopes)",
            ", ".join(missing),
        )
        notify_ops(
            con,
            "scopes:" + ",".join(missing),
            header="Slack token lacks scopes",
            body=(
                f"The bot token lacks {', '.join(missing)}. Without chat:write "
                "nothing is posted; without files:write charts are not uploaded; "
                "without channels:history/groups:history an alert whose first "
                "attempt got no answer is held as unknown instead of being checked. "
                "Add the scopes to the Slack app and reinstall it "
                "(docs/operations.md, Slack app scopes)."
            ),
            now=now,
        )
    return missing


def _ambiguous(error: str | None) -> bool:
    if error is None:
        return True  # attempt counted, no answer recorded: the process died mid-call
    lowered = error.lower()
    return any(word in lowered for word in ("timed out", "timeout", "unreachable", "http 5"))


def _upload_chart(
    con: duckdb.DuckDBPyConnection,
    poster: Any,
    alert_id: str,
    channel: str,
    thread_ts: str,
    cfg: DeliverySettings,
    row: dict[str, Any],
) -> None:
    if not cfg.charts:
        return
    chart = con.execute(
        "SELECT png FROM monitor.alert_charts WHERE alert_id = ?", [alert_id]
    ).fetchone()
    if not chart:
        return
    from returnwatch.alerts.slack import SlackDeliveryError

    title = (row["text"].split("\n", 1)[0] or "returnwatch chart")[:120]
    try:
        file_id = poster.upload_chart(
            channel=channel,
            thread_ts=thread_ts,
            png=bytes(chart[0]),
            filename=f"{alert_id.replace(':', '_')}.png",
            title=title,
        )
    except SlackDeliveryError as exc:
        con.execute(
            "UPDATE monitor.alerts SET chart_error = ? WHERE alert_id = ?",
            [str(exc)[:500], alert_id],
        )
        log.warning("alert %s: chart not uploaded: %s", alert_id, exc)
        return
    con.execute(
        "UPDATE monitor.alerts SET chart_file_id = ? WHERE alert_id = ?", [file_id, alert_id]
    )


def _update_parent(
    con: duckdb.DuckDBPyConnection,
    poster: Any,
    alert_id: str,
    incident_id: str,
    parent: tuple[Any, ...],
    now: dt.datetime,
) -> None:
    """chat.update the incident's opening message with its new status line."""
    from returnwatch.alerts.compose import incident_status
    from returnwatch.alerts.messages import replace_status_in_text, with_status_line
    from returnwatch.alerts.slack import SlackDeliveryError

    channel, ts, text, blocks = parent
    if not text:
        return
    line = incident_status(con, incident_id)
    try:
        poster.update(
            channel=channel,
            ts=ts,
            text=replace_status_in_text(text, line),
            blocks=with_status_line(_blocks(blocks), line),
        )
    except SlackDeliveryError as exc:
        con.execute(
            "UPDATE monitor.alerts SET parent_update_error = ? WHERE alert_id = ?",
            [str(exc)[:500], alert_id],
        )
        log.warning("alert %s: status line of the thread not updated: %s", alert_id, exc)
        return
    con.execute(
        "UPDATE monitor.alerts SET parent_updated_at = ? WHERE alert_id = ?", [now, alert_id]
    )


def _record_failure(
    con: duckdb.DuckDBPyConnection,
    alert_id: str,
    attempts: int,
    *,
    dead: bool,
    global_: bool,
    now: dt.datetime,
    cfg: DeliverySettings,
    error: str,
    report: DeliveryReport,
) -> None:
    # Exponential backoff: 1, 2, 4 ... minutes, capped; an outage of hours costs a few calls.
    wait = min(cfg.backoff_max_seconds, cfg.backoff_first_seconds * 2 ** max(0, attempts - 1))
    con.execute(
        "UPDATE monitor.alerts SET status = ?, attempts = ?, last_attempt_at = ?, last_error = ?, "
        "last_error_global = ?, next_attempt_at = ? WHERE alert_id = ?",
        [
            "failed" if dead else "pending",
            attempts,
            now,
            error[:1000],
            global_,
            None if dead else now + dt.timedelta(seconds=wait),
            alert_id,
        ],
    )
    (report.failed if dead else report.retry_later).append(alert_id)
    report.errors.append(error)
    log.warning(
        "alert %s not delivered (attempt %d%s): %s",
        alert_id,
        attempts,
        ", giving up" if dead else f", next try in {wait:.0f} s",
        error,
    )


def _blocks(value: Any) -> list[dict[str, Any]]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- task failures

# How long a failure callback waits for the warehouse lock before sending without the outbox.
_CALLBACK_LOCK_WAIT_SECONDS = 30


def is_final_failure(context: Mapping[str, Any]) -> bool:
    """True when the task instance in ``context`` has failed for good.

    Airflow 3 runs ``on_failure_callback`` only for the FAILED state and ``on_retry_callback``
    for UP_FOR_RETRY (task_runner.finalize), so this is a guard for a callback wired to the
    wrong hook. The state decides when present (a task that raised AirflowFailException fails
    for good with retries left); otherwise the try number against max_tries.
    """
    ti = context.get("ti") or context.get("task_instance")
    state = getattr(ti, "state", None)
    state = getattr(state, "value", state)
    if state in ("up_for_retry", "up_for_reschedule", "deferred", "running", "success"):
        return False
    if state == "failed":
        return True
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    if max_tries is None:
        task = context.get("task") or getattr(ti, "task", None)
        max_tries = getattr(task, "retries", None)
    if try_number is None or max_tries is None:
        return True  # cannot tell: one alert too many beats a silent failure
    return int(try_number) > int(max_tries)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: one ops alert naming DAG, task, run, try and error.

    Goes through the outbox (so it is recorded and sent once); if the warehouse cannot be
    opened, it is sent directly. Never raises (Airflow would only log it), and never swallows:
    when composing, routing or sending fails, the error is logged and the alert is left in the
    spool folder, which the next ``dispatch_alerts`` run (5 minutes) puts in the outbox.
    """
    try:
        if not is_final_failure(context):
            log.info("task failure alert skipped: the task will be retried")
            return
        _alert_task_failure(context)
    except Exception as exc:
        log.error(
            "could not alert ops about the failed task (%s: %s); spooled for the dispatcher",
            type(exc).__name__,
            str(exc)[:300],
            exc_info=True,
        )
        _spool_task_failure(context, exc)


# --------------------------------------------------------------------------- spool

# Alerts that could reach neither the outbox nor Slack wait here, one JSON file each, for the
# dispatcher (``absorb_spool``). A folder, not the warehouse: it must work when that is locked.
SPOOL_DIRNAME = "alert-spool"


def spool_dir() -> Path:
    return settings.data_dir() / SPOOL_DIRNAME


def spool_alert(alert_id: str, *, event: str, text: str, error: str) -> Path | None:
    """Leave an ops alert for the dispatcher (atomic write); None if even that failed."""
    import hashlib
    import os
    import tempfile

    try:
        folder = spool_dir()
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(alert_id.encode()).hexdigest()[:24] + ".json"
        record = {
            "alert_id": alert_id,
            "event": event,
            "text": text,
            "error": error[:1000],
            "spooled_at": _now().isoformat(),
        }
        fd, temp = tempfile.mkstemp(prefix=".spool-", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, ensure_ascii=False)
        os.replace(temp, folder / name)
        return folder / name
    except Exception:  # noqa: BLE001 - the last resort: the log is all that is left
        log.critical(
            "alert %s lost: neither the outbox, Slack nor the spool took it: %s",
            alert_id,
            text[:500],
            exc_info=True,
        )
        return None


def absorb_spool(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Put spooled alerts in the outbox (routed to ops now), then remove their files."""
    from returnwatch.monitor.store import enqueue_alert

    folder = spool_dir()
    if not folder.is_dir():
        return []
    absorbed = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        audience = audience_for("task_failure")
        text = (
            f"{record['text']}\n\n(Delivered late by the dispatcher: the first attempt "
            f"failed with {record['error']})"
        )
        enqueue_alert(
            con,
            alert_id=record["alert_id"],
            incident_id=None,
            event=record["event"],
            audience=audience,
            channel=channel_for(audience),
            text=text,
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
            run_id=None,
        )
        path.unlink()
        absorbed.append(record["alert_id"])
    return absorbed


def _spool_task_failure(context: Mapping[str, Any], exc: BaseException) -> None:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or "?"
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or "?"
    try_number = getattr(ti, "try_number", None)
    error = context.get("exception")
    first = (str(error).strip().splitlines() or [""])[0] if error is not None else ""
    try:
        from returnwatch.alerts.messages import redact
        from returnwatch.alerts.slack import slack_token

        first = redact(first, [slack_token()])
    except Exception:  # noqa: BLE001 - redaction unavailable: keep only the exception type
        first = ""
    spool_alert(
        f"task_failed:{dag_id}:{run_id}:{task_id}:{try_number}",
        event="task_failed",
        text=(
            f"Task failed: {dag_id}.{task_id}\n\nTask {task_id} of DAG {dag_id} "
            f"failed in run {run_id}, with no retry left. Error: "
            f"{type(error).__name__ if error is not None else '?'}: {first[:300]}"
        ),
        error=f"{type(exc).__name__}: {str(exc)[:300]}",
    )


def _alert_task_failure(context: Mapping[str, Any]) -> None:
    from returnwatch.alerts.messages import airflow_run_url, redact, task_failure_message
    from returnwatch.alerts.slack import slack_token

    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = str(getattr(ti, "dag_id", None) or getattr(dag, "dag_id", "?"))
    task_id = str(getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", "?"))
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or "?"
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    map_index = getattr(ti, "map_index", -1)
    if map_index is None:
        map_index = -1

    exc = context.get("exception")
    first_line = ""
    if exc is not None:
        lines = str(exc).strip().splitlines()
        first_line = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    error = redact(first_line, [slack_token()])[:300] or "(no exception in the context)"

    message = task_failure_message(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        try_number=try_number,
        max_tries=max_tries,
        error=error,
        log_url=airflow_run_url(f"{dag_id}/{run_id}", task_id),
    )
    task_key = task_id if map_index in (-1, None) else f"{task_id}[{map_index}]"
    alert_id = f"task_failed:{dag_id}:{run_id}:{task_key}:{try_number}"
    audience = audience_for("task_failure")
    channel = channel_for(audience)

    try:
        from returnwatch import warehouse

        con = warehouse.connect(wait_seconds=_CALLBACK_LOCK_WAIT_SECONDS)
    except Exception as exc_:  # noqa: BLE001 - locked, disk full: still tell ops
        log.warning(
            "warehouse unavailable for the outbox (%s); sending the alert directly",
            type(exc_).__name__,
        )
        _send_directly(alert_id, audience, channel, message)
        return
    try:
        from returnwatch import warehouse
        from returnwatch.monitor.store import enqueue_alert

        warehouse.init(con)
        enqueue_alert(
            con,
            alert_id=alert_id,
            incident_id=None,
            event="task_failed",
            audience=audience,
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            run_id=f"{dag_id}/{run_id}",
        )
        deliver_pending(con, alert_ids=[alert_id])
    finally:
        con.close()


def _send_directly(alert_id: str, audience: str, channel: str | None, message: Any) -> None:
    from returnwatch.alerts.console import print_alert
    from returnwatch.alerts.slack import SlackPoster, slack_token

    token = slack_token()
    if token is None or not channel:
        print_alert(
            text=message.text,
            audience=audience,
            channel=channel,
            event="task_failed",
            alert_id=alert_id,
        )
        return
    cfg = alerts_config().delivery
    SlackPoster(
        token,
        timeout_seconds=cfg.timeout_seconds,
        max_rate_limit_wait_seconds=cfg.max_rate_limit_wait_seconds,
    ).post(channel=channel, text=message.text, blocks=message.blocks)
