"""Fault injection: workers killed (SIGKILL) or failing mid-step, then the warehouse compared
with a clean run's. Every test here is marked ``faults`` (``make test-faults``)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)
