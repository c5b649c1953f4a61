"""The ops view: returnwatch's page inside the Airflow UI (see ``plugin.py``)."""
