"""The Airflow tasks of every source DAG (``source_dags.source_dag`` wires them).

A run lists the files (``discover_files``), then each file goes through its own chain of
fetch → parse → validate → load in a mapped task group, so the Airflow grid shows one row per
file: a bad 2019 workbook fails its own chain and ops see which file, while the others load.
A source with one file at a fixed address (HHS's daily export) lists that one file. The steps
are the ``ingest`` functions the CLI uses too. Task names read as the steps
(``discover_files``, then ``file.fetch_file`` → ``file.parse_file`` → ``file.validate_file`` →
``file.load_file``); docs/runbook.md and the tests refer to them.

Imported by DAG files at parse time: only Airflow's light SDK at top level.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from returnwatch.airflow_support import WAREHOUSE_POOL, run_id, run_time
from returnwatch.sources.base import file_label


@task
def discover_files(source: str) -> list[dict[str, Any]]:
    """Read the publisher's pages and list the files to fetch (never built from a pattern);
    a source with one file at a fixed address lists that file, without a request.

    A page that no longer looks like the one we know is a ``layout_changed`` incident for ops
    (once) and a failure without retries; a site that is down is retried like any fetch.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from returnwatch import ingest
    from returnwatch.sources.errors import SourceFileError

    context = get_current_context()
    try:
        return ingest.discover(source, run_at=run_time(context))
    except SourceFileError as error:
        ingest.report_bad_file(
            source,
            error,
            run_at=run_time(context),
            run_id=run_id(context),
            series=f"{source}/discovery",
        )
        failure = AirflowFailException(str(error))
        failure.already_reported = True  # type: ignore[attr-defined]
        raise failure from error


# A task whose return type is a dict would, by Airflow's default, also store every key of it as
# an XCom of its own (multiple_outputs): a dozen extra writes per file and step that nothing
# reads (the next step takes the whole dict). The file tasks say multiple_outputs=False.

# The grid names each mapped file by what it is ("cuadro_3_1_1 2024"), not by 0, 1, 2...
# Airflow renders this after the task ran, from the context the task filled in.
FILE_LABEL = "{{ file_label }}"


def _context_for(payload: dict[str, Any]) -> Any:
    context = get_current_context()
    # Airflow's documented way to feed map_index_template is a key of one's own in the
    # context; its Context TypedDict lists only Airflow's keys, so it cannot express that.
    context["file_label"] = file_label(payload)  # type: ignore[typeddict-unknown-key]
    return context


@task(map_index_template=FILE_LABEL, multiple_outputs=False)
def fetch_file(link: dict[str, Any]) -> dict[str, Any]:
    """Fetch one listed file into the archive (conditional GET, size cap, bounded retries)."""
    from returnwatch import ingest

    return ingest.fetch_link(link, run_at=run_time(_context_for(link)))


@task(pool=WAREHOUSE_POOL, retries=0, map_index_template=FILE_LABEL, multiple_outputs=False)
def parse_file(fetched: dict[str, Any]) -> dict[str, Any]:
    """Parse the archived file into typed rows (skipped when the warehouse already has it).

    A file the parser does not recognise fails this task without retries (the same bytes
    would fail the same way) and opens one ops incident (``layout_changed``, ``bad_value``,
    ``bad_file``; see docs/runbook.md).
    """
    from returnwatch import ingest

    return ingest.guarded(ingest.parse, fetched, context=_context_for(fetched))


@task(pool=WAREHOUSE_POOL, retries=0, map_index_template=FILE_LABEL, multiple_outputs=False)
def validate_file(parsed: dict[str, Any]) -> dict[str, Any]:
    """Check the rows with the file kind's Great Expectations suite before anything loads
    (a failed ``fail`` expectation: ``validation_failed``, no retries, one ops incident)."""
    from returnwatch import ingest

    context = _context_for(parsed)
    return ingest.guarded(ingest.validate, parsed, context=context, run_at=run_time(context))


@task(pool=WAREHOUSE_POOL, map_index_template=FILE_LABEL, multiple_outputs=False)
def load_file(validated: dict[str, Any]) -> dict[str, Any]:
    """Load into ``raw.*`` in one transaction with the file's revisions; idempotent."""
    from returnwatch import ingest

    context = _context_for(validated)
    return ingest.load(validated, run_at=run_time(context), run_id=run_id(context))
