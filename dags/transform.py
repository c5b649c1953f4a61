"""Builds the warehouse's staging views and marts with dbt, then the analysts' snapshot."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, AssetAny, task
from cosmos import DbtTaskGroup

from returnwatch import transform
from returnwatch.airflow_support import (
    DAGRUN_TIMEOUTS,
    DBT_BUILD_TIMEOUT,
    DEFAULT_ARGS,
    WAREHOUSE_POOL,
)
from returnwatch.assets import MARTS, RAW_ASSETS
from returnwatch.ops_view.documents import ui_links

DOC = """
### transform: dbt build, then the analysts' snapshot

**Fetches** nothing: it builds from the `raw.*` tables the source DAGs load.

**Schedule**: not on a clock: when any of the Assets `raw.hhs_uc_daily`, `raw.hhs_uc_monthly`,
`raw.cbp_encounters_monthly` or `raw.segob_bulletin_monthly` is updated, i.e. a source DAG
loaded a new file.

**Runs** the dbt project (`dbt_project/`: `staging` and `intermediate` views, `reference`
seeds, `marts` tables) as one `dbt build` in the `dbt` group's `dbt_producer_watcher`; every
model (`<model>_run`) and seed shows up as a task that reports that build's result; the
build runs each model's tests, and a failed error-level test fails `dbt_producer_watcher`
(never retried: Cosmos would skip the retry) and stops the publish. `publish_snapshot` then copies the warehouse to `data/snapshot/warehouse.duckdb`
(read-only, for analysts) and each mart to `data/snapshot/parquet/`, only if every model and
error-level test passed; it emits the `marts` Asset.

**When it fails** ([runbook: transform](docs/runbook.md#transform),
[task_failed](docs/runbook.md#task_failed)): a failed `<model>_run` task names the model;
dbt's message, the failed test and the failing SQL are in `dbt_producer_watcher`'s log. Tests at severity `warn` never fail a run. Fix the data or the model, then clear the failed task: it
re-runs only its model or tests. A task `dbt` saying the manifest is missing: run
`python -m returnwatch.transform parse`. All tasks run in the one-slot pool `warehouse`
(DuckDB has one writer).
"""

with DAG(
    dag_id="transform",
    schedule=AssetAny(*RAW_ASSETS),  # any one raw table with a new file
    # Before the oldest history the replay holds: the demo replays March 2021 through the real
    # DAG (Airflow creates no task for a logical date before start_date); catchup is off.
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=DAGRUN_TIMEOUTS["transform"],
    # The dbt build runs inside one task (dbt_producer_watcher): its own, longer timeout.
    default_args={**DEFAULT_ARGS, "pool": WAREHOUSE_POOL, "execution_timeout": DBT_BUILD_TIMEOUT},
    tags=["transform", "dbt", "warehouse"],
    doc_md=ui_links(DOC),  # runbook links lead to the plugin's copy in the UI
):
    if transform.manifest_path().is_file():
        dbt = DbtTaskGroup(group_id="dbt", **transform.cosmos_configs()._asdict())
        transform.configure_dbt_tasks(dbt)  # no producer retry (it would skip); dbt lets go
    else:  # a fresh checkout: the DAG still imports, and its one task says what to run
        dbt = task(task_id="dbt", retries=0)(transform.raise_manifest_missing)()

    @task(outlets=[MARTS], multiple_outputs=False)  # one XCom, not one per key besides
    def publish_snapshot() -> dict:
        return transform.publish_snapshot().as_dict()

    dbt >> publish_snapshot()
