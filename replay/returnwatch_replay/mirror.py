"""The replay mirror: the publishers' sites as they were on a given day, served on 127.0.0.1.

What this module owns: serving real published data the way the publishers serve it, so the
demo and the tests run the real fetch code offline; an ``as_of`` date (``set_as_of()``,
``publish_at()``, ``POST /_replay/as_of``); faults (``set_fault()``, ``FAULT_MODES``); and the
``hhs_uc_daily`` export (healthdata.gov ``ehpz-xc9n``). Point a source at it with
``RETURNWATCH_<SOURCE>_BASE_URL`` (``env()``, ``serve()``).

Paths, validators and the publication model: docs/replay.md#the-mirror.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from returnwatch import settings
from returnwatch_replay.responses import (
    OVERSIZE_BYTES,
    Response,
    http_date,
    json_response,
    text_response,
    with_validators,
)

log = logging.getLogger(__name__)

HHS_SOURCE = "hhs_uc_daily"
HHS_DATASET = "ehpz-xc9n"
HHS_EXPORT_PATH = f"/api/views/{HHS_DATASET}/rows.csv"
HHS_LANDING_PATH = f"/National/HHS-Unaccompanied-Alien-Children-Program/{HHS_DATASET}"
HHS_FILE = Path("hhs_uc") / "healthdata_ehpz-xc9n_copy_mihirg42.csv"

# A row dated D is published on D + PUBLICATION_LAG at PUBLICATION_TIME in PUBLISHER_TZ.
PUBLICATION_LAG = dt.timedelta(days=1)
PUBLICATION_TIME = dt.time(10, 0)
PUBLISHER_TZ = ZoneInfo("America/New_York")

# Query parameters the Socrata export endpoint accepts; anything else is refused with a 400.
SOCRATA_EXPORT_PARAMS = frozenset({"accessType", "bom", "$$app_token"})

FAULT_MODES = (
    "html_error",  # 200 text/html maintenance page instead of the CSV
    "empty",  # 200 with an empty body
    "truncated",  # the CSV cut in the middle of a data row, no trailing newline
    "renamed_column",  # header "Children in HHS Care" renamed "Children in ORR Care"
    "http_500",  # 500 Internal Server Error
    "http_429",  # 429 Too Many Requests with Retry-After: 1
    "oversize",  # a valid-looking CSV larger than 5 MB, streamed without Content-Length
    "slow",  # waits SLOW_SECONDS before answering (timeout tests)
    "empty_page",  # a listing page answers 200 with no content (SEGOB does this for weeks)
)
# Faults about availability hit every page of a source; the others change only the data file
# (empty_page is for the sites that answer it on their pages: the site decides where).
_AVAILABILITY_FAULTS = {"http_500", "http_429", "slow", "empty_page"}
SLOW_SECONDS = 3.0
# Control request bodies are a date or a mode name: anything longer is a mistake.
_MAX_CONTROL_BODY = 1024


# ------------------------------------------------------------------------------ the HHS file


@dataclass(frozen=True)
class _Line:
    """One record of the original file, with its bytes exactly as they are in the file."""

    raw: bytes
    date: dt.date | None  # None for a blank row (",,,,,")


class HhsExport:
    """The real healthdata.gov export, split into its original lines, filterable by day."""

    def __init__(self, path: Path) -> None:
        self.path = path
        records = _split_records(path.read_bytes())
        if not records:
            raise ValueError(f"{path} is empty")
        self.header = records[0]
        self.lines = [
            _parse_line(raw, path, number) for number, raw in enumerate(records[1:], start=2)
        ]

    @staticmethod
    def published_on(row_date: dt.date) -> dt.datetime:
        """When a row dated ``row_date`` appeared on the site (our publication model)."""
        return dt.datetime.combine(
            row_date + PUBLICATION_LAG, PUBLICATION_TIME, tzinfo=PUBLISHER_TZ
        )

    def is_published(self, row_date: dt.date, as_of: dt.date) -> bool:
        return row_date + PUBLICATION_LAG <= as_of

    def body(self, as_of: dt.date) -> bytes:
        """The file as published by ``as_of``: the header, the published rows and the blank
        rows in their original places; only the header before the first publication."""
        kept = [
            line for line in self.lines if line.date is None or self.is_published(line.date, as_of)
        ]
        if not any(line.date is not None for line in kept):
            return self.header
        return self.header + b"".join(line.raw for line in kept)

    def newest_published(self, as_of: dt.date) -> dt.date | None:
        dates = [ln.date for ln in self.lines if ln.date and self.is_published(ln.date, as_of)]
        return max(dates, default=None)

    def last_modified(self, as_of: dt.date) -> dt.datetime | None:
        newest = self.newest_published(as_of)
        return self.published_on(newest) if newest else None


def _split_records(data: bytes) -> list[bytes]:
    """Split into CSV records, each with its own line ending, keeping every byte.

    A quoted field may hold a newline, so physical lines are joined until the quotes balance.
    """
    records: list[bytes] = []
    pending = b""
    for physical in data.splitlines(keepends=True):
        pending += physical
        if pending.count(b'"') % 2 == 0:
            records.append(pending)
            pending = b""
    if pending:
        records.append(pending)
    return records


def _parse_line(raw: bytes, path: Path, number: int) -> _Line:
    fields = next(csv.reader(io.StringIO(raw.decode("utf-8"))), [])
    if not any(f.strip() for f in fields):
        return _Line(raw=raw, date=None)
    text = fields[0].strip()
    for fmt in ("%B %d, %Y", "%B %d %Y"):
        try:
            return _Line(raw=raw, date=dt.datetime.strptime(text, fmt).date())
        except ValueError:
            continue
    raise ValueError(
        f"{path} line {number}: cannot read date {text!r} (expected 'December 09, 2025')"
    )


# ------------------------------------------------------------------------------ responses

# Built in ``returnwatch_replay.responses``, which the per-publisher sites use too (a module
# below both, so the mirror and its sites do not import each other).
_Response = Response
_json_response = json_response
_text_response = text_response
_http_date = http_date
_with_validators = with_validators


_MAINTENANCE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Site Maintenance | HealthData.gov</title></head>
<body><h1>We&rsquo;ll be back soon</h1>
<p>HealthData.gov is undergoing scheduled maintenance. Please try again later.</p>
</body></html>
"""


# ------------------------------------------------------------------------------ the site


class _HhsSite:
    """healthdata.gov, as far as dataset ehpz-xc9n goes."""

    name = HHS_SOURCE

    @staticmethod
    def is_data(path: str) -> bool:
        """Whether ``path`` is the data file (content faults apply only there)."""
        return path == HHS_EXPORT_PATH

    def __init__(self, data_dir: Path) -> None:
        self.export = HhsExport(data_dir / HHS_FILE)
        self._oversize: bytes | None = None

    def handle(
        self, path: str, query: str, headers: Any, as_of: dt.date, fault: str | None
    ) -> _Response:
        if path == HHS_EXPORT_PATH:
            return self._export(query, headers, as_of, fault)
        if path.rstrip("/") == HHS_LANDING_PATH:
            return self._landing(as_of)
        return _text_response(404, "Not found\n")

    def _export(self, query: str, headers: Any, as_of: dt.date, fault: str | None) -> _Response:
        params = parse_qsl(query, keep_blank_values=True)
        unknown = sorted({name for name, _ in params if name not in SOCRATA_EXPORT_PARAMS})
        if unknown:
            # Socrata's error body: code, error, message, data.
            return _json_response(
                400,
                {
                    "code": "invalid_request",
                    "error": True,
                    "message": f"Unrecognized query parameter(s): {', '.join(unknown)}",
                    "data": {"parameters": unknown, "accepted": sorted(SOCRATA_EXPORT_PARAMS)},
                },
            )
        csv_type = "text/csv; charset=utf-8"
        body = self.export.body(as_of)
        last_modified = self.export.last_modified(as_of)
        if dict(params).get("bom", "").lower() == "true":
            body = b"\xef\xbb\xbf" + body

        if fault == "html_error":
            return _text_response(200, _MAINTENANCE_PAGE, "text/html")
        if fault == "empty":
            return _Response(200, {"Content-Type": csv_type}, b"")
        if fault == "oversize":
            return _Response(200, {"Content-Type": csv_type}, stream=self._oversize_chunks())
        if fault == "truncated":
            body = self._truncated(body)
        elif fault == "renamed_column":
            header, _, rest = body.partition(b"\n")
            body = header.replace(b"Children in HHS Care", b"Children in ORR Care") + b"\n" + rest
        return _with_validators(headers, body, csv_type, last_modified)

    def _truncated(self, body: bytes) -> bytes:
        """Cut in the middle of the middle data row: what a dropped export looks like."""
        lines = body.splitlines(keepends=True)
        # Data rows are the lines after the header that hold more than separators.
        data = [i for i, line in enumerate(lines) if i > 0 and line.strip(b",\r\n")]
        if not data:
            return body[: max(1, len(body) // 2)]
        middle = data[len(data) // 2]
        start = sum(len(line) for line in lines[:middle])
        return body[: start + len(lines[middle]) // 2]

    def _oversize_chunks(self) -> Iterator[bytes]:
        # Real rows repeated past the cap: looks like a CSV to anything that peeks at it.
        if self._oversize is None:
            rows = b"".join(line.raw for line in self.export.lines if line.date is not None)
            copies = OVERSIZE_BYTES // len(rows) + 1
            self._oversize = (self.export.header + rows * copies)[:OVERSIZE_BYTES]
        data = self._oversize
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    def _landing(self, as_of: dt.date) -> _Response:
        newest = self.export.newest_published(as_of)
        updated = self.export.published_on(newest).strftime("%B %d, %Y") if newest else "never"
        export_href = f"/{HHS_SOURCE}{HHS_EXPORT_PATH}?accessType=DOWNLOAD"
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>HHS Unaccompanied Alien Children Program | HealthData.gov</title></head>
<body>
<h1>HHS Unaccompanied Alien Children Program</h1>
<p>Daily figures on unaccompanied children in CBP custody and in HHS care.</p>
<p>Last updated: {html.escape(updated)}</p>
<p><a href="{html.escape(export_href)}" type="text/csv">Export CSV</a></p>
<p><small>*This number does not include children from Mexico, most of whom will be repatriated
and will not remain in CBP custody.</small></p>
<p><small>returnwatch replay mirror: the site as of {as_of.isoformat()}.</small></p>
</body></html>
"""
        return _text_response(200, page, "text/html")


# ------------------------------------------------------------------------------ the mirror


@dataclass
class _Fault:
    mode: str
    remaining: int | None  # None: until cleared


class ReplayMirror:
    """A loopback HTTP server replaying the publishers' sites as of a day.

    Use as a context manager (``with ReplayMirror(date(2025, 6, 17)) as mirror: ...``) or call
    ``start()``/``stop()``. All state changes are thread-safe.
    """

    def __init__(
        self, as_of: dt.date, host: str = "127.0.0.1", port: int = 0, data_dir: Path | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._as_of = as_of
        # A scheduled move of as_of: (the new date, the wall-clock instant it takes effect).
        self._scheduled: tuple[dt.date, dt.datetime] | None = None
        self._published_at: dt.datetime | None = None
        self._faults: dict[str, _Fault] = {}
        self._host = host
        self._requested_port = port
        data_dir = data_dir or settings.replay_data_dir()
        from returnwatch_replay.sites import make_sites

        self._sites = {site.name: site for site in [_HhsSite(data_dir), *make_sites(data_dir)]}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Set on stop() so that "slow" answers stop waiting.
        self._stopping = threading.Event()
        # Requests being held back right now (a "slow" answer waiting): tests wait on this
        # instead of sleeping until their request has arrived.
        self._held = 0
        self._held_changed = threading.Condition(self._lock)

    # -------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self._host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replay-mirror-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("replay mirror on %s (as of %s)", self.url, self.as_of)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the replay mirror is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def sources(self) -> list[str]:
        return sorted(self._sites)

    def base_url(self, source: str) -> str:
        """What ``RETURNWATCH_<SOURCE>_BASE_URL`` must be for ``source`` to be fetched here."""
        if source not in self._sites:
            raise KeyError(
                f"the replay mirror does not serve {source!r} (it serves {', '.join(self.sources)})"
            )
        return f"{self.url}/{source}"

    def env(self) -> dict[str, str]:
        """Environment variables that point every served source at this mirror."""
        return {f"RETURNWATCH_{s.upper()}_BASE_URL": self.base_url(s) for s in self.sources}

    # -------------------------------------------------------------- state

    @property
    def as_of(self) -> dt.date:
        with self._lock:
            self._take_scheduled()
            return self._as_of

    def set_as_of(self, as_of: dt.date) -> None:
        with self._lock:
            self._as_of = as_of
            self._scheduled = None

    def publish_at(self, as_of: dt.date, at: dt.datetime) -> None:
        """Serve the sites as of ``as_of`` from the wall-clock instant ``at`` (aware) on.

        Until ``at`` every request sees the current date's sites; the first request at or after
        ``at`` sees the new one. Every file published between the two dates therefore appears
        at a known instant, which ``published_at`` reports once it has passed.
        """
        if at.tzinfo is None:
            raise ValueError("publish_at needs an aware instant (e.g. datetime.now(UTC))")
        with self._lock:
            self._scheduled = (as_of, at.astimezone(dt.UTC))
            self._published_at = None
            self._take_scheduled()

    @property
    def published_at(self) -> dt.datetime | None:
        """The instant the last ``publish_at`` took effect (None before it has)."""
        with self._lock:
            self._take_scheduled()
            return self._published_at

    def _take_scheduled(self) -> None:
        """Apply a scheduled move whose instant has come (call holding the lock)."""
        if self._scheduled is not None and dt.datetime.now(dt.UTC) >= self._scheduled[1]:
            self._as_of, self._published_at = self._scheduled
            self._scheduled = None

    def set_fault(self, source: str, mode: str | None, *, times: int | None = None) -> None:
        """Make ``source`` misbehave (``mode`` in ``FAULT_MODES``), or behave again (None).

        With ``times``, the fault hits only the next ``times`` requests to the source, which
        lets a test see a retry succeed.
        """
        if source not in self._sites:
            raise KeyError(f"the replay mirror does not serve {source!r}")
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; known: {', '.join(FAULT_MODES)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            if mode is None:
                self._faults.pop(source, None)
            else:
                self._faults[source] = _Fault(mode, times)

    @property
    def faults(self) -> dict[str, str]:
        with self._lock:
            return {source: fault.mode for source, fault in self._faults.items()}

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._take_scheduled()
            return {
                "as_of": self._as_of.isoformat(),
                "faults": {
                    s: {"mode": f.mode, "remaining": f.remaining} for s, f in self._faults.items()
                },
                "sources": {s: f"/{s}" for s in sorted(self._sites)},
                "fault_modes": list(FAULT_MODES),
            }

    def wait_until_holding(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` requests are being held back (a "slow" answer that has
        not been sent); False when ``timeout`` seconds pass first."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self._held >= count, timeout=timeout)

    def _hold(self, seconds: float) -> bool:
        """Hold a request back ``seconds``; True when stop() cut the wait short."""
        with self._held_changed:
            self._held += 1
            self._held_changed.notify_all()
        try:
            return self._stopping.wait(seconds)
        finally:
            with self._held_changed:
                self._held -= 1
                self._held_changed.notify_all()

    def _take_fault(self, source: str, page_is_data: bool) -> str | None:
        """The fault for this request, counting it down; None when the source behaves."""
        with self._lock:
            fault = self._faults.get(source)
            if fault is None or (not page_is_data and fault.mode not in _AVAILABILITY_FAULTS):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[source]
            return fault.mode

    # -------------------------------------------------------------- requests

    def _answer(self, method: str, target: str, headers: Any, body: bytes) -> _Response:
        parts = urlsplit(target)
        path = parts.path
        if path.startswith("/_replay/"):
            return self._control(method, path, parts.query, body)
        if path == "/":
            listing = "".join(f"{s}: /{s}\n" for s in self.sources)
            return _text_response(200, f"returnwatch replay mirror, as of {self.as_of}\n{listing}")
        source, _, rest = path.lstrip("/").partition("/")
        site = self._sites.get(source)
        if site is None:
            return _text_response(404, "Not found\n")
        if method != "GET":
            return _text_response(405, "Method not allowed\n")
        rest = "/" + rest
        fault = self._take_fault(source, page_is_data=site.is_data(rest))
        if fault == "http_500":
            return _text_response(500, "Internal Server Error\n")
        if fault == "http_429":
            response = _text_response(429, "Too Many Requests\n")
            response.headers["Retry-After"] = "1"
            return response
        response = site.handle(rest, parts.query, headers, self.as_of, fault)
        if fault == "slow":
            response.delay = SLOW_SECONDS
        return response

    def _control(self, method: str, path: str, query: str, body: bytes) -> _Response:
        text = body.decode("utf-8", "replace").strip()
        if path == "/_replay/status" and method == "GET":
            return _json_response(200, self.status())
        if path == "/_replay/as_of" and method == "POST":
            try:
                self.set_as_of(dt.date.fromisoformat(text))
            except ValueError:
                return _json_response(
                    400, {"error": f"body must be a date like 2025-06-17, got {text[:40]!r}"}
                )
            return _json_response(200, self.status())
        if path.startswith("/_replay/fault/") and method == "POST":
            source = path.removeprefix("/_replay/fault/")
            times_text = dict(parse_qsl(query)).get("times")
            try:
                times = int(times_text) if times_text else None
                self.set_fault(source, text or None, times=times)
            except KeyError as exc:
                return _json_response(404, {"error": str(exc.args[0])})
            except ValueError as exc:
                return _json_response(400, {"error": str(exc)})
            return _json_response(200, self.status())
        return _json_response(404, {"error": f"no control endpoint {method} {path}"})


MAINTENANCE_PAGE = _MAINTENANCE_PAGE


class _Server(ThreadingHTTPServer):
    # Daemon threads, not joined on close: a "slow" answer must not hold up stop().
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], mirror: ReplayMirror) -> None:
        self.mirror = mirror
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a test server should not spam.
        log.debug("replay mirror: error answering %s", client_address, exc_info=sys.exc_info())


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "returnwatch-replay/1"
    sys_version = ""
    # One request per connection keeps threads short-lived and lets "oversize" end its body by
    # closing the connection.
    protocol_version = "HTTP/1.0"
    # A client that connects and says nothing does not hold a thread for ever.
    timeout = 10

    def do_GET(self) -> None:  # http.server calls do_<METHOD>
        self._respond("GET")

    def do_POST(self) -> None:
        self._respond("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("replay mirror: %s %s", self.address_string(), format % args)

    def _respond(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, _MAX_CONTROL_BODY)) if length > 0 else b""
        response = self.server.mirror._answer(method, self.path, self.headers, body)
        if response.delay and self.server.mirror._hold(response.delay):
            return  # the mirror is stopping: drop the request
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.stream is None:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.stream is not None:
                for chunk in response.stream:
                    self.wfile.write(chunk)
            elif response.body and response.status != 304:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up (gave up on a slow or oversize answer): nothing to do.
            log.debug("replay mirror: client went away during %s %s", method, self.path)


# ------------------------------------------------------------------------------ CLI helper


def serve(as_of: dt.date, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the mirror in the foreground until Ctrl-C (for the ``returnwatch replay`` command)."""
    mirror = ReplayMirror(as_of, host=host, port=port).start()
    print(f"returnwatch replay mirror on {mirror.url}, serving the sites as of {as_of}")
    for source in mirror.sources:
        print(f"  {source}: {mirror.base_url(source)}")
    print("Point returnwatch at it with:")
    for name, value in mirror.env().items():
        print(f"  export {name}={value}")
    print(f"Move time with: curl -X POST --data 2025-06-17 {mirror.url}/_replay/as_of")
    print("Press Ctrl-C to stop.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        mirror.stop()
