"""Talking to publishers: one careful HTTP GET, and "fetch a source into the archive".

What this module owns:

- ``fetch()``: a GET that cannot hurt the worker: allowlisted hosts on every redirect hop, a
  size cap (on decoded bytes too), deadlines for headers and the whole response, conditional
  GETs, bounded retries of transient failures, and a ``FetchError`` naming source, URL and
  what went wrong;
- ``fetch_url()``: the one call a source DAG makes, per file (a link read off the publisher's
  pages, or the configured address of a single-file source): fetch it and record the check in
  the archive, whatever its outcome.

Nothing here parses content. Headers are never logged; credential-looking query values are
masked. Details: docs/internals.md#fetch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import functools
import importlib.metadata
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
import tenacity

from returnwatch.provenance import served_name

if TYPE_CHECKING:
    from returnwatch.archive import Archive, ManifestEntry
    from returnwatch.config import SourceConfig

log = logging.getLogger(__name__)

try:
    __version__ = importlib.metadata.version("returnwatch")
except importlib.metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"

# Publishers' admins should be able to see who we are and why we call.
USER_AGENT = f"returnwatch/{__version__} (open-source monitoring of public statistics)"

MAX_REDIRECTS = 5
# First retry waits BACKOFF_BASE_SECONDS, then twice that, and so on, up to BACKOFF_MAX_SECONDS.
# Short on purpose: Airflow's task retries (minutes apart) handle longer outages.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# A server may ask us to wait (Retry-After on 429/503); we wait at most this long per retry.
RETRY_AFTER_CAP_SECONDS = 60.0
# ``timeout`` bounds each network step (connect, each read). A server dripping one byte at a time
# would never trip it, so the headers must arrive within HEADER_TIMEOUTS timeouts of the
# request and the whole response (headers included) within WHOLE_RESPONSE_TIMEOUTS.
HEADER_TIMEOUTS = 2
WHOLE_RESPONSE_TIMEOUTS = 4
# Content codings we decode ourselves, with the cap applied as bytes come out (one layer only).
_ZLIB_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
_CHUNK_BYTES = 64 * 1024
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Query parameters whose values must never reach a log line or an error message.
_SECRET_PARAM = re.compile(r"token|key|secret|passw|signature|sig$|auth", re.IGNORECASE)


# ------------------------------------------------------------------------------------ errors


class FetchError(Exception):
    """A GET did not produce a usable response. ``kind`` says which way it failed."""

    kind: ClassVar[str] = "fetch_error"

    def __init__(
        self,
        *,
        source: str,
        url: str,
        reason: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.source = source
        self.url = url  # masked (see _redact): safe to log
        self.reason = reason
        self.status = status
        # Seconds the server asked us to wait before retrying (Retry-After), if it did.
        self.retry_after = retry_after
        # How many attempts were made in total; set by fetch() once retries are over.
        self.attempts = 1
        super().__init__(reason)

    @property
    def retryable(self) -> bool:
        """True when trying again later may succeed (the server or the network had a hiccup)."""
        return False

    def __str__(self) -> str:
        text = f"{self.source}: GET {self.url} failed: {self.reason}"
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        return text


class HostNotAllowed(FetchError):
    """The URL, or a redirect, points to a host that is not on the source's allowlist."""

    kind = "host_not_allowed"


class ResponseTooLarge(FetchError):
    """The response is larger than the source's size cap."""

    kind = "oversize"


class HTTPStatusError(FetchError):
    """The server answered with a status we cannot use (4xx, 5xx, too many redirects...)."""

    kind = "http_status"

    @property
    def retryable(self) -> bool:
        return self.status is not None and (self.status >= 500 or self.status == 429)


class FetchTimeout(FetchError):
    """Connecting or reading took longer than the source's timeout."""

    kind = "timeout"

    @property
    def retryable(self) -> bool:
        return True


class FetchConnectionError(FetchError):
    """The connection could not be made or broke mid-response."""

    kind = "connection"

    @property
    def retryable(self) -> bool:
        return True


class ContentEncodingRefused(FetchError):
    """The body is compressed in a way we refuse (stacked or unknown codings) or is corrupt."""

    kind = "content_encoding"


class EmptyBody(FetchError):
    """The server said 200 but sent no bytes: never a real publication."""

    kind = "empty_body"


# ------------------------------------------------------------------------------------ fetch


@dataclass(frozen=True)
class FetchResult:
    """What one successful ``fetch()`` got."""

    url: str  # the final URL, after redirects
    status: int  # 200, or 304 (then ``content`` is None: the stored file is still current)
    content: bytes | None
    etag: str | None
    last_modified: str | None
    content_type: str | None
    attempts: int
    # The file name from Content-Disposition, made safe by provenance.served_name (a label).
    served_name: str | None = None


def fetch(
    url: str,
    *,
    source: str,
    allowed_hosts: list[str] | set[str] | tuple[str, ...],
    max_bytes: int,
    timeout: float,
    retries: int,
    etag: str | None = None,
    last_modified: str | None = None,
    transport: httpx.BaseTransport | None = None,
    backoff_base: float | None = None,
) -> FetchResult:
    """GET ``url`` within the limits given; see the module docstring for the rules.

    ``retries`` is the number of *extra* attempts after the first one. ``transport`` lets tests
    plug in an ``httpx.MockTransport``; ``backoff_base`` (default ``BACKOFF_BASE_SECONDS``) lets
    them keep backoff short.
    Raises a ``FetchError`` subclass on any failure, after retries where retrying makes sense.
    """
    allowed = {_normal_host(h) for h in allowed_hosts}
    # identity: a compressed body can expand a thousandfold past the cap before it is counted.
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = _Request(
        source=source,
        url=url,
        allowed=allowed,
        headers=headers,
        max_bytes=max_bytes,
        timeout=timeout,
        conditional=bool(etag or last_modified),
    )
    # Refuse a forbidden first host before even building a client.
    request.check_host(url)

    host = _normal_host(urlsplit(url).hostname or "")
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(0, retries) + 1),
        wait=_wait_strategy(BACKOFF_BASE_SECONDS if backoff_base is None else backoff_base),
        retry=tenacity.retry_if_exception(
            lambda exc: isinstance(exc, FetchError) and exc.retryable
        ),
        before_sleep=_log_before_retry(source, retries),
        reraise=True,
    )
    attempts = 0
    # Proxy settings from the environment apply to the real publishers, never to the loopback
    # mirror (a corporate HTTP_PROXY would otherwise swallow 127.0.0.1).
    trust_env = host not in _LOOPBACK_HOSTS
    with httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=trust_env,
        verify=_tls_context(trust_env),
    ) as client:

        def one_attempt() -> FetchResult:
            nonlocal attempts
            attempts += 1
            return request.get_once(client)

        try:
            result = retrying(one_attempt)
        except FetchError as exc:
            exc.attempts = attempts
            raise
    return dataclasses.replace(result, attempts=attempts)


@dataclass
class _Request:
    """The fixed parts of one fetch, shared by its attempts."""

    source: str
    url: str
    allowed: set[str]
    headers: dict[str, str]
    max_bytes: int
    timeout: float
    conditional: bool

    def error(
        self,
        cls: type[FetchError],
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> FetchError:
        return cls(
            source=self.source,
            url=_redact(self.url),
            reason=reason,
            status=status,
            retry_after=retry_after,
        )

    def check_host(self, url: str, previous: str | None = None) -> None:
        """Refuse a URL off the allowlist; for a redirect from ``previous``, also a downgrade
        from https to http or a change of port (another service on an allowed host)."""
        parts = urlsplit(url)
        allowed = ", ".join(sorted(self.allowed)) or "nothing"
        hop = "" if url == self.url else f"redirected to {_redact(url)}, but "
        if parts.scheme not in {"http", "https"}:
            raise self.error(HostNotAllowed, f"{hop}scheme {parts.scheme!r} is not http(s)")
        host = _normal_host(parts.hostname or "")
        if host not in self.allowed:
            raise self.error(
                HostNotAllowed, f"{hop}host {host!r} is not in the allowlist ({allowed})"
            )
        if previous is None:
            return
        before = urlsplit(previous)
        if before.scheme == "https" and parts.scheme == "http":
            raise self.error(HostNotAllowed, f"{hop}it downgrades https to http")
        if _port(before) != _port(parts) and not (
            _is_default_port(before) and _is_default_port(parts)
        ):
            raise self.error(
                HostNotAllowed, f"{hop}it changes port ({_port(before)} to {_port(parts)})"
            )

    def get_once(self, client: httpx.Client) -> FetchResult:
        current, previous = self.url, None
        # Redirects are followed here, not by httpx, so that every hop's host is checked.
        for _hop in range(MAX_REDIRECTS + 1):
            self.check_host(current, previous)
            watchdog = _Watchdog(
                headers_within=self.timeout * HEADER_TIMEOUTS,
                whole_within=self.timeout * WHOLE_RESPONSE_TIMEOUTS,
            )
            try:
                with (
                    watchdog,
                    client.stream(
                        "GET", current, headers=self.headers, extensions={"trace": watchdog.trace}
                    ) as response,
                ):
                    watchdog.headers_arrived()
                    if response.status_code in _REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise self.error(
                                HTTPStatusError,
                                f"HTTP {response.status_code} redirect without a Location header",
                                status=response.status_code,
                            )
                        current, previous = str(response.url.join(location)), current
                        continue
                    return self.read(current, response, watchdog)
            except httpx.TransportError as exc:
                if watchdog.fired:
                    raise self.error(FetchTimeout, watchdog.reason) from exc
                if isinstance(exc, httpx.TimeoutException):
                    raise self.error(
                        FetchTimeout,
                        f"no answer within the {self.timeout:g} s timeout ({type(exc).__name__})",
                    ) from exc
                detail = str(exc) or type(exc).__name__
                raise self.error(FetchConnectionError, f"connection problem: {detail}") from exc
        raise self.error(HTTPStatusError, f"more than {MAX_REDIRECTS} redirects")

    def decoder(self, content_encoding: str, status: int) -> _CappedDecoder:
        """The decoder for the response's ``Content-Encoding``; stacked or unknown refused."""
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1:
            raise self.error(
                ContentEncodingRefused,
                "stacked content encodings "
                f"({content_encoding!r}) are refused: we asked for identity",
                status=status,
            )
        if codings and codings[0] not in _ZLIB_WBITS:
            raise self.error(
                ContentEncodingRefused,
                f"content encoding {codings[0]!r} is refused: we asked for identity",
                status=status,
            )
        return _CappedDecoder(
            codings[0] if codings else None,
            on_error=lambda reason: self.error(ContentEncodingRefused, reason, status=status),
        )

    def read(self, url: str, response: httpx.Response, watchdog: _Watchdog) -> FetchResult:
        status = response.status_code
        if status == 304:
            if not self.conditional:
                # A 304 answers a conditional GET only; otherwise the server is confused.
                raise self.error(
                    HTTPStatusError, "HTTP 304 to a request that was not conditional", status=status
                )
            return FetchResult(
                url=url,
                status=304,
                content=None,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                content_type=response.headers.get("content-type"),
                attempts=1,
            )
        if status != 200:
            retry_after = None
            if status in (429, 503):
                retry_after = _parse_retry_after(response.headers.get("retry-after"))
            raise self.error(
                HTTPStatusError,
                f"HTTP {status} {response.reason_phrase}".strip(),
                status=status,
                retry_after=retry_after,
            )

        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self.error(
                ResponseTooLarge,
                f"response larger than the {self.max_bytes}-byte "
                f"cap (Content-Length says {int(declared)} bytes)",
                status=status,
            )
        if response.is_stream_consumed:
            # An in-process transport (tests' MockTransport) built the body in memory and
            # httpx already decoded it: nothing came over a network to bound.
            # No coding means nothing to decompress, so on_error is never called.
            decoder = _CappedDecoder(
                None, on_error=lambda reason: self.error(FetchError, reason, status=status)
            )
            chunks = iter([response.content])
        else:
            decoder = self.decoder(response.headers.get("content-encoding", ""), status)
            # iter_raw(): the bytes as sent; the decoder caps what decompression produces.
            chunks = response.iter_raw(_CHUNK_BYTES)
        body = bytearray()
        for chunk in chunks:
            body += decoder.decode(chunk, self.max_bytes + 1 - len(body))
            if len(body) > self.max_bytes:
                raise self.error(
                    ResponseTooLarge,
                    f"response larger than the "
                    f"{self.max_bytes}-byte cap (stopped at {len(body)} bytes"
                    f"{' decoded' if decoder.coding else ''})",
                    status=status,
                )
            if watchdog.expired():
                raise self.error(
                    FetchTimeout, f"{watchdog.reason} ({len(body)} bytes so far)", status=status
                )
        if watchdog.fired:
            # The watchdog shut the socket: a body without Content-Length then just "ends",
            # and what arrived is a truncated file, not a publication.
            raise self.error(
                FetchTimeout, f"{watchdog.reason} ({len(body)} bytes so far)", status=status
            )
        decoder.finish()
        if not body:
            raise self.error(EmptyBody, "HTTP 200 with an empty body", status=status)
        return FetchResult(
            url=url,
            status=200,
            content=bytes(body),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            content_type=response.headers.get("content-type"),
            attempts=1,
            served_name=served_name(response.headers.get("content-disposition")),
        )


class _CappedDecoder:
    """Decodes one content coding chunk by chunk, never producing more than asked for.

    ``zlib``'s ``max_length`` bounds each call's output, so a few hundred compressed bytes that
    expand to gigabytes cost at most the cap in memory before the fetch is refused.
    """

    def __init__(self, coding: str | None, on_error: Callable[[str], FetchError]) -> None:
        self.coding = coding
        self._on_error = on_error
        self._zlib = zlib.decompressobj(_ZLIB_WBITS[coding]) if coding else None
        self._first = True

    def decode(self, chunk: bytes, budget: int) -> bytes:
        """At most ``budget`` decoded bytes of ``chunk`` (more means "over the cap")."""
        if self._zlib is None:
            return chunk[:budget]
        try:
            out = self._zlib.decompress(chunk, budget)
        except zlib.error as exc:
            if self.coding == "deflate" and self._first:
                # Some servers send raw deflate without the zlib header (as httpx allows).
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self.decode(chunk, budget)
            raise self._on_error(f"the {self.coding} body is corrupt: {exc}") from exc
        self._first = False
        # Output short of the budget means zlib used all the input; a full budget means the
        # caller is over the cap (the budget is cap + 1) and stops reading.
        if self._zlib.eof and self._zlib.unused_data:
            raise self._on_error(
                f"bytes after the end of the {self.coding} stream (several "
                "members or layers) are refused"
            )
        return out

    def finish(self) -> None:
        if self._zlib is not None and not self._zlib.eof:
            raise self._on_error(f"the {self.coding} body ends before its stream does")


class _Watchdog:
    """Deadlines for one request: headers within one span, the whole response within another.

    httpx bounds each read, not their sum; a server sending a byte just inside every read
    timeout could hold a worker forever. The watchdog is a timer that, when a deadline passes,
    shuts the connection's socket down (found through httpx's public ``trace`` extension), so
    the blocked read returns at once and the fetch fails as a timeout.
    """

    def __init__(self, *, headers_within: float, whole_within: float) -> None:
        self.started = time.monotonic()
        self.headers_within = headers_within
        self.whole_within = whole_within
        self.fired = False
        self.reason = ""
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._waiting_for_headers = True
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, daemon=True, name="returnwatch-fetch-watchdog"
        )

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def trace(self, event: str, info: dict[str, object]) -> None:
        """httpcore calls this at each step; keep the socket of the connection in use."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = getattr(stream, "get_extra_info", lambda _name: None)("socket")
            with self._lock:
                self._socket = sock if isinstance(sock, socket.socket) else self._socket
                if self.fired:
                    self._shut()

    def headers_arrived(self) -> None:
        with self._lock:
            self._waiting_for_headers = False

    def expired(self) -> bool:
        if not self.fired and time.monotonic() - self.started > self.whole_within:
            self._fire()
        return self.fired

    def _watch(self) -> None:
        # Two waits at most: the header deadline, then the whole-response one.
        if self._stop.wait(self.headers_within):
            return
        with self._lock:
            waiting = self._waiting_for_headers
        if waiting:
            self._fire()
            return
        if self._stop.wait(max(0.0, self.whole_within - self.headers_within)):
            return
        self._fire()

    def _fire(self) -> None:
        with self._lock:
            if self.fired:
                return
            self.fired = True
            if self._waiting_for_headers:
                self.reason = (
                    f"no complete headers within {self.headers_within:g} s "
                    "(the server is too slow or dripping bytes)"
                )
            else:
                self.reason = f"the response took longer than {self.whole_within:g} s to arrive"
            self._shut()

    def _shut(self) -> None:
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the read is over anyway


def _tls_context(trust_env: bool) -> ssl.SSLContext:
    """The TLS context httpx would build for a ``Client``, built once per CA setting.

    httpx builds a new one for every ``Client``, and loading the CA bundle was most of a
    GET's CPU (tens of milliseconds, for each file and page of every run). A context holds
    no per-connection state, so clients can share it. It is keyed by what httpx reads to
    build it (``trust_env`` and then SSL_CERT_FILE / SSL_CERT_DIR), so a changed environment
    still gets a context of its own; verification is httpx's default (hostnames checked).
    """
    import os

    env = ("", "")
    if trust_env:
        env = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    return _tls_context_for(trust_env, *env)


@functools.lru_cache(maxsize=8)
def _tls_context_for(trust_env: bool, cert_file: str, cert_dir: str) -> ssl.SSLContext:
    # cert_file and cert_dir only key the cache: httpx reads them from the environment itself.
    return httpx.create_ssl_context(trust_env=trust_env)


def _port(parts: object) -> int:
    port = getattr(parts, "port", None)
    return port if port is not None else (443 if getattr(parts, "scheme", "") == "https" else 80)


def _is_default_port(parts: object) -> bool:
    return getattr(parts, "port", None) in (
        None,
        443 if getattr(parts, "scheme", "") == "https" else 80,
    )


def _wait_strategy(backoff_base: float) -> tenacity.wait.wait_base:
    exponential = tenacity.wait_exponential(multiplier=backoff_base, max=BACKOFF_MAX_SECONDS)

    class _RetryAfterOrExponential(tenacity.wait.wait_base):
        """The server's Retry-After when it gave one (capped), else exponential backoff."""

        def __call__(self, retry_state: tenacity.RetryCallState) -> float:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(exc, FetchError) and exc.retry_after is not None:
                return min(exc.retry_after, RETRY_AFTER_CAP_SECONDS)
            return exponential(retry_state)

    return _RetryAfterOrExponential()


def _log_before_retry(source: str, retries: int) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "%s: attempt %d failed (%s); retry %d of %d in %.1f s",
            source,
            retry_state.attempt_number,
            getattr(exc, "reason", exc),
            retry_state.attempt_number,
            retries,
            wait,
        )

    return before_sleep


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _redact(url: str) -> str:
    """The URL without user:password and with credential-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [
            (k, "***" if _SECRET_PARAM.search(k) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# ------------------------------------------------------------------------------- fetch_source


def fetch_source(cfg: SourceConfig, archive: Archive, *, run_at: dt.datetime) -> ManifestEntry:
    """Fetch one configured single-file source (its ``base_url + path + params``) into the
    archive and return the manifest row of this check; see ``fetch_url``."""
    return fetch_url(
        cfg, str(httpx.URL(cfg.url).copy_merge_params(cfg.params)), archive, run_at=run_at
    )


def fetch_url(
    cfg: SourceConfig, url: str, archive: Archive, *, run_at: dt.datetime
) -> ManifestEntry:
    """Fetch one file of a source into the archive and return the manifest row of this check.

    ``url`` is the source's configured URL or a link read off its landing page. ``run_at`` is
    the logical time of the pipeline run (Airflow's logical date; the replayed day in replay).
    A ``FetchError`` is recorded as a ``failed`` row and then re-raised, so the task fails and
    Airflow retries it, while the freshness monitor still sees the attempt.
    """
    shown_url = _redact(url)
    # Validators belong to one resource: reuse them only for the same URL (the replay mirror and
    # the real site are different resources, even for the same dataset; a multi-file source
    # has one resource per link).
    validators = next(
        (e for e in reversed(archive.entries(cfg.name)) if e.sha256 and e.url == shown_url), None
    )
    try:
        result = fetch(
            url,
            source=cfg.name,
            allowed_hosts=cfg.effective_allowed_hosts,
            max_bytes=cfg.max_bytes,
            timeout=cfg.timeout_seconds,
            retries=cfg.retries,
            etag=validators.etag if validators else None,
            last_modified=validators.last_modified if validators else None,
        )
    except FetchError as exc:
        archive.record_failure(
            cfg.name,
            shown_url,
            fetched_at=dt.datetime.now(dt.UTC),
            run_at=run_at,
            error=f"{exc.kind}: {exc.reason}",
            http_status=exc.status,
        )
        log.error("%s (%s)", exc, exc.kind)
        raise
    except Exception as exc:  # MemoryError included: the check happened, say it failed
        archive.record_failure(
            cfg.name,
            shown_url,
            fetched_at=dt.datetime.now(dt.UTC),
            run_at=run_at,
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
        log.error("%s: GET %s failed: %s: %s", cfg.name, shown_url, type(exc).__name__, exc)
        raise
    fetched_at = dt.datetime.now(dt.UTC)

    if result.status == 304:
        entry = archive.record_not_modified(
            cfg.name,
            shown_url,
            fetched_at=fetched_at,
            run_at=run_at,
            etag=result.etag,
            last_modified=result.last_modified,
        )
        log.info(
            "%s: not modified (HTTP 304) at %s; latest file is still sha256 %s (vintage %s)",
            cfg.name,
            shown_url,
            _short(entry.sha256),
            entry.vintage,
        )
        return entry

    assert result.content is not None  # fetch() guarantees a body with every 200
    vintage = _vintage(result.last_modified, run_at, cfg.timezone)
    entry = archive.store(
        cfg.name,
        shown_url,
        result.content,
        fetched_at=fetched_at,
        run_at=run_at,
        vintage=vintage,
        http_status=result.status,
        etag=result.etag,
        last_modified=result.last_modified,
        content_type=result.content_type,
        served_name=result.served_name,
    )
    if entry.outcome == "new":
        log.info(
            "%s: new file sha256 %s (%d bytes, vintage %s, %s) from %s in %d attempt(s)",
            cfg.name,
            _short(entry.sha256),
            entry.size,
            vintage,
            result.content_type or "no content type",
            shown_url,
            result.attempts,
        )
    else:
        log.info(
            "%s: same bytes as an earlier file (sha256 %s, %d bytes) from %s: nothing new",
            cfg.name,
            _short(entry.sha256),
            entry.size,
            shown_url,
        )
    return entry


# Landing and listing pages are small; a page over this is not the page we know.
PAGE_MAX_BYTES = 2_000_000


def page_getter(cfg: SourceConfig) -> Callable[[str], bytes]:
    """``get_page(url) -> bytes`` for a source module's ``discover``: same host allowlist,
    timeouts and bounded retries as file fetches, a small size cap, no archive (pages are
    read to find links; the files they point to are what gets archived)."""

    def get_page(url: str) -> bytes:
        result = fetch(
            url,
            source=cfg.name,
            allowed_hosts=cfg.effective_allowed_hosts,
            max_bytes=min(cfg.max_bytes, PAGE_MAX_BYTES),
            timeout=cfg.timeout_seconds,
            retries=cfg.retries,
        )
        assert result.content is not None
        return result.content

    return get_page


def _vintage(last_modified: str | None, run_at: dt.datetime, timezone: str) -> dt.date:
    """The file's publication date in the publisher's time zone: from ``Last-Modified`` when
    the server sent a readable one, else the run's date."""
    zone = ZoneInfo(timezone)
    if last_modified:
        try:
            stamp = email.utils.parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            stamp = None
        if stamp is not None:
            if stamp.tzinfo is None:  # HTTP-dates are GMT by definition
                stamp = stamp.replace(tzinfo=dt.UTC)
            return stamp.astimezone(zone).date()
    return run_at.astimezone(zone).date()


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"
