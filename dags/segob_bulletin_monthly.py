"""SEGOB/UPM monthly bulletin (workbooks + microdata): discover → per file fetch → parse → validate → load.

An Airflow DAG file: a declaration only. Every source DAG's shape (discover, then one mapped
chain per file) is ``returnwatch.source_dags.source_dag``; the steps are ``returnwatch.ingest``.
"""

from __future__ import annotations

from returnwatch.assets import RAW_SEGOB_BULLETIN
from returnwatch.source_dags import source_dag

SOURCE = "segob_bulletin_monthly"

DOC = """
### SEGOB / UPM monthly migration bulletin (Mexico)

**Fetches** the bulletin's files found from its landing page,
`sources.segob_bulletin_monthly` in `config/sources.yaml`:
https://portales.segob.gob.mx/es/PoliticaMigratoria/Boletines_Estadisticos.
`discover_files` reads, for every bulletin year from `first_year` to this year, the tables
pages `CuadrosBOLETIN?Anual=YYYY&Secc=N` (Latin-1) of sections 3 and 5 and the workbook links
on them (names drift between years: `cuadro3.1.1.xls`, `cuadro_3.1.1.xls`), plus section 5's
per-event microdata CSV. Then for **each file** a `file` group: `fetch_file` into the archive,
`parse_file` (`sources/segob_bulletin_monthly/`: months as columns, subtotal rows, `Subtotal`
columns since 2021, page-break header repeats, `-` for zero), `validate_file` (`expectations/segob_*.json`)
and `load_file` into `raw.segob_*`, keeping every vintage (the workbooks are overwritten in
place each month with the year to date; a changed month is written to `monitor.revisions`). A
new file emits the `raw.segob_bulletin_monthly` Asset (→ `transform`).

**Schedule**: daily at 14:30 UTC. Month M appears around day 7 of month M+2; other days answer
"not modified" and the per-file chains are skipped. The site's TLS and pages break for weeks at
a time: then download by hand and run `returnwatch ingest segob_bulletin_monthly FILE`.

**When it fails** ([runbook: segob_bulletin_monthly](docs/runbook.md#segob_bulletin_monthly),
[sources found on their pages](docs/runbook.md#sources-found-on-their-pages)): `discover_files`
= the site is down (retried; [task_failed](docs/runbook.md#task_failed), then
[source_unreachable](docs/runbook.md#source_unreachable) if it lasts) or its pages changed (one
[layout_changed](docs/runbook.md#layout_changed) alert); a `file.*` task failing names file,
sheet, row and expectation in its first log line
([layout_changed](docs/runbook.md#layout_changed), [bad_value](docs/runbook.md#bad_value),
[bad_file](docs/runbook.md#bad_file), [validation_failed](docs/runbook.md#validation_failed));
only that file is affected, its raw bytes stay in the archive, nothing of it was loaded, ops got
one alert. Once the parser is fixed, `returnwatch backfill` over its period loads it
([backfill](docs/runbook.md#backfill)).
"""


# Schedules are UTC (publishing calendars, in the publisher's time zone, are the monitor's).
dag = source_dag(
    source=SOURCE,
    cron="30 14 * * *",
    tags=["segob", "mexico", "monthly"],
    doc_md=DOC,
    outlet=RAW_SEGOB_BULLETIN,
)
