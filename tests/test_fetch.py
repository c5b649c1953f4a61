"""The fetcher against the real replay mirror and a scripted fault server, all on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from returnwatch import config
from returnwatch import fetch as fetch_module
from returnwatch.archive import Archive
from returnwatch.fetch import (
    USER_AGENT,
    ContentEncodingRefused,
    EmptyBody,
    FetchConnectionError,
    FetchError,
    FetchTimeout,
    HostNotAllowed,
    HTTPStatusError,
    ResponseTooLarge,
    fetch,
    fetch_source,
)
from returnwatch_replay.mirror import HHS_SOURCE, ReplayMirror
from tests.support.scripted_server import Reply, ScriptedServer

LOOPBACK = ["127.0.0.1"]
EXPORT = "/api/views/ehpz-xc9n/rows.csv?accessType=DOWNLOAD"
AS_OF = dt.date(2025, 6, 17)
RUN_AT = dt.datetime(2025, 6, 17, 14, 0, tzinfo=dt.UTC)


@pytest.fixture
def mirror() -> Iterator[ReplayMirror]:
    with ReplayMirror(AS_OF) as running:
        yield running


@pytest.fixture
def hhs_cfg(mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch) -> config.SourceConfig:
    """The real hhs_uc_daily config, pointed at the mirror the way the demo does it."""
    monkeypatch.setenv("RETURNWATCH_HHS_UC_DAILY_BASE_URL", mirror.base_url(HHS_SOURCE))
    # Retries stay on; only their backoff is shortened so the suite stays fast.
    monkeypatch.setattr(fetch_module, "BACKOFF_BASE_SECONDS", 0.01)
    return config.source(HHS_SOURCE)


def get(url: str, **overrides: object) -> fetch_module.FetchResult:
    kwargs: dict[str, object] = {
        "source": HHS_SOURCE,
        "allowed_hosts": LOOPBACK,
        "max_bytes": 5_000_000,
        "timeout": 5.0,
        "retries": 2,
        "backoff_base": 0.01,
    }
    kwargs.update(overrides)
    return fetch(url, **kwargs)  # type: ignore[arg-type]


def blobs(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != "manifest.jsonl"]


# ------------------------------------------------------------------ success and 304


def test_200_then_304_with_conditional_headers(mirror: ReplayMirror) -> None:
    url = mirror.base_url(HHS_SOURCE) + EXPORT
    first = get(url)
    assert (first.status, first.attempts) == (200, 1)
    assert first.content and first.content.startswith(b"Date,Children apprehended")
    assert first.content_type == "text/csv; charset=utf-8"
    assert first.etag and first.last_modified

    by_etag = get(url, etag=first.etag)
    by_date = get(url, last_modified=first.last_modified)
    assert (by_etag.status, by_etag.content) == (304, None)
    assert (by_date.status, by_date.content) == (304, None)


def test_request_headers_identify_us_and_carry_validators() -> None:
    with ScriptedServer([Reply(304)]) as server:
        get(server.url("/file.csv"), etag='"abc"', last_modified="Tue, 17 Jun 2025 14:00:00 GMT")
    sent = server.requests[0].headers
    assert sent["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("returnwatch/") and "open-source monitoring" in USER_AGENT
    assert sent["If-None-Match"] == '"abc"'
    assert sent["If-Modified-Since"] == "Tue, 17 Jun 2025 14:00:00 GMT"


def test_304_to_an_unconditional_request_is_an_error() -> None:
    with ScriptedServer([Reply(304)]) as server, pytest.raises(HTTPStatusError, match="304"):
        get(server.url("/file.csv"))


# ------------------------------------------------------------------ allowlist


def test_host_not_in_allowlist_is_refused_before_connecting() -> None:
    with ScriptedServer([Reply(200, b"x")]) as server, pytest.raises(HostNotAllowed) as caught:
        get(server.url("/file.csv"), allowed_hosts=["healthdata.gov"])
    assert server.requests == []
    assert caught.value.kind == "host_not_allowed"
    assert "'127.0.0.1' is not in the allowlist (healthdata.gov)" in str(caught.value)


def test_redirect_to_a_foreign_host_is_refused() -> None:
    # example.org is never contacted: the hop is checked before any connection is made.
    script = [Reply(302, headers={"Location": "http://example.org/rows.csv"})]
    with ScriptedServer(script) as server, pytest.raises(HostNotAllowed) as caught:
        get(server.url("/file.csv"))
    assert len(server.requests) == 1
    assert "redirected to http://example.org/rows.csv" in str(caught.value)
    assert "'example.org' is not in the allowlist" in str(caught.value)


def test_redirects_within_the_allowlist_are_followed_and_bounded() -> None:
    script = [Reply(301, headers={"Location": "/moved.csv"}), Reply(200, b"a,b\n")]
    with ScriptedServer(script) as server:
        result = get(server.url("/file.csv"))
    assert result.content == b"a,b\n" and result.url.endswith("/moved.csv")

    loop = [Reply(302, headers={"Location": "/again"})]
    with ScriptedServer(loop) as server, pytest.raises(HTTPStatusError, match="more than 5"):
        get(server.url("/file.csv"), retries=0)
    assert len(server.requests) == 6  # the first request and five hops


# ------------------------------------------------------------------ size cap


def test_oversize_stops_at_the_cap_and_stores_only_a_failed_row(
    hhs_cfg: config.SourceConfig, mirror: ReplayMirror, tmp_path: Path
) -> None:
    archive = Archive(tmp_path)
    mirror.set_fault(HHS_SOURCE, "oversize")  # a >5 MB CSV without Content-Length
    with pytest.raises(ResponseTooLarge) as caught:
        fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    assert str(caught.value) == (
        f"hhs_uc_daily: GET {mirror.base_url(HHS_SOURCE)}{EXPORT} failed: response larger than "
        "the 5000000-byte cap (stopped at 5000001 bytes)"
    )
    assert blobs(tmp_path) == []
    [row] = archive.entries(HHS_SOURCE)
    assert (row.outcome, row.sha256, row.run_at) == ("failed", None, RUN_AT)
    assert row.error and row.error.startswith("oversize: response larger")


def test_declared_content_length_above_the_cap_is_refused_before_reading() -> None:
    declared = ScriptedServer([Reply(200, b"x" * 2000)])
    with declared, pytest.raises(ResponseTooLarge, match="Content-Length says 2000 bytes"):
        get(declared.url("/big.csv"), max_bytes=1000)
    undeclared = ScriptedServer([Reply(200, b"x" * 2000, content_length=None)])
    with undeclared, pytest.raises(ResponseTooLarge, match=r"stopped at 1001 bytes"):
        get(undeclared.url("/big.csv"), max_bytes=1000)
    with ScriptedServer([Reply(200, b"x" * 1000, content_length=None)]) as server:
        assert get(server.url("/big.csv"), max_bytes=1000).content == b"x" * 1000


# ------------------------------------------------------------------ retries


def test_500_then_success_after_a_retry(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "http_500", times=1)
    result = get(mirror.base_url(HHS_SOURCE) + EXPORT)
    assert (result.status, result.attempts) == (200, 2)


def test_persistent_500_gives_up_after_the_retries(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "http_500")
    with pytest.raises(HTTPStatusError) as caught:
        get(mirror.base_url(HHS_SOURCE) + EXPORT, retries=2)
    assert (caught.value.status, caught.value.attempts) == (500, 3)
    assert str(caught.value).endswith("HTTP 500 Internal Server Error (after 3 attempts)")


def test_429_waits_as_long_as_retry_after_says(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "http_429", times=1)
    started = time.monotonic()
    result = get(mirror.base_url(HHS_SOURCE) + EXPORT, backoff_base=0.01)
    waited = time.monotonic() - started
    assert (result.status, result.attempts) == (200, 2)
    assert 1.0 <= waited < 5.0  # Retry-After: 1, not the 0.01 s backoff


def test_retry_after_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "RETRY_AFTER_CAP_SECONDS", 0.2)
    script = [Reply(503, headers={"Retry-After": "3600"}), Reply(200, b"ok\n")]
    with ScriptedServer(script) as server:
        started = time.monotonic()
        assert get(server.url("/f.csv")).content == b"ok\n"
    assert time.monotonic() - started < 2.0
    gap = server.requests[1].at - server.requests[0].at
    assert gap >= 0.2


def test_404_fails_at_once_without_retries() -> None:
    server = ScriptedServer([Reply(404, b"Not found")])
    with server, pytest.raises(HTTPStatusError) as caught:
        get(server.url("/gone.csv"), retries=3)
    assert len(server.requests) == 1
    assert (caught.value.kind, caught.value.status, caught.value.attempts) == (
        "http_status",
        404,
        1,
    )


def test_timeout_fails_in_bounded_time(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "slow")  # the mirror waits 3 s before answering
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as caught:
        get(mirror.base_url(HHS_SOURCE) + EXPORT, timeout=0.3, retries=1)
    assert time.monotonic() - started < 2.0
    assert (caught.value.kind, caught.value.attempts) == ("timeout", 2)


def test_connection_refused_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchConnectionError) as caught:
        get(f"http://127.0.0.1:{port}/f.csv", retries=1)
    assert (caught.value.kind, caught.value.attempts) == ("connection", 2)


def test_empty_200_body_is_an_error(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "empty")
    with pytest.raises(EmptyBody) as caught:
        get(mirror.base_url(HHS_SOURCE) + EXPORT)
    assert (caught.value.kind, caught.value.attempts) == ("empty_body", 1)


def test_every_failure_is_a_fetch_error_with_a_kind() -> None:
    kinds = {
        cls.kind
        for cls in (
            HostNotAllowed,
            ResponseTooLarge,
            HTTPStatusError,
            FetchTimeout,
            FetchConnectionError,
            EmptyBody,
            ContentEncodingRefused,
        )
    }
    assert kinds == {
        "host_not_allowed",
        "oversize",
        "http_status",
        "timeout",
        "connection",
        "empty_body",
        "content_encoding",
    }
    assert all(issubclass(cls, FetchError) for cls in (HostNotAllowed, EmptyBody))


def test_credentials_never_reach_the_error_text() -> None:
    with ScriptedServer([Reply(404)]) as server, pytest.raises(HTTPStatusError) as caught:
        get(
            server.url("/f.csv?$$app_token=s3cret&accessType=DOWNLOAD").replace(
                "http://", "http://user:pw@"
            )
        )
    assert "s3cret" not in str(caught.value) and "pw@" not in str(caught.value)
    assert "accessType=DOWNLOAD" in str(caught.value)


def test_mock_transport_can_stand_in_for_the_network() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"a\n"))
    result = get(
        "https://healthdata.gov/x.csv", allowed_hosts=["healthdata.gov"], transport=transport
    )
    assert result.content == b"a\n"


# ------------------------------------------------------------------ fetch_source


def test_fetch_source_new_then_not_modified_then_new(
    hhs_cfg: config.SourceConfig, mirror: ReplayMirror, tmp_path: Path
) -> None:
    archive = Archive(tmp_path)
    first = fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    assert first.outcome == "new" and first.url == mirror.base_url(HHS_SOURCE) + EXPORT
    # Newest row served on 2025-06-17 is dated 2025-06-10 (the copy has no 11th..16th), so the
    # file was published on 2025-06-11 at 10:00 New York time: that is its vintage.
    assert first.last_modified == "Wed, 11 Jun 2025 14:00:00 GMT"
    assert first.vintage == dt.date(2025, 6, 11)
    assert archive.read(first.sha256 or "", HHS_SOURCE) == mirror_body(mirror)

    second = fetch_source(hhs_cfg, archive, run_at=RUN_AT + dt.timedelta(days=1))
    assert second.outcome == "not_modified" and second.sha256 == first.sha256

    mirror.set_as_of(dt.date(2025, 6, 19))
    third = fetch_source(hhs_cfg, archive, run_at=RUN_AT + dt.timedelta(days=2))
    assert third.outcome == "new" and third.vintage == dt.date(2025, 6, 18)
    assert [e.outcome for e in archive.entries(HHS_SOURCE)] == ["new", "not_modified", "new"]
    assert len(blobs(tmp_path)) == 2


def test_fetch_source_same_bytes_without_validators_is_unchanged(
    hhs_cfg: config.SourceConfig, tmp_path: Path
) -> None:
    elsewhere = Archive(tmp_path / "elsewhere")
    first = fetch_source(hhs_cfg, elsewhere, run_at=RUN_AT)
    # An archive that holds the file only as a manual copy has no validators for the URL:
    # the check is unconditional, and the same bytes are recognised by their sha256.
    archive = Archive(tmp_path / "archive")
    archive.store_manual(
        HHS_SOURCE, elsewhere.blob_path(first), vintage=first.vintage or AS_OF, run_at=RUN_AT
    )
    again = fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    assert again.outcome == "unchanged" and again.http_status == 200


def test_validators_are_per_url_so_a_manual_copy_does_not_hide_them(
    hhs_cfg: config.SourceConfig, tmp_path: Path
) -> None:
    archive = Archive(tmp_path)
    first = fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    archive.store_manual(
        HHS_SOURCE, archive.blob_path(first), vintage=first.vintage or AS_OF, run_at=RUN_AT
    )
    again = fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    assert again.outcome == "not_modified" and again.sha256 == first.sha256


def test_fetch_source_retries_then_records_the_file(
    hhs_cfg: config.SourceConfig, mirror: ReplayMirror, tmp_path: Path
) -> None:
    mirror.set_fault(HHS_SOURCE, "http_500", times=2)
    entry = fetch_source(hhs_cfg, Archive(tmp_path), run_at=RUN_AT)
    assert entry.outcome == "new"


def test_fetch_source_keeps_an_html_error_page_as_received(
    hhs_cfg: config.SourceConfig, mirror: ReplayMirror, tmp_path: Path
) -> None:
    # The fetcher does not judge content: the parser will reject it, the bytes stay for people.
    mirror.set_fault(HHS_SOURCE, "html_error")
    entry = fetch_source(hhs_cfg, Archive(tmp_path), run_at=RUN_AT)
    assert entry.outcome == "new" and entry.ext == ".html"


def test_fetch_source_failure_is_recorded_and_raised(
    hhs_cfg: config.SourceConfig, mirror: ReplayMirror, tmp_path: Path, caplog
) -> None:
    archive = Archive(tmp_path)
    mirror.set_fault(HHS_SOURCE, "empty")
    with pytest.raises(EmptyBody):
        fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    [row] = archive.entries(HHS_SOURCE)
    assert (row.outcome, row.http_status, row.error) == (
        "failed",
        200,
        "empty_body: HTTP 200 with an empty body",
    )
    assert "hhs_uc_daily: GET" in caplog.text


def test_vintage_is_the_last_modified_date_in_the_publisher_time_zone() -> None:
    late_evening = "Fri, 13 Jan 2023 03:00:00 GMT"  # 22:00 on the 12th in New York
    assert fetch_module._vintage(late_evening, RUN_AT, "America/New_York") == dt.date(2023, 1, 12)
    assert fetch_module._vintage(None, RUN_AT, "America/New_York") == dt.date(2025, 6, 17)
    assert fetch_module._vintage("garbage", RUN_AT, "UTC") == dt.date(2025, 6, 17)


def mirror_body(mirror: ReplayMirror) -> bytes:
    return httpx.get(mirror.base_url(HHS_SOURCE) + EXPORT, timeout=5).content


# ------------------------------------------------------------------ bounded fetches
# A raw-socket server on 127.0.0.1 that answers one scripted byte stream per connection:
# bombs and slow drips that http.server cannot produce. Every send loop is bounded.


class RawServer:
    """Accepts connections on 127.0.0.1 and writes ``head`` then ``body`` to each, dripping
    ``drip_bytes`` at a time every ``drip_seconds`` when asked (at most ``MAX_DRIPS`` drips)."""

    MAX_DRIPS = 400

    def __init__(
        self,
        head: bytes,
        body: bytes = b"",
        *,
        drip_head: bool = False,
        drip_body: bool = False,
        drip_seconds: float = 0.05,
    ) -> None:
        import threading

        self.head, self.body = head, body
        self.drip_head, self.drip_body, self.drip_seconds = drip_head, drip_body, drip_seconds
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str = "/file.csv") -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)  # the request (small, one read is enough here)
                    self._send(conn, self.head, self.drip_head)
                    self._send(conn, self.body, self.drip_body)
                except OSError:
                    pass  # the client hung up: that is what these tests expect

    def _send(self, conn: socket.socket, data: bytes, drip: bool) -> None:
        if not drip:
            conn.sendall(data)
            return
        for i in range(min(len(data), self.MAX_DRIPS)):
            if self.stopped.wait(self.drip_seconds):
                return
            conn.sendall(data[i : i + 1])


def _gzip(data_chunks: Iterator[bytes]) -> bytes:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(packer.compress(chunk) for chunk in data_chunks) + packer.flush()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 260 kB of gzip that expands to 256 MiB of zeros (compressed once per module)."""
    return _gzip(bytes(1 << 20) for _ in range(256))


def _head(content_encoding: str | None, length: int | None) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/csv", "Connection: close"]
    if content_encoding:
        lines.append(f"Content-Encoding: {content_encoding}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_we_ask_for_identity_encoding() -> None:
    with ScriptedServer([Reply(200, b"a\n")]) as server:
        get(server.url("/file.csv"))
    assert server.requests[0].headers["Accept-Encoding"] == "identity"


def test_a_gzip_bomb_stops_at_the_cap_as_it_is_decoded(gzip_bomb: bytes) -> None:
    import tracemalloc

    cap = 4_000_000
    with RawServer(_head("gzip", len(gzip_bomb)), gzip_bomb) as server:
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge, match="cap"):
                get(server.url(), max_bytes=cap, retries=0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Decoded whole it would take 256 MiB; decoding stops one cap (plus a chunk) in.
    assert peak < 8 * cap, f"peak {peak / 1e6:.1f} MB for a {cap / 1e6:.0f} MB cap"


def test_stacked_or_unknown_encodings_are_refused_before_decoding(gzip_bomb: bytes) -> None:
    twice = _gzip(iter([gzip_bomb]))  # "gzip, gzip": a few kB that expand to 256 MiB
    assert len(twice) < 20_000
    with (
        RawServer(_head("gzip, gzip", len(twice)), twice) as server,
        pytest.raises(ContentEncodingRefused, match="stacked") as caught,
    ):
        get(server.url(), retries=0)
    assert caught.value.kind == "content_encoding"
    with (
        RawServer(_head("br", 3), b"abc") as server,
        pytest.raises(ContentEncodingRefused, match="'br'"),
    ):
        get(server.url(), retries=0)


def test_one_honest_gzip_layer_is_decoded() -> None:
    body = b"date,count\n2025-01-01,3\n" * 100
    packed = _gzip(iter([body]))
    with RawServer(_head("gzip", len(packed)), packed) as server:
        assert get(server.url(), retries=0).content == body
    with (
        RawServer(_head("gzip", 10), packed[:10]) as server,
        pytest.raises(ContentEncodingRefused, match="ends before"),
    ):
        get(server.url(), retries=0)


def test_headers_dripped_byte_by_byte_hit_the_header_deadline() -> None:
    # Each byte comes well inside the read timeout, so only a deadline over the whole header
    # phase stops it; the drip itself would last 400 x 0.05 s = 20 s.
    head = _head(None, 3) + b"abc"
    head = head.replace(b"Content-Type", b"X-Padding: " + b"x" * 300 + b"\r\nContent-Type")
    with RawServer(head, drip_head=True) as server:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match="no complete headers within 1 s"):
            get(server.url(), timeout=0.5, retries=0)
        elapsed = time.monotonic() - started
    assert elapsed < 10, f"held {elapsed:.1f} s against a 1 s header deadline"


def test_a_body_dripped_byte_by_byte_hits_the_whole_response_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"x" * 400
    with RawServer(_head(None, len(body)), body, drip_body=True) as server:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match="longer than 2 s") as caught:
            get(server.url(), timeout=0.5, retries=0)
        elapsed = time.monotonic() - started
    assert elapsed < 10, f"held {elapsed:.1f} s against a 2 s deadline"
    assert caught.value.retryable


def test_a_body_without_length_cut_by_the_deadline_is_not_taken_for_a_whole_file() -> None:
    body = b"x" * 400  # no Content-Length: the body ends when the connection does
    # A byte every 0.3 s: the deadline passes while a read is waiting, not between chunks.
    with (
        RawServer(_head(None, None), body, drip_body=True, drip_seconds=0.3) as server,
        pytest.raises(FetchTimeout, match="longer than 2 s"),
    ):
        get(server.url(), timeout=0.5, retries=0)


def test_a_timeout_or_memory_error_leaves_a_failed_manifest_row(
    hhs_cfg: config.SourceConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path)

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError("decompression")

    with monkeypatch.context() as patched, pytest.raises(MemoryError):
        patched.setattr(fetch_module, "fetch", out_of_memory)
        fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    [row] = archive.entries(HHS_SOURCE)
    assert (row.outcome, row.error) == ("failed", "MemoryError: decompression")

    body = b"x" * 400
    cfg = hhs_cfg.model_copy(update={"timeout_seconds": 0.5, "retries": 0})
    with RawServer(_head(None, len(body)), body, drip_body=True) as server:
        with pytest.raises(FetchTimeout):
            fetch_module.fetch_url(cfg, server.url(), archive, run_at=RUN_AT)
    last = archive.entries(HHS_SOURCE)[-1]
    assert last.outcome == "failed" and last.error.startswith("timeout: the response took")


@pytest.mark.parametrize(
    "first, hop, words",
    [
        ("https://healthdata.gov/x.csv", "http://healthdata.gov/x.csv", "downgrades https to http"),
        ("https://healthdata.gov/x.csv", "https://healthdata.gov:8443/x.csv", "changes port"),
        ("http://healthdata.gov/x.csv", "http://healthdata.gov:8080/x.csv", "changes port"),
    ],
)
def test_redirects_may_not_downgrade_or_change_port(first: str, hop: str, words: str) -> None:
    asked: list[str] = []

    def publisher(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"Location": hop})

    with pytest.raises(HostNotAllowed, match=words):
        get(first, allowed_hosts=["healthdata.gov"], transport=httpx.MockTransport(publisher))
    assert asked == [first]  # the forbidden hop is never requested


def test_an_upgrade_from_http_to_https_is_followed() -> None:
    def publisher(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return httpx.Response(301, headers={"Location": "https://healthdata.gov/x.csv"})
        return httpx.Response(200, content=b"a\n")

    result = get(
        "http://healthdata.gov/x.csv",
        allowed_hosts=["healthdata.gov"],
        transport=httpx.MockTransport(publisher),
    )
    assert result.content == b"a\n" and result.url.startswith("https://")


# ------------------------------------------------------------------ the served file name


def _disposition_head(value: bytes, length: int) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n"
        b"Content-Disposition: " + value + b"\r\n" + f"Content-Length: {length}\r\n\r\n".encode()
    )


@pytest.mark.parametrize(
    "header, label",
    [
        # A real server's name for a download is recorded as sent.
        (
            b'attachment; filename="BDSIOMR_PUB_2024_UPMRIP_constructed.csv"',
            "BDSIOMR_PUB_2024_UPMRIP_constructed.csv",
        ),
        # RFC 6266: filename* (RFC 8187 encoding) wins over filename.
        (
            b"attachment; filename=\"a.csv\"; filename*=UTF-8''cuadro_5.2.1_constructed%C3%A9.xls",
            "cuadro_5.2.1_constructedé.xls",
        ),
        # Hostile: directories are dropped, NULs and control characters removed, length bounded.
        (b'attachment; filename="../../../../etc/cron.d/evil"', "evil"),
        (b"attachment; filename*=UTF-8''..%2F..%2F.bashrc", "bashrc"),
        (b'attachment; filename="..\\\\..\\\\windows\\\\x.csv"', "x.csv"),
        (b"attachment; filename*=UTF-8''a%00b%0D%0Ac.csv", "abc.csv"),
        (b'attachment; filename="' + b"n" * 600 + b'.csv"', "n" * 255),
        (b'attachment; filename="' + b"n" * 3000 + b'"', None),  # overlong header: not read
        (b"attachment", None),
        (b'attachment; filename="/"', None),
        (b';;;="', None),
    ],
)
def test_the_served_file_name_is_only_ever_a_label(
    hhs_cfg: config.SourceConfig, tmp_path: Path, header: bytes, label: str | None
) -> None:
    archive = Archive(tmp_path / "archive")
    body = b"a,b\n1,2\n"
    cfg = hhs_cfg.model_copy(update={"retries": 0})
    with RawServer(_disposition_head(header, len(body)), body) as server:
        entry = fetch_module.fetch_url(cfg, server.url("/rows.csv"), archive, run_at=RUN_AT)
    assert entry.outcome == "new" and entry.served_name == label
    assert archive.entries(HHS_SOURCE)[-1].served_name == label  # kept in the manifest
    # The name never becomes a path: the only files are the manifest and the content-addressed
    # blob, both under the archive root, and the blob is named by its sha256.
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [p for p in written if not str(p).startswith("archive/")] == []
    assert archive.blob_path(entry).name == f"{entry.sha256}.csv"
    assert archive.read(entry.sha256, HHS_SOURCE) == body


def test_a_raw_nul_in_the_header_is_refused_by_the_http_parser(
    hhs_cfg: config.SourceConfig, tmp_path: Path
) -> None:
    archive = Archive(tmp_path)
    body = b"a,b\n1,2\n"
    cfg = hhs_cfg.model_copy(update={"retries": 0})
    with (
        RawServer(
            _disposition_head(b'attachment; filename="a\x00/../b.csv"', len(body)), body
        ) as server,
        pytest.raises(FetchConnectionError, match="illegal header"),
    ):
        fetch_module.fetch_url(cfg, server.url("/rows.csv"), archive, run_at=RUN_AT)
    # A failed check, no file, and nothing else written.
    [row] = archive.entries(HHS_SOURCE)
    assert (row.outcome, row.sha256, row.served_name) == ("failed", None, None)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [archive._manifest_path(HHS_SOURCE)]


def test_a_file_without_a_content_disposition_has_no_served_name(
    hhs_cfg: config.SourceConfig, tmp_path: Path
) -> None:
    entry = fetch_source(hhs_cfg, Archive(tmp_path), run_at=RUN_AT)
    assert entry.outcome == "new" and entry.served_name is None


def test_clients_share_one_tls_context_per_ca_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building httpx's TLS context (loading the CA bundle) was most of a GET's CPU: it is built
    once per CA setting, and a changed SSL_CERT_FILE still gets a context of its own."""
    import ssl

    import certifi

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = fetch_module._tls_context(True)
    assert isinstance(default, ssl.SSLContext)
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    assert fetch_module._tls_context(True) is default
    # The loopback mirror's clients ignore the environment, as httpx does with trust_env=False.
    assert fetch_module._tls_context(False) is fetch_module._tls_context(False)

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    own = fetch_module._tls_context(True)
    assert own is not default
    assert fetch_module._tls_context(False) is fetch_module._tls_context(False)
    monkeypatch.delenv("SSL_CERT_FILE")
    assert fetch_module._tls_context(True) is default


def test_every_get_uses_the_shared_tls_context(
    hhs_cfg: config.SourceConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    real_client = httpx.Client

    def client(**kwargs: object) -> httpx.Client:
        built.append(kwargs.get("verify"))
        return real_client(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fetch_module.httpx, "Client", client)
    archive = Archive(tmp_path)
    fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    fetch_source(hhs_cfg, archive, run_at=RUN_AT)
    assert len(built) == 2 and built[0] is built[1] is fetch_module._tls_context(False)
