"""SEGOB / Unidad de Política Migratoria (UPM), Mexico: the monthly migration bulletin.

The package reads the ``Boletín Mensual de Estadísticas Migratorias`` into typed rows and finds
its files on the publisher's pages; its layouts and quirks are in docs/sources.md, section C.
Parts: ``schema`` (id, raw tables, DDL), ``labels`` and ``countries`` (the bulletin's words),
``workbook`` (reading an ``.xls``), ``tables`` (one parser per bulletin table), ``microdata``
(the per-event CSV), ``discovery`` (the listing pages); this module wires them into ``KINDS``
and tells a hand-downloaded file's kind (``detect_kind``).
"""

from __future__ import annotations

from pathlib import PurePath

from returnwatch.sources.base import FileKind
from returnwatch.sources.errors import LayoutChanged
from returnwatch.sources.segob_bulletin_monthly.countries import (
    ALIASES,
    COUNTRIES,
    Country,
    iso3_for,
)
from returnwatch.sources.segob_bulletin_monthly.discovery import discover
from returnwatch.sources.segob_bulletin_monthly.labels import (
    MONTH_NAMES,
    NO_CONTINENT,
    NOT_SPLIT,
    RETURN_TYPES,
    SEX_LABELS,
    clean_label,
    table_number,
)
from returnwatch.sources.segob_bulletin_monthly.microdata import detect_encoding, parse_microdata
from returnwatch.sources.segob_bulletin_monthly.schema import (
    FRAME_COLUMNS,
    MICRODATA_COLUMNS,
    MICRODATA_KIND,
    MICRODATA_NAME,
    MICRODATA_TABLE,
    RAW_DDL,
    RAW_TABLE_PREFIX,
    SOURCE,
    TABLE_BY_NUMBER,
    TABLES,
    microdata_checks,
    month_checks,
)
from returnwatch.sources.segob_bulletin_monthly.tables import (
    ParsedTable,
    parse_cuadro_3_1_1,
    parse_cuadro_3_1_3,
    parse_cuadro_3_2_4,
    parse_section_5_minors,
)
from returnwatch.sources.segob_bulletin_monthly.workbook import (
    OLE_MAGIC,
    read_workbook,
    refuse_non_workbook,
)

KINDS: dict[str, FileKind] = {
    "cuadro_3_1_1": FileKind(
        kind="cuadro_3_1_1",
        parse=parse_cuadro_3_1_1,
        raw_table=TABLES["cuadro_3_1_1"].raw_table,
        suite=TABLES["cuadro_3_1_1"].raw_table,
        key_columns=("month", "country"),
        value_columns=("events",),
        description="Bulletin table 3.1.1: events of foreigners presented to (or channelled "
        "by) Mexico's migration authority, by nationality, one workbook per year.",
        prepare=month_checks,
    ),
    "cuadro_3_1_3": FileKind(
        kind="cuadro_3_1_3",
        parse=parse_cuadro_3_1_3,
        raw_table=TABLES["cuadro_3_1_3"].raw_table,
        suite=TABLES["cuadro_3_1_3"].raw_table,
        key_columns=("month", "sex", "age_group", "travel_condition"),
        value_columns=("events",),
        description="Bulletin table 3.1.3: the events of 3.1.1 by sex and age group (18+, "
        "12-17, under 12 accompanied / unaccompanied).",
        prepare=month_checks,
    ),
    "cuadro_3_2_4": FileKind(
        kind="cuadro_3_2_4",
        parse=parse_cuadro_3_2_4,
        raw_table=TABLES["cuadro_3_2_4"].raw_table,
        suite=TABLES["cuadro_3_2_4"].raw_table,
        key_columns=("month", "country", "return_type"),
        value_columns=("events",),
        description="Bulletin table 3.2.4: events of foreigners returned by Mexico "
        "(deportation, assisted return, assisted return of children), by "
        "nationality.",
        prepare=month_checks,
    ),
    "section_5_minors": FileKind(
        kind="section_5_minors",
        parse=parse_section_5_minors,
        raw_table=TABLES["section_5_minors"].raw_table,
        suite=TABLES["section_5_minors"].raw_table,
        key_columns=("month", "sex", "age_group", "travel_condition"),
        value_columns=("events",),
        description="Bulletin section 5: repatriation events of Mexican minors from the US by "
        "sex, age group (0-11, 12-17) and travel condition (accompanied or not).",
        prepare=month_checks,
    ),
    # Per-event rows have no key that survives between vintages (no event id is published),
    # so revisions are tracked on the monthly tables, not here.
    "microdata": FileKind(
        kind="microdata",
        parse=parse_microdata,
        raw_table=MICRODATA_TABLE,
        suite=MICRODATA_TABLE,
        description="Bulletin section 5 per-event microdata BDSIOMR_PUB_{YYYY}_UPMRIP.csv: one "
        "row per repatriation event of a Mexican national from the US.",
        prepare=microdata_checks,
    ),
}


def detect_kind(name: str, content: bytes) -> str:
    """Which kind a hand-downloaded file is: by its content, with the name as a hint."""
    hint = table_number(PurePath(name or "").name)  # a folder's digits are no hint
    if content.startswith(OLE_MAGIC):
        book = read_workbook(content, name)
        numbers = [n for n in (table_number(s) for s in book.sheet_names()) if n]
        if not numbers:
            sheet = book.sheet_by_index(0)
            numbers = [
                n
                for r in range(min(sheet.nrows, 6))
                for v in sheet.row_values(r)
                if isinstance(v, str) and (n := table_number(v))
            ]
        if hint in numbers or (hint and not numbers):
            numbers = [hint]
        for number in numbers:
            if number in TABLE_BY_NUMBER:
                return TABLE_BY_NUMBER[number].kind
        raise LayoutChanged(
            source=SOURCE,
            file=name,
            sheet=", ".join(book.sheet_names()),
            row=None,
            problem="the workbook is none of the tables read",
            expected=f"tables {', '.join(TABLE_BY_NUMBER)}",
            seen=", ".join(numbers) or "no table number",
        )
    refuse_non_workbook(content, name, "a bulletin workbook (.xls) or the microdata CSV")
    head = content[:4096].decode(detect_encoding(content[:4096]), "replace").upper()
    if all(f in head.split("\n", 1)[0] for f in ("FEC_REP", "SEXO")) or MICRODATA_NAME.search(
        PurePath(name or "").name
    ):
        return MICRODATA_KIND
    raise LayoutChanged(
        source=SOURCE,
        file=name,
        row=1,
        problem="the file is neither a bulletin workbook nor the microdata CSV",
        expected="an .xls workbook or a CSV with FEC_REP, SEXO, EDA, ...",
        seen=head[:120],
    )


__all__ = [
    "ALIASES",
    "COUNTRIES",
    "FRAME_COLUMNS",
    "KINDS",
    "MICRODATA_COLUMNS",
    "MICRODATA_NAME",
    "MICRODATA_TABLE",
    "MONTH_NAMES",
    "NOT_SPLIT",
    "NO_CONTINENT",
    "RAW_DDL",
    "RAW_TABLE_PREFIX",
    "RETURN_TYPES",
    "SEX_LABELS",
    "SOURCE",
    "TABLES",
    "Country",
    "ParsedTable",
    "clean_label",
    "detect_kind",
    "discover",
    "iso3_for",
    "parse_cuadro_3_1_1",
    "parse_cuadro_3_1_3",
    "parse_cuadro_3_2_4",
    "parse_microdata",
    "parse_section_5_minors",
    "table_number",
]
