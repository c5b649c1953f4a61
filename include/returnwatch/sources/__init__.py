"""One package per publisher's source, named by its id: pure parsers from the bytes a publisher
serves to typed rows.

A source's id is its key in ``config/sources.yaml``, its DAG id, its package here, its archive
folder and the ``returnwatch ingest`` / ``backfill`` argument (tests/sources/test_source_ids.py).
Parsers never touch the network or the warehouse, so every quirk is tested on real files
without either. Errors say which source, which file, which row and what was expected.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Every source id, in the order people see them (status, DAG list). Each is a package
# ``returnwatch.sources.<id>`` with the parts sources/base.py lists.
SOURCE_IDS: tuple[str, ...] = (
    "hhs_uc_daily",
    "hhs_uc_monthly",
    "cbp_encounters_monthly",
    "segob_bulletin_monthly",
)
# The name callers used when ids and modules differed; the package of each id is the id.
SOURCE_MODULES = SOURCE_IDS


def module(source: str) -> ModuleType:
    """The source's package (imported on first use: parsers pull in pandas, xlrd, pdfplumber)."""
    if source not in SOURCE_IDS:
        raise ValueError(f"unknown source {source!r}; known: {sorted(SOURCE_IDS)}")
    return importlib.import_module(f"returnwatch.sources.{source}")


def raw_ddl() -> list[str]:
    """Every source's ``CREATE TABLE IF NOT EXISTS raw.*`` statements."""
    statements: list[str] = []
    for source in SOURCE_IDS:
        statements.extend(module(source).RAW_DDL)
    return statements
