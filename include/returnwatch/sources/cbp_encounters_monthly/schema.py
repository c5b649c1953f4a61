"""CBP encounters' raw tables: the source id, the tables' names, columns and DDL, the keys a
revision is tracked by, and the derived columns the GX suites check.

``RAW_TABLE_PREFIX`` is what every raw table of this source starts with (docs/sources.md,
"Source ids and raw-table prefixes"). Counts are encounters (events), not people.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


SOURCE = "cbp_encounters_monthly"
# Every raw table of this source starts with it (shorter than SOURCE: docs/sources.md).
RAW_TABLE_PREFIX = "cbp_encounters_"


RAW_TABLES = {
    "aor": "cbp_encounters_aor",
    "state": "cbp_encounters_state",
    "sbo": "cbp_encounters_sbo",
}

# Columns every layout gets from the parser, in raw-table order. The published Fiscal Year
# and Demographic labels are kept next to their normalised values.
_LEADING = ["month", "fiscal_year", "fiscal_year_published", "month_grouping"]
_DIMENSIONS: dict[str, list[str]] = {
    "aor": [
        "component",
        "land_border_region",
        "area_of_responsibility",
        "aor_abbv",
        "demographic",
        "demographic_published",
        "citizenship",
        "title_of_authority",
        "encounter_type",
    ],
    "state": [
        "land_border_region",
        "state",
        "demographic",
        "demographic_published",
        "citizenship",
        "title_of_authority",
    ],
    "sbo": [
        "component",
        "demographic",
        "demographic_published",
        "citizenship_grouping",
        "title_of_authority",
        "encounter_type",
    ],
}
FRAME_COLUMNS: dict[str, list[str]] = {
    kind: [*_LEADING, *dims, "encounters", "source_row"] for kind, dims in _DIMENSIONS.items()
}


# ------------------------------------------------------------------------------ validation


# What each component records under each title (CBP's definitions, docs/sources.md B).
_EXPECTED_TYPE = {
    ("U.S. Border Patrol", "Title 8"): "Apprehensions",
    ("Office of Field Operations", "Title 8"): "Inadmissibles",
    ("U.S. Border Patrol", "Title 42"): "Expulsions",
    ("Office of Field Operations", "Title 42"): "Expulsions",
}


def prepare_for_suites(frame: pd.DataFrame) -> pd.DataFrame:
    """Derived columns the suites check (never loaded).

    - ``title_42_month``: the month of Title 42 rows (empty otherwise), to check that they lie
      inside the Title 42 period;
    - ``encounter_type_expected``: what the component records under the title (aor/sbo).
    """
    frame = frame.copy()
    months = frame["month"]
    frame["title_42_month"] = months.where(frame["title_of_authority"] == "Title 42", None)
    if "encounter_type" in frame:
        frame["encounter_type_expected"] = [
            _EXPECTED_TYPE.get(pair, "(unknown component or title)")
            for pair in zip(frame["component"], frame["title_of_authority"])
        ]
    return frame


# A figure is one row of CBP's table: its identity is every dimension (normalised), so that
# a relabelled demographic (UAC -> UC / Single Minors) is not taken for a revision.
REVISION_KEYS = {
    "aor": (
        "month",
        "component",
        "land_border_region",
        "area_of_responsibility",
        "demographic",
        "citizenship",
        "title_of_authority",
        "encounter_type",
    ),
    "state": (
        "month",
        "land_border_region",
        "state",
        "demographic",
        "citizenship",
        "title_of_authority",
    ),
    "sbo": (
        "month",
        "component",
        "demographic",
        "citizenship_grouping",
        "title_of_authority",
        "encounter_type",
    ),
}


# ------------------------------------------------------------------------------ raw tables

_COMMON_HEAD = """
        month                  DATE NOT NULL,     -- first day of the calendar month (OCT-DEC are in FY-1)
        fiscal_year            INTEGER NOT NULL,  -- CBP fiscal year (Oct-Sep), from 'Fiscal Year'
        fiscal_year_published  VARCHAR NOT NULL,  -- 'Fiscal Year' as printed: '2023' or '2023 (FYTD)'
        month_grouping         VARCHAR NOT NULL,  -- 'FYTD' or 'Remaining': both are real data"""
_DEMOGRAPHIC = """
        demographic            VARCHAR NOT NULL,  -- 'UC / Single Minors' (printed 'UAC' in some vintages), 'FMUA', 'Single Adults', 'Accompanied Minors'
        demographic_published  VARCHAR NOT NULL,  -- 'Demographic' as printed in this file"""
_COMMON_TAIL = """
        encounters             INTEGER NOT NULL,  -- 'Encounter Count': events, not people
        source_file            VARCHAR NOT NULL,  -- sha256 of the archived CSV
        source_row             INTEGER NOT NULL,  -- line in that file, header = 1
        vintage                DATE NOT NULL,     -- publication date of that file
        PRIMARY KEY (source_file, source_row)"""

RAW_DDL = [
    f"""
    CREATE TABLE IF NOT EXISTS raw.{RAW_TABLES["aor"]} ({_COMMON_HEAD}
        component              VARCHAR NOT NULL,  -- 'U.S. Border Patrol' (between ports) or 'Office of Field Operations' (at ports)
        land_border_region     VARCHAR NOT NULL,  -- 'Southwest Land Border', 'Northern Land Border', 'Other'
        area_of_responsibility VARCHAR NOT NULL,  -- USBP sector or OFO field office, e.g. 'Rio Grande Valley Sector'
        aor_abbv               VARCHAR NOT NULL,  -- 'AOR (Abbv)' as printed, e.g. 'RGV'{_DEMOGRAPHIC}
        citizenship            VARCHAR NOT NULL,  -- upper case as printed, e.g. 'MEXICO', 'CHINA, PEOPLES REPUBLIC OF', 'OTHER'
        title_of_authority     VARCHAR NOT NULL,  -- 'Title 8' or 'Title 42' (2020-03-21 .. 2023-05-11)
        encounter_type         VARCHAR NOT NULL,  -- 'Apprehensions' (USBP, T8), 'Inadmissibles' (OFO, T8), 'Expulsions' (T42){_COMMON_TAIL}
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.{RAW_TABLES["state"]} ({_COMMON_HEAD}
        land_border_region     VARCHAR NOT NULL,  -- 'Southwest Land Border', 'Northern Land Border', 'Other'
        state                  VARCHAR NOT NULL,  -- two-letter code as printed (includes DC, PR, GU, VI, MP){_DEMOGRAPHIC}
        citizenship            VARCHAR NOT NULL,  -- upper case as printed, e.g. 'MEXICO'
        title_of_authority     VARCHAR NOT NULL,  -- 'Title 8' or 'Title 42'{_COMMON_TAIL}
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.{RAW_TABLES["sbo"]} ({_COMMON_HEAD}
        component              VARCHAR NOT NULL,  -- 'U.S. Border Patrol' or 'Office of Field Operations'{_DEMOGRAPHIC}
        citizenship_grouping   VARCHAR NOT NULL,  -- 'El Salvador', 'Guatemala', 'Honduras', 'Mexico', 'Other' as printed
        title_of_authority     VARCHAR NOT NULL,  -- 'Title 8' or 'Title 42'
        encounter_type         VARCHAR NOT NULL,  -- 'Apprehensions', 'Inadmissibles', 'Expulsions'{_COMMON_TAIL}
    )
    """,
]
