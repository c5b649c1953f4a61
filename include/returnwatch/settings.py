"""Where returnwatch keeps things, and which settings come from the environment.

One module owns every path and environment variable so that the DAGs, the CLI, the demo and
the tests agree. Embedded defaults need no setting at all: the archive and the warehouse live
under ``data/`` in the project, Airflow's home under ``.airflow/``.

Environment variables (all optional):

- ``RETURNWATCH_DATA_DIR``: archive, warehouse and snapshot folder (default ``<project>/data``).
- ``RETURNWATCH_CONFIG_DIR``: folder with sources.yaml, monitors.yaml (default ``<project>/config``).
- ``RETURNWATCH_<SOURCE>_BASE_URL``: replaces a source's base URL (the replay mirror uses this),
  e.g. ``RETURNWATCH_HHS_UC_DAILY_BASE_URL=http://127.0.0.1:8765/healthdata``.
- ``RETURNWATCH_SLACK_BASE_URL``: Slack Web API base URL (tests point it at a loopback stand-in).
- ``SLACK_BOT_TOKEN``: Slack token when no Airflow connection ``slack_api_default`` exists.
"""

from __future__ import annotations

import os
from pathlib import Path

# include/returnwatch/settings.py -> project root is three levels up.
PROJECT_DIR = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    return Path(os.environ.get("RETURNWATCH_DATA_DIR", PROJECT_DIR / "data")).resolve()


def config_dir() -> Path:
    return Path(os.environ.get("RETURNWATCH_CONFIG_DIR", PROJECT_DIR / "config")).resolve()


def archive_dir() -> Path:
    """Content-addressed store of every file ever received, with its manifest."""
    return data_dir() / "archive"


def warehouse_path() -> Path:
    """The DuckDB file that loads, dbt and monitors write (one writer at a time)."""
    return data_dir() / "warehouse.duckdb"


def outbox_path() -> Path:
    """The alert outbox (SQLite): kept out of the warehouse so a build never delays delivery."""
    return data_dir() / "outbox.sqlite3"


def snapshot_path() -> Path:
    """Read-only copy for analysts, replaced atomically after each successful build."""
    return data_dir() / "snapshot" / "warehouse.duckdb"


def dbt_project_dir() -> Path:
    return PROJECT_DIR / "dbt_project"


def expectations_dir() -> Path:
    return PROJECT_DIR / "expectations"


def replay_data_dir() -> Path:
    """Real published files the replay mirror serves (copied in with their provenance)."""
    return PROJECT_DIR / "include" / "replay"


def source_base_url_override(source: str) -> str | None:
    return os.environ.get(f"RETURNWATCH_{source.upper()}_BASE_URL") or None


def slack_base_url() -> str:
    return os.environ.get("RETURNWATCH_SLACK_BASE_URL", "https://slack.com/api/")


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", PROJECT_DIR / ".airflow")).resolve()
