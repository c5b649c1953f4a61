"""One module per publisher: pure parsers from the bytes a publisher serves to typed rows.

Parsers never touch the network or the warehouse, so every quirk is tested on real files
without either. Errors say which source, which file, which row and what was expected.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Source key (config/sources.yaml) -> the module in this package that reads its files.
SOURCE_MODULES: dict[str, str] = {
    "hhs_uc_daily": "hhs",
    "hhs_uc_monthly": "hhs_monthly",
    "cbp_encounters_monthly": "cbp",
    "segob_bulletin_monthly": "segob",
}


def module(source: str) -> ModuleType:
    """The source's module (imported on first use: parsers pull in pandas, xlrd, pdfplumber)."""
    try:
        name = SOURCE_MODULES[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}; known: {sorted(SOURCE_MODULES)}") from None
    return importlib.import_module(f"returnwatch.sources.{name}")


def raw_ddl() -> list[str]:
    """Every source's ``CREATE TABLE IF NOT EXISTS raw.*`` statements."""
    statements: list[str] = []
    for source in SOURCE_MODULES:
        statements.extend(module(source).RAW_DDL)
    return statements
