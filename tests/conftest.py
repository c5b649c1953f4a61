"""Fixtures shared by every test: an isolated data folder and the real files shipped in the repo."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from returnwatch import settings

# Airflow must never touch the user's ~/airflow from tests.
os.environ.setdefault("AIRFLOW_HOME", str(settings.PROJECT_DIR / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
logging.getLogger("great_expectations").setLevel(logging.WARNING)

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
