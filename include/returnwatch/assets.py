"""Airflow Assets that connect source DAGs to the models built from them.

A source DAG emits its Asset when it has loaded a new file into ``raw.*``; the ``transform``
DAG is scheduled on those Assets, so the Airflow UI shows which source fed which model.
Only Airflow's light SDK is imported: DAG files import this at parse time.
"""

from airflow.sdk import Asset

RAW_HHS_UC_DAILY = Asset(name="raw.hhs_uc_daily", uri="duckdb://returnwatch/raw/hhs_uc_daily")
# One Asset per source, named raw.<source id> (tests/sources/test_source_ids.py); a multi-file
# source's Asset covers every raw table its files load.
RAW_HHS_UC_MONTHLY = Asset(name="raw.hhs_uc_monthly", uri="duckdb://returnwatch/raw/hhs_uc_monthly")
RAW_CBP_ENCOUNTERS = Asset(
    name="raw.cbp_encounters_monthly", uri="duckdb://returnwatch/raw/cbp_encounters_monthly"
)
RAW_SEGOB_BULLETIN = Asset(
    name="raw.segob_bulletin_monthly", uri="duckdb://returnwatch/raw/segob_bulletin_monthly"
)

# Emitted by ``transform`` after a successful dbt build and snapshot publish.
MARTS = Asset(name="marts", uri="duckdb://returnwatch/marts")

RAW_ASSETS = [RAW_HHS_UC_DAILY, RAW_HHS_UC_MONTHLY, RAW_CBP_ENCOUNTERS, RAW_SEGOB_BULLETIN]
