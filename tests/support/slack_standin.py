"""A loopback stand-in for the Slack Web API, speaking what slack-sdk's WebClient sends.

Tests point ``RETURNWATCH_SLACK_BASE_URL`` at it (``http://127.0.0.1:<port>/api/``) and give
the client an obviously fake token. It:

- answers ``POST /api/<method>`` for ``chat.postMessage``, ``chat.update``, ``auth.test``,
  ``conversations.history`` (accepted top-level messages per channel, with their metadata when
  ``include_all_metadata`` is set) and the
  file upload flow (``files.getUploadURLExternal``, then a POST of the bytes to the upload URL it
  handed out, then ``files.completeUploadExternal``), with the shapes Slack documents
  (``{"ok": true, "channel": "C…", "ts": "1718…"}``);
- checks ``Authorization: Bearer <token>`` like Slack does: HTTP 200 with ``ok: false`` and
  ``not_authed`` / ``invalid_auth``;
- records every request it receives (method, headers, parsed JSON or form body) for asserts;
- can be taken down (``outage(status)`` until ``restore()``) or told to fail the next N calls: 429 with ``Retry-After``, 5xx (with a non-JSON body,
  as a proxy would), a Slack error code, or a slow answer.

It binds 127.0.0.1 port 0 (a free port) and runs in a daemon thread; use it as a context
manager or through the ``slack_standin`` fixture below.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import pytest

FAKE_TOKEN = "xoxb-test-not-a-real-token"


@dataclass
class Received:
    """One request as the stand-in saw it."""

    method: str  # Slack API method ("chat.postMessage") or "upload"
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]  # parsed JSON body, or form fields (+ query string)
    raw: bytes
    status: int = 200  # what the stand-in answered
    answered: dict[str, Any] | None = None
    received_at: float = field(default_factory=time.monotonic)
    # Wall clock, to compare with times other processes recorded (latency benchmark).
    received_utc: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass
class Failure:
    """An injected failure for the next matching call."""

    status: int = 500
    retry_after: int | None = None
    error: str | None = None  # Slack error code: answered as HTTP 200 {"ok": false}
    body: bytes | None = None
    delay: float = 0.0  # seconds to wait before answering
    method: str | None = None  # only for this API method (None: any)


@dataclass
class _State:
    token: str
    received: list[Received] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    # Messages accepted per channel id (conversations.history answers from it).
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outage: Failure | None = None  # every call fails like this until restore()
    # The bot token's scopes, sent back as Slack does in the x-oauth-scopes header.
    scopes: list[str] = field(
        default_factory=lambda: ["chat:write", "files:write", "channels:history", "groups:history"]
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Notified after each answer, so a test can wait for a call instead of sleeping.
    answered: threading.Condition = field(default_factory=threading.Condition)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))


class SlackStandIn:
    """The server. ``base_url`` ends with ``/api/`` as slack-sdk expects."""

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self.state = _State(token=token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.state))
        self._server.daemon_threads = True
        # A short poll interval so that stopping takes milliseconds, not half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="slack-standin"
        )

    # ------------------------------------------------------------ lifecycle

    def start(self) -> SlackStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def token(self) -> str:
        return self.state.token

    # ------------------------------------------------------------ control

    def fail_next(self, count: int = 1, **failure: Any) -> None:
        """Make the next ``count`` calls (of ``method`` if given) fail as described."""
        with self.state.lock:
            self.state.failures.extend(Failure(**failure) for _ in range(count))

    def outage(self, status: int = 503) -> None:
        """Slack is down: every API call fails with ``status`` until ``restore()``."""
        with self.state.lock:
            self.state.outage = Failure(status=status)

    def restore(self) -> None:
        with self.state.lock:
            self.state.outage = None

    def rate_limit_next(
        self, count: int = 1, retry_after: int = 1, method: str | None = "chat.postMessage"
    ) -> None:
        self.fail_next(count, status=429, retry_after=retry_after, error=None, method=method)

    # ------------------------------------------------------------ inspection

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def wait_for(self, method: str, *, count: int = 1, timeout: float = 60.0) -> bool:
        """Block until ``count`` calls of ``method`` were answered, at most ``timeout``
        seconds; whether they were."""

        def done() -> bool:
            return sum(1 for r in self.calls(method) if r.answered is not None) >= count

        with self.state.answered:
            return self.state.answered.wait_for(done, timeout)

    def calls(self, method: str) -> list[Received]:
        return [r for r in self.received if r.method == method]

    def posted(self) -> list[dict[str, Any]]:
        """Payloads of chat.postMessage calls the stand-in accepted (HTTP 200, ok)."""
        return [
            r.payload
            for r in self.calls("chat.postMessage")
            if r.status == 200 and (r.answered or {}).get("ok")
        ]

    def everything_received(self) -> str:
        """All raw bytes and headers received, as text (to assert a secret is absent)."""
        parts = []
        for r in self.received:
            parts.append(r.path)
            parts.append(json.dumps(r.headers))
            parts.append(r.raw.decode("utf-8", "replace"))
        return "\n".join(parts)


def _channel_id(channel: str) -> str:
    """Slack answers with channel ids: a stable fake id per name, ids kept as they are."""
    if channel and channel[0] in "CGD" and channel[1:].isalnum() and channel.isupper():
        return channel
    return "C" + hashlib.sha256(channel.encode()).hexdigest()[:10].upper()


def _handler_for(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        # -------------------------------------------------------- plumbing

        def _handle(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path.startswith("/upload/"):
                self._upload(url.path, raw)
                return
            if not url.path.startswith("/api/"):
                self._send(404, b"not found", "text/plain")
                return
            method = url.path[len("/api/") :]
            payload = self._parse(raw, url.query)
            record = Received(
                method=method,
                path=self.path,
                headers=dict(self.headers.items()),
                payload=payload,
                raw=raw,
            )
            with state.lock:
                state.received.append(record)
                failure = next(
                    (f for f in state.failures if f.method is None or f.method == method), None
                )
                if failure is not None:
                    state.failures.remove(failure)
                elif state.outage is not None:
                    failure = state.outage
            if failure is not None:
                if failure.delay:
                    time.sleep(failure.delay)
                if failure.status != 200 or failure.error:
                    self._fail(record, failure)
                    return
                # status 200 without an error: only slow, then a normal answer
            answer = self._authorised() or self._answer(method, payload)
            record.answered = answer
            self._json(200, answer, {"x-oauth-scopes": ",".join(state.scopes)})
            with state.answered:
                state.answered.notify_all()

        def _parse(self, raw: bytes, query: str) -> dict[str, Any]:
            fields: dict[str, Any] = {
                k: v[0] if len(v) == 1 else v for k, v in parse_qs(query).items()
            }
            ctype = self.headers.get("Content-Type", "")
            if raw and "json" in ctype:
                fields.update(json.loads(raw))
            elif raw:
                fields.update(
                    {
                        k: v[0] if len(v) == 1 else v
                        for k, v in parse_qs(raw.decode("utf-8")).items()
                    }
                )
            return fields

        def _authorised(self) -> dict[str, Any] | None:
            auth = self.headers.get("Authorization")
            if not auth:
                return {"ok": False, "error": "not_authed"}
            if auth != f"Bearer {state.token}":
                return {"ok": False, "error": "invalid_auth"}
            return None

        def _fail(self, record: Received, failure: Failure) -> None:
            if failure.error:
                # Slack reports API errors as HTTP 200 with ok: false.
                record.answered = {"ok": False, "error": failure.error}
                self._json(200, record.answered)
                return
            record.status = failure.status
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            if failure.status == 429:
                record.answered = {"ok": False, "error": "ratelimited"}
                self._json(429, record.answered, headers)
                return
            body = (
                failure.body
                if failure.body is not None
                else (
                    b"<html><body><h1>503 Service Unavailable</h1></body></html>"
                    if failure.status == 503
                    else b"Internal Server Error"
                )
            )
            self._send(failure.status, body, "text/html", headers)

        def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
            if method == "auth.test":
                return {
                    "ok": True,
                    "url": "https://returnwatch-test.slack.com/",
                    "team": "returnwatch test",
                    "user": "returnwatch",
                    "team_id": "T0TEST",
                    "user_id": "U0TEST",
                    "bot_id": "B0TEST",
                    "is_enterprise_install": False,
                }
            if method == "chat.postMessage":
                if not p.get("channel"):
                    return {"ok": False, "error": "channel_not_found"}
                if not p.get("text") and not p.get("blocks"):
                    return {"ok": False, "error": "no_text"}
                # Wall-clock seconds like Slack's, made unique by the counter.
                ts = f"{int(time.time())}.{next(state.counter):06d}"
                message = {
                    "type": "message",
                    "text": p.get("text", ""),
                    "ts": ts,
                    "bot_id": "B0TEST",
                    "blocks": p.get("blocks", []),
                }
                if p.get("thread_ts"):
                    message["thread_ts"] = p["thread_ts"]
                if p.get("metadata"):
                    message["metadata"] = p["metadata"]
                with state.lock:
                    state.history.setdefault(_channel_id(p["channel"]), []).insert(0, message)
                return {
                    "ok": True,
                    "channel": _channel_id(p["channel"]),
                    "ts": ts,
                    "message": message,
                }
            if method == "conversations.history":
                if not p.get("channel"):
                    return {"ok": False, "error": "channel_not_found"}
                oldest = float(p.get("oldest") or 0)
                with state.lock:
                    messages = [
                        dict(m)
                        for m in state.history.get(_channel_id(p["channel"]), [])
                        if float(m["ts"]) > oldest and "thread_ts" not in m
                    ]
                if str(p.get("include_all_metadata")).lower() not in ("1", "true"):
                    for m in messages:
                        m.pop("metadata", None)
                return {
                    "ok": True,
                    "messages": messages[: int(p.get("limit") or 100)],
                    "has_more": False,
                }
            if method == "chat.update":
                if not p.get("channel") or not p.get("ts"):
                    return {"ok": False, "error": "message_not_found"}
                return {
                    "ok": True,
                    "channel": _channel_id(p["channel"]),
                    "ts": p["ts"],
                    "text": p.get("text", ""),
                    "message": {"text": p.get("text", "")},
                }
            if method == "files.getUploadURLExternal":
                if not p.get("filename") or not p.get("length"):
                    return {"ok": False, "error": "invalid_arguments"}
                file_id = f"F{next(state.counter):09d}"
                host, port = self.server.server_address[:2]
                return {
                    "ok": True,
                    "file_id": file_id,
                    "upload_url": f"http://{host}:{port}/upload/{file_id}",
                }
            if method == "files.completeUploadExternal":
                files = json.loads(p.get("files") or "[]")
                missing = [f["id"] for f in files if f["id"] not in state.uploads]
                if not files or missing:
                    return {"ok": False, "error": "file_not_found"}
                return {
                    "ok": True,
                    "files": [
                        {
                            "id": f["id"],
                            "title": f.get("title"),
                            "size": len(state.uploads[f["id"]]),
                        }
                        for f in files
                    ],
                }
            return {"ok": False, "error": "unknown_method"}

        def _upload(self, path: str, raw: bytes) -> None:
            file_id = path.rsplit("/", 1)[-1]
            with state.lock:
                state.uploads[file_id] = raw
                state.received.append(
                    Received(
                        method="upload",
                        path=path,
                        headers=dict(self.headers.items()),
                        payload={"file_id": file_id, "size": len(raw)},
                        raw=raw,
                    )
                )
            self._send(200, f"OK - {len(raw)}".encode(), "text/plain")

        def _json(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            self._send(
                status, json.dumps(body).encode(), "application/json; charset=utf-8", headers
            )

        def _send(
            self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

    return Handler


@pytest.fixture
def slack_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    """A running stand-in, with returnwatch pointed at it and a fake token in the environment."""
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_API_DEFAULT", raising=False)
    with SlackStandIn() as standin:
        monkeypatch.setenv("RETURNWATCH_SLACK_BASE_URL", standin.base_url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", standin.token)
        yield standin
