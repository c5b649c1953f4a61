"""The Airflow tasks of a source whose files are found on its pages (CBP, SEGOB, HHS monthly).

A run lists the files (``discover_files``), then each file goes through its own chain of
fetch → parse → validate → load in a mapped task group, so the Airflow grid shows one row per
file: a bad 2019 workbook fails its own chain and ops see which file, while the others load.
The steps are the ``ingest`` functions the single-file HHS DAG and the CLI use. Task names
read as the steps (``discover_files``, then ``file.fetch_file`` → ``file.parse_file`` →
``file.validate_file`` → ``file.load_file``); docs/runbook.md and the tests refer to them.

Imported by DAG files at parse time: only Airflow's light SDK at top level.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.sdk import get_current_context, task

from returnwatch.airflow_support import WAREHOUSE_POOL, run_id, run_time
from returnwatch.ops_view.documents import ui_links
from returnwatch.sources.base import file_label


@task
def discover_files(source: str) -> list[dict[str, Any]]:
    """Read the publisher's pages and list the files to fetch (never built from a pattern).

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
    context["file_label"] = file_label(payload)
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


def files_dag(*, source: str, cron: str, tags: list[str], doc_md: str, outlet: Any) -> Any:
    """The DAG of a multi-file source: ``discover_files`` then one mapped group per file.

    Every multi-file source has the same shape, so the DAG files only say what differs
    (schedule, tags, documentation, Asset) and the shape lives here once.
    """
    import pendulum
    from airflow.sdk import DAG, task_group
    from airflow.timetables.trigger import CronTriggerTimetable

    from returnwatch.airflow_support import DAGRUN_TIMEOUTS, DEFAULT_ARGS

    with DAG(
        dag_id=source,
        schedule=CronTriggerTimetable(cron, timezone="UTC"),
        # Early enough that the demo and tests can replay the publishers' history through the
        # real DAG (Airflow creates no task for a logical date before start_date); catchup is
        # off, so the scheduler never backfills from it.
        start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=DAGRUN_TIMEOUTS[source],
        default_args=DEFAULT_ARGS,
        tags=["source", *tags],
        doc_md=ui_links(doc_md),  # runbook links lead to the plugin's copy in the UI
    ) as dag:

        @task_group(group_id="file")
        def each_file(link: dict[str, Any]) -> None:
            validated = validate_file(parse_file(fetch_file(link)))
            load_file.override(outlets=[outlet])(validated)

        each_file.expand(link=discover_files(source))
    # Airflow records where a DAG was defined from the frame that built it (this module);
    # point it at the DAG file that called us, which is what the dag-processor parses.
    dag.fileloc = sys._getframe(1).f_code.co_filename
    return dag
