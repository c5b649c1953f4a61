"""Fixtures of the end-to-end tests: the project's DAGs, parsed once per module."""

from __future__ import annotations

import pytest

from returnwatch import airflow_env


@pytest.fixture(scope="module")
def dags() -> dict:
    """The DAGs as the dag-processor parses them, with a migrated metadata DB."""
    airflow_env.prepare_metadata_db()
    from returnwatch_replay.demo import load_dags

    return load_dags()
