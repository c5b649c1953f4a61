"""Fixtures shared by every test: an isolated data folder and the real files shipped in the repo."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pytest

from returnwatch import airflow_env, settings

# Before anything imports Airflow: the tests get an Airflow home (SQLite) of their own, so they
# never touch the demo's .airflow/ nor a user's ~/airflow.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="returnwatch-test-airflow-")
for _key, _value in airflow_env.defaults().items():
    os.environ[_key] = _value
os.environ.pop("SLACK_BOT_TOKEN", None)  # no test may reach a real Slack
os.environ.pop("RETURNWATCH_SLACK_BASE_URL", None)
logging.getLogger("great_expectations").setLevel(logging.WARNING)

# Shared fixtures that live in modules: `slack_standin` (a loopback Slack Web API).
pytest_plugins = ["tests.support.slack_standin"]

REAL_HHS_CSV = settings.replay_data_dir() / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RETURNWATCH_DATA_DIR: its own archive and warehouse, nothing shared between tests."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def real_hhs_bytes() -> bytes:
    """The real third-party copy of healthdata.gov dataset ehpz-xc9n (see include/replay/PROVENANCE.md)."""
    return REAL_HHS_CSV.read_bytes()
