"""CBP nationwide encounters (monthly CSVs): discover → per file fetch → parse → validate → load.

An Airflow DAG file: a declaration only. Every source DAG's shape (discover, then one mapped
chain per file) is ``returnwatch.source_dags.source_dag``; the steps are ``returnwatch.ingest``.
"""

from __future__ import annotations

from returnwatch.assets import RAW_CBP_ENCOUNTERS
from returnwatch.source_dags import source_dag

SOURCE = "cbp_encounters_monthly"

DOC = """
### CBP nationwide encounters (monthly)

**Fetches** the CSVs linked from CBP's *Nationwide Encounters* page,
`sources.cbp_encounters_monthly` in `config/sources.yaml`:
https://www.cbp.gov/document/stats/nationwide-encounters. Their
folder and name change with every upload, so `discover_files` reads them off the page, never
builds them. Then for **each file** (AOR, state, Southwest border; the current fiscal-year
window and the older one still listed) a `file` group: `fetch_file` into the archive,
`parse_file` (`sources/cbp_encounters_monthly/`: `UC / Single Minors` vs `UAC`, `2023 (FYTD)`,
OCT–DEC of FY−1, float counts), `validate_file` (`expectations/cbp_encounters_*.json`) and
`load_file` into `raw.cbp_encounters_*`, keeping every vintage. A figure that changed since the previous vintage
is written to `monitor.revisions`. A new file emits the `raw.cbp_encounters_monthly` Asset
(→ `transform`).

**Schedule**: daily at 14:00 UTC. CBP publishes around mid-month; on other days every file
answers "not modified" and the per-file chains are skipped (normal).

**When it fails** ([runbook: cbp_encounters_monthly](docs/runbook.md#cbp_encounters_monthly),
[sources found on their pages](docs/runbook.md#sources-found-on-their-pages)): `discover_files`
failing on a layout = the landing page changed (ops got one
[layout_changed](docs/runbook.md#layout_changed) alert); failing on a fetch = the site is down
(retried; [task_failed](docs/runbook.md#task_failed), then
[source_unreachable](docs/runbook.md#source_unreachable) if it lasts); a `file.*` task failing
names file, sheet, row and expectation in its first log line
([layout_changed](docs/runbook.md#layout_changed), [bad_value](docs/runbook.md#bad_value),
[bad_file](docs/runbook.md#bad_file), [validation_failed](docs/runbook.md#validation_failed));
only that file is affected, its raw bytes stay in the archive, nothing of it was loaded, ops got
one alert. Once the parser is fixed, `returnwatch backfill` over its period loads it
([backfill](docs/runbook.md#backfill)). Restated figures:
[revision_restated](docs/runbook.md#revision_restated).
"""


# Schedules are UTC (publishing calendars, in the publisher's time zone, are the monitor's).
dag = source_dag(
    source=SOURCE, cron="0 14 * * *", tags=["cbp", "monthly"], doc_md=DOC, outlet=RAW_CBP_ENCOUNTERS
)
