"""A loopback HTTP server that answers with a script of replies, for fault injection.

The replay mirror serves real data; this one serves whatever a test needs to see once, in
order: a 302 to a foreign host, a 500 then a 200, a body that lies about its length. It records
every request (path, headers, arrival time) so tests can check what the client sent and when.
Bound to 127.0.0.1 on a free port; every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # True: the real length; None: no Content-Length (body ends at connection close).
    content_length: bool | None = True
    delay: float = 0.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived


class ScriptedServer:
    """Answers the n-th request with ``replies[n]``; the last reply repeats once the script ends."""

    def __init__(self, replies: list[Reply]) -> None:
        if not replies:
            raise ValueError("a script needs at least one reply")
        self.replies = replies
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.script = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            return self.replies[min(len(self.requests), len(self.replies)) - 1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    script: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients in these tests hang up on purpose (caps, timeouts)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 10

    def do_GET(self) -> None:
        reply = self.server.script._next(
            Recorded("GET", self.path, dict(self.headers.items()), time.monotonic())
        )
        if reply.delay:
            time.sleep(min(reply.delay, 10))
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.content_length:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass
