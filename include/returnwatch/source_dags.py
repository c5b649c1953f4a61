"""The one factory every source DAG is built by: ``discover_files``, then per file a mapped
``file`` group fetch → parse → validate → load (the tasks are ``file_tasks``).

A source whose files are read off its pages (CBP, SEGOB, HHS monthly) lists many; a source
with one file at a fixed address (HHS's daily export) lists that one, without a request, so
every source DAG has the same task ids, pool, retries and timeouts, and the runbook names one
set of steps. A DAG file only declares what differs: schedule, tags, documentation, Asset.

Imported by DAG files at parse time: only Airflow's light SDK at top level.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.sdk import DAG, task_group

from returnwatch.file_tasks import discover_files, fetch_file, load_file, parse_file, validate_file
from returnwatch.ops_view.documents import ui_links

# Every source DAG carries this tag (ops filter the DAG list by it; tests find the source DAGs
# by it and check they are exactly the sources of config/sources.yaml).
SOURCE_TAG = "source"
FILE_GROUP = "file"
TASK_IDS = frozenset(
    {
        "discover_files",
        f"{FILE_GROUP}.fetch_file",
        f"{FILE_GROUP}.parse_file",
        f"{FILE_GROUP}.validate_file",
        f"{FILE_GROUP}.load_file",
    }
)


def source_dag(*, source: str, cron: str, tags: list[str], doc_md: str, outlet: Any) -> DAG:
    """The DAG of ``source`` (its key in config/sources.yaml, which is also the DAG id).

    ``cron`` is in UTC; ``outlet`` is the Asset a load that brought new rows emits (a skipped
    load, the file already in the warehouse, emits nothing).
    """
    import pendulum
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
        tags=[SOURCE_TAG, *tags],
        doc_md=ui_links(doc_md),  # runbook links lead to the plugin's copy in the UI
    ) as dag:

        @task_group(group_id=FILE_GROUP)
        def each_file(link: dict[str, Any]) -> None:
            # Airflow's Task type keeps the function's parameter types for its __call__, which
            # takes the upstream XComArg at parse time: its stubs cannot express that.
            validated = validate_file(parse_file(fetch_file(link)))  # type: ignore[arg-type]
            load_file.override(outlets=[outlet])(validated)  # type: ignore[arg-type]

        each_file.expand(link=discover_files(source))
    # Airflow records where a DAG was defined from the frame that built it (this module);
    # point it at the DAG file that called us, which is what the dag-processor parses.
    dag.fileloc = sys._getframe(1).f_code.co_filename
    return dag
