"""``returnwatch backfill``: re-fetch a source's history for a range of periods and re-derive.

What this module owns:

- the plan (``plan()``): which of the source's discovered files cover ``[start, end]``;
- each file (``backfill_file()``): the DAGs' fetch, parse, validate and load steps
  (``returnwatch.ingest``); a bad file is reported in the terminal (exit code 1), not alerted;
- re-deriving once (``rederive()``): ``dbt build``, the data monitors judged quietly
  (``judge_quietly()``: ``info`` findings, ``monitor.judged`` moved on) and the snapshot;
- the terminal output (``main()``).

A backfill never pages, and takes the write lock one file at a time. Why and how:
docs/internals.md#backfill.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

import click

from returnwatch.sources.base import file_label

if TYPE_CHECKING:
    import duckdb

    from returnwatch.monitor.findings import Finding

Status = Literal["new", "unchanged", "failed"]

# A bulletin year ("2019": calendar year, SEGOB) or a US fiscal year / window of fiscal years
# ("FY2021": HHS's monthly pages; "FY2021-FY2024": a CBP file). Fiscal year N runs from
# 1 October N-1 to 30 September N.
_CALENDAR_YEAR = re.compile(r"^(\d{4})$")
_FISCAL_YEARS = re.compile(r"^FY(\d{4})(?:-FY(\d{4}))?$")


# --------------------------------------------------------------------------- the plan


def period_span(period: str | None) -> tuple[dt.date, dt.date] | None:
    """The first and last day a file covers, from the period its link names; None if unknown."""
    text = (period or "").strip()
    if match := _CALENDAR_YEAR.match(text):
        year = int(match.group(1))
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    if match := _FISCAL_YEARS.match(text.upper()):
        first = int(match.group(1))
        last = int(match.group(2) or first)
        return dt.date(first - 1, 10, 1), dt.date(last, 9, 30)
    return None


def in_range(link: dict[str, Any], start: dt.date, end: dt.date) -> bool:
    """Whether the file's period overlaps ``[start, end]`` (a file of unknown period: yes)."""
    span = period_span(link.get("period"))
    return span is None or (span[0] <= end and start <= span[1])


@dataclass
class Plan:
    """The files of one source a backfill fetches, and those it leaves out."""

    source: str
    start: dt.date
    end: dt.date
    files: list[dict[str, Any]]  # links in range (``ingest.discover`` shape)
    left_out: list[dict[str, Any]]  # links listed but outside the range
    single_file: bool  # the source is one file holding every period


def plan(source: str, start: dt.date, end: dt.date, *, run_at: dt.datetime) -> Plan:
    """The source's files whose periods overlap ``[start, end]``, read off its pages now.

    Raises what ``ingest.discover`` raises: ``FetchError`` (the site is down; recorded in the
    manifest) or ``LayoutChanged`` (the page no longer lists the files we know).
    """
    from returnwatch import ingest

    if start > end:
        raise ValueError(f"the range is empty: {start} is after {end}")
    if not ingest.has_discovery(source):
        # The HHS daily export: one file, every day in it, at the configured address.
        return Plan(
            source,
            start,
            end,
            files=[ingest.configured_file(source)],
            left_out=[],
            single_file=True,
        )
    links = ingest.discover(source, run_at=run_at)
    kept = [link for link in links if in_range(link, start, end)]
    return Plan(
        source,
        start,
        end,
        files=kept,
        left_out=[link for link in links if link not in kept],
        single_file=False,
    )


def file_name(url: str) -> str:
    """The last part of a URL (with its query, where SEGOB's microdata puts the file name)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- one file


@dataclass
class FileResult:
    """What the backfill did with one file."""

    link: dict[str, Any]
    status: Status
    sha256: str | None = None
    vintage: str | None = None
    rows_loaded: int = 0
    revisions: int = 0
    error: str | None = None
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return file_label(self.link)


def loaded_files(source: str) -> set[str]:
    """The sha256 of every file of ``source`` the warehouse holds (a short session)."""
    from returnwatch import warehouse

    with warehouse.session() as con:
        rows = con.execute("SELECT sha256 FROM raw.files WHERE source = ?", [source]).fetchall()
    return {sha for (sha,) in rows}


def backfill_file(
    link: dict[str, Any], *, single_file: bool, loaded: set[str], run_at: dt.datetime, run_id: str
) -> FileResult:
    """Fetch one file into the archive and, if the warehouse lacks it, parse, validate, load.

    A bad file (``FetchError``, ``SourceFileError``) is a ``failed`` result naming source, file
    (URL and sha256), sheet and row; the raw bytes stay in the archive and nothing is loaded.
    Anything else (``WarehouseLocked``, a bug) propagates and stops the backfill.
    """
    from returnwatch import ingest
    from returnwatch.fetch import FetchError
    from returnwatch.sources.errors import SourceFileError

    source = link["source"]
    try:
        fetched = (
            ingest.fetch(source, run_at=run_at)
            if single_file
            else ingest.fetch_link(link, run_at=run_at)
        )
    except FetchError as error:
        # Recorded as a failed check in the manifest by the fetcher; the message names the URL.
        return FileResult(link, "failed", error=str(error))
    result = FileResult(link, "unchanged", sha256=fetched["sha256"], vintage=fetched["vintage"])
    # The DAGs go on only when the bytes are new to the archive; a backfill goes on whenever
    # the warehouse lacks them (e.g. a file a parser could not read before it was fixed).
    if fetched["sha256"] in loaded:
        return result
    try:
        validated = ingest.validate(ingest.parse(fetched), run_at=run_at)
    except SourceFileError as error:
        result.status, result.error = "failed", f"{file_name(link['url'])}: {error}"
        return result
    loaded_now = _load_and_judge_revisions(validated, run_at=run_at, run_id=run_id)
    loaded.add(fetched["sha256"])
    if not loaded_now["already_loaded"]:  # a DAG may have loaded the same bytes meanwhile
        result.status = "new"
        result.rows_loaded = loaded_now["rows_loaded"]
        result.revisions = loaded_now["revisions"]
    return result


def _load_and_judge_revisions(
    validated: dict[str, Any], *, run_at: dt.datetime, run_id: str
) -> dict[str, Any]:
    """``ingest.load``, then the revision monitor on what it recorded, under one hold of the
    write lock, so no monitor run can judge (and page about) those restatements in between."""
    from returnwatch import ingest, warehouse
    from returnwatch.monitor import engine

    # ingest.load opens its own session; in this process it shares the held connection's
    # database, so the lock is not released between the load and the judgement.
    with warehouse.session() as con:
        loaded = ingest.load(validated, run_at=run_at, run_id=run_id)
        if loaded["revisions"]:
            # Its own run id: under the backfill's, the engine would take this for a re-run
            # and judge the earlier files' restatements again.
            judge_quietly(
                con,
                run_at=run_at,
                run_id=f"{run_id}/{loaded['sha256'][:12]}",
                monitors=[engine.REVISION],
            )
    return loaded


# --------------------------------------------------------------------------- judging quietly


def as_backfill_info(finding: Finding) -> Finding:
    """The finding as a backfill records it: ``info`` (never an incident), saying so."""
    details = {**finding.details, "backfill": True}
    if finding.severity == "info":
        return dataclasses.replace(finding, details=details)
    details["severity_found"] = finding.severity
    return dataclasses.replace(
        finding,
        severity="info",
        details=details,
        message=f"{finding.message}; found by a backfill: recorded, not alerted",
    )


def judge_quietly(
    con: duckdb.DuckDBPyConnection,
    *,
    run_at: dt.datetime,
    run_id: str,
    monitors: Sequence[str] | None = None,
) -> tuple[list[Finding], list[str]]:
    """Evaluate the data monitors; record their findings as ``info`` and move their marks.

    Returns (the findings recorded, what was skipped). Opens, updates and resolves no incident
    and queues no alert: ``monitor.incidents`` and ``monitor.alerts`` are not touched.
    """
    from returnwatch.monitor import engine, store

    result = engine.evaluate(
        con, run_at=run_at, run_id=run_id, monitors=monitors or engine.DATA_MONITORS
    )
    findings = [as_backfill_info(f) for f in result.findings]
    paging = [f for f in findings if f.opens_incident]
    if paging:  # a guard on this module's one promise, not a condition expected to happen
        raise RuntimeError(f"backfill {run_id}: {len(paging)} finding(s) would open incidents")
    with store.transaction(con):
        store.record_findings(con, findings, run_id)
        engine.record_marks(con, result.marks, run_id=run_id, run_at=run_at)
    return findings, result.skipped


# --------------------------------------------------------------------------- re-deriving


@dataclass
class Rederived:
    """What the end step did: dbt, the monitors, the snapshot."""

    dbt_ran: bool = False
    dbt_passed: bool = True
    dbt_nodes: int = 0
    dbt_warned: int = 0
    dbt_failure: str | None = None
    snapshot: str | None = None
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def rederive(*, run_at: dt.datetime, run_id: str, build: bool = True) -> Rederived:
    """dbt build, then the data monitors (quietly), then the snapshot, holding the write lock.

    The snapshot is published only after a passing build, and after the monitors so that it
    holds their findings. A failed build still has the monitors evaluated (on the marts as they
    are), so the restatements and periods this backfill brought are judged, quietly, before a
    monitor run could.
    """
    from returnwatch import transform, warehouse

    done = Rederived()
    with warehouse.session() as con:
        if build:
            transform.ensure_manifest()
            # dbt's per-node lines would bury the backfill's own output; they are in dbt's log
            # file (<data dir>/dbt/logs) and a failure's messages are in the BuildResult.
            result = transform.dbt_build(quiet=True)
            done.dbt_ran, done.dbt_passed = True, result.success
            done.dbt_nodes, done.dbt_warned = len(result.statuses), len(result.warned)
            if not result.success:
                try:
                    result.raise_for_status()
                except transform.DbtBuildFailed as failure:
                    done.dbt_failure = str(failure)
        done.findings, done.skipped = judge_quietly(con, run_at=run_at, run_id=run_id)
        if build and done.dbt_passed:
            done.snapshot = str(transform.publish_snapshot().path)
    return done


# --------------------------------------------------------------------------- the command


@dataclass
class Summary:
    """Counts for the last lines of the output."""

    results: list[FileResult]
    rederived: Rederived | None
    seconds: float

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def rows_loaded(self) -> int:
        return sum(r.rows_loaded for r in self.results)

    @property
    def revisions(self) -> int:
        return sum(r.revisions for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0 and (self.rederived is None or self.rederived.dbt_passed)


def main(
    source: str,
    start: dt.date,
    end: dt.date,
    *,
    dry_run: bool = False,
    build: bool = True,
    out: TextIO | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Run a backfill with terminal output; return the exit code (0 only if all went well)."""
    from returnwatch import warehouse
    from returnwatch.fetch import FetchError
    from returnwatch.sources.errors import SourceFileError

    # sys.stdout rather than click.get_text_stream, which click 8.5 deprecates (gone in 9.0);
    # click.echo below still copes with the stream's encoding.
    out = out or sys.stdout

    def echo(text: str) -> None:
        click.echo(text, file=out)

    run_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    run_id = f"backfill/{source}/{start}_{end}/{run_at:%Y%m%dT%H%M%SZ}"
    began = time.monotonic()
    try:
        the_plan = plan(source, start, end, run_at=run_at)
    except (FetchError, SourceFileError) as error:
        raise click.ClickException(f"{source}: cannot list the files: {error}") from None
    echo(_plan_line(the_plan))
    if dry_run:
        for link in the_plan.files:
            echo(f"  {file_label(link)}  {link['url']}")
        echo("dry run: nothing fetched, nothing loaded")
        return 0
    if not the_plan.files:
        echo("nothing to fetch")
        return 0
    try:
        results = _run_files(the_plan, run_at=run_at, run_id=run_id, out=out)
        new = any(r.status == "new" for r in results)
        rederived = None
        if new:
            echo(
                "re-deriving: dbt build, monitors, snapshot …"
                if build
                else "re-deriving: monitors (dbt skipped: --no-transform) …"
            )
            rederived = rederive(run_at=run_at, run_id=run_id, build=build)
    except warehouse.WarehouseLocked as error:
        raise click.ClickException(f"stopped: {error}") from None
    summary = Summary(results, rederived, time.monotonic() - began)
    for line in _summary_lines(summary, the_plan, run_id):
        echo(line)
    return 0 if summary.ok else 1


def _run_files(
    the_plan: Plan, *, run_at: dt.datetime, run_id: str, out: TextIO
) -> list[FileResult]:
    """Every file of the plan, with a progress bar on a terminal, else one line per file.

    click.progressbar rather than rich.progress: click is already the CLI's library and a
    direct dependency (rich is only here through other packages), and one bar with the current
    file's name is all this needs. On a terminal the per-file lines come after the bar, so
    they do not break it; elsewhere each line is printed (and flushed) as its file is done.
    """
    loaded = loaded_files(the_plan.source)
    total = len(the_plan.files)
    results: list[FileResult] = []

    def one(link: dict[str, Any]) -> FileResult:
        began = time.monotonic()
        result = backfill_file(
            link, single_file=the_plan.single_file, loaded=loaded, run_at=run_at, run_id=run_id
        )
        result.seconds = time.monotonic() - began
        return result

    if _is_terminal(out):
        with click.progressbar(
            the_plan.files,
            label=f"{the_plan.source}",
            file=out,
            item_show_func=lambda link: file_label(link) if link else None,
            show_pos=True,
        ) as bar:
            for link in bar:
                results.append(one(link))
        for number, result in enumerate(results, start=1):
            click.echo(_file_line(number, total, result), file=out)
    else:
        for number, link in enumerate(the_plan.files, start=1):
            results.append(one(link))
            click.echo(_file_line(number, total, results[-1]), file=out)
            out.flush()
    return results


def _is_terminal(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _plan_line(the_plan: Plan) -> str:
    span = f"{the_plan.start}..{the_plan.end}"
    if the_plan.single_file:
        return f"backfill {the_plan.source} {span}: 1 file ({the_plan.files[0]['label']})"
    return (
        f"backfill {the_plan.source} {span}: {len(the_plan.files)} file(s) in range of "
        f"{len(the_plan.files) + len(the_plan.left_out)} listed"
    )


def _file_line(number: int, total: int, result: FileResult) -> str:
    head = f"[{number}/{total}] {result.status:<9} {result.label}"
    if result.status == "failed":
        return f"{head}: {result.error}"
    sha = result.sha256[:12] if result.sha256 else "-"
    where = (
        f"({file_name(result.link['url'])}, sha256 {sha}, vintage {result.vintage}, "
        f"{result.seconds:.1f} s)"
    )
    if result.status == "new":
        return (
            f"{head}: {result.rows_loaded:,} rows loaded, {result.revisions} figure(s) "
            f"revised {where}"
        )
    return f"{head}: already in the warehouse {where}"


def _summary_lines(summary: Summary, the_plan: Plan, run_id: str) -> list[str]:
    lines = [
        f"files: {len(summary.results)} fetched, {summary.count('new')} new, "
        f"{summary.count('unchanged')} unchanged, {summary.count('failed')} failed; "
        f"{summary.rows_loaded:,} rows loaded; {summary.revisions} figure(s) revised"
    ]
    done = summary.rederived
    if done is None:
        lines.append(
            "nothing new loaded: marts and monitors unchanged (`returnwatch dbt` rebuilds anyway)"
        )
    else:
        if not done.dbt_ran:
            lines.append(
                "dbt: skipped (--no-transform); the transform DAG or `returnwatch dbt` "
                "rebuilds the marts"
            )
        elif done.dbt_passed:
            lines.append(
                f"dbt build passed ({done.dbt_nodes} nodes, {done.dbt_warned} "
                f"warning(s)); snapshot published: {done.snapshot}"
            )
        else:
            lines.append(f"dbt build FAILED; snapshot not published:\n{done.dbt_failure}")
        about_range = sum(
            1 for f in done.findings if _period_in(f.period, the_plan.start, the_plan.end)
        )
        lines.append(
            f"monitors: {len(done.findings)} finding(s) recorded as info "
            f"({about_range} about periods in the range), no alert queued "
            f"(monitor.findings where run_id like '{run_id}%')"
        )
    if summary.count("failed"):
        lines.append(
            "failed files: their raw bytes are kept in the archive and nothing of them "
            "was loaded; see docs/runbook.md#backfill"
        )
    lines.append(f"done in {summary.seconds:.1f} s")
    return lines


def _period_in(period: str | None, start: dt.date, end: dt.date) -> bool:
    """Whether a finding's period (a month '2019-03' or a day '2019-03-14') overlaps
    ``[start, end]``."""
    if not period:
        return False
    try:
        if len(period) == 7:
            first = dt.date.fromisoformat(period + "-01")
            last = (first + dt.timedelta(days=31)).replace(day=1) - dt.timedelta(days=1)
        else:
            first = last = dt.date.fromisoformat(period[:10])
    except ValueError:
        return False
    return first <= end and start <= last


__all__ = [
    "FileResult",
    "Plan",
    "Rederived",
    "Summary",
    "as_backfill_info",
    "backfill_file",
    "in_range",
    "judge_quietly",
    "main",
    "period_span",
    "plan",
    "rederive",
]
