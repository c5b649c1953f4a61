"""The replay mirror serves the real healthdata.gov export as it was on a day, byte for byte."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from returnwatch_replay import mirror as replay
from returnwatch_replay.mirror import FAULT_MODES, HHS_SOURCE, ReplayMirror

EXPORT = "/api/views/ehpz-xc9n/rows.csv?accessType=DOWNLOAD"
LANDING = "/National/HHS-Unaccompanied-Alien-Children-Program/ehpz-xc9n"
HEADER = (
    b"Date,Children apprehended and placed in CBP custody,Children in CBP custody,"
    b"Children transferred out of CBP custody,Children in HHS Care,"
    b"Children discharged from HHS Care\r\n"
)
BLANK = b",,,,,\r\n"


@pytest.fixture
def mirror() -> Iterator[ReplayMirror]:
    with ReplayMirror(dt.date(2025, 12, 22)) as running:
        yield running


def export(
    mirror: ReplayMirror, query: str = "accessType=DOWNLOAD", **headers: str
) -> httpx.Response:
    url = f"{mirror.base_url(HHS_SOURCE)}/api/views/ehpz-xc9n/rows.csv?{query}"
    return httpx.get(url, headers=headers, timeout=10)


def dates(body: bytes) -> list[dt.date]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))[1:]
    return [dt.datetime.strptime(r[0], "%B %d, %Y").date() for r in rows if r and r[0]]


def data_lines(real: bytes) -> list[bytes]:
    return [line for line in real.splitlines(keepends=True)[1:] if line != BLANK]


# ------------------------------------------------------------------ as_of filtering


def test_the_last_day_serves_the_whole_real_file(
    mirror: ReplayMirror, real_hhs_bytes: bytes
) -> None:
    response = export(mirror)
    assert response.status_code == 200
    # Every row published: the body is the real file, byte for byte (CRLF, "2,484", blanks).
    assert response.content == real_hhs_bytes
    assert len(dates(response.content)) == 720
    assert response.content.count(BLANK) == 450


def test_a_day_in_the_middle_serves_what_was_published_by_then(
    mirror: ReplayMirror, real_hhs_bytes: bytes
) -> None:
    as_of = dt.date(2025, 6, 17)
    mirror.set_as_of(as_of)
    body = export(mirror).content
    published = [
        line
        for line, day in zip(data_lines(real_hhs_bytes), dates(real_hhs_bytes), strict=True)
        if day < as_of
    ]
    # The header, then the original lines of the published rows, newest first, then the blanks.
    assert body == HEADER + b"".join(published) + BLANK * 450
    served = dates(body)
    assert served == sorted(served, reverse=True)
    assert max(served) == dt.date(2025, 6, 10)  # the copy has no rows for June 11..16
    assert b'"2,511"' in body


def test_the_first_day_and_before(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2023, 1, 13))
    first = export(mirror)
    assert first.content == HEADER + b'"January 12, 2023",33,53,34,"6,566",436\r\n' + BLANK * 450
    assert first.headers["Last-Modified"] == "Fri, 13 Jan 2023 15:00:00 GMT"  # 10:00 EST

    mirror.set_as_of(dt.date(2023, 1, 12))
    before = export(mirror)
    assert (before.status_code, before.content) == (200, HEADER)
    assert "Last-Modified" not in before.headers


# ------------------------------------------------------------------ validators


def test_headers_and_conditional_get(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2025, 6, 17))
    first = export(mirror)
    assert first.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert first.headers["ETag"] == '"' + hashlib.sha256(first.content).hexdigest() + '"'
    # Newest row 2025-06-10, published 2025-06-11 10:00 in New York (EDT, UTC-4).
    assert first.headers["Last-Modified"] == "Wed, 11 Jun 2025 14:00:00 GMT"

    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert export(mirror, **{"If-None-Match": etag}).status_code == 304
    assert export(mirror, **{"If-Modified-Since": last_modified}).status_code == 304
    earlier = "Tue, 10 Jun 2025 14:00:00 GMT"
    assert export(mirror, **{"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match decides when both are sent (RFC 9110): a stale ETag means 200.
    both = export(mirror, **{"If-None-Match": '"stale"', "If-Modified-Since": last_modified})
    assert both.status_code == 200

    mirror.set_as_of(dt.date(2025, 6, 19))  # a new row appeared: the old ETag no longer matches
    newer = export(mirror, **{"If-None-Match": etag})
    assert newer.status_code == 200 and newer.headers["ETag"] != etag


def test_socrata_parameters_are_checked(mirror: ReplayMirror) -> None:
    refused = export(mirror, "accessType=DOWNLOAD&$limit=10")
    assert refused.status_code == 400
    error = refused.json()
    assert error["error"] is True and "$limit" in error["message"]
    assert export(mirror, "").status_code == 200
    with_bom = export(mirror, "accessType=DOWNLOAD&bom=true")
    assert with_bom.content.startswith(b"\xef\xbb\xbfDate,")


def test_landing_page_links_the_export_and_other_paths_are_404(mirror: ReplayMirror) -> None:
    page = httpx.get(mirror.base_url(HHS_SOURCE) + LANDING, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    href = f'href="/{HHS_SOURCE}/api/views/ehpz-xc9n/rows.csv?accessType=DOWNLOAD"'
    assert href in page.text
    assert "does not include children from Mexico" in page.text
    linked = httpx.get(mirror.url + f"/{HHS_SOURCE}{EXPORT}", timeout=10)
    assert linked.status_code == 200
    for path in (f"/{HHS_SOURCE}/nothing", "/elsewhere/api/views/ehpz-xc9n/rows.csv"):
        assert httpx.get(mirror.url + path, timeout=10).status_code == 404


# ------------------------------------------------------------------ control endpoints


def test_control_endpoints(mirror: ReplayMirror) -> None:
    control = mirror.url + "/_replay"
    status = httpx.get(control + "/status", timeout=10).json()
    assert status["as_of"] == "2025-12-22" and status["faults"] == {}

    moved = httpx.post(control + "/as_of", content=b"2025-06-17\n", timeout=10)
    assert moved.status_code == 200 and mirror.as_of == dt.date(2025, 6, 17)
    assert httpx.post(control + "/as_of", content=b"17/06/2025", timeout=10).status_code == 400

    set_fault = httpx.post(f"{control}/fault/{HHS_SOURCE}", content=b"http_500", timeout=10)
    assert set_fault.json()["faults"] == {HHS_SOURCE: {"mode": "http_500", "remaining": None}}
    assert export(mirror).status_code == 500
    httpx.post(f"{control}/fault/{HHS_SOURCE}", content=b"", timeout=10)
    assert mirror.faults == {} and export(mirror).status_code == 200

    once = httpx.post(f"{control}/fault/{HHS_SOURCE}?times=1", content=b"http_500", timeout=10)
    assert once.status_code == 200
    assert [export(mirror).status_code for _ in range(2)] == [500, 200]

    assert (
        httpx.post(f"{control}/fault/{HHS_SOURCE}", content=b"meteor", timeout=10).status_code
        == 400
    )
    assert httpx.post(f"{control}/fault/cbp_x", content=b"empty", timeout=10).status_code == 404


# ------------------------------------------------------------------ fault modes


def test_fault_html_error_and_empty(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "html_error")
    page = export(mirror)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.content.startswith(b"<!DOCTYPE html>")
    mirror.set_fault(HHS_SOURCE, "empty")
    empty = export(mirror)
    assert (empty.status_code, empty.content) == (200, b"")


def test_fault_truncated(mirror: ReplayMirror, real_hhs_bytes: bytes) -> None:
    mirror.set_fault(HHS_SOURCE, "truncated")
    body = export(mirror).content
    assert real_hhs_bytes.startswith(body) and len(body) < len(real_hhs_bytes)
    assert not body.endswith(b"\n")
    last = body.splitlines()[-1]
    assert last.startswith(b'"') and len(next(csv.reader([last.decode()]))) < 6


def test_fault_renamed_column(mirror: ReplayMirror, real_hhs_bytes: bytes) -> None:
    mirror.set_fault(HHS_SOURCE, "renamed_column")
    body = export(mirror).content
    assert body == real_hhs_bytes.replace(b"Children in HHS Care", b"Children in ORR Care", 1)
    assert b"Children in ORR Care" in body.splitlines()[0]


def test_fault_http_status(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "http_500")
    assert export(mirror).status_code == 500
    # Availability faults take the whole site down, landing page included.
    assert httpx.get(mirror.base_url(HHS_SOURCE) + LANDING, timeout=10).status_code == 500
    mirror.set_fault(HHS_SOURCE, "http_429")
    limited = export(mirror)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")


def test_fault_oversize(mirror: ReplayMirror) -> None:
    mirror.set_fault(HHS_SOURCE, "oversize")
    with httpx.stream("GET", mirror.base_url(HHS_SOURCE) + EXPORT, timeout=10) as response:
        assert response.status_code == 200 and "Content-Length" not in response.headers
        body = response.read()
    assert len(body) > 5_000_000
    assert body.startswith(HEADER + b'"December 21, 2025",6,18,11,"2,484",14\r\n')


def test_fault_slow(mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "SLOW_SECONDS", 0.4)
    mirror.set_fault(HHS_SOURCE, "slow")
    started = time.monotonic()
    response = export(mirror)
    assert response.status_code == 200 and response.content.startswith(HEADER)
    assert 0.4 <= time.monotonic() - started < 3.0


def test_every_fault_mode_is_covered() -> None:
    # empty_page is exercised by tests/replay_sites/test_segob_site.py (SEGOB's listing pages).
    assert set(FAULT_MODES) == {
        "html_error",
        "empty",
        "truncated",
        "renamed_column",
        "http_500",
        "http_429",
        "oversize",
        "slow",
        "empty_page",
    }


def test_stop_does_not_wait_for_a_slow_answer() -> None:
    mirror = ReplayMirror(dt.date(2025, 6, 17)).start()
    mirror.set_fault(HHS_SOURCE, "slow")  # the real 3 s
    url = mirror.base_url(HHS_SOURCE) + EXPORT
    outcome: list[str] = []

    def client() -> None:
        try:
            httpx.get(url, timeout=5)
            outcome.append("answered")
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    waiting = threading.Thread(target=client, daemon=True)
    waiting.start()
    # The request has reached the mirror and is being held back: now stop it.
    assert mirror.wait_until_holding(1, timeout=5)
    started = time.monotonic()
    mirror.stop()
    assert time.monotonic() - started < 1.5
    waiting.join(timeout=5)
    # The pending request is dropped (connection closed), not answered 3 s later.
    assert outcome == ["RemoteProtocolError"]


def test_env_lines_point_sources_at_the_mirror(
    mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    from returnwatch import config

    assert mirror.env() == {
        f"RETURNWATCH_{source.upper()}_BASE_URL": f"http://127.0.0.1:{mirror.port}/{source}"
        for source in (
            "hhs_uc_daily",
            "hhs_uc_monthly",
            "cbp_encounters_monthly",
            "segob_bulletin_monthly",
        )
    }
    for name, value in mirror.env().items():
        monkeypatch.setenv(name, value)
    cfg = config.source(HHS_SOURCE)
    assert httpx.get(cfg.url, params=cfg.params, timeout=10).status_code == 200
    assert "127.0.0.1" in cfg.effective_allowed_hosts


def test_publish_at_shows_new_files_from_a_wall_clock_instant(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2023, 1, 12))
    now = dt.datetime.now(dt.UTC)
    # An instant still to come: the site is unchanged and nothing has been published yet.
    mirror.publish_at(dt.date(2023, 1, 13), at=now + dt.timedelta(days=1))
    assert (mirror.as_of, mirror.published_at) == (dt.date(2023, 1, 12), None)
    assert export(mirror).content == HEADER
    # An instant that has passed: the first request after it sees the new day's file.
    mirror.publish_at(dt.date(2023, 1, 13), at=now)
    assert export(mirror).content.startswith(HEADER + b'"January 12, 2023"')
    assert (mirror.as_of, mirror.published_at) == (dt.date(2023, 1, 13), now)
    # set_as_of cancels a move still to come.
    mirror.publish_at(dt.date(2025, 6, 17), at=now + dt.timedelta(days=1))
    mirror.set_as_of(dt.date(2023, 1, 12))
    assert mirror.status()["as_of"] == "2023-01-12"
    with pytest.raises(ValueError, match="aware"):
        mirror.publish_at(dt.date(2023, 1, 13), at=dt.datetime(2023, 1, 13))
