"""The raw archive: content addressing, one manifest row per check, and crash/concurrency safety."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from returnwatch import archive as archive_module
from returnwatch.archive import Archive, ArchiveError, ManifestEntry

SOURCE = "hhs_uc_daily"
URL = "https://healthdata.gov/api/views/ehpz-xc9n/rows.csv?accessType=DOWNLOAD"
FETCHED = dt.datetime(2025, 6, 17, 14, 5, tzinfo=dt.UTC)
RUN = dt.datetime(2025, 6, 17, 14, 0, tzinfo=dt.UTC)
VINTAGE = dt.date(2025, 6, 17)


def store(archive: Archive, content: bytes, **overrides: object) -> ManifestEntry:
    kwargs: dict[str, object] = {
        "fetched_at": FETCHED,
        "run_at": RUN,
        "vintage": VINTAGE,
        "content_type": "text/csv; charset=utf-8",
    }
    kwargs.update(overrides)
    return archive.store(SOURCE, URL, content, **kwargs)  # type: ignore[arg-type]


def blobs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.jsonl")


def test_blob_is_stored_under_its_sha256(tmp_path: Path, real_hhs_bytes: bytes) -> None:
    archive = Archive(tmp_path)
    entry = store(archive, real_hhs_bytes)

    sha = hashlib.sha256(real_hhs_bytes).hexdigest()
    assert entry.outcome == "new"
    assert entry.sha256 == sha and entry.size == len(real_hhs_bytes)
    assert str(entry.path) == f"{SOURCE}/{sha[:2]}/{sha}.csv"
    assert archive.blob_path(entry) == tmp_path / SOURCE / sha[:2] / f"{sha}.csv"
    assert archive.blob_path(entry).read_bytes() == real_hhs_bytes
    assert archive.read(sha, SOURCE) == real_hhs_bytes
    assert blobs(tmp_path) == [archive.blob_path(entry)]


def test_same_bytes_twice_is_one_blob_and_two_checks(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    first = store(archive, b"Date,x\r\n")
    later = dt.datetime(2025, 6, 18, 14, 5, tzinfo=dt.UTC)
    second = store(archive, b"Date,x\r\n", fetched_at=later, run_at=later)

    assert [first.outcome, second.outcome] == ["new", "unchanged"]
    assert first.sha256 == second.sha256
    assert len(blobs(tmp_path)) == 1
    assert archive.entries(SOURCE) == [first, second]
    assert archive.latest_file(SOURCE) == second


def test_blob_is_never_rewritten(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    entry = store(archive, b"a,b\n")
    before = os.stat(archive.blob_path(entry))
    # Same bytes announced with another content type: the existing blob (and its ext) is reused.
    again = store(archive, b"a,b\n", content_type="text/plain")
    after = os.stat(archive.blob_path(again))
    assert again.path == entry.path
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_older_bytes_again_are_unchanged_and_flagged(tmp_path: Path, caplog) -> None:
    archive = Archive(tmp_path)
    store(archive, b"version A\n")
    store(archive, b"version B\n")
    back = store(archive, b"version A\n")
    # Documented rule: "new" means never stored for this source before.
    assert back.outcome == "unchanged"
    assert "older file" in caplog.text


def test_ext_from_content_type_url_or_default(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    assert store(archive, b"<html>", content_type="text/html; charset=utf-8").ext == ".html"
    assert store(archive, b"1", content_type=None).ext == ".csv"  # from the URL's rows.csv
    assert store(archive, b"2", content_type="application/x-unknown-thing").ext == ".csv"
    assert store(archive, b"3", ext="xlsx").ext == ".xlsx"
    odd = archive.store(
        SOURCE, "https://example.org/download", b"4", fetched_at=FETCHED, run_at=RUN, vintage=None
    )
    assert odd.ext == ".bin"


def test_write_is_atomic_a_failed_rename_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    archive = Archive(tmp_path)

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(archive_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store(archive, b"half a file?\n")
    # No blob under its final name, no temporary file left over, no manifest row.
    assert blobs(tmp_path) == []
    assert archive.entries(SOURCE) == []


def test_torn_last_line_is_skipped_and_the_next_row_stays_whole(tmp_path: Path, caplog) -> None:
    archive = Archive(tmp_path)
    first = store(archive, b"one\n")
    manifest = tmp_path / SOURCE / "manifest.jsonl"
    with open(manifest, "ab") as handle:  # a writer killed in the middle of its row
        handle.write(b'{"source": "hhs_uc_daily", "url": "https://heal')

    assert archive.entries(SOURCE) == [first]
    assert "unreadable manifest row skipped" in caplog.text

    second = store(archive, b"two\n")
    assert archive.entries(SOURCE) == [first, second]
    lines = manifest.read_bytes().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["sha256"] == second.sha256


def test_record_not_modified_points_at_latest_file(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    with pytest.raises(ArchiveError, match="no file"):
        archive.record_not_modified(SOURCE, URL, fetched_at=FETCHED, run_at=RUN)
    stored = store(archive, b"x\n", etag='"abc"', last_modified="Tue, 17 Jun 2025 14:00:00 GMT")
    entry = archive.record_not_modified(SOURCE, URL, fetched_at=FETCHED, run_at=RUN)
    assert entry.outcome == "not_modified" and entry.http_status == 304
    assert (entry.sha256, entry.vintage, entry.path) == (stored.sha256, stored.vintage, stored.path)
    assert entry.etag == '"abc"'  # kept for the next conditional GET
    assert archive.latest_file(SOURCE) == entry


def test_not_modified_points_at_the_file_of_its_own_url(tmp_path: Path) -> None:
    # A multi-file source (one SEGOB workbook per year): a 304 for the 2019 workbook must not
    # point at the 2024 workbook fetched after it.
    archive = Archive(tmp_path)
    url_2019, url_2024 = URL + "?year=2019", URL + "?year=2024"
    first = archive.store(
        SOURCE, url_2019, b"2019\n", fetched_at=FETCHED, run_at=RUN, vintage=VINTAGE
    )
    archive.store(SOURCE, url_2024, b"2024\n", fetched_at=FETCHED, run_at=RUN, vintage=VINTAGE)
    entry = archive.record_not_modified(SOURCE, url_2019, fetched_at=FETCHED, run_at=RUN)
    assert entry.sha256 == first.sha256 and entry.url == url_2019


def test_record_failure_has_no_file(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    stored = store(archive, b"x\n")
    failed = archive.record_failure(
        SOURCE,
        URL,
        fetched_at=FETCHED,
        run_at=RUN,
        error="timeout: no answer within 30 s",
        http_status=None,
    )
    assert (failed.outcome, failed.sha256, failed.path, failed.vintage) == (
        "failed",
        None,
        None,
        None,
    )
    assert archive.entries(SOURCE)[-1] == failed
    assert archive.latest_file(SOURCE) == stored
    with pytest.raises(ArchiveError, match="no file"):
        archive.blob_path(failed)


def test_manual_store(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    download = tmp_path / "HHS_UAC_export.csv"
    download.write_bytes(b"Date,Children in HHS Care\r\n")
    entry = archive.store_manual(SOURCE, download, vintage=dt.date(2025, 1, 2), run_at=RUN)
    assert entry.url == "manual:HHS_UAC_export.csv"
    assert (entry.outcome, entry.http_status, entry.ext) == ("new", None, ".csv")
    assert entry.vintage == dt.date(2025, 1, 2)
    assert entry.fetched_at.tzinfo is not None
    assert archive.read(entry.sha256 or "", SOURCE) == download.read_bytes()


def test_entry_json_round_trip_and_forward_compatibility(tmp_path: Path) -> None:
    entry = store(
        Archive(tmp_path),
        b"x\n",
        etag='"e"',
        run_at=dt.datetime(2025, 6, 17, 10, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
    )
    assert ManifestEntry.from_json(entry.to_json()) == entry
    row = json.loads(entry.to_json())
    row["added_by_a_newer_version"] = 1
    assert ManifestEntry.from_json(json.dumps(row)) == entry


def test_limit_and_default_root(data_dir: Path) -> None:
    archive = Archive()
    assert archive.root == data_dir / "archive"
    for n in range(5):
        store(archive, f"{n}\n".encode())
    everything = archive.entries(SOURCE)
    assert len(everything) == 5
    assert archive.entries(SOURCE, limit=2) == everything[-2:]
    assert archive.entries("cbp_encounters") == []


def test_corrupted_blob_is_refused(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    entry = store(archive, b"good\n")
    path = archive.blob_path(entry)
    path.chmod(0o644)
    path.write_bytes(b"evil\n")
    with pytest.raises(ArchiveError, match="corrupted"):
        archive.read(entry.sha256 or "", SOURCE)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    with pytest.raises(ArchiveError, match="aware"):
        store(archive, b"x", fetched_at=dt.datetime(2025, 6, 17, 14))
    with pytest.raises(ArchiveError, match="source name"):
        archive.store("../etc", URL, b"x", fetched_at=FETCHED, run_at=RUN, vintage=None)
    with pytest.raises(ArchiveError, match="sha256"):
        archive.read("../../x", SOURCE)


# ------------------------------------------------------------------------- concurrency

WORKERS = 4
ROWS_EACH = 25
DISTINCT = 10  # workers store overlapping contents, so new/unchanged must be decided under lock


def _worker(root: str, worker: int) -> None:
    archive = Archive(Path(root))
    for i in range(ROWS_EACH):
        content = f"content {(worker * ROWS_EACH + i) % DISTINCT}\n".encode()
        archive.store(SOURCE, URL, content, fetched_at=FETCHED, run_at=RUN, vintage=VINTAGE)


def _check_concurrent_result(root: Path) -> None:
    entries = Archive(root).entries(SOURCE)
    assert len(entries) == WORKERS * ROWS_EACH
    assert sum(e.outcome == "new" for e in entries) == DISTINCT
    assert len(blobs(root)) == DISTINCT
    assert len((root / SOURCE / "manifest.jsonl").read_bytes().splitlines()) == len(entries)


def test_concurrent_processes_lose_no_rows(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    processes = [ctx.Process(target=_worker, args=(str(tmp_path), w)) for w in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    _check_concurrent_result(tmp_path)


def test_concurrent_threads_lose_no_rows(tmp_path: Path) -> None:
    threads = [threading.Thread(target=_worker, args=(str(tmp_path), w)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    _check_concurrent_result(tmp_path)


def test_a_refusal_is_a_verdict_row_on_a_kept_file_not_a_check(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    page = store(archive, b"<html>maintenance</html>", content_type="text/html")
    refusal = archive.record_refusal(
        SOURCE, page.sha256, url=URL, run_at=RUN, error="layout_changed: an HTML page"
    )
    assert (refusal.outcome, refusal.sha256, refusal.size, refusal.ext) == (
        "refused",
        page.sha256,
        page.size,
        ".html",
    )
    # Checks (what freshness counts) are unchanged; the verdict is listed on its own.
    assert [e.outcome for e in archive.entries(SOURCE)] == ["new"]
    assert archive.refusals(SOURCE) == [refusal]
    assert [e.outcome for e in archive.entries(SOURCE, include_refusals=True)] == ["new", "refused"]
    # The same bytes again are still "unchanged", and a 304 still points at the check's row.
    assert store(archive, b"<html>maintenance</html>").outcome == "unchanged"
    assert (
        archive.record_not_modified(SOURCE, URL, fetched_at=FETCHED, run_at=RUN).sha256
        == page.sha256
    )
    with pytest.raises(ArchiveError, match="no such file"):
        archive.record_refusal(SOURCE, "0" * 64, url=URL, run_at=RUN, error="x")


def test_temporary_files_of_a_killed_writer_are_removed_by_the_next_write(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(archive_module, "_SWEPT", set())
    shard = tmp_path / SOURCE / "ab"
    shard.mkdir(parents=True)
    stale = shard / ".abcdef012345.k3j2.tmp"  # what mkstemp left when the writer was killed
    stale.write_bytes(b"half a file")
    entry = store(Archive(tmp_path), b"a,b\n1,2\n")
    assert not stale.exists()
    assert blobs(tmp_path) == [tmp_path / entry.path]


def test_the_served_name_is_kept_in_the_manifest_and_never_names_the_blob(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    name = "../../BDSIOMR_PUB_2024_UPMRIP_constructed.csv"  # a label, even when odd
    entry = store(archive, b"FEC_REP,EDA\r\n", served_name=name)
    assert archive.blob_path(entry) == tmp_path / SOURCE / entry.sha256[:2] / (
        entry.sha256 + entry.ext
    )
    [row] = archive.entries(SOURCE)
    assert row.served_name == name
    # A 304 is the same file: it keeps the name the file was served under.
    again = archive.record_not_modified(SOURCE, URL, fetched_at=FETCHED, run_at=RUN)
    assert again.served_name == name
    # Rows written before the field existed still read (served_name None).
    old = json.loads(row.to_json())
    del old["served_name"]
    assert ManifestEntry.from_json(json.dumps(old)).served_name is None
