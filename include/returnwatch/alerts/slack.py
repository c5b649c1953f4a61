"""Talking to Slack: the token, a bounded slack-sdk client, and posting one message.

What this module owns:

- ``slack_token()``: the Airflow connection ``slack_api_default`` (else ``slack_default``,
  deprecated), else ``SLACK_BOT_TOKEN``, else None (alerts go to the console);
- ``SlackPoster``: a ``WebClient`` (the provider's ``SlackHook`` with a connection) with few,
  bounded retries, and ``post()``;
- ``SlackDeliveryError``: what went wrong, token scrubbed, ``retryable`` and ``global_``.

Only what certainly did not reach Slack is retried (a refused connection, HTTP 429); the token
is never logged. Details: docs/internals.md#alerts-talking-to-slack.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from returnwatch import settings
from returnwatch.alerts.messages import redact

log = logging.getLogger(__name__)

# The provider's default connection id (SlackHook.default_conn_name), and the id returnwatch
# used before: still read, with a deprecation line, so existing installs keep alerting.
SLACK_CONN_ID = "slack_api_default"
LEGACY_SLACK_CONN_ID = "slack_default"

# Slack error codes that concern the whole workspace/token, not one message: stop sending.
_GLOBAL_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "ratelimited",
    "service_unavailable",
    "fatal_error",
    "internal_error",
    "request_timeout",
    "team_access_not_granted",
}


# What the bot token must be allowed (docs/operations.md "Slack app scopes"): post, upload charts,
# and read the channel's history to look for an earlier post before ever posting again
# (channels:history for public channels, groups:history for private ones: either will do).
REQUIRED_SCOPES: tuple[tuple[str, ...], ...] = (
    ("chat:write",),
    ("files:write",),
    ("channels:history", "groups:history"),
)


class SlackDeliveryError(RuntimeError):
    """Slack did not take the message. The text never contains the token."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        retryable: bool,
        global_: bool,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.retryable, self.global_, self.status = code, retryable, global_, status


class HistoryUnavailable(SlackDeliveryError):
    """The lookup for an earlier post was refused or incomplete: whether Slack already has
    the message is unknown, so it must not be posted again blind."""


@dataclass(frozen=True)
class Posted:
    """Where Slack put the message: the channel id it answered with and the message ts."""

    channel: str
    ts: str


# A history lookup refused for these reasons will be refused again: hold, do not retry.
_REFUSED_LOOKUP = {
    "missing_scope",
    "no_permission",
    "not_in_channel",
    "channel_not_found",
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "account_inactive",
}


def _extra(conn: Any, name: str) -> Any:
    """A Slack connection's extra field (new plain name or the old ``extra__slack__`` one)."""
    extra = getattr(conn, "extra_dejson", None) or {}
    return extra.get(name) or extra.get(f"extra__slack__{name}")


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler, refusing waits longer than ``max_wait_seconds``.

    The stock handler sleeps whatever Retry-After says; a long wait inside a task would hold the
    one-slot warehouse pool, so a long one is left to the outbox's next run instead.
    """

    def __init__(self, max_retry_count: int = 2, max_wait_seconds: float = 30) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_seconds = max_wait_seconds

    def _can_retry(
        self, *, state: Any, request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        for name, values in (response.headers or {}).items():
            if name.lower() == "retry-after":
                try:
                    return float(values[0]) <= self.max_wait_seconds
                except (TypeError, ValueError, IndexError):
                    return False
        return True  # no header: the stock handler waits about 1-2 s


def slack_token() -> str | None:
    """The bot token: Airflow connection ``slack_api_default`` (else the deprecated
    ``slack_default``), else ``SLACK_BOT_TOKEN``, else None."""
    found = _airflow_connection()
    if found is not None:
        return found[1].password
    return os.environ.get("SLACK_BOT_TOKEN") or None


def _airflow_connection() -> tuple[str, Any] | None:
    """(conn id, connection) of the first Slack connection holding a token, or None."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # returnwatch used without Airflow (CLI on a laptop)
        return None
    for conn_id in (SLACK_CONN_ID, LEGACY_SLACK_CONN_ID):
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception as exc:  # noqa: BLE001 - not defined, no metadata DB, no secrets backend
            # Only the exception type: its text could in theory echo connection fields.
            log.debug("no Airflow connection %s (%s)", conn_id, type(exc).__name__)
            continue
        if not conn.password:
            continue
        if conn_id == LEGACY_SLACK_CONN_ID:
            log.warning(
                "the Airflow connection %r is deprecated: rename it to %r (the Slack "
                "provider's default; docs/operations.md)",
                LEGACY_SLACK_CONN_ID,
                SLACK_CONN_ID,
            )
        return conn_id, conn
    return None


def _retry_handlers(max_rate_limit_wait_seconds: float) -> list[Any]:
    # Only what certainly did not reach Slack (module docstring): refused connections, 429s.
    return [
        ConnectionErrorRetryHandler(max_retry_count=1),
        BoundedRateLimitRetryHandler(
            max_retry_count=2, max_wait_seconds=max_rate_limit_wait_seconds
        ),
    ]


class SlackPoster:
    """Posts messages with one token, through one bounded client."""

    def __init__(
        self,
        token: str,
        *,
        timeout_seconds: float = 10,
        max_rate_limit_wait_seconds: float = 30,
        base_url: str | None = None,
    ) -> None:
        self._token = token
        handlers = _retry_handlers(max_rate_limit_wait_seconds)
        override = base_url or os.environ.get("RETURNWATCH_SLACK_BASE_URL") or None
        found = _airflow_connection()
        if found is not None and found[1].password != token:
            found = None  # the connection holds another token: use the one given, directly
        self.conn_id = found[0] if found is not None else None
        if found is not None:
            from airflow.providers.slack.hooks.slack import SlackHook

            # The hook merges the connection's extras (timeout, base_url, proxy) with what we
            # pass; pass only what must win: the tests' base URL, our retry handlers.
            hook = SlackHook(slack_conn_id=found[0], base_url=override, retry_handlers=handlers)
            self.client: WebClient = hook.get_conn()
            if not _extra(found[1], "timeout"):
                self.client.timeout = int(max(1, round(timeout_seconds)))
        else:
            self.client = WebClient(
                token=token,
                base_url=override or settings.slack_base_url(),
                timeout=int(max(1, round(timeout_seconds))),
                retry_handlers=handlers,
            )
        self.base_url = self.client.base_url

    def post(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        broadcast: bool = True,
    ) -> Posted:
        """``chat.postMessage``; raises ``SlackDeliveryError`` (token-free) on any failure.

        ``broadcast``: a thread reply is also shown in the channel (a "resolved" that only
        lives in a thread is easy to miss); updates stay in the thread.
        """
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        if metadata:
            kwargs["metadata"] = metadata
        response = self._call(
            "chat.postMessage", channel, lambda: self.client.chat_postMessage(**kwargs)
        )
        return Posted(channel=str(response.get("channel") or channel), ts=str(response["ts"]))

    def update(self, *, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """``chat.update`` of a message this bot posted (the incident's status line)."""
        self._call(
            "chat.update",
            channel,
            lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
        )

    def upload_chart(
        self, *, channel: str, thread_ts: str | None, png: bytes, filename: str, title: str
    ) -> str:
        """The chart into the thread, through ``files_upload_v2`` (files.getUploadURLExternal,
        the upload, files.completeUploadExternal); returns the file id."""
        response = self._call(
            "files.upload",
            channel,
            lambda: self.client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, content=png, filename=filename, title=title
            ),
        )
        file = response.get("file") or (response.get("files") or [{}])[0]
        return str(file.get("id") or "")

    def find_posted(self, *, channel: str, alert_id: str, oldest: Any = None) -> Posted | None:
        """A message this bot already posted for ``alert_id`` (Slack metadata), if any.

        Used before re-posting after an attempt whose outcome is unknown (a timeout, a 5xx,
        a process that died mid-call). Never "best effort": a lookup Slack refuses (missing
        ``channels:history``, not in the channel) or answers only in part (more messages than
        one page since the attempt) raises ``HistoryUnavailable``; a Slack that is down raises
        the usual global ``SlackDeliveryError`` (try again later, still unknown).
        """
        kwargs: dict[str, Any] = {"channel": channel, "limit": 200, "include_all_metadata": True}
        if oldest is not None:
            moment = oldest.timestamp() if hasattr(oldest, "timestamp") else float(oldest)
            kwargs["oldest"] = f"{moment - 120:.6f}"
        try:
            response = self._call(
                "conversations.history",
                channel,
                lambda: self.client.conversations_history(**kwargs),
            )
        except SlackDeliveryError as exc:
            if exc.retryable and exc.code not in _REFUSED_LOOKUP:
                raise  # Slack down or rate limited: nothing can be posted now either
            raise HistoryUnavailable(
                f"could not check {channel} for an earlier post of alert {alert_id}: {exc}",
                code=exc.code,
                retryable=False,
                global_=False,
                status=exc.status,
            ) from None
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("alert_id") == alert_id:
                return Posted(
                    channel=str(response.get("channel") or channel), ts=str(message["ts"])
                )
        if response.get("has_more"):
            raise HistoryUnavailable(
                f"could not check {channel} for an earlier post of alert {alert_id}: more "
                f"messages since the attempt than one page of history",
                code="has_more",
                retryable=False,
                global_=False,
            )
        return None

    def missing_scopes(self) -> list[str]:
        """``auth.test``, then the token's scopes from Slack's ``x-oauth-scopes`` header:
        the required scopes it lacks (``a/b``: either one). Raises ``SlackDeliveryError``
        when the token itself is refused or Slack is unreachable."""
        response = self._call("auth.test", "-", lambda: self.client.auth_test())
        headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
        value = headers.get("x-oauth-scopes")
        if isinstance(value, list):
            value = ",".join(value)
        if value is None:
            return []  # no header (a proxy stripped it): nothing to judge, nothing claimed
        granted = {scope.strip() for scope in str(value).split(",") if scope.strip()}
        return ["/".join(any_of) for any_of in REQUIRED_SCOPES if not granted.intersection(any_of)]

    def _call(self, method: str, channel: str, call: Any) -> Any:
        try:
            return call()
        except SlackApiError as exc:
            raise self._api_error(exc, channel, method) from None
        except (SlackClientError, OSError, ValueError) as exc:
            # URLError, timeouts, refused connections: Slack is unreachable for everyone.
            message = redact(
                f"Slack unreachable at {self.base_url} ({method} to {channel}): "
                f"{type(exc).__name__}: {exc}",
                [self._token],
            )
            raise SlackDeliveryError(message, code=None, retryable=True, global_=True) from None

    def _api_error(
        self, exc: SlackApiError, channel: str, method: str = "chat.postMessage"
    ) -> SlackDeliveryError:
        status = getattr(exc.response, "status_code", None)
        data = getattr(exc.response, "data", None)
        code = data.get("error") if isinstance(data, dict) else None
        # A non-JSON answer (a proxy's HTML error page) comes back as a long "error": clip it.
        code = str(code)[:80] if code else None
        server_side = status is not None and (status == 429 or status >= 500)
        global_ = server_side or code in _GLOBAL_ERRORS
        # A problem with Slack or with the token is fixed elsewhere (wait, or a new token):
        # the alert waits. A refusal of this one message (unknown channel, bad blocks) needs a
        # person to change something first: trying again as is would fail the same way.
        retryable = global_
        message = redact(
            f"Slack refused {method} to {channel}: {code or 'no error code'} (HTTP {status})",
            [self._token],
        )
        return SlackDeliveryError(
            message, code=code, retryable=retryable, global_=global_, status=status
        )
