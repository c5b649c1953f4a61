"""Delivery: sending each pending alert of the outbox once, to Slack or the console.

What this module owns:

- ``deliver_outbox()``: sends the ``pending`` rows of the outbox (``alerts.outbox``) in creation
  order (Slack with a token, else the console), digests included, never opening the warehouse;
- ``deliver_pending()``: the same for callers holding the warehouse: hand-off first, then
  delivery, then the warehouse's copy ``monitor.alerts``;
- ``requeue_failed()``: ``failed``/``unknown`` rows back to ``pending`` (after a fix);
- ``on_task_failure()``: the Airflow callback telling ops about a task that failed for good.

Guarantees (sent once, one deliverer at a time, attempts counted before the call, ``unknown``
outcomes never re-posted blind, scope checks, digests): docs/internals.md#alerts-delivery.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from returnwatch import settings
from returnwatch.alerts import outbox
from returnwatch.alerts.handoff import ALERTS_DDL, ensure_schema  # noqa: F401 - re-exported
from returnwatch.routing import (  # noqa: F401 - re-exported: the routing's old home
    AlertsConfig,
    AudienceSettings,
    DeliverySettings,
    Digest,
    Override,
    QuietHours,
    Suppression,
    alerts_config,
    audience_for,
    channel_for,
)

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


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

    def then(self, later: DeliveryReport) -> DeliveryReport:
        """This run followed by ``later`` (the dispatcher delivers twice): each id once."""
        merged = DeliveryReport(
            via=later.via or self.via, pending_left=later.pending_left, errors=[*self.errors]
        )
        merged.errors += [e for e in later.errors if e not in merged.errors]
        for name in ("sent", "retry_later", "failed", "suppressed", "deferred", "unknown"):
            ids = list(getattr(self, name))
            ids += [i for i in getattr(later, name) if i not in ids]
            setattr(merged, name, ids)
        # An id deferred by the first pass and sent by the second was sent.
        done = set(merged.sent) | set(merged.failed) | set(merged.unknown)
        merged.deferred = [i for i in merged.deferred if i not in done]
        return merged


def deliver_pending(
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    channel_for: Callable[[str], str | None] | None = None,
    alert_ids: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> DeliveryReport:
    """Hand the warehouse's new alerts to the outbox, send every one that is due, oldest first
    (only ``alert_ids`` when given), and refresh the warehouse's copy ``monitor.alerts``.

    ``con`` is the warehouse (opened here when None): callers that hold it anyway (the
    monitor, ingest, the CLI) use this. The dispatcher sends from the outbox alone
    (``deliver_outbox``), so a writer holding the warehouse never delays it.
    ``channel_for`` overrides the channel per audience (default: config/alerts.yaml, else the
    channel stored on the row). ``now`` is the clock (tests; default: the wall clock).
    Must run after the data and the findings are committed.
    """
    if con is None:
        from returnwatch import warehouse

        with warehouse.session() as own:
            return deliver_pending(own, channel_for=channel_for, alert_ids=alert_ids, now=now)
    from returnwatch.alerts import handoff

    with outbox.session() as box:
        handoff.hand_off(con, box, now=now)
        report = deliver_outbox(box, channel_for=channel_for, alert_ids=alert_ids, now=now)
        handoff.copy_to_warehouse(con, box)
    return report


def deliver_outbox(
    box: outbox.Outbox,
    *,
    channel_for: Callable[[str], str | None] | None = None,
    alert_ids: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> DeliveryReport:
    """Send every pending alert of the outbox that is due, oldest first; never opens the
    warehouse (every row is composed before it gets here)."""
    with outbox.delivering(box):  # one deliverer at a time: no row posted by two
        return _deliver_outbox(box, channel_for=channel_for, alert_ids=alert_ids, now=now)


def _deliver_outbox(
    box: outbox.Outbox,
    *,
    channel_for: Callable[[str], str | None] | None,
    alert_ids: Sequence[str] | None,
    now: dt.datetime | None,
) -> DeliveryReport:
    from returnwatch.alerts.slack import SlackPoster, slack_token

    clock = _Clock(now)
    report = DeliveryReport()
    rows = _pending(box, alert_ids)
    if rows:
        rows = _apply_policies(box, rows, alerts_config(), clock(), report, channel_for)
    if rows:
        token = slack_token()
        if token is None:
            report.via = "console"
            _deliver_to_console(box, rows, channel_for, report, clock)
        else:
            report.via = "slack"
            sending = alerts_config().delivery
            poster = SlackPoster(
                token,
                timeout_seconds=sending.timeout_seconds,
                max_rate_limit_wait_seconds=sending.max_rate_limit_wait_seconds,
            )
            _deliver_to_slack(box, rows, channel_for, poster, sending, report, clock)
    report.pending_left = box.scalar("SELECT count(*) FROM alerts WHERE status = 'pending'")
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


def requeue_failed(box: Any = None, alert_ids: Sequence[str] | None = None) -> int:
    """Put ``failed`` and ``unknown`` alerts back to ``pending`` with a fresh attempt count
    (so an ``unknown`` one is posted without a history lookup: a person has checked the
    channel); returns how many. ``box`` is the outbox, or the warehouse (whose copy is then
    refreshed), or None."""
    if not isinstance(box, outbox.Outbox):
        with outbox.session() as own:
            count = requeue_failed(own, alert_ids)
            if box is not None:  # the warehouse: its copy follows
                from returnwatch.alerts.handoff import copy_to_warehouse

                copy_to_warehouse(box, own)
            return count
    where, params = "status IN ('failed', 'unknown')", []
    if alert_ids is not None:
        where += f" AND alert_id {outbox.IN_IDS}"
        params.append(outbox.ids_param(alert_ids))
    with box.transaction():
        count = box.scalar(f"SELECT count(*) FROM alerts WHERE {where}", params)
        box.execute(
            f"UPDATE alerts SET status = 'pending', attempts = 0, next_attempt_at = NULL, "
            f"created_at = ? WHERE {where}",
            [_now(), *params],
        )
    return int(count)


def _pending(box: outbox.Outbox, alert_ids: Sequence[str] | None) -> list[dict[str, Any]]:
    where, params = "a.status = 'pending'", []
    if alert_ids is not None:
        where += f" AND a.alert_id {outbox.IN_IDS}"
        params.append(outbox.ids_param(alert_ids))
    return box.rows(
        f"SELECT a.alert_id, a.incident_id, a.event, a.audience, a.channel, a.text, a.blocks, "
        f"a.attempts, a.run_id, a.created_at, a.next_attempt_at, a.last_error, "
        f"a.last_error_global, a.composed_at, a.severity, a.last_attempt_at, a.digest_id, "
        f"a.incident_state, a.incident_opened_at, a.incident_resolved_at, "
        f"c.muted_until, c.acknowledged_at "
        f"FROM alerts a LEFT JOIN incident_controls c USING (incident_id) "
        f"WHERE {where} ORDER BY a.seq",
        params,
    )


def _apply_policies(
    box: outbox.Outbox,
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
            [last] = box.rows(
                "SELECT max(sent_at) AS sent_at FROM alerts WHERE incident_id = ? AND "
                "status = 'sent' AND event IN ('opened', 'updated')",
                [row["incident_id"]],
            )
            if last["sent_at"] is not None and now - last["sent_at"] < window:
                reason = f"an alert for this incident went out less than {window} ago"
        if reason is not None:
            box.execute(
                "UPDATE alerts SET status = 'suppressed', suppressed_reason = ? WHERE alert_id = ?",
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
                wait = _digest_wait(row, digest, now)
                if wait is not None and row["digest_id"] is None:
                    # The digest's idempotency key: audience, channel, digest slot. Fixed
                    # while the row waits, so retries of the digest carry the same alerts.
                    digest_id = (
                        f"digest:{row['audience']}:{_channel(row, override) or '-'}:"
                        f"{wait.isoformat()}"
                    )
                    box.execute(
                        "UPDATE alerts SET digest_id = ? WHERE alert_id = ?",
                        [digest_id, row["alert_id"]],
                    )
                    row = {**row, "digest_id": digest_id}
        if wait is not None and (row["next_attempt_at"] is None or row["next_attempt_at"] < wait):
            box.execute(
                "UPDATE alerts SET next_attempt_at = ? WHERE alert_id = ?",
                [wait, row["alert_id"]],
            )
            row = {**row, "next_attempt_at": wait}
        due.append(row)
    return due


def _digest_wait(row: dict[str, Any], digest: Digest, now: dt.datetime) -> dt.datetime | None:
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
    box: outbox.Outbox,
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
            box.execute(
                f"""
                UPDATE alerts SET status = 'sent', delivered_via = 'console',
                    attempts = attempts + 1, last_attempt_at = ?, sent_at = ?, last_error = NULL
                WHERE alert_id {outbox.IN_IDS} AND status = 'pending'
                """,
                [clock(), clock(), outbox.ids_param(ids)],
            )
            report.sent.extend(ids)
            done.update(ids)
            continue
        chart = box.execute(
            "SELECT width, height FROM alert_charts WHERE alert_id = ?", [row["alert_id"]]
        ).fetchone()
        print_alert(
            text=row["text"],
            audience=row["audience"],
            channel=_channel(row, override),
            event=row["event"],
            alert_id=row["alert_id"],
            chart=(
                f"chart {chart[0]}x{chart[1]} PNG kept in the outbox "
                f"(returnwatch alerts show {row['incident_id']} --chart FILE)"
                if chart
                else None
            ),
        )
        box.execute(
            """
            UPDATE alerts SET status = 'sent', delivered_via = 'console',
                attempts = attempts + 1, last_attempt_at = ?, sent_at = ?, last_error = NULL
            WHERE alert_id = ? AND status = 'pending'
            """,
            [clock(), clock(), row["alert_id"]],
        )
        report.sent.append(row["alert_id"])


def _deliver_to_slack(
    box: outbox.Outbox,
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
                box,
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
            parent = box.execute(
                "SELECT t.slack_channel, t.slack_ts, a.text, a.blocks, a.digest_id "
                "FROM threads t LEFT JOIN alerts a ON a.alert_id = t.incident_id || ':opened' "
                "WHERE t.incident_id = ?",
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
                    box,
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
                _hold_unknown(box, group, key, channel, str(exc), now, report)
                held_back.update(r["incident_id"] or "" for r in group)
                continue
            except SlackDeliveryError as exc:  # Slack down: the lookup waits with the rest
                # Counted as an attempt, so an outage of hours backs off as a post would.
                for r in group:
                    _record_failure(
                        box,
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
        # Count the attempt before calling Slack (see the module docstring): committed, so a
        # process killed during the call leaves a row the next run looks up before posting.
        box.execute(
            f"UPDATE alerts SET attempts = ?, last_attempt_at = ?, last_error = NULL "
            f"WHERE alert_id {outbox.IN_IDS}",
            [attempts, now, outbox.ids_param(ids)],
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
                    box,
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
        with box.transaction():  # "sent" and the incident's thread, together
            box.execute(
                f"""
                UPDATE alerts SET status = 'sent', delivered_via = 'slack', sent_at = ?,
                    channel = ?, slack_channel = ?, slack_ts = ?, thread_ts = ?, last_error = NULL,
                    last_error_global = NULL, next_attempt_at = NULL
                WHERE alert_id {outbox.IN_IDS}
                """,
                [now, channel, posted.channel, posted.ts, thread_ts, outbox.ids_param(ids)],
            )
            if row["event"] == "opened":
                # The opening message (or the digest) is the incident's thread: later events
                # reply under it.
                for r in group:
                    if r["incident_id"]:
                        box.execute(
                            "INSERT OR REPLACE INTO threads VALUES (?, ?, ?, ?)",
                            [r["incident_id"], posted.channel, posted.ts, key],
                        )
        report.sent.extend(ids)
        # After "sent" is recorded: neither extra can ever cause a second post.
        if not row["digest_id"]:
            _upload_chart(box, poster, alert_id, posted.channel, thread_ts or posted.ts, cfg, row)
        if parent is not None and incident_id:
            _update_parent(box, poster, alert_id, row, parent, now)


def _hold_unknown(
    box: outbox.Outbox,
    group: list[dict[str, Any]],
    key: str,
    channel: str,
    error: str,
    now: dt.datetime,
    report: DeliveryReport,
) -> None:
    """The alert may already be in Slack and nobody can tell: hold it, tell ops once."""
    ids = [r["alert_id"] for r in group]
    box.execute(
        f"UPDATE alerts SET status = 'unknown', last_error = ?, "
        f"next_attempt_at = NULL WHERE alert_id {outbox.IN_IDS}",
        [error[:1000], outbox.ids_param(ids)],
    )
    report.unknown.extend(ids)
    report.errors.append(error)
    log.error("alert %s held as unknown (not re-posted blind): %s", key, error)
    headline = str(group[0]["text"] or "").split("\n", 1)[0][:150]
    notify_ops(
        box,
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
    box: outbox.Outbox,
    key: str,
    *,
    header: str,
    body: str,
    now: dt.datetime | None = None,
) -> bool:
    """Queue one ``delivery_problem`` alert for ops (idempotent on ``key``): the outbox
    telling ops about itself. Returns whether it was new."""
    return outbox.notify_ops(box, key, header=header, body=body, now=now)


def check_slack_scopes(box: outbox.Outbox, now: dt.datetime | None = None) -> list[str] | None:
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
            box,
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
    box: outbox.Outbox,
    poster: Any,
    alert_id: str,
    channel: str,
    thread_ts: str,
    cfg: DeliverySettings,
    row: dict[str, Any],
) -> None:
    if not cfg.charts:
        return
    chart = box.execute("SELECT png FROM alert_charts WHERE alert_id = ?", [alert_id]).fetchone()
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
        box.execute(
            "UPDATE alerts SET chart_error = ? WHERE alert_id = ?", [str(exc)[:500], alert_id]
        )
        log.warning("alert %s: chart not uploaded: %s", alert_id, exc)
        return
    box.execute("UPDATE alerts SET chart_file_id = ? WHERE alert_id = ?", [file_id, alert_id])


def _update_parent(
    box: outbox.Outbox,
    poster: Any,
    alert_id: str,
    row: dict[str, Any],
    parent: tuple[Any, ...],
    now: dt.datetime,
) -> None:
    """chat.update the incident's opening message with its new status line (the incident as
    it was when this alert was composed; no warehouse needed)."""
    from returnwatch.alerts.compose import incident_status
    from returnwatch.alerts.messages import replace_status_in_text, with_status_line
    from returnwatch.alerts.slack import SlackDeliveryError

    channel, ts, text, blocks = parent
    if not text:
        return
    line = incident_status(
        box,
        row["incident_id"],
        state=row["incident_state"],
        opened_at=row["incident_opened_at"],
        resolved_at=row["incident_resolved_at"],
    )
    try:
        poster.update(
            channel=channel,
            ts=ts,
            text=replace_status_in_text(text, line),
            blocks=with_status_line(_blocks(blocks), line),
        )
    except SlackDeliveryError as exc:
        box.execute(
            "UPDATE alerts SET parent_update_error = ? WHERE alert_id = ?",
            [str(exc)[:500], alert_id],
        )
        log.warning("alert %s: status line of the thread not updated: %s", alert_id, exc)
        return
    box.execute("UPDATE alerts SET parent_updated_at = ? WHERE alert_id = ?", [now, alert_id])


def _record_failure(
    box: outbox.Outbox,
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
    box.execute(
        "UPDATE alerts SET status = ?, attempts = ?, last_attempt_at = ?, last_error = ?, "
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

    Goes through the outbox (so it is recorded and sent once); if the outbox cannot be
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
# dispatcher (``absorb_spool``). A plain folder: it must work when even the outbox does not.
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


def absorb_spool(box: outbox.Outbox) -> list[str]:
    """Put spooled alerts in the outbox (routed to ops now), then remove their files."""
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
        outbox.enqueue(
            box,
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
        box = outbox.open_outbox()
    except Exception as exc_:  # noqa: BLE001 - disk full, unreadable file: still tell ops
        log.warning("outbox unavailable (%s); sending the alert directly", type(exc_).__name__)
        _send_directly(alert_id, audience, channel, message)
        return
    try:
        # The outbox, not the warehouse: a build holding the warehouse does not delay this.
        outbox.enqueue(
            box,
            alert_id=alert_id,
            incident_id=None,
            event="task_failed",
            audience=audience,
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            run_id=f"{dag_id}/{run_id}",
        )
        deliver_outbox(box, alert_ids=[alert_id])
    finally:
        box.close()


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
