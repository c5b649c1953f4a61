"""The outbox: who gets which alert (config/alerts.yaml), and sending each pending alert once.

What this module owns:

- routing: ``audience_for(monitor)`` and ``channel_for(audience)`` from config/alerts.yaml;
- ``deliver_pending()``: sends the ``pending`` rows of ``monitor.alerts`` in creation order,
  through Slack when there is a token, else to the console; marks each row ``sent`` (with
  Slack's channel and ts, also kept on the incident as its thread) or records the failed
  attempt;
- ``requeue_failed()``: puts ``failed`` rows back to ``pending`` (after a config fix);
- ``on_task_failure()``: the Airflow ``on_failure_callback`` that tells ops about a task that
  failed for good.

Guarantees and their limits:

- A row marked ``sent`` is never sent again; enqueueing is idempotent on ``alert_id``.
- A failure leaves the row ``pending`` for the next run, with the error and the attempt count;
  after ``max_attempts`` (or a refusal no retry can fix, such as an unknown channel) it becomes
  ``failed``. Nothing is deleted.
- When Slack as a whole is unavailable (down, rate limited, bad token) the run stops at the
  first such error, so rows keep their order; after a per-message refusal the run goes on with
  other incidents, but holds back later alerts of the same incident (no "resolved" before its
  "opened").
- The attempt is counted and committed *before* the call to Slack. If the process dies
  between Slack's answer and the "sent" update, the next run sends that alert again: the only
  way to repost. The message carries Slack metadata (``returnwatch_alert`` with the alert id),
  so a later version can look for it before resending.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from returnwatch import config, settings

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- routing


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(ge=1, le=100, default=5)
    timeout_seconds: float = Field(gt=0, le=120, default=10)
    max_rate_limit_wait_seconds: float = Field(ge=0, le=600, default=30)


class AlertsConfig(BaseModel):
    """config/alerts.yaml."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[str, str]
    routes: dict[str, str] = Field(default_factory=dict)
    default_audience: str = "ops"
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _audiences_have_channels(self) -> AlertsConfig:
        unknown = sorted({*self.routes.values(), self.default_audience} - set(self.channels))
        if unknown:
            raise ValueError(f"audience(s) {unknown} have no entry under channels")
        return self


@functools.cache
def _alerts_config(directory: str) -> AlertsConfig:
    return config.load_yaml("alerts.yaml", AlertsConfig, Path(directory))


def alerts_config() -> AlertsConfig:
    return _alerts_config(str(settings.config_dir()))


def audience_for(monitor: str) -> str:
    """Who hears about findings of ``monitor`` (advocates / ops)."""
    cfg = alerts_config()
    return cfg.routes.get(monitor, cfg.default_audience)


def channel_for(audience: str) -> str | None:
    """The Slack channel of an audience, from config/alerts.yaml."""
    return alerts_config().channels.get(audience)


# --------------------------------------------------------------------------- delivery


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    via: str | None = None                           # slack / console / None (nothing pending)
    sent: list[str] = field(default_factory=list)    # alert ids delivered now
    retry_later: list[str] = field(default_factory=list)  # attempted, failed, still pending
    failed: list[str] = field(default_factory=list)  # gave up on (status failed)
    pending_left: int = 0                            # rows still pending after this run
    errors: list[str] = field(default_factory=list)  # redacted error texts

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def deliver_pending(con: duckdb.DuckDBPyConnection | None = None, *,
                    channel_for: Callable[[str], str | None] | None = None,
                    alert_ids: Sequence[str] | None = None) -> DeliveryReport:
    """Send every pending alert once, oldest first (only ``alert_ids`` when given).

    ``channel_for`` overrides the channel per audience (default: the channel stored on the row
    when it was enqueued, which came from config/alerts.yaml).
    """
    if con is None:
        from returnwatch import warehouse

        with warehouse.session() as own:
            return deliver_pending(own, channel_for=channel_for, alert_ids=alert_ids)
    from returnwatch.alerts.slack import SlackPoster, slack_token

    report = DeliveryReport()
    rows = _pending(con, alert_ids)
    if rows:
        token = slack_token()
        if token is None:
            report.via = "console"
            _deliver_to_console(con, rows, channel_for, report)
        else:
            report.via = "slack"
            cfg = alerts_config().delivery
            poster = SlackPoster(token, timeout_seconds=cfg.timeout_seconds,
                                 max_rate_limit_wait_seconds=cfg.max_rate_limit_wait_seconds)
            _deliver_to_slack(con, rows, channel_for, poster, cfg.max_attempts, report)
    report.pending_left = con.execute(
        "SELECT count(*) FROM monitor.alerts WHERE status = 'pending'").fetchone()[0]
    if report.sent or report.errors:
        log.info("alerts: %d sent via %s, %d to retry, %d given up, %d pending",
                 len(report.sent), report.via, len(report.retry_later), len(report.failed),
                 report.pending_left)
    return report


def requeue_failed(con: duckdb.DuckDBPyConnection,
                   alert_ids: Sequence[str] | None = None) -> int:
    """Put ``failed`` alerts back to ``pending`` with a fresh attempt count; returns how many."""
    where, params = "status = 'failed'", []
    if alert_ids is not None:
        where += " AND list_contains(?::VARCHAR[], alert_id)"
        params.append(list(alert_ids))
    count = con.execute(f"SELECT count(*) FROM monitor.alerts WHERE {where}", params).fetchone()[0]
    con.execute(f"UPDATE monitor.alerts SET status = 'pending', attempts = 0 WHERE {where}",
                params)
    return int(count)


def _pending(con: duckdb.DuckDBPyConnection,
             alert_ids: Sequence[str] | None) -> list[dict[str, Any]]:
    from returnwatch.monitor.store import rows_as_dicts

    where, params = "status = 'pending'", []
    if alert_ids is not None:
        where += " AND list_contains(?::VARCHAR[], alert_id)"
        params.append(list(alert_ids))
    return rows_as_dicts(con.execute(
        f"SELECT alert_id, incident_id, event, audience, channel, text, blocks, attempts "
        f"FROM monitor.alerts WHERE {where} ORDER BY seq", params))


def _channel(row: dict[str, Any], override: Callable[[str], str | None] | None) -> str | None:
    # Resolved at send time, so a channel fixed in config/alerts.yaml applies to alerts still
    # waiting; the row's channel (routed at enqueue) is the fallback.
    if override is not None:
        return override(row["audience"])
    return channel_for(row["audience"]) or row["channel"]


def _deliver_to_console(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]],
                        override: Callable[[str], str | None] | None,
                        report: DeliveryReport) -> None:
    from returnwatch.alerts.console import print_alert

    for row in rows:
        print_alert(text=row["text"], audience=row["audience"], channel=_channel(row, override),
                    event=row["event"], alert_id=row["alert_id"])
        con.execute(
            """
            UPDATE monitor.alerts SET status = 'sent', delivered_via = 'console',
                attempts = attempts + 1, last_attempt_at = ?, sent_at = ?, last_error = NULL
            WHERE alert_id = ? AND status = 'pending'
            """,
            [_now(), _now(), row["alert_id"]],
        )
        report.sent.append(row["alert_id"])


def _deliver_to_slack(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]],
                      override: Callable[[str], str | None] | None, poster: Any,
                      max_attempts: int, report: DeliveryReport) -> None:
    from returnwatch.alerts.slack import SlackDeliveryError

    held_back: set[str] = set()  # incidents whose earlier alert did not go out this run
    for row in rows:
        alert_id, incident_id = row["alert_id"], row["incident_id"]
        if incident_id and incident_id in held_back:
            continue
        attempts = row["attempts"] + 1
        channel, thread_ts = _channel(row, override), None
        if incident_id and row["event"] != "opened":
            thread = con.execute("SELECT slack_channel, slack_ts FROM monitor.incidents "
                                 "WHERE incident_id = ?", [incident_id]).fetchone()
            if thread and thread[0] and thread[1]:
                channel, thread_ts = thread[0], thread[1]
        if not channel:
            _record_failure(con, alert_id, attempts, dead=True,
                            error=f"no Slack channel for audience {row['audience']!r} in "
                                  "config/alerts.yaml", report=report)
            held_back.add(incident_id or "")
            continue
        # Count the attempt before calling Slack (see the module docstring).
        con.execute("UPDATE monitor.alerts SET attempts = ?, last_attempt_at = ? "
                    "WHERE alert_id = ?", [attempts, _now(), alert_id])
        try:
            posted = poster.post(
                channel=channel, text=row["text"], blocks=_blocks(row["blocks"]),
                thread_ts=thread_ts,
                metadata={"event_type": "returnwatch_alert",
                          "event_payload": {"alert_id": alert_id, "event": row["event"],
                                            "incident_id": incident_id or ""}},
            )
        except SlackDeliveryError as exc:
            dead = not exc.retryable or attempts >= max_attempts
            _record_failure(con, alert_id, attempts, dead=dead, error=str(exc), report=report)
            held_back.add(incident_id or "")
            if exc.global_:
                break  # Slack itself is unavailable: the rest waits, in order, for next run
            continue
        con.execute(
            """
            UPDATE monitor.alerts SET status = 'sent', delivered_via = 'slack', sent_at = ?,
                channel = ?, slack_channel = ?, slack_ts = ?, thread_ts = ?, last_error = NULL
            WHERE alert_id = ?
            """,
            [_now(), channel, posted.channel, posted.ts, thread_ts, alert_id],
        )
        if incident_id and row["event"] == "opened":
            # The opening message is the incident's thread: later events reply under it.
            con.execute("UPDATE monitor.incidents SET slack_channel = ?, slack_ts = ? "
                        "WHERE incident_id = ?", [posted.channel, posted.ts, incident_id])
        report.sent.append(alert_id)


def _record_failure(con: duckdb.DuckDBPyConnection, alert_id: str, attempts: int, *,
                    dead: bool, error: str, report: DeliveryReport) -> None:
    con.execute(
        "UPDATE monitor.alerts SET status = ?, attempts = ?, last_attempt_at = ?, last_error = ? "
        "WHERE alert_id = ?",
        ["failed" if dead else "pending", attempts, _now(), error[:1000], alert_id],
    )
    (report.failed if dead else report.retry_later).append(alert_id)
    report.errors.append(error)
    log.warning("alert %s not delivered (attempt %d%s): %s", alert_id, attempts,
                ", giving up" if dead else "", error)


def _blocks(value: Any) -> list[dict[str, Any]]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- task failures

# How long a failure callback waits for the warehouse lock before sending without the outbox.
_CALLBACK_LOCK_WAIT_SECONDS = 30


def is_final_failure(context: dict[str, Any]) -> bool:
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


def on_task_failure(context: dict[str, Any]) -> None:
    """Airflow ``on_failure_callback``: one ops alert naming DAG, task, run, try and error.

    Goes through the outbox (so it is recorded and sent once); if the warehouse cannot be
    opened, it is sent directly. Never raises: a failing callback would only add noise.
    """
    try:
        if not is_final_failure(context):
            log.info("task failure alert skipped: the task will be retried")
            return
        _alert_task_failure(context)
    except Exception:
        log.exception("could not alert ops about the failed task")


def _alert_task_failure(context: dict[str, Any]) -> None:
    from returnwatch.alerts.messages import airflow_run_url, redact, task_failure_message
    from returnwatch.alerts.slack import slack_token

    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", "?")
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", "?")
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
        dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number,
        max_tries=max_tries, error=error,
        log_url=airflow_run_url(f"{dag_id}/{run_id}", task_id))
    task_key = task_id if map_index in (-1, None) else f"{task_id}[{map_index}]"
    alert_id = f"task_failed:{dag_id}:{run_id}:{task_key}:{try_number}"
    audience = audience_for("task_failure")
    channel = channel_for(audience)

    try:
        from returnwatch import warehouse

        con = warehouse.connect(wait_seconds=_CALLBACK_LOCK_WAIT_SECONDS)
    except Exception as exc_:  # noqa: BLE001 - locked, disk full: still tell ops
        log.warning("warehouse unavailable for the outbox (%s); sending the alert directly",
                    type(exc_).__name__)
        _send_directly(alert_id, audience, channel, message)
        return
    try:
        from returnwatch import warehouse
        from returnwatch.monitor.store import enqueue_alert

        warehouse.init(con)
        enqueue_alert(con, alert_id=alert_id, incident_id=None, event="task_failed",
                      audience=audience, channel=channel, text=message.text,
                      blocks=message.blocks, run_id=f"{dag_id}/{run_id}")
        deliver_pending(con, alert_ids=[alert_id])
    finally:
        con.close()


def _send_directly(alert_id: str, audience: str, channel: str | None, message: Any) -> None:
    from returnwatch.alerts.console import print_alert
    from returnwatch.alerts.slack import SlackPoster, slack_token

    token = slack_token()
    if token is None or not channel:
        print_alert(text=message.text, audience=audience, channel=channel, event="task_failed",
                    alert_id=alert_id)
        return
    cfg = alerts_config().delivery
    SlackPoster(token, timeout_seconds=cfg.timeout_seconds,
                max_rate_limit_wait_seconds=cfg.max_rate_limit_wait_seconds).post(
        channel=channel, text=message.text, blocks=message.blocks)
