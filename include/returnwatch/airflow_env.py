"""The embedded Airflow: a project-local home with SQLite, no daemons, no settings to write.

``configure()`` must run before the first ``import airflow`` of a process (the CLI does it on
start-up; ``make`` exports the same variables). Values already in the environment win, so an
operator's deployment (docker-compose, .env) is never overridden.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from returnwatch import settings


def defaults() -> dict[str, str]:
    home = settings.airflow_home()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # Cosmos backs up the dbt producer's XComs to an Airflow Variable after every dbt event,
        # for a retry of the producer; ours is never retried (transform.configure_dbt_tasks),
        # so the backup only cost ~4 s of CPU per transform run.
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        # Cosmos keeps dbt's partial-parse state in one folder per DAG and task group, by
        # default under the system's temporary folder, shared by every checkout on the machine:
        # another checkout's state (other paths) made the next build parse the project again.
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
        # The local UI listens on the loopback only, so everyone who can reach it is the admin.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": os.environ.get("RETURNWATCH_UI_PORT", "8080"),
        "AIRFLOW__API_AUTH__JWT_SECRET": _local_secret(
            home / "jwt_secret", "AIRFLOW__API_AUTH__JWT_SECRET"
        ),
        # Encrypts connection passwords (the Slack token) in the metadata DB.
        "AIRFLOW__CORE__FERNET_KEY": _local_secret(
            home / "fernet_key", "AIRFLOW__CORE__FERNET_KEY", fernet=True
        ),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
    }


def configure() -> None:
    for key, value in defaults().items():
        os.environ.setdefault(key, value)


def _local_secret(path: Path, variable: str, *, fernet: bool = False) -> str:
    """A per-checkout random secret kept in the Airflow home (mode 600), never committed.

    The JWT secret must be ≥64 bytes for the API server; a Fernet key is 32 url-safe bytes.
    """
    if os.environ.get(variable):
        return os.environ[variable]
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = (
            base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            if fernet
            else secrets.token_urlsafe(64)
        )
        path.write_text(value)
        path.chmod(0o600)
        return value


def prepare_metadata_db() -> None:
    """Create or upgrade Airflow's metadata DB and the one-slot warehouse pool (idempotent)."""
    configure()
    from airflow.models.pool import Pool
    from airflow.utils import db

    from returnwatch.airflow_support import WAREHOUSE_POOL

    db.upgradedb()
    Pool.create_or_update_pool(
        name=WAREHOUSE_POOL,
        slots=1,
        include_deferred=False,
        description="DuckDB allows one writer: every task that writes the warehouse runs here.",
    )
