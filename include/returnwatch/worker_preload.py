"""What a Celery worker imports once at start-up, before it forks task processes.

Airflow runs each task in a process forked from the worker, so modules imported here are shared
copy-on-write by every task instead of imported again per task: Great Expectations alone costs
~14 s of a ~16 s validate task on 2 cores (measured in tests/deploy). docker-compose.yaml names
this module in ``AIRFLOW__CELERY__EXTRA_CELERY_CONFIG`` (``{"imports": [...]}``).

Great Expectations logs hundreds of "Skipping registering function" lines at import: its loggers
are quieted first, as ``returnwatch.quality`` does before a validation.
"""

from returnwatch.quality import quiet_gx_logging

quiet_gx_logging()

import dbt.cli.main  # noqa: E402,F401  (dbt's producer task in transform)
import great_expectations  # noqa: E402,F401  (validate_file / validate_rows)
import matplotlib  # noqa: E402,F401  (alert charts)
import pandas  # noqa: E402,F401  (parse, validate, load)
import pyarrow.parquet  # noqa: E402,F401  (parsed rows between tasks)
