"""HHS monthly UC figures' raw table: the source id, its name, columns and DDL, and the derived
column the GX suite checks.

``RAW_TABLE_PREFIX`` is what every raw table of this source starts with (docs/sources.md,
"Source ids and raw-table prefixes").
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import pandas as pd


SOURCE = "hhs_uc_monthly"
# Every raw table of this source starts with it (docs/sources.md).
RAW_TABLE_PREFIX = "hhs_uc_monthly"
RAW_TABLE = "hhs_uc_monthly"
KIND_FY_PAGE = "fy_page"
PUBLISHER_TZ = ZoneInfo("America/New_York")
DEFAULT_FIRST_FISCAL_YEAR = 2018


COLUMNS = [
    "fiscal_year",
    "month",
    "section",
    "category",
    "measure",
    "value",
    "number_type",
    "source_row",
]


RAW_DDL = [
    f"""
    CREATE TABLE IF NOT EXISTS raw.{RAW_TABLE} (
        fiscal_year   INTEGER NOT NULL,  -- US federal fiscal year of the page (Oct-Sep)
        month         DATE NOT NULL,     -- first day of the month; Oct-Dec are in fiscal_year - 1
        section       VARCHAR NOT NULL,  -- the table's heading as published ('Overall Data')
        category      VARCHAR NOT NULL,  -- the row label as published ('Average Occupancy Rate:')
        measure       VARCHAR,           -- stable id of a known label; NULL for an unknown one
        value         DOUBLE,            -- NULL where the cell is blank (empty is not zero)
        number_type   VARCHAR NOT NULL,  -- 'Number', or 'Percent' (0-100, as printed with '%')
        source_file   VARCHAR NOT NULL,
        source_row    INTEGER NOT NULL,  -- n-th figure on the page (tables, rows, months)
        vintage       DATE NOT NULL,
        PRIMARY KEY (source_file, source_row)
    )
    """,
]


def prepare_for_suites(frame: pd.DataFrame) -> pd.DataFrame:
    """Percent figures alone, for the expectations on percentages."""
    frame = frame.copy()
    frame["percent_value"] = frame["value"].where(frame["number_type"] == "Percent")
    return frame
