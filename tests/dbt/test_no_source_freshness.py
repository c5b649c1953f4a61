"""No dead configuration: dbt sources carry no ``freshness:`` that nothing runs. Whether a
source is late is the calendar monitor's judgement (config/monitors.yaml), one answer only."""

from __future__ import annotations

import yaml

from returnwatch import settings


def _walk(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (key,), value
            yield from _walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, path + (i,))


def test_no_dbt_source_declares_freshness() -> None:
    files = sorted((settings.dbt_project_dir() / "models").rglob("*.yml"))
    assert files
    found = [
        (f.name, path)
        for f in files
        for path, _ in _walk(yaml.safe_load(f.read_text()) or {})
        if path and path[-1] in ("freshness", "loaded_at_field")
    ]
    assert found == []
