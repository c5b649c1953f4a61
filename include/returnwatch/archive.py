"""The raw archive: every file returnwatch ever received, kept as received, plus its manifest.

What this module owns:

- **blobs**, content-addressed (``<root>/<source>/<sha[:2]>/<sha256><ext>``), written once,
  atomically, never rewritten: every row's ``source_file`` leads back here;
- **the manifest**, one append-only JSON-lines file per source, one row per *check*
  (``new``, ``unchanged``, ``not_modified``, ``failed``) plus ``refused`` verdicts on files
  (``record_refusal``; ``entries()`` leaves them out, ``refusals()`` lists them).

Appends are serialised with ``fcntl.flock``; readers skip a torn last line. The outcomes and
why: docs/internals.md#archive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import logging
import mimetypes
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from returnwatch import settings

log = logging.getLogger(__name__)

Outcome = Literal["new", "unchanged", "not_modified", "failed", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("new", "unchanged", "not_modified", "failed", "refused")
# Outcomes of a check of the publisher (a ``refused`` row is a verdict on a stored file).
CHECK_OUTCOMES: frozenset[str] = frozenset({"new", "unchanged", "not_modified", "failed"})

MANIFEST_NAME = "manifest.jsonl"

# Source names become folder names: keep them to what config/sources.yaml uses, so a bad name
# can never point outside the archive ("../x").
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXT = re.compile(r"^\.[A-Za-z0-9]{1,8}$")

# Content types we know the right file extension for. mimetypes fills the rest, but its answers
# vary by platform (text/csv is missing on some), so the common ones are fixed here.
_EXT_BY_CONTENT_TYPE = {
    "text/csv": ".csv",
    "application/csv": ".csv",
    "text/html": ".html",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls",
    "application/zip": ".zip",
    "text/plain": ".txt",
}


# Sources whose stale temporary files this process has already swept (see remove_stale_temps).
_SWEPT: set[tuple[Path, str]] = set()


class ArchiveError(RuntimeError):
    """The archive cannot do what was asked (missing blob, corrupted blob, bad argument)."""


@dataclass(frozen=True)
class ManifestEntry:
    """One row of a source's manifest: one check of one URL, whatever its outcome."""

    source: str
    url: str
    outcome: Outcome
    sha256: str | None
    size: int | None
    # Wall clock (aware, UTC) when the bytes arrived or the check failed.
    fetched_at: dt.datetime
    # Logical time of the pipeline run that did the check (Airflow's logical date): in replay
    # this is the replayed day, in production about the wall clock. Freshness uses this one.
    run_at: dt.datetime
    # Publication date of the file (from Last-Modified, or the run's date); None when failed.
    vintage: dt.date | None
    http_status: int | None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    error: str | None = None
    # File extension of the blob (".csv"), kept so the blob's path is known without a lookup.
    ext: str = ""
    # The file name the server gave the file (Content-Disposition), a label only: it decides
    # whether the file is constructed (returnwatch.provenance), never where a blob is written.
    served_name: str | None = None

    @property
    def path(self) -> PurePosixPath | None:
        """The blob's path *relative to the archive root* (``Archive.blob_path`` gives the
        absolute one), or None for a failed check."""
        if self.sha256 is None:
            return None
        return PurePosixPath(self.source, self.sha256[:2], self.sha256 + self.ext)

    def to_json(self) -> str:
        row: dict[str, Any] = dataclasses.asdict(self)
        row["fetched_at"] = self.fetched_at.isoformat()
        row["run_at"] = self.run_at.isoformat()
        row["vintage"] = self.vintage.isoformat() if self.vintage else None
        return json.dumps(row, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ManifestEntry:
        row = json.loads(text)
        if not isinstance(row, dict):
            raise TypeError(f"manifest row is not a JSON object: {text[:80]!r}")
        # Unknown keys are ignored so that a newer writer's rows stay readable by older code.
        known = {f.name for f in dataclasses.fields(cls)}
        row = {k: v for k, v in row.items() if k in known}
        row["fetched_at"] = dt.datetime.fromisoformat(row["fetched_at"])
        row["run_at"] = dt.datetime.fromisoformat(row["run_at"])
        row["vintage"] = dt.date.fromisoformat(row["vintage"]) if row.get("vintage") else None
        entry = cls(**row)
        if entry.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {entry.outcome!r}")
        return entry


class Archive:
    """Content-addressed store of received files plus one manifest per source."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else settings.archive_dir()

    # ---------------------------------------------------------------- writing

    def store(
        self,
        source: str,
        url: str,
        content: bytes,
        *,
        fetched_at: dt.datetime,
        run_at: dt.datetime,
        vintage: dt.date | None,
        http_status: int | None = 200,
        etag: str | None = None,
        last_modified: str | None = None,
        content_type: str | None = None,
        ext: str | None = None,
        served_name: str | None = None,
    ) -> ManifestEntry:
        """Keep ``content`` (if not kept already) and append a ``new`` or ``unchanged`` row.

        ``ext`` wins when given; otherwise it comes from ``content_type``, then from the URL's
        file name, else ``.bin``. Identical bytes always share one blob, whatever their ext.
        """
        _check_source(source)
        _check_aware(fetched_at=fetched_at, run_at=run_at)
        fetched_at = fetched_at.astimezone(dt.UTC)
        sha = hashlib.sha256(content).hexdigest()
        with self._locked_manifest(source) as manifest:
            previous = _read_entries(manifest, self._manifest_path(source))
            seen = {e.sha256 for e in previous if e.sha256}
            latest = next((e for e in reversed(previous) if e.sha256), None)
            existing = self._find_blob(source, sha)
            if existing is None:
                if (self.root, source) not in _SWEPT:  # once per process and archive
                    self.remove_stale_temps(source)
                    _SWEPT.add((self.root, source))
                chosen_ext = _choose_ext(ext, content_type, url)
                self._write_blob(source, sha, chosen_ext, content)
            else:
                chosen_ext = existing.name[len(sha) :]
            outcome: Outcome = "unchanged" if sha in seen else "new"
            if outcome == "unchanged" and latest is not None and latest.sha256 != sha:
                log.warning(
                    "%s: received the bytes of an older file (sha256 %s), not of the latest "
                    "(sha256 %s): did the publisher go back to an earlier version?",
                    source,
                    sha[:12],
                    latest.sha256[:12] if latest.sha256 else None,
                )
            entry = ManifestEntry(
                source=source,
                url=url,
                outcome=outcome,
                sha256=sha,
                size=len(content),
                fetched_at=fetched_at,
                run_at=run_at,
                vintage=vintage,
                http_status=http_status,
                etag=etag,
                last_modified=last_modified,
                content_type=content_type,
                error=None,
                ext=chosen_ext,
                served_name=served_name,
            )
            _append(manifest, entry)
        return entry

    def record_not_modified(
        self,
        source: str,
        url: str,
        *,
        fetched_at: dt.datetime,
        run_at: dt.datetime,
        etag: str | None = None,
        last_modified: str | None = None,
        http_status: int = 304,
    ) -> ManifestEntry:
        """Append a ``not_modified`` row pointing at the latest file fetched from ``url`` (the
        server said 304). A source with several files (one per link) has one latest file per
        URL; a source's only file may also have been stored by hand, which any URL can match.

        The server's validators are kept when it sent them (a 304 may carry a fresher ETag);
        otherwise the latest file's are repeated, so the next conditional GET can use this row.
        """
        _check_source(source)
        _check_aware(fetched_at=fetched_at, run_at=run_at)
        fetched_at = fetched_at.astimezone(dt.UTC)
        with self._locked_manifest(source) as manifest:
            previous = _read_entries(manifest, self._manifest_path(source))
            latest = next((e for e in reversed(previous) if e.sha256 and e.url == url), None)
            if latest is None:
                latest = next((e for e in reversed(previous) if e.sha256), None)
            if latest is None:
                # A 304 answers a conditional GET, whose validators came from a stored file.
                raise ArchiveError(
                    f"{source}: got 304 Not Modified for {url} but the archive holds no file "
                    "for this source to point at"
                )
            entry = ManifestEntry(
                source=source,
                url=url,
                outcome="not_modified",
                sha256=latest.sha256,
                size=latest.size,
                fetched_at=fetched_at,
                run_at=run_at,
                vintage=latest.vintage,
                http_status=http_status,
                etag=etag or latest.etag,
                last_modified=last_modified or latest.last_modified,
                content_type=latest.content_type,
                error=None,
                ext=latest.ext,
                served_name=latest.served_name,
            )
            _append(manifest, entry)
        return entry

    def record_failure(
        self,
        source: str,
        url: str,
        *,
        fetched_at: dt.datetime,
        run_at: dt.datetime,
        error: str,
        http_status: int | None = None,
    ) -> ManifestEntry:
        """Append a ``failed`` row: the check happened, nothing usable arrived."""
        _check_source(source)
        _check_aware(fetched_at=fetched_at, run_at=run_at)
        fetched_at = fetched_at.astimezone(dt.UTC)
        entry = ManifestEntry(
            source=source,
            url=url,
            outcome="failed",
            sha256=None,
            size=None,
            fetched_at=fetched_at,
            run_at=run_at,
            vintage=None,
            http_status=http_status,
            error=error,
        )
        with self._locked_manifest(source) as manifest:
            _append(manifest, entry)
        return entry

    def record_refusal(
        self, source: str, sha256: str, *, url: str, run_at: dt.datetime, error: str
    ) -> ManifestEntry:
        """Append a ``refused`` row: the stored file ``sha256`` was judged unusable (``error``).

        The file must already be in the archive: nothing is judged before it is kept.
        """
        _check_source(source)
        _check_aware(run_at=run_at)
        blob = self._find_blob(source, sha256) if _SHA256.match(sha256) else None
        if blob is None:
            raise ArchiveError(
                f"{source}: cannot record a refusal of {sha256!r}: no such file in the archive"
            )
        entry = ManifestEntry(
            source=source,
            url=url,
            outcome="refused",
            sha256=sha256,
            size=blob.stat().st_size,
            fetched_at=dt.datetime.now(dt.UTC),
            run_at=run_at,
            vintage=None,
            http_status=None,
            error=error[:2000],
            ext=blob.name[len(sha256) :],
        )
        with self._locked_manifest(source) as manifest:
            _append(manifest, entry)
        return entry

    def store_manual(
        self, source: str, path: Path, *, vintage: dt.date, run_at: dt.datetime
    ) -> ManifestEntry:
        """Archive a file somebody downloaded by hand (url ``manual:<filename>``).

        Publishers sometimes block robots or move a file behind a form; a person can still
        download it, and this keeps it in the same store with the same guarantees.
        """
        path = Path(path)
        content = path.read_bytes()
        content_type, _ = mimetypes.guess_type(path.name)
        suffix = path.suffix if _EXT.match(path.suffix or "") else None
        return self.store(
            source,
            f"manual:{path.name}",
            content,
            fetched_at=dt.datetime.now(dt.UTC),
            run_at=run_at,
            vintage=vintage,
            http_status=None,
            content_type=content_type,
            ext=suffix,
        )

    # ---------------------------------------------------------------- reading

    def entries(
        self, source: str, *, limit: int | None = None, include_refusals: bool = False
    ) -> list[ManifestEntry]:
        """The source's checks, oldest first (the last ``limit`` rows when given); with
        ``include_refusals`` also the ``refused`` verdicts, in the order they were written."""
        _check_source(source)
        path = self._manifest_path(source)
        if not path.exists():
            return []
        with open(path, "rb") as handle:
            # A shared lock so we never read while a writer is mid-append (which would look like
            # a torn line); writers hold it for milliseconds.
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                rows = _read_entries(handle, path, include_refusals=include_refusals)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        if limit is None:
            return rows
        return rows[-limit:] if limit > 0 else []

    def refusals(self, source: str) -> list[ManifestEntry]:
        """The source's ``refused`` rows, oldest first."""
        return [e for e in self.entries(source, include_refusals=True) if e.outcome == "refused"]

    def latest_file(self, source: str) -> ManifestEntry | None:
        """The most recent row that points at a file (new, unchanged or not_modified)."""
        return next((e for e in reversed(self.entries(source)) if e.sha256), None)

    def blob_path(self, entry: ManifestEntry) -> Path:
        """Absolute path of an entry's blob."""
        if entry.path is None:
            raise ArchiveError(f"{entry.source}: a failed check ({entry.url}) has no file")
        return self.root / entry.path

    def read(self, sha256: str, source: str) -> bytes:
        """The bytes stored under ``sha256``, checked against their address on the way out."""
        _check_source(source)
        if not _SHA256.match(sha256):
            raise ArchiveError(f"{source}: {sha256!r} is not a sha256 hex digest")
        blob = self._find_blob(source, sha256)
        if blob is None:
            raise ArchiveError(f"{source}: no file with sha256 {sha256} in {self.root}")
        content = blob.read_bytes()
        actual = hashlib.sha256(content).hexdigest()
        if actual != sha256:
            # Disk corruption or a hand edit: never hand wrong bytes to a parser silently.
            raise ArchiveError(f"{source}: {blob} is corrupted (its content hashes to {actual})")
        return content

    # ---------------------------------------------------------------- internals

    def _manifest_path(self, source: str) -> Path:
        return self.root / source / MANIFEST_NAME

    def _find_blob(self, source: str, sha: str) -> Path | None:
        shard = self.root / source / sha[:2]
        if not shard.is_dir():
            return None
        # A blob is <sha><ext>; temporary files start with "." and never match.
        for candidate in sorted(shard.glob(sha + "*")):
            rest = candidate.name[len(sha) :]
            if rest == "" or _EXT.match(rest):
                return candidate
        return None

    def remove_stale_temps(self, source: str) -> list[Path]:
        """Remove temporary blob files a killed writer left in ``source``'s shards.

        Call it holding the source's manifest lock: blobs are only written under that lock, so
        any temporary file found then belongs to a writer that is gone.
        """
        removed = []
        for tmp in (self.root / source).glob("??/.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
        if removed:
            log.warning(
                "%s: removed %d temporary file(s) left by an interrupted write: %s",
                source,
                len(removed),
                ", ".join(p.name for p in removed),
            )
        return removed

    def _write_blob(self, source: str, sha: str, ext: str, content: bytes) -> Path:
        shard = self.root / source / sha[:2]
        shard.mkdir(parents=True, exist_ok=True)
        final = shard / (sha + ext)
        # Write to a temporary file in the same folder, then rename: a reader (or a crash) can
        # never see half a file under its final name.
        fd, tmp = tempfile.mkstemp(prefix=f".{sha[:12]}.", suffix=".tmp", dir=shard)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o444)  # read-only: the archive is append-only by intent
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(shard)
        return final

    @contextlib.contextmanager
    def _locked_manifest(self, source: str) -> Iterator[IO[bytes]]:
        path = self._manifest_path(source)
        path.parent.mkdir(parents=True, exist_ok=True)
        # "a+b": appends always go to the end (O_APPEND) and we can still read the file.
        with open(path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _read_entries(
    handle: IO[bytes], path: Path, *, include_refusals: bool = False
) -> list[ManifestEntry]:
    handle.seek(0)
    rows: list[ManifestEntry] = []
    # Iterating a file is bounded by its size; each line is one row.
    for number, raw in enumerate(handle, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            entry = ManifestEntry.from_json(line.decode("utf-8"))
        except (ValueError, KeyError, TypeError) as exc:
            # A torn line from a writer that died mid-append: skip it, say so, keep going.
            log.warning("%s line %d: unreadable manifest row skipped (%s)", path, number, exc)
            continue
        if include_refusals or entry.outcome in CHECK_OUTCOMES:
            rows.append(entry)
    return rows


def _append(handle: IO[bytes], entry: ManifestEntry) -> None:
    handle.seek(0, os.SEEK_END)
    prefix = b""
    if handle.tell() > 0:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) != b"\n":
            # The previous writer died mid-line: end that line so ours stays parseable.
            prefix = b"\n"
    # One write call per row, so even without the lock a row would not interleave with another.
    os.write(handle.fileno(), prefix + entry.to_json().encode("utf-8") + b"\n")
    os.fsync(handle.fileno())


def _choose_ext(ext: str | None, content_type: str | None, url: str) -> str:
    if ext:
        ext = ext if ext.startswith(".") else "." + ext
        if not _EXT.match(ext):
            raise ArchiveError(f"file extension {ext!r} is not a short alphanumeric suffix")
        return ext.lower()
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        guessed = _EXT_BY_CONTENT_TYPE.get(mime) or mimetypes.guess_extension(mime)
        if guessed and _EXT.match(guessed):
            return guessed
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if _EXT.match(suffix):
        return suffix
    return ".bin"


def _check_source(source: str) -> None:
    if not _SOURCE_NAME.match(source):
        raise ArchiveError(
            f"source name {source!r} is not a key like those in config/sources.yaml "
            "(lower case letters, digits, underscores)"
        )


def _check_aware(**stamps: dt.datetime) -> None:
    for name, value in stamps.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ArchiveError(f"{name} must be a time-zone aware datetime, got {value!r}")


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable on POSIX; harmless where directories cannot be opened.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
