"""The steps that take one source's file from the publisher into ``raw.*``.

fetch → parse → validate → load: plain functions taking and returning small JSON-able dicts,
so a DAG task is a one-line wrapper, the CLI's manual ingest runs the same code and tests need
no Airflow. Parsed rows travel between steps as Parquet
(``data/parsed/<source>/<sha256>.parquet``), not through XCom.

Guarantees: raw bytes archived first; a bad file raises ``SourceFileError`` (source, file,
row, expectation) and leaves the warehouse unchanged; a file is loaded at most once; a file
received but not loaded is parsed again next run. Details: docs/internals.md#ingest.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from returnwatch import settings

if TYPE_CHECKING:
    from returnwatch.sources.base import FileKind

log = logging.getLogger(__name__)


def kinds(source: str) -> dict[str, FileKind]:
    """The file layouts a source publishes (its module's ``KINDS``)."""
    from returnwatch import sources

    return sources.module(source).KINDS


def file_kind(source: str, kind: str | None) -> FileKind:
    """One layout of a source; ``None`` means the source's first (main) layout."""
    known = kinds(source)
    if kind is None:
        return next(iter(known.values()))
    try:
        return known[kind]
    except KeyError:
        raise ValueError(f"{source} has no file kind {kind!r}; known: {sorted(known)}") from None


def incident_series(payload: dict[str, Any]) -> str:
    """What a "this file is broken" incident is about: the source for its main file, else the
    source, kind and period (a bad 2019 SEGOB workbook is not resolved by a good 2024 one)."""
    source, kind = payload["source"], payload.get("kind")
    if kind is None or (kind == next(iter(kinds(source))) and not payload.get("period")):
        return source
    return "/".join(p for p in (source, kind, payload.get("period")) if p)


def file_shown(payload: dict[str, Any]) -> str:
    """How errors name a file: as the user gave it (``returnwatch ingest``'s path) or its URL,
    with the start of its sha256 to find it in the archive."""
    given = payload.get("given_as") or payload.get("url")
    sha256 = payload.get("sha256") or ""
    return f"{given} (sha256 {sha256[:12]})" if given else sha256


def parsed_path(source: str, sha256: str) -> Path:
    return settings.data_dir() / "parsed" / source / f"{sha256}.parquet"


# Retention of ``parsed/``: a parsed file only carries rows from the parse task to the validate
# and load tasks of one run. Each parse removes, in its source's folder, parsed files older than
# PARSED_KEEP_DAYS (long after any retry of that run) and temporary files older than
# PARSED_TEMP_STALE_HOURS (left by a killed parse). Nothing is lost: the archive keeps the raw
# file, and a file not yet loaded is parsed again by the next run.
PARSED_KEEP_DAYS = 7
PARSED_TEMP_STALE_HOURS = 6


def prune_parsed(source: str, *, now: float | None = None) -> list[Path]:
    """Apply the retention rule above to ``parsed/<source>/``; returns what was removed."""
    import time

    folder = settings.data_dir() / "parsed" / source
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for entry in folder.iterdir():
        if entry.name.endswith(".tmp"):
            limit = PARSED_TEMP_STALE_HOURS * 3600
        elif entry.suffix == ".parquet":
            limit = PARSED_KEEP_DAYS * 86400
        else:
            continue
        try:
            if now - entry.stat().st_mtime > limit:
                entry.unlink()
                removed.append(entry)
        except FileNotFoundError:
            continue  # another parse pruned it first
    return removed


def configured_file(source: str) -> dict[str, Any]:
    """The one file of a source without discovery (HHS's daily export: every day in one file),
    at its configured address, in the shape ``discover`` lists files in."""
    import httpx

    from returnwatch import config

    cfg = config.source(source)
    return {
        "source": source,
        "url": str(httpx.URL(cfg.url).copy_merge_params(cfg.params)),
        "kind": file_kind(source, None).kind,
        "label": "the export (every day in one file)",
        "period": None,
        "extra": {},
    }


def has_discovery(source: str) -> bool:
    """Whether the source's files are read off its pages (its module has ``discover``)."""
    from returnwatch import sources

    return hasattr(sources.module(source), "discover")


def fetch(source: str, *, run_at: dt.datetime) -> dict[str, Any]:
    """Fetch the source's configured file into the archive. ``to_load`` says whether to go on."""
    return fetch_link(configured_file(source), run_at=run_at)


def discover(source: str, *, run_at: dt.datetime) -> list[dict[str, Any]]:
    """The files a source publishes now: read off its pages (its module's ``discover``), or
    the one configured file of a source without discovery (no request is made for it)."""
    from returnwatch import config
    from returnwatch.archive import Archive
    from returnwatch.fetch import FetchError, page_getter
    from returnwatch.sources.base import discover as read_pages

    if not has_discovery(source):
        return [configured_file(source)]
    cfg = config.source(source)
    try:
        links = read_pages(
            source, page_getter(cfg), landing_url=cfg.url, run_at=run_at, options=cfg.options
        )
    except FetchError as exc:
        # The site is down before any file could be listed: record the failed check so the
        # freshness monitor can say "site unreachable" rather than only a task failing.
        Archive().record_failure(
            source,
            exc.url,
            fetched_at=dt.datetime.now(dt.UTC),
            run_at=run_at,
            error=f"{exc.kind}: {exc.reason}",
            http_status=exc.status,
        )
        raise
    log.info(
        "%s: %d file(s) listed: %s",
        source,
        len(links),
        "; ".join(f"{link.kind} {link.period or ''} {link.url}" for link in links),
    )
    return [{"source": source, **link.as_dict()} for link in links]


def fetch_link(link: dict[str, Any], *, run_at: dt.datetime) -> dict[str, Any]:
    """Fetch one discovered file into the archive. ``to_load`` says whether to go on."""
    from returnwatch import config
    from returnwatch.archive import Archive
    from returnwatch.fetch import fetch_url

    source = link["source"]
    entry = fetch_url(config.source(source), link["url"], Archive(), run_at=run_at)
    return _fetched(
        source, entry, run_at, kind=link["kind"], label=link.get("label"), period=link.get("period")
    )


def _fetched(source: str, entry: Any, run_at: dt.datetime, **about: Any) -> dict[str, Any]:
    from returnwatch import warehouse

    # The archive says whether the bytes are new; the warehouse says whether they are loaded.
    # Only the second decides whether the run goes on (see the module docstring).
    loaded = entry.sha256 is not None and warehouse.file_is_loaded(entry.sha256)
    log.info(
        "%s: %s (%s) %s%s",
        source,
        entry.outcome,
        entry.url,
        f"sha256 {entry.sha256}" if entry.sha256 else "",
        "; already in the warehouse" if loaded else "; not in the warehouse yet",
    )
    return {
        "source": source,
        **about,
        "outcome": entry.outcome,
        "is_new": entry.outcome == "new",
        "to_load": not loaded,
        "sha256": entry.sha256,
        "url": entry.url,
        "served_name": entry.served_name,
        "run_at": run_at.isoformat(),
        "vintage": entry.vintage.isoformat() if entry.vintage else None,
        "fetched_at": entry.fetched_at.isoformat(),
    }


def _recording_refusals(payload: dict[str, Any]) -> Any:
    """Around a step that judges an archived file: a ``SourceFileError`` is also written to
    the archive's manifest as a ``refused`` row for that file, then raised on."""
    import contextlib

    from returnwatch.archive import Archive, ArchiveError
    from returnwatch.sources.errors import SourceFileError

    @contextlib.contextmanager
    def recording() -> Any:
        try:
            yield
        except SourceFileError as error:
            try:
                Archive().record_refusal(
                    payload["source"],
                    payload["sha256"],
                    url=payload.get("url") or "",
                    run_at=_run_at(payload),
                    error=f"{getattr(error, 'kind', 'bad_file')}: {error}",
                )
            except (OSError, ArchiveError) as unrecorded:
                # The refusal itself is what ops must see; a full or read-only disk must not
                # replace it with another error.
                log.warning(
                    "%s: could not record the refusal of %s in the manifest: %s",
                    payload["source"],
                    payload["sha256"],
                    unrecorded,
                )
            raise

    return recording()


def _run_at(payload: dict[str, Any]) -> dt.datetime:
    value = payload.get("run_at") or payload.get("fetched_at")
    return dt.datetime.fromisoformat(value) if value else dt.datetime.now(dt.UTC)


def parse(fetched: dict[str, Any]) -> dict[str, Any]:
    """Parse the archived file into a Parquet file of typed rows (raises SourceFileError)."""
    from returnwatch.archive import Archive
    from returnwatch.sources.base import read

    source, sha256 = fetched["source"], fetched["sha256"]
    content = Archive().read(sha256, source)
    with _recording_refusals(fetched):
        parsed = read(
            source, file_kind(source, fetched.get("kind")), content, file=file_shown(fetched)
        )
    path = parsed_path(source, sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    prune_parsed(source)
    # A temporary name of this process's own: two parses of one file (a retry racing a zombie,
    # a backfill beside a DAG run) must not write into or rename each other's temp file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{sha256[:16]}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        parsed.frame().to_parquet(tmp, index=False)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    summary = parsed.summary()
    # Constructed or not is the file's own record (its name in the URL or as the server named
    # it, or returnwatch's marker in it), decided here once and carried to raw.files, staging
    # and the marts.
    from returnwatch.provenance import is_constructed

    constructed = is_constructed(
        str(fetched.get("url") or ""), content, served_name=fetched.get("served_name")
    )
    log.info(
        "%s: parsed file %s: %s%s",
        source,
        sha256,
        summary,
        " (CONSTRUCTED figures: never alerted)" if constructed else "",
    )
    return {
        **fetched,
        "parsed_path": str(path),
        "parse_summary": summary,
        "constructed": constructed,
    }


def validate(parsed: dict[str, Any], *, run_at: dt.datetime) -> dict[str, Any]:
    """Run the source's GX suite. ``fail`` expectations raise; ``warn`` ones are returned as
    findings for the load step to record in the same transaction as the rows."""
    import pandas as pd

    from returnwatch import quality

    source = parsed["source"]
    frame = pd.read_parquet(parsed["parsed_path"])
    tz = _source_timezone(source)
    kind = file_kind(source, parsed.get("kind"))
    report = quality.validate(
        kind.suite,
        frame,
        source=source,
        file=file_shown(parsed),
        parameters={"latest_possible_date": run_at.astimezone(tz).date()},
        prepare=kind.prepare,
    )
    with _recording_refusals({**parsed, "run_at": run_at.isoformat()}):
        report.raise_for_failures()
    findings = [f.as_dict() for f in report.findings(run_at=run_at)]
    log.info(
        "%s: %d expectations met their 'fail' bar; %d warning(s)",
        source,
        len(report.outcomes) - len(report.warnings),
        len(report.warnings),
    )
    return {**parsed, "warnings": findings}


def load(validated: dict[str, Any], *, run_at: dt.datetime, run_id: str) -> dict[str, Any]:
    """Load the validated rows into ``raw.<table>`` in one transaction (no-op if loaded)."""
    import pandas as pd

    from returnwatch import warehouse
    from returnwatch.monitor import incidents, revisions, store
    from returnwatch.monitor.findings import Finding

    source = validated["source"]
    kind = file_kind(source, validated.get("kind"))
    parsed_file = Path(validated["parsed_path"])
    if not parsed_file.exists():
        # Pruned (see PARSED_KEEP_DAYS) after a long pause, e.g. a cleared old task instance.
        if warehouse.file_is_loaded(validated["sha256"]):
            log.info(
                "%s: file %s already loaded; its parsed rows were pruned, nothing to do",
                source,
                validated["sha256"],
            )
            return {
                "source": source,
                "kind": kind.kind,
                "sha256": validated["sha256"],
                "rows_loaded": 0,
                "already_loaded": True,
                "table": f"raw.{kind.raw_table}",
                "revisions": 0,
            }
        raise FileNotFoundError(
            f"{source}: the parsed rows of file {validated['sha256']} ({parsed_file}) are gone "
            "(pruned after a long pause?); run the whole chain again from the fetch"
        )
    frame = pd.read_parquet(parsed_file)
    findings = [Finding.from_dict(f) for f in validated.get("warnings", [])]
    vintage = dt.date.fromisoformat(validated["vintage"])
    revised: list[int] = []

    def in_same_transaction(con: Any) -> None:
        store.record_findings(con, findings, run_id=run_id)
        revised.append(
            revisions.record(
                con, kind, source=source, sha256=validated["sha256"], vintage=vintage, run_id=run_id
            )
        )

    with warehouse.session() as con:
        result = warehouse.load_file(
            con,
            table=kind.raw_table,
            frame=frame,
            source=source,
            sha256=validated["sha256"],
            url=validated["url"],
            vintage=vintage,
            fetched_at=dt.datetime.fromisoformat(validated["fetched_at"]),
            also=in_same_transaction,
            constructed=validated.get("constructed"),
        )
        # A file that loads closes any open "this file is broken" incident about it.
        incidents.process_findings(
            con,
            [],
            run_at=run_at,
            run_id=run_id,
            evaluated=[("ingest", incident_series(validated))],
        )
    log.info(
        "%s: %s",
        source,
        "already loaded, nothing changed"
        if result.already_loaded
        else f"loaded {result.rows_loaded} rows into {result.table} "
        f"({revised[0] if revised else 0} figure(s) revised since the previous vintage)",
    )
    return {
        "source": source,
        "kind": kind.kind,
        "sha256": result.sha256,
        "rows_loaded": result.rows_loaded,
        "already_loaded": result.already_loaded,
        "table": result.table,
        "revisions": revised[0] if revised else 0,
    }


def report_bad_file(
    source: str, error: Exception, *, run_at: dt.datetime, run_id: str, series: str | None = None
) -> None:
    """Tell ops, once per incident, that a received file could not be used.

    Records a ``layout_changed`` / ``bad_file`` / ``validation_failed`` finding; the incident it
    opens stays open (and silent) until a file from this source loads again.
    """
    from returnwatch import warehouse
    from returnwatch.alerts import deliver_pending
    from returnwatch.monitor import incidents
    from returnwatch.monitor.findings import Finding
    from returnwatch.sources.errors import SourceFileError

    details = error.as_dict() if isinstance(error, SourceFileError) else {"error": str(error)}
    kind = getattr(error, "kind", "bad_file")
    series = series or source
    finding = Finding(
        monitor="ingest",
        kind=kind,
        source=source,
        series=series,
        severity="warning",
        message=str(error),
        run_at=run_at,
        details=details,
    )
    with warehouse.session() as con:
        incidents.process_findings(
            con, [finding], run_at=run_at, run_id=run_id, evaluated=[("ingest", series)]
        )
        deliver_pending(con)


def ingest_file(
    source: str,
    path: Path,
    *,
    vintage: dt.date,
    run_at: dt.datetime,
    run_id: str,
    kind: str | None = None,
) -> dict[str, Any]:
    """Manual ingest: a file somebody downloaded by hand goes through the same steps.

    ``kind`` (which of the source's layouts it is) is detected from the content when not given.
    """
    from returnwatch.archive import Archive
    from returnwatch.sources.base import detect

    path = Path(path)
    if kind is not None:
        file_kind(source, kind)  # a mistyped --kind is the user's slip, not the file's fault
    # Kept before anything looks at it: an error page saved by mistake is evidence too.
    archive = Archive()
    entry = archive.store_manual(source, path, vintage=vintage, run_at=run_at)
    assert entry.sha256 is not None  # store() archives bytes: only failed checks have no hash
    # Same bytes as an earlier file: the load step sees it in raw.files and changes nothing.
    fetched = {
        "source": source,
        "kind": kind,
        "outcome": entry.outcome,
        "is_new": True,
        "to_load": True,
        "sha256": entry.sha256,
        "url": entry.url,
        "given_as": str(path),
        "vintage": vintage.isoformat(),
        "fetched_at": entry.fetched_at.isoformat(),
        "run_at": run_at.isoformat(),
    }
    if kind is None:
        with _recording_refusals(fetched):
            kind = detect(source, str(path), archive.read(entry.sha256, source))
        fetched["kind"] = kind
    return load(validate(parse(fetched), run_at=run_at), run_at=run_at, run_id=run_id)


def _source_timezone(source: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    from returnwatch import config

    return ZoneInfo(config.source(source).timezone)


def guarded(
    step: Any, payload: dict[str, Any], *, context: Mapping[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """Run a parse/validate step inside an Airflow task.

    - the fetched file is already in the warehouse → the task (and the ones after it) are
      skipped, not failed (whether its bytes are new to the archive does not matter);
    - the file is bad (layout changed, bad value, failed expectation) → one ops alert through a
      ``monitor.findings`` incident, then the task fails WITHOUT retrying: the same bytes would
      fail the same way, and a crash loop helps nobody.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from returnwatch.airflow_support import run_id, run_time
    from returnwatch.sources.errors import SourceFileError

    if not payload.get("to_load", True):
        raise AirflowSkipException(
            f"{payload['source']}: {payload['outcome']} — the publisher serves a file already "
            f"loaded into the warehouse (sha256 {payload.get('sha256')}); nothing to load"
        )
    try:
        return step(payload, **kwargs)
    except SourceFileError as error:
        log.error("%s", error)
        report_bad_file(
            payload["source"],
            error,
            run_at=run_time(context),
            run_id=run_id(context),
            series=incident_series(payload),
        )
        failure = AirflowFailException(str(error))
        failure.already_reported = True  # type: ignore[attr-defined]
        raise failure from error
