"""Airflow Assets that connect source DAGs to the models built from them.

A source DAG emits its Asset when it has loaded a new file into ``raw.*``; the ``transform``
DAG is scheduled on those Assets, so the Airflow UI shows which source fed which model.
Only Airflow's light SDK is imported: DAG files import this at parse time.
"""

from airflow.sdk import Asset

RAW_HHS_UC_DAILY = Asset(name="raw.hhs_uc_daily", uri="duckdb://returnwatch/raw/hhs_uc_daily")

# Emitted by ``transform`` after a successful dbt build and snapshot publish.
MARTS = Asset(name="marts", uri="duckdb://returnwatch/marts")

RAW_ASSETS = [RAW_HHS_UC_DAILY]
