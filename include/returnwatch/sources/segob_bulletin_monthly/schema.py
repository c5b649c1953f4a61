"""The bulletin's raw tables: its id, their names, columns and DDL, and the checks GX needs.

``RAW_TABLE_PREFIX`` is what every raw table of this source starts with (docs/sources.md,
"Source ids and raw-table prefixes"). Counts are events (``eventos``), not people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from returnwatch.sources.segob_bulletin_monthly.labels import NON_COUNTRY_LABELS, label_key

if TYPE_CHECKING:
    import pandas as pd


SOURCE = "segob_bulletin_monthly"
# Every raw table of this source starts with it (shorter than SOURCE: docs/sources.md).
RAW_TABLE_PREFIX = "segob_"
PUBLISHER_TZ = ZoneInfo("America/Mexico_City")


# ------------------------------------------------------------------------------ tables


@dataclass(frozen=True)
class TableSpec:
    """One bulletin table: its number, what its rows are, where its rows go."""

    number: str
    kind: str
    raw_table: str
    rows: str  # "nationality" or "sex_age"
    column_groups: bool  # 3.2.4: an extra header row names the return type of each group
    # Words one of which the row-label header contains ("Continente y país de nacionalidad").
    label_header_words: tuple[str, ...]
    title: str


TABLES = {
    spec.kind: spec
    for spec in (
        TableSpec(
            "3.1.1",
            "cuadro_3_1_1",
            "segob_presented_by_nationality",
            "nationality",
            False,
            ("nacionalidad", "pais", "continente"),
            "Foreigners presented to (or channelled by) the migration authority, by nationality",
        ),
        TableSpec(
            "3.1.3",
            "cuadro_3_1_3",
            "segob_presented_by_sex_age",
            "sex_age",
            False,
            ("sexo", "edad"),
            "Foreigners presented to (or channelled by) the migration authority, by sex "
            "and age group",
        ),
        TableSpec(
            "3.2.4",
            "cuadro_3_2_4",
            "segob_returns_by_nationality",
            "nationality",
            True,
            ("nacionalidad", "pais", "continente"),
            "Foreigners returned by the Mexican migration authority, by nationality and "
            "type of return",
        ),
        # No public copy of section 5's minors table was found (docs/sources.md C): its number and
        # layout follow the bulletin's other tables and are an assumption to check against the
        # first real file (the parser then fails loudly, with the header it saw).
        TableSpec(
            "5.2.1",
            "section_5_minors",
            "segob_mexican_minor_repatriations",
            "sex_age",
            False,
            ("sexo", "edad", "condicion"),
            "Repatriation events of Mexican minors from the United States, by sex, age "
            "group and travel condition",
        ),
    )
}
TABLE_BY_NUMBER = {spec.number: spec for spec in TABLES.values()}
MICRODATA_KIND = "microdata"
MICRODATA_TABLE = "segob_repatriation_events"
MICRODATA_NAME = re.compile(r"BDSIOMR_PUB_(\d{4})_UPMRIP\.csv", re.IGNORECASE)

# The raw tables' columns except source_file and vintage (added at load), in table order.
FRAME_COLUMNS = {
    "cuadro_3_1_1": ["month", "continent", "region", "country", "iso3", "events", "source_row"],
    "cuadro_3_1_3": ["month", "sex", "age_group", "travel_condition", "events", "source_row"],
    "cuadro_3_2_4": [
        "month",
        "continent",
        "region",
        "country",
        "iso3",
        "return_type",
        "events",
        "source_row",
    ],
    "section_5_minors": ["month", "sex", "age_group", "travel_condition", "events", "source_row"],
}


# (CatRepatriados_{YYYY}.xls) that decodes them is a separate file, not read here.
MICRODATA_FIELDS = {
    "FEC_REP": "repatriation_date",
    "SEXO": "sex_code",
    "EDA": "age",
    "ACOM_REP": "travel_condition_code",
    "EDO_DET": "detention_state",
    "PUNT_REP": "repatriation_point",
}
MICRODATA_COLUMNS = [*MICRODATA_FIELDS.values(), "source_row"]


# ------------------------------------------------------------------------------ validation


def month_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns the GX suites need and the raw tables do not keep: whether a nationality label
    is one the countries table knows (months are first days of the title's year by
    construction, tests/sources/test_parser_guarantees.py)."""
    frame = frame.copy()
    if "country" in frame:
        known = frame["iso3"].notna() | frame["country"].map(
            lambda label: label_key(label) in NON_COUNTRY_LABELS
        )
        frame["country_recognised"] = known
    return frame


def microdata_checks(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frame = frame.copy()
    frame["repatriation_year"] = pd.to_datetime(frame["repatriation_date"]).dt.year
    return frame


_TRACE = """
    source_file   VARCHAR NOT NULL,  -- sha256 of the archived workbook / CSV
    source_row    INTEGER NOT NULL,  -- its row (sheet row or CSV line, 1-based, header block included)
    vintage       DATE NOT NULL,     -- publication date of that file"""

RAW_DDL = [
    f"""
    CREATE TABLE IF NOT EXISTS raw.segob_presented_by_nationality (
        month         DATE NOT NULL,     -- first day of the month (a month column of the year's workbook)
        continent     VARCHAR NOT NULL,  -- continent block the row sits in, as published ('América'); 'Sin continente' for 'Otros', 'Apátrida'
        region        VARCHAR,           -- region block inside the continent, as published ('América Central'), if any
        country       VARCHAR NOT NULL,  -- nationality as published, footnote digits removed ('Dominicana, Rep.')
        iso3          VARCHAR,           -- ISO 3166-1 alpha-3 where known ('DOM'); NULL for 'Otros', 'Apátrida', unknown names
        events        INTEGER NOT NULL,  -- events (not people) presented to / channelled by the INM; '-' = 0
        {_TRACE},
        PRIMARY KEY (source_file, month, country)
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.segob_presented_by_sex_age (
        month             DATE NOT NULL,     -- first day of the month
        sex               VARCHAR NOT NULL,  -- 'male' / 'female' (published 'Hombres' / 'Mujeres')
        age_group         VARCHAR NOT NULL,  -- '18+', '12-17', '0-11'
        travel_condition  VARCHAR NOT NULL,  -- 'accompanied' / 'unaccompanied' ('Acompañados' / 'No acompañados'); 'not_split' where the table does not split the age group
        events            INTEGER NOT NULL,  -- events (not people); '-' = 0
        {_TRACE},
        PRIMARY KEY (source_file, month, sex, age_group, travel_condition)
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.segob_returns_by_nationality (
        month         DATE NOT NULL,     -- first day of the month
        continent     VARCHAR NOT NULL,  -- as in segob_presented_by_nationality
        region        VARCHAR,
        country       VARCHAR NOT NULL,  -- nationality as published, footnote digits removed
        iso3          VARCHAR,           -- ISO 3166-1 alpha-3 where known
        return_type   VARCHAR NOT NULL,  -- 'deportation' / 'assisted_return' / 'assisted_return_children' (published 'Deportación', 'Retorno asistido', 'Retorno asistido de niñas, niños y adolescentes')
        events        INTEGER NOT NULL,  -- events (not people); '-' = 0
        {_TRACE},
        PRIMARY KEY (source_file, month, country, return_type)
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.segob_mexican_minor_repatriations (
        month             DATE NOT NULL,     -- first day of the month
        sex               VARCHAR NOT NULL,  -- 'male' / 'female'
        age_group         VARCHAR NOT NULL,  -- '0-11' / '12-17'
        travel_condition  VARCHAR NOT NULL,  -- 'accompanied' / 'unaccompanied' (published 'acompañados' / 'no acompañados')
        events            INTEGER NOT NULL,  -- repatriation events of Mexican minors from the US (not people)
        {_TRACE},
        PRIMARY KEY (source_file, month, sex, age_group, travel_condition)
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.segob_repatriation_events (
        repatriation_date      DATE NOT NULL,  -- FEC_REP
        sex_code               VARCHAR,        -- SEXO, code as published (codebook CatRepatriados_YYYY.xls)
        age                    SMALLINT,       -- EDA, years; NULL when empty
        travel_condition_code  VARCHAR,        -- ACOM_REP, code as published (accompanied / unaccompanied / not applicable)
        detention_state        VARCHAR,        -- EDO_DET, as published
        repatriation_point     VARCHAR,        -- PUNT_REP, as published
        {_TRACE},
        PRIMARY KEY (source_file, source_row)
    )
    """,
    "COMMENT ON TABLE raw.segob_presented_by_nationality IS 'SEGOB/UPM bulletin table 3.1.1: "
    "events of foreigners presented to or channelled by the INM, by nationality and month; "
    "leaf rows only (subtotals checked and left out)'",
    "COMMENT ON TABLE raw.segob_presented_by_sex_age IS 'SEGOB/UPM bulletin table 3.1.3: the "
    "events of 3.1.1 by sex, age group and travel condition; leaf rows only'",
    "COMMENT ON TABLE raw.segob_returns_by_nationality IS 'SEGOB/UPM bulletin table 3.2.4: "
    "events of foreigners returned by Mexico, by nationality, return type and month'",
    "COMMENT ON TABLE raw.segob_mexican_minor_repatriations IS 'SEGOB/UPM bulletin section 5: "
    "repatriation events of Mexican minors from the US by sex, age group, travel condition'",
    "COMMENT ON TABLE raw.segob_repatriation_events IS 'SEGOB/UPM section 5 microdata "
    "BDSIOMR_PUB_YYYY_UPMRIP.csv: one row per repatriation event, codes as published'",
]
