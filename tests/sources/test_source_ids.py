"""One id per source: config key, package, DAG id, Asset, archive folder and CLI argument agree,
and every raw table of a source starts with the prefix the source declares.

The raw tables keep their shorter, older prefixes (``raw.segob_*``, ``raw.cbp_encounters_*``):
analysts query them by name, so they are not renamed; each source declares its prefix once
(``RAW_TABLE_PREFIX`` in its ``schema`` module) and this test holds the tables to it.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from pathlib import Path

import pytest
import yaml

from returnwatch import sources

ROOT = Path(__file__).resolve().parents[2]
SOURCE_IDS = list(sources.SOURCE_IDS)


def test_the_config_keys_are_the_source_ids() -> None:
    config = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text())
    assert sorted(config["sources"]) == sorted(SOURCE_IDS)


@pytest.mark.parametrize("source", SOURCE_IDS)
def test_the_package_is_named_by_the_id_and_declares_it(source: str) -> None:
    package = importlib.import_module(f"returnwatch.sources.{source}")
    assert package.SOURCE == source
    assert (ROOT / "include" / "returnwatch" / "sources" / source / "__init__.py").is_file()
    assert package.RAW_TABLE_PREFIX == package.schema.RAW_TABLE_PREFIX
    assert source.startswith(package.RAW_TABLE_PREFIX.rstrip("_"))


def test_no_other_package_is_a_source() -> None:
    folder = ROOT / "include" / "returnwatch" / "sources"
    packages = sorted(p.parent.name for p in folder.glob("*/__init__.py"))
    assert packages == sorted(SOURCE_IDS)


def raw_tables(source: str) -> set[str]:
    package = sources.module(source)
    created = {
        m
        for statement in package.RAW_DDL
        for m in re.findall(r"TABLE IF NOT EXISTS raw\.(\w+)", statement)
    }
    return created | {kind.raw_table for kind in package.KINDS.values()}


@pytest.mark.parametrize("source", SOURCE_IDS)
def test_every_raw_table_starts_with_the_declared_prefix(source: str) -> None:
    prefix = sources.module(source).RAW_TABLE_PREFIX
    tables = raw_tables(source)
    assert tables, f"{source} declares no raw table"
    assert sorted(t for t in tables if not t.startswith(prefix)) == []
    # ... and no other source's table does, so a prefix names one source.
    others = {t for other in SOURCE_IDS if other != source for t in raw_tables(other)}
    assert sorted(t for t in others if t.startswith(prefix)) == []


def test_the_dag_ids_and_assets_are_the_source_ids() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from returnwatch.assets import RAW_ASSETS

    for source in SOURCE_IDS:
        path = ROOT / "dags" / f"{source}.py"
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        assert list(bag.dag_ids) == [source]
    assert sorted(asset.name for asset in RAW_ASSETS) == sorted(f"raw.{s}" for s in SOURCE_IDS)


def test_the_cli_takes_the_source_ids() -> None:
    from returnwatch.cli import main

    for command in ("ingest", "backfill"):
        (argument,) = [p for p in main.commands[command].params if p.name == "source"]
        assert sorted(argument.type.choices) == sorted(SOURCE_IDS), command


@pytest.mark.parametrize("source", SOURCE_IDS)
def test_the_archive_folder_is_the_source_id(source: str, tmp_path: Path) -> None:
    from returnwatch.archive import Archive

    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    entry = Archive(tmp_path).store(
        source, "https://example.org/f.csv", b"a,b\n1,2\n", fetched_at=now, run_at=now, vintage=None
    )
    assert entry.path is not None and entry.path.parts[0] == source
    assert (tmp_path / source / "manifest.jsonl").is_file()


@pytest.mark.parametrize("source", SOURCE_IDS)
def test_every_source_package_has_the_same_parts(source: str) -> None:
    """The parts CONTRIBUTING.md ("Adding a source") lists, and no import of another source."""
    package = sources.module(source)
    folder = ROOT / "include" / "returnwatch" / "sources" / source
    schema = importlib.import_module(f"returnwatch.sources.{source}.schema")
    assert (schema.SOURCE, schema.RAW_DDL) == (source, package.RAW_DDL)
    assert callable(package.detect_kind) and package.KINDS
    # discovery.py exactly when the source's links are read off pages
    assert (folder / "discovery.py").is_file() == hasattr(package, "discover")
    others = [other for other in SOURCE_IDS if other != source]
    for path in folder.glob("*.py"):
        text = path.read_text()
        assert not [o for o in others if f"returnwatch.sources.{o}" in text], path
