"""SEGOB / Unidad de Política Migratoria (UPM), Mexico: the monthly migration bulletin.

What this module owns: reading the ``Boletín Mensual de Estadísticas Migratorias``
(``docs/sources.md`` section C) into typed rows, and finding its files on the
publisher's pages. It is pure (bytes in, rows out) apart from ``discover``, which reads pages
through the ``get_page`` it is given.

File kinds (``KINDS``) and the raw tables they fill:

==================  ======================================  =====================================
kind                what the file is                        raw table
==================  ======================================  =====================================
cuadro_3_1_1        table 3.1.1: foreigners presented to /  segob_presented_by_nationality
                    channelled by the migration authority,
                    by nationality
cuadro_3_1_3        table 3.1.3: the same events by sex     segob_presented_by_sex_age
                    and age (18+, 12-17, under 12
                    accompanied / unaccompanied)
cuadro_3_2_4        table 3.2.4: returns by nationality     segob_returns_by_nationality
                    and type (deportation, assisted return,
                    assisted return of children)
section_5_minors    section 5: repatriation events of       segob_mexican_minor_repatriations
                    Mexican minors from the US by sex, age
                    group and travel condition
microdata           section 5 per-event CSV                 segob_repatriation_events
                    ``BDSIOMR_PUB_{YYYY}_UPMRIP.csv``
==================  ======================================  =====================================

How a workbook is read (legacy BIFF8 ``.xls``, one per table per year, overwritten monthly with
the year to date). Everything is matched by label, never by position:

- the sheet is the one named after the table (``Cuadro 3.1.1``); the title (``C2`` in real
  files) names the table and the year;
- the header row is the first row holding month names (``Enero`` … ``Diciembre``); next to them
  only ``Total`` and ``Subtotal`` are allowed (3–5 rows above it are title, spacers and, in some
  editions, an extra header row such as ``Mes``); table 3.2.4 has one more header row above the
  months naming the return type of each column group;
- months are columns, in whatever order the edition uses; a month column that is empty in every
  row has not been published yet; ``-`` means zero (the bulletin's own note: ``(-) Significa
  cero.``), as does a numeric 0 formatted to show ``-``;
- footnote digits glued to labels (``Estados Unidos 1``, ``Otros 4``) are removed;
- the title and header block that repeats at every printed page break (with ``(Continúa)`` /
  ``(Concluye)``), page notes, blank spacer rows and the notes and sources at the bottom are
  recognised and skipped;
- subtotal rows (``Total general``, ``Nacionales`` / ``Extranjeros``, continents, regions such
  as ``América Central``; ``Hombres`` / ``Mujeres`` and age groups that are split further) are
  recognised and **kept out of the raw tables**: every loaded row is a leaf, so a sum over a raw
  table never double counts. They are not thrown away unchecked: the ``Total`` row must equal
  the sum of the leaves in every month (and in the sex/age tables every subtotal row the sum of
  its own leaves), otherwise the file is a ``BadValue`` — a misread label (a region taken for a
  country, say) cannot slip through;
- each row's own ``Total`` column must equal the sum of its months and each ``Subtotal`` column
  the months since the previous one (``BadValue`` otherwise).

Counts are events (``eventos``), not people: one person presented twice is two events.

A file the parser does not know (another sheet or table, an unknown header or row label, an
HTML page or an empty body instead of a workbook) raises ``LayoutChanged`` naming the file, the
sheet, the row and what it saw; a cell that is not a count raises ``BadValue``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit
from zoneinfo import ZoneInfo

from returnwatch import reference
from returnwatch.sources.base import FileKind, GetPage, Link
from returnwatch.sources.errors import (
    BadValue,
    LayoutChanged,
    SourceFileError,
    check_count,
    refuse_nul,
    refuse_tag_flood,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

SOURCE = "segob_bulletin_monthly"
PUBLISHER_TZ = ZoneInfo("America/Mexico_City")

# ------------------------------------------------------------------------------ vocabularies

MONTHS = {
    "enero": 1,
    "febrero": 2,
    "marzo": 3,
    "abril": 4,
    "mayo": 5,
    "junio": 6,
    "julio": 7,
    "agosto": 8,
    "septiembre": 9,
    "setiembre": 9,
    "octubre": 10,
    "noviembre": 11,
    "diciembre": 12,
}
MONTH_NAMES = [
    "Enero",
    "Febrero",
    "Marzo",
    "Abril",
    "Mayo",
    "Junio",
    "Julio",
    "Agosto",
    "Septiembre",
    "Octubre",
    "Noviembre",
    "Diciembre",
]

# Texts that may sit above the month names in an extra header row of a table without column
# groups (seen: "Mes"); anything else there is a layout we do not know.
EXTRA_HEADER_TEXTS = {"mes", "meses", "eventos", "periodo", "mes de registro"}

# Row labels of subtotal rows in the nationality tables (compared after normalisation).
TOTAL_LABELS = {"total", "total general"}
SPLIT_LABELS = {"nacionales", "extranjeros"}  # Total general > Nacionales / Extranjeros
CONTINENTS = {
    "america": "América",
    "europa": "Europa",
    "asia": "Asia",
    "africa": "África",
    "oceania": "Oceanía",
}
REGIONS = {
    "america del norte",
    "norteamerica",
    "america central",
    "centroamerica",
    "el caribe",
    "caribe",
    "america del sur",
    "sudamerica",
    "suramerica",
}
# Leaf rows that are no nationality: they belong to no continent block and get no ISO3.
NON_COUNTRY_LABELS = {
    "otros",
    "otros paises",
    "otras nacionalidades",
    "apatrida",
    "apatridas",
    "no especificado",
    "no especificada",
    "no identificado",
    "sin nacionalidad",
}
NO_CONTINENT = "Sin continente"

# Return types of table 3.2.4 (column groups), normalised to short codes.
RETURN_TYPES = ("deportation", "assisted_return", "assisted_return_children")

# Sex / age / travel condition (tables 3.1.3 and section 5).
SEX_LABELS = {
    "hombres": "male",
    "hombre": "male",
    "masculino": "male",
    "mujeres": "female",
    "mujer": "female",
    "femenino": "female",
}
CONDITION_LABELS = {
    "acompanados": "accompanied",
    "acompanadas": "accompanied",
    "acompanados as": "accompanied",
    "no acompanados": "unaccompanied",
    "no acompanadas": "unaccompanied",
    "no acompanados as": "unaccompanied",
}
NOT_SPLIT = "not_split"  # an age group the table does not split by travel condition

# ------------------------------------------------------------------------------ nationalities


# Other spellings of the same nationalities (older editions, other SEGOB tables, common usage).
ALIASES = {
    "Republica Dominicana": "DOM",
    "Rep. Dominicana": "DOM",
    "Estados Unidos de America": "USA",
    "EUA": "USA",
    "EE. UU.": "USA",
    "Corea del Sur": "KOR",
    "Corea, Republica de": "KOR",
    "Corea del Norte": "PRK",
    "Reino Unido de Gran Bretana e Irlanda del Norte": "GBR",
    "Venezuela, Rep. Bolivariana de": "VEN",
    "Bolivia, Estado Plurinacional de": "BOL",
    "Checa, Republica": "CZE",
    "Chequia": "CZE",
    "Republica Checa": "CZE",
    "Congo, Republica Democratica del": "COD",
    "Republica Democratica del Congo": "COD",
    "Republica Centroafricana": "CAF",
    "Guinea-Bissau": "GNB",
    "Guinea Bissau": "GNB",
    "Yibouti": "DJI",
    "Djibouti": "DJI",
    "Belarus": "BLR",
    "Viet Nam": "VNM",
    "Nueva Zelanda": "NZL",
    "Holanda": "NLD",
    "Macedonia": "MKD",
    "Moldova": "MDA",
    "Rusia, Federacion de": "RUS",
    "Federacion de Rusia": "RUS",
    "Iran, Rep. Islamica del": "IRN",
    "Siria, Rep. Arabe": "SYR",
    "Republica Arabe Siria": "SYR",
    "Laos, Rep. Dem. Popular": "LAO",
    "Palestina, Estado de": "PSE",
    "Taiwan, Provincia de China": "TWN",
    "Surinam": "SUR",
    "Suriname": "SUR",
    "Kazajstan": "KAZ",
    "Kirguizistan": "KGZ",
    "Zimbabwe": "ZWE",
    "Malawi": "MWI",
    "Lesotho": "LSO",
    "Benin": "BEN",
    "Fiji": "FJI",
    "Rumania": "ROU",
    "Rumanía": "ROU",
    "Guinea-Bisau": "GNB",
}


def _key(text: str) -> str:
    """A label reduced for comparison: no accents, case or punctuation, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


@dataclass(frozen=True)
class Country:
    iso3: str
    label: str
    continent: str
    region: str | None


# The bulletin's countries (its spelling, continent and region block) from the project's one
# countries table (returnwatch.reference, dbt_project/seeds/countries.csv).
COUNTRIES: dict[str, Country] = {
    row.iso3: Country(row.iso3, row.segob_country, row.segob_continent or "", row.segob_region)
    for row in reference.countries()
    if row.segob_country
}
_ISO3_BY_KEY = {_key(c.label): c.iso3 for c in COUNTRIES.values()}
_ISO3_BY_KEY.update({_key(name): iso3 for name, iso3 in ALIASES.items()})


def iso3_for(label: str) -> str | None:
    """The ISO 3166-1 alpha-3 code of a nationality as the bulletin labels it, or None."""
    return _ISO3_BY_KEY.get(_key(clean_label(label)))


# ------------------------------------------------------------------------------ labels

# A footnote number glued to a label: "Estados Unidos 1", "Otros 4", "Total 1/", "Corea, Rep.
# de 3". Never part of a longer number (a year) ...
_FOOTNOTE = re.compile(r"^(?P<label>.*\D)\s*\d{1,2}\s*/?\s*$")
# ... nor the end of an age range or bound ("De 0 a 11", "18 y 19", "Menores de 12").
_NUMBER_BELONGS = re.compile(r"(\d\s*(a|y|al|hasta|-)|\b(menores|mayores) de)\s*$", re.IGNORECASE)
_TABLE_NUMBER = re.compile(r"(?<![\d.])(\d{1,2})[._ ](\d{1,2})[._ ](\d{1,2})(?![\d])")
_YEAR = re.compile(r"(?<!\d)(20\d{2}|19\d{2})(?!\d)")
_DASHES = {"-", "–", "—", "- ", "--"}
_PAGE_MARKER = re.compile(
    r"contin[uú]a|concluye|significa cero|ver notas|^fuente|^notas?:?$", re.IGNORECASE
)
_TITLE_REPEAT = re.compile(r"\((contin[uú]a|concluye)\)", re.IGNORECASE)


def clean_label(text: str) -> str:
    """The label as published, without footnote digits or extra spaces."""
    text = " ".join(str(text).replace("\xa0", " ").split())
    match = _FOOTNOTE.match(text)
    if match and not _NUMBER_BELONGS.search(match.group("label")):
        return match.group("label").strip()
    return text


def table_number(text: str) -> str | None:
    """``3.1.1`` from 'Cuadro 3.1.1 ...', 'cuadro_3.1.1.xls' or 'cuadro3.1.1_.xls'."""
    match = _TABLE_NUMBER.search(text)
    return ".".join(str(int(part)) for part in match.groups()) if match else None


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

# ------------------------------------------------------------------------------ parsed files


@dataclass
class ParsedTable:
    """One bulletin workbook: leaf rows, one per (row label, month[, return type])."""

    kind: str
    file: str
    sheet: str
    year: int
    title: str
    rows: list[dict[str, Any]]
    months: list[int]
    stats: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame.from_records(self.rows, columns=FRAME_COLUMNS[self.kind])
        frame["events"] = frame["events"].astype("int64")
        frame["source_row"] = frame["source_row"].astype("int64")
        return frame

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": TABLES[self.kind].number,
            "sheet": self.sheet,
            "year": self.year,
            "months": self.months,
            "rows": len(self.rows),
            "title": self.title,
            **self.stats,
        }


# ------------------------------------------------------------------------------ workbooks

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _refuse_non_workbook(content: bytes, file: str, expected: str) -> None:
    """An empty body or an HTML page where a workbook should be: the site's usual failures."""
    if not content.strip():
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=None,
            problem="the file is empty",
            expected=expected,
            seen="",
        )
    head = content[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")) or b"<html" in head:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=None,
            problem="the publisher served an HTML page instead of the file",
            expected=expected,
            seen=content[:200].decode("latin-1", "replace").strip(),
        )


class _XlrdLog:
    """xlrd's warnings about a damaged file ("file size not 512 + multiple of sector size")
    go to the debug log, not to stdout: the error raised says what matters."""

    def write(self, text: str) -> None:
        if text.strip():
            log.debug("xlrd: %s", text.strip())

    def flush(self) -> None:
        pass


_XLRD_LOG = _XlrdLog()


def _open_workbook(content: bytes, file: str) -> Any:
    import xlrd

    expected = "a legacy Excel workbook (.xls, BIFF8)"
    _refuse_non_workbook(content, file, expected)
    if not content.startswith(_OLE_MAGIC):
        kind = "an .xlsx (zip) workbook" if content.startswith(b"PK") else "not a workbook"
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=None,
            problem=f"the file is {kind}",
            expected=expected,
            seen=content[:16].hex(" "),
        )
    try:
        # ragged_rows: a stray cell in a far column (or a damaged index) then costs one
        # long row, not a rectangle of every row times that width.
        return xlrd.open_workbook(
            file_contents=content, on_demand=True, ragged_rows=True, logfile=_XLRD_LOG
        )
    # xlrd reports a damaged or cut file with many exception types (CompDocError, XLRDError,
    # struct.error, IndexError, AssertionError...); all mean the same thing here.
    except Exception as exc:  # noqa: BLE001
        raise BadValue(
            source=SOURCE,
            file=file,
            row=None,
            problem="the workbook cannot be read (truncated or damaged download?)",
            expected=expected,
            seen=f"{type(exc).__name__}: {exc}",
        ) from None


def _pick_sheet(book: Any, spec: TableSpec, file: str) -> Any:
    """The sheet named after the table; a single sheet is accepted when its title agrees."""
    names = book.sheet_names()
    for name in names:
        if table_number(name) == spec.number:
            return book.sheet_by_name(name)
    if len(names) == 1 and table_number(names[0]) is None:
        return book.sheet_by_index(0)  # e.g. "Hoja1": the title decides (checked later)
    raise LayoutChanged(
        source=SOURCE,
        file=file,
        sheet=", ".join(names),
        row=None,
        problem=f"no sheet for table {spec.number}",
        expected=f"a sheet named 'Cuadro {spec.number}'",
        seen=", ".join(names),
    )


def _colname(index: int) -> str:
    import xlrd.formula

    return xlrd.formula.colname(index)


@dataclass
class _Cell:
    text: str | None  # stripped text, or None
    number: float | None


def _grid(sheet: Any) -> list[list[_Cell]]:
    import xlrd

    rows = []
    for r in range(sheet.nrows):
        cells = []
        for c in range(sheet.row_len(r)):
            ctype, value = sheet.cell_type(r, c), sheet.cell_value(r, c)
            if ctype in (xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_DATE, xlrd.XL_CELL_BOOLEAN):
                cells.append(_Cell(None, float(value)))
            elif ctype == xlrd.XL_CELL_TEXT and str(value).strip():
                cells.append(_Cell(" ".join(str(value).replace("\xa0", " ").split()), None))
            else:  # empty, blank, error cells
                cells.append(_Cell(None, None))
        rows.append(cells)
    return rows


@dataclass(frozen=True)
class _Column:
    index: int
    role: str  # "month" | "total" | "subtotal"
    month: int | None
    group: str | None  # return type (3.2.4) or None


@dataclass
class _Header:
    row: int  # 0-based row of the month names
    label_col: int
    first_value_col: int
    columns: list[_Column]
    group_row: int | None
    texts: dict[int, str]  # the month row's texts by column, to recognise repeats
    group_texts: dict[int, str]


def _column_role(text: str) -> tuple[str, int | None] | None:
    key = _key(clean_label(text))
    if key in MONTHS:
        return "month", MONTHS[key]
    if key == "total" or key.startswith("total "):
        return "total", None
    if key.startswith("subtotal"):
        return "subtotal", None
    return None


def _return_type(text: str) -> str | None:
    key = _key(clean_label(text))
    if key.startswith("deportacion"):
        return "deportation"
    if key.startswith(("retorno asistido", "retornos asistidos")):
        children = any(word in key for word in ("menor", "nina", "nino", "nna", "adolesc"))
        return "assisted_return_children" if children else "assisted_return"
    if key == "total":
        return "total"
    return None


def _row_texts(row: list[_Cell]) -> list[str]:
    return [cell.text for cell in row if cell.text]


def _find_header(grid: list[list[_Cell]], spec: TableSpec, file: str, sheet: str) -> _Header:
    limit = min(len(grid), 40)
    month_row = next(
        (
            r
            for r in range(limit)
            if any(c.text and (_column_role(c.text) or ("", None))[0] == "month" for c in grid[r])
        ),
        None,
    )
    if month_row is None:
        seen = " / ".join(" | ".join(_row_texts(row)) for row in grid[:8] if _row_texts(row))
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=None,
            problem=f"no header row with month names in the first {limit} rows",
            expected="a header row with 'Enero' … 'Diciembre' and 'Total'",
            seen=seen,
        )
    row = grid[month_row]
    first_month = min(
        c
        for c, cell in enumerate(row)
        if cell.text and (_column_role(cell.text) or ("", None))[0] == "month"
    )
    # The row-label header sits left of the months, on the month row or up to two rows above
    # (merged over the header block).
    label_col = None
    for r in (month_row, month_row - 1, month_row - 2):
        if r < 0:
            continue
        for c in range(min(first_month, len(grid[r]))):  # rows are ragged
            text = grid[r][c].text
            if text and any(word in _key(text) for word in spec.label_header_words):
                label_col = c
                break
        if label_col is not None:
            break
    if label_col is None:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=month_row + 1,
            problem="no row-label header left of the months",
            expected=f"a header naming {' / '.join(spec.label_header_words)} "
            f"(e.g. 'Continente y país de nacionalidad')",
            seen=" | ".join(_row_texts(row)),
        )
    # Every header right of the label header is a value column and must be one we know.
    first_value = min(c for c in range(label_col + 1, len(row)) if row[c].text)
    columns: list[_Column] = []
    texts: dict[int, str] = {}
    for c in range(first_value, len(row)):
        text = row[c].text
        if text is None:
            continue
        role = _column_role(text)
        if role is None:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=month_row + 1,
                column=_colname(c),
                problem=f"unknown column header {text!r}",
                expected="Enero … Diciembre, Subtotal, Total",
                seen=" | ".join(_row_texts(row)),
            )
        texts[c] = text
        columns.append(_Column(c, role[0], role[1], None))
    group_row, group_texts = None, {}
    above = month_row - 1
    above_texts = (
        {
            c: grid[above][c].text
            for c in range(first_value, len(grid[above]))
            if grid[above][c].text
        }
        if above >= 0
        else {}
    )
    if spec.column_groups:
        if not above_texts:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=month_row,
                problem="no row naming the return type above the months",
                expected="'Deportación', 'Retorno asistido', 'Retorno asistido "
                "de niñas, niños y adolescentes' over the month groups",
                seen=" | ".join(_row_texts(grid[above])) if above >= 0 else "",
            )
        group_row, group_texts = above, above_texts
        current = None
        grouped = []
        for column in columns:
            if column.index in above_texts:
                current = _return_type(above_texts[column.index])
                if current is None:
                    raise LayoutChanged(
                        source=SOURCE,
                        file=file,
                        sheet=sheet,
                        row=above + 1,
                        column=_colname(column.index),
                        problem=f"unknown return type {above_texts[column.index]!r}",
                        expected="Deportación, Retorno asistido, Retorno asistido de niñas, "
                        "niños y adolescentes (or de menores), Total",
                        seen=" | ".join(_row_texts(grid[above])),
                    )
            if current is None:
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=above + 1,
                    column=_colname(column.index),
                    problem="a month column before any return-type heading",
                    expected="a return type over every column group",
                    seen=" | ".join(_row_texts(grid[above])),
                )
            grouped.append(dataclasses.replace(column, group=current))
        columns = grouped
    else:
        # Without column groups, the only row allowed over the months is an extra header row
        # such as "Mes" (some editions have one); anything else is a layout we do not know.
        unknown = [
            t
            for t in above_texts.values()
            if _key(t) not in EXTRA_HEADER_TEXTS and not _YEAR.fullmatch(t.strip())
        ]
        if unknown:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=above + 1,
                problem=f"unknown header {unknown[0]!r} above the months",
                expected="at most an extra row such as 'Mes'",
                seen=" | ".join(_row_texts(grid[above])),
            )
    return _Header(month_row, label_col, first_value, columns, group_row, texts, group_texts)


def _title(
    grid: list[list[_Cell]], header: _Header, spec: TableSpec, file: str, sheet_name: str
) -> tuple[str, int]:
    """The table's title above the header: it must name this table (or none) and the year."""
    texts = [c.text for row in grid[: header.row] for c in row if c.text]
    title = next((t for t in texts if "cuadro" in _key(t) or table_number(t)), None)
    if title is None:
        title = next((t for t in texts if _YEAR.search(t)), "")
    number = table_number(title) if title else None
    if number is not None and number != spec.number:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet_name,
            row=None,
            problem=f"the title names table {number}",
            expected=f"table {spec.number}",
            seen=title,
        )
    if number is None and table_number(sheet_name) != spec.number:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet_name,
            row=None,
            problem=f"neither the sheet name nor the title names table {spec.number}",
            expected=f"'Cuadro {spec.number}' in the sheet name or the title",
            seen=title or " / ".join(texts[:3]),
        )
    years = [int(y) for t in texts for y in _YEAR.findall(t)]
    if not years:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet_name,
            row=None,
            problem="the title does not say which year the table covers",
            expected="a title ending with the year, e.g. '…, enero-marzo de 2025'",
            seen=" / ".join(texts[:3]),
        )
    # The title's year is the last year it names ("…, 2019" or "enero-junio de 2019").
    years_in_title = [int(y) for y in _YEAR.findall(title)] if title else []
    return title, (years_in_title or years)[-1]


def _value(cell: _Cell, *, file: str, sheet: str, row: int, col: int) -> int | None:
    if cell.number is not None:
        if not math.isfinite(cell.number) or abs(cell.number - round(cell.number)) > 1e-9:
            raise BadValue(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=row,
                column=_colname(col),
                problem="the count is not a whole number",
                expected="a whole number of events or '-'",
                seen=repr(cell.number),
            )
        return check_count(
            int(round(cell.number)),
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=row,
            column=_colname(col),
        )
    if cell.text is None:
        return None
    text = cell.text.strip()
    if text in _DASHES:
        return 0  # "(-) Significa cero."
    digits = text.replace(",", "").replace(" ", "")
    if digits.isdigit() and digits.isascii():  # isdigit alone lets '²' and '٣' through
        return check_count(
            int(digits), source=SOURCE, file=file, sheet=sheet, row=row, column=_colname(col)
        )
    raise BadValue(
        source=SOURCE,
        file=file,
        sheet=sheet,
        row=row,
        column=_colname(col),
        problem="the cell is not a count",
        expected="a whole number of events or '-'",
        seen=text,
    )


def _is_value_like(cell: _Cell) -> bool:
    if cell.number is not None:
        return True
    return cell.text is not None and (
        cell.text.strip() in _DASHES or cell.text.replace(",", "").replace(" ", "").isdigit()
    )


@dataclass
class _DataRow:
    row: int  # 1-based sheet row
    label: str
    values: dict[int, int | None]  # column index -> count (None = empty cell)


def _data_rows(
    grid: list[list[_Cell]], header: _Header, file: str, sheet: str, stats: dict[str, Any]
) -> list[_DataRow]:
    """Rows with figures, past the header; title/header repeats, markers and notes skipped."""
    value_cols = [col.index for col in header.columns]
    out: list[_DataRow] = []
    notes: list[str] = []
    for r in range(header.row + 1, len(grid)):
        row = grid[r]
        cells = {c: row[c] if c < len(row) else _Cell(None, None) for c in value_cols}
        label = next(
            (
                row[c].text
                for c in range(header.label_col, header.first_value_col)
                if c < len(row) and row[c].text
            ),
            None,
        )
        if not any(cell.text or cell.number is not None for cell in row):
            stats["blank_rows"] += 1
            continue
        if not any(_is_value_like(cell) for cell in cells.values()):
            _text_row(row, r, header, file, sheet, stats, notes)
            continue
        if label is None:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=r + 1,
                problem="a row of figures without a label",
                expected=f"a nationality or group label in column {_colname(header.label_col)}",
                seen=" | ".join(_row_texts(row)) or "numbers only",
            )
        stray = next(
            (
                c
                for c in range(header.first_value_col, len(row))
                if c not in cells and _is_value_like(row[c])
            ),
            None,
        )
        if stray is not None:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=r + 1,
                column=_colname(stray),
                problem="figures in a column without a header",
                expected=" | ".join(header.texts.values()),
                seen=" | ".join(_row_texts(grid[header.row])),
            )
        values = {
            c: _value(cell, file=file, sheet=sheet, row=r + 1, col=c) for c, cell in cells.items()
        }
        out.append(_DataRow(r + 1, clean_label(label), values))
        notes.clear()  # notes that were followed by data were page notes, not the bottom's
    stats["notes"] = notes[:6]
    return out


def _text_row(
    row: list[_Cell],
    r: int,
    header: _Header,
    file: str,
    sheet: str,
    stats: dict[str, Any],
    notes: list[str],
) -> None:
    """A row without figures: a repeated title or header, a page marker, a note or a label."""
    texts = {c: cell.text for c, cell in enumerate(row) if cell.text}
    if all(_PAGE_MARKER.search(t) for t in texts.values()):
        # "(-) Significa cero.", "Ver notas al final del cuadro.", "Continúa", the title
        # repeated with "(Continúa)" / "(Concluye)", "Fuente: ..."
        if any(_TITLE_REPEAT.search(t) for t in texts.values()):
            stats["page_breaks"] += 1
        return
    in_values = {c: t for c, t in texts.items() if c >= header.first_value_col}
    if in_values and len(texts) > 1:
        # Several texts over the value columns: a header row. It must be the one we know
        # (repeated at a page break); another one means the columns changed mid-sheet.
        if in_values == header.texts or (header.group_texts and in_values == header.group_texts):
            stats["header_repeats"] += 1
            return
        if all(_key(t) in EXTRA_HEADER_TEXTS for t in in_values.values()):
            return
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=r + 1,
            problem="a header row that differs from the table's header",
            expected=" | ".join(header.texts.values()),
            seen=" | ".join(texts.values()),
        )
    notes.append(" ".join(texts.values()))


def _check_columns(rows: list[_DataRow], header: _Header, file: str, sheet: str) -> list[_Column]:
    """Drop months not yet published (empty everywhere); check Total / Subtotal columns."""
    months = [c for c in header.columns if c.role == "month"]
    published = []
    for column in months:
        filled = [r for r in rows if r.values[column.index] is not None]
        if not filled:
            continue  # a month the workbook has a column for but no figures yet
        if len(filled) != len(rows):
            empty = next(r for r in rows if r.values[column.index] is None)
            raise BadValue(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=empty.row,
                column=_colname(column.index),
                problem="an empty cell in a month that other rows have figures for",
                expected="a count or '-' (zero)",
                seen="",
            )
        published.append(column)
    published_ids = {c.index for c in published}
    for group in {c.group for c in header.columns}:
        in_group = [c for c in header.columns if c.group == group]
        since_subtotal: list[_Column] = []
        for column in in_group:
            if column.role == "month":
                if column.index in published_ids:
                    since_subtotal.append(column)
                continue
            parts = (
                since_subtotal
                if column.role == "subtotal"
                else [c for c in in_group if c.index in published_ids]
            )
            for row in rows:
                seen = row.values[column.index]
                expected = sum(row.values[c.index] or 0 for c in parts)
                if seen is None and not parts:
                    continue  # a subtotal of months not published yet
                if seen != expected:
                    names = ", ".join(MONTH_NAMES[c.month - 1] for c in parts) or "none"
                    raise BadValue(
                        source=SOURCE,
                        file=file,
                        sheet=sheet,
                        row=row.row,
                        column=_colname(column.index),
                        problem=f"the row's {column.role.title()} is not the sum of "
                        f"its months ({names})",
                        expected=str(expected),
                        seen=str(seen),
                    )
            if column.role == "subtotal":
                since_subtotal = []
    return published


def _check_sum(
    parent: _DataRow,
    leaves: list[_DataRow],
    columns: list[_Column],
    file: str,
    sheet: str,
    what: str,
) -> None:
    for column in columns:
        expected = sum(leaf.values[column.index] or 0 for leaf in leaves)
        seen = parent.values[column.index]
        if seen != expected:
            raise BadValue(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=parent.row,
                column=_colname(column.index),
                problem=f"the {parent.label!r} row is not the sum of {what} "
                f"({MONTH_NAMES[column.month - 1]}"
                f"{', ' + column.group if column.group else ''})",
                expected=str(expected),
                seen=str(seen),
            )


def _nationality_leaves(
    rows: list[_DataRow], columns: list[_Column], file: str, sheet: str, stats: dict[str, Any]
) -> list[tuple[_DataRow, dict[str, Any]]]:
    leaves: list[tuple[_DataRow, dict[str, Any]]] = []
    totals: list[_DataRow] = []
    continent: str | None = None
    region: str | None = None
    for row in rows:
        key = _key(row.label)
        if key in TOTAL_LABELS:
            totals.append(row)
        elif key in SPLIT_LABELS:
            stats["subtotal_rows"] += 1
        elif key in CONTINENTS:
            continent, region = row.label, None
            stats["subtotal_rows"] += 1
        elif key in REGIONS:
            region = row.label
            stats["subtotal_rows"] += 1
        elif key in NON_COUNTRY_LABELS:
            leaves.append(
                (
                    row,
                    {"continent": NO_CONTINENT, "region": None, "country": row.label, "iso3": None},
                )
            )
        else:
            leaves.append(
                (
                    row,
                    {
                        "continent": continent or NO_CONTINENT,
                        "region": region,
                        "country": row.label,
                        "iso3": iso3_for(row.label),
                    },
                )
            )
    if not totals:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=None,
            problem="no 'Total' row to check the countries against",
            expected="a 'Total' or 'Total general' row",
            seen=", ".join(r.label for r in rows[:5]),
        )
    for total in totals:
        _check_sum(total, [leaf for leaf, _ in leaves], columns, file, sheet, "the countries")
    stats["subtotal_rows"] += len(totals)
    return leaves


def _age_group(key: str) -> str | None:
    """'18+', '12-17', '0-11' or 'under18' (a subtotal) from an age label.

    By meaning, not by one spelling: SEGOB renames the groups between editions (the under-18
    group is "Menores de 18 años" or "Niñas, niños y adolescentes"; under-12s "Menores de 12
    años" or "De 0 a 11 años", sometimes with "niñas y niños" before the range)."""
    key = key.replace(" anos", "").replace(" ano", "")
    key = re.sub(r"^(personas |adultos |adolescentes |ninas y ninos |ninos y ninas )", "", key)
    if re.fullmatch(
        r"(de |mayores de )?18 y mas|18 o mas|mayores de 17|18|adultos|mayores de edad", key
    ):
        return "18+"
    if re.fullmatch(r"(de )?12 ?a ?17|12 17", key):
        return "12-17"
    if re.fullmatch(r"(de )?0 ?a ?11|0 11|menores de 12", key):
        return "0-11"
    if re.fullmatch(
        r"menores de 18|(de )?0 ?a ?17|menores|menores de edad|nna|"
        r"ninas ninos y adolescentes|ninos ninas y adolescentes|"
        r"ninas ninos y adolescentes de 0 a 17",
        key,
    ):
        return "under18"
    return None


# "Menores de 12 años no acompañados": an age group and a travel condition in one label (some
# editions have no separate "De 0 a 11 años" row above "Acompañados / No acompañados").
_CONDITION_SUFFIX = re.compile(r"^(?P<age>.+?) (?P<condition>(no )?acompanad(o|a)s( as)?)$")


def _age_and_condition(key: str) -> tuple[str, str] | None:
    """(age group, travel condition) of a combined label such as 'Menores de 12 años
    acompañados'; None when the label is not one (or its age part is not a known group)."""
    found = _CONDITION_SUFFIX.fullmatch(key)
    if not found:
        return None
    group = _age_group(found["age"])
    if group is None:
        return None
    return group, CONDITION_LABELS[found["condition"]]


def _sex_age_leaves(
    rows: list[_DataRow], columns: list[_Column], file: str, sheet: str, stats: dict[str, Any]
) -> list[tuple[_DataRow, dict[str, Any]]]:
    """Rows nest Total > sex > age group > travel condition; the leaves are loaded."""
    expected = (
        "Total, Hombres / Mujeres, an age group (18 años y más, De 12 a 17 años, "
        "De 0 a 11 años / Menores de 12 años, Menores de 18 años / Niñas, niños y "
        "adolescentes), Acompañados / No acompañados (alone or after the age group)"
    )
    nodes: list[tuple[_DataRow, dict[str, str]]] = []  # every row with its context
    sex: str | None = None
    age: str | None = None
    for row in rows:
        key = _key(row.label)
        if key in TOTAL_LABELS:
            sex = age = None
            nodes.append((row, {"level": "total"}))
        elif key in SEX_LABELS:
            sex, age = SEX_LABELS[key], None
            nodes.append((row, {"level": "sex", "sex": sex}))
        elif (group := _age_group(key)) is not None:
            if sex is None:
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=row.row,
                    problem=f"age group {row.label!r} outside a sex block",
                    expected="Hombres / Mujeres above the age groups",
                    seen=row.label,
                )
            if group != "under18":
                age = group
            nodes.append((row, {"level": "age", "sex": sex, "age_group": group}))
        elif (combined := _age_and_condition(key)) is not None:
            group, condition = combined
            if sex is None or group in ("under18", "18+"):
                # Children split by condition only as a whole (or adults split at all) is a
                # layout whose leaves the raw table has no place for: a person must look.
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=row.row,
                    problem=f"row {row.label!r} splits {group} by travel condition"
                    if sex
                    else f"{row.label!r} outside a sex block",
                    expected="a travel condition under 0-11 or 12-17 within Hombres / Mujeres",
                    seen=row.label,
                )
            age = group
            nodes.append(
                (
                    row,
                    {
                        "level": "condition",
                        "sex": sex,
                        "age_group": group,
                        "travel_condition": condition,
                    },
                )
            )
        elif key in CONDITION_LABELS:
            if sex is None or age is None:
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=row.row,
                    problem=f"{row.label!r} outside a sex and age block",
                    expected="Acompañados / No acompañados under an age group",
                    seen=row.label,
                )
            nodes.append(
                (
                    row,
                    {
                        "level": "condition",
                        "sex": sex,
                        "age_group": age,
                        "travel_condition": CONDITION_LABELS[key],
                    },
                )
            )
        else:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=row.row,
                problem=f"unknown row label {row.label!r}",
                expected=expected,
                seen=row.label,
            )
    split = {(n["sex"], n["age_group"]) for _, n in nodes if n["level"] == "condition"}
    leaves: list[tuple[_DataRow, dict[str, Any]]] = []
    for row, node in nodes:
        if node["level"] == "condition":
            leaves.append((row, {k: node[k] for k in ("sex", "age_group", "travel_condition")}))
        elif (
            node["level"] == "age"
            and node["age_group"] != "under18"
            and (node["sex"], node["age_group"]) not in split
        ):
            leaves.append(
                (
                    row,
                    {
                        "sex": node["sex"],
                        "age_group": node["age_group"],
                        "travel_condition": NOT_SPLIT,
                    },
                )
            )
    # Every row that is not a leaf is a subtotal of the leaves below it: check it.
    leaf_ids = {id(row) for row, _ in leaves}
    for row, node in nodes:
        if id(row) in leaf_ids:
            continue
        stats["subtotal_rows"] += 1
        if node["level"] == "total":
            members = leaves
        elif node["level"] == "sex":
            members = [leaf for leaf in leaves if leaf[1]["sex"] == node["sex"]]
        elif node["age_group"] == "under18":
            members = [
                leaf
                for leaf in leaves
                if leaf[1]["sex"] == node["sex"] and leaf[1]["age_group"] in ("12-17", "0-11")
            ]
        else:
            members = [
                leaf
                for leaf in leaves
                if leaf[1]["sex"] == node["sex"] and leaf[1]["age_group"] == node["age_group"]
            ]
        _check_sum(row, [m for m, _ in members], columns, file, sheet, "the rows below it")
    if not any(node["level"] == "total" for _, node in nodes):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=None,
            problem="no 'Total' row to check the groups against",
            expected="a 'Total' row",
            seen=", ".join(r.label for r in rows[:5]),
        )
    return leaves


def _sheet_grid(book: Any, spec: TableSpec, file: str) -> tuple[Any, list[list[_Cell]]]:
    """The table's sheet and its cells. xlrd reads a sheet only when asked (``on_demand``), so
    a damaged sheet fails here, not when the workbook opened: refused like a damaged book."""
    try:
        sheet = _pick_sheet(book, spec, file)
        return sheet, _grid(sheet)
    except SourceFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - as in _open_workbook
        raise BadValue(
            source=SOURCE,
            file=file,
            sheet=", ".join(book.sheet_names()),
            row=None,
            problem="the table's sheet cannot be read (truncated or damaged download?)",
            expected=f"a readable sheet 'Cuadro {spec.number}'",
            seen=f"{type(exc).__name__}: {exc}",
        ) from None


def _parse_workbook(content: bytes, file: str, spec: TableSpec) -> ParsedTable:
    book = _open_workbook(content, file)
    sheet, grid = _sheet_grid(book, spec, file)
    header = _find_header(grid, spec, file, sheet.name)
    title, year = _title(grid, header, spec, file, sheet.name)
    stats: dict[str, Any] = {
        "blank_rows": 0,
        "header_repeats": 0,
        "page_breaks": 0,
        "subtotal_rows": 0,
        "header_row": header.row + 1,
    }
    rows = _data_rows(grid, header, file, sheet.name, stats)
    if not rows:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet.name,
            row=header.row + 2,
            problem="the table has a header but no rows with figures",
            expected="rows of counts under the header",
            seen=" | ".join(header.texts.values()),
        )
    published = _check_columns(rows, header, file, sheet.name)
    if spec.column_groups:
        # A "Total" column group (all return types) is a subtotal of the others: check, skip.
        total_cols = [c for c in published if c.group == "total"]
        for column in total_cols:
            parts = [c for c in published if c.group != "total" and c.month == column.month]
            for row in rows:
                expected = sum(row.values[c.index] or 0 for c in parts)
                if row.values[column.index] != expected:
                    raise BadValue(
                        source=SOURCE,
                        file=file,
                        sheet=sheet.name,
                        row=row.row,
                        column=_colname(column.index),
                        problem="the 'Total' group is not the sum of the return types",
                        expected=str(expected),
                        seen=str(row.values[column.index]),
                    )
        published = [c for c in published if c.group != "total"]
    if spec.rows == "nationality":
        leaves = _nationality_leaves(rows, published, file, sheet.name, stats)
    else:
        leaves = _sex_age_leaves(rows, published, file, sheet.name, stats)
    out: list[dict[str, Any]] = []
    for row, attributes in leaves:
        for column in published:
            record = {
                "month": dt.date(year, column.month, 1),
                **attributes,
                "events": row.values[column.index],
                "source_row": row.row,
            }
            if spec.column_groups:
                record["return_type"] = column.group
            out.append(record)
    stats["leaf_rows"] = len(leaves)
    months = sorted({c.month for c in published})
    return ParsedTable(
        kind=spec.kind,
        file=file,
        sheet=sheet.name,
        year=year,
        title=title,
        rows=out,
        months=months,
        stats=stats,
    )


def parse_cuadro_3_1_1(content: bytes, *, file: str) -> ParsedTable:
    """Table 3.1.1 (presented by nationality) → ``raw.segob_presented_by_nationality``."""
    return _parse_workbook(content, file, TABLES["cuadro_3_1_1"])


def parse_cuadro_3_1_3(content: bytes, *, file: str) -> ParsedTable:
    """Table 3.1.3 (presented by sex and age) → ``raw.segob_presented_by_sex_age``."""
    return _parse_workbook(content, file, TABLES["cuadro_3_1_3"])


def parse_cuadro_3_2_4(content: bytes, *, file: str) -> ParsedTable:
    """Table 3.2.4 (returns by nationality and type) → ``raw.segob_returns_by_nationality``."""
    return _parse_workbook(content, file, TABLES["cuadro_3_2_4"])


def parse_section_5_minors(content: bytes, *, file: str) -> ParsedTable:
    """Section 5's minors table → ``raw.segob_mexican_minor_repatriations``."""
    return _parse_workbook(content, file, TABLES["section_5_minors"])


# ------------------------------------------------------------------------------ microdata

# Published field -> raw column. Codes are kept as published: the codebook
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
# Date spellings, each with a pattern that also picks day and month out, because Arrow's
# strptime rolls an impossible date over (31/02 becomes 02/03) instead of refusing it.
_DATE_FORMATS = (
    ("%d/%m/%Y", r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})$"),
    ("%Y-%m-%d", r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    ("%d-%m-%Y", r"^(?P<d>\d{1,2})-(?P<m>\d{1,2})-(?P<y>\d{4})$"),
)


@dataclass
class ParsedMicrodata:
    """One year of section 5 per-event microdata, as an Arrow table (250k rows are cheap)."""

    file: str
    table: pa.Table
    encoding: str
    delimiter: str
    extra_fields: list[str]

    def frame(self) -> pd.DataFrame:
        import pandas as pd
        import pyarrow as pa

        # Ages stay whole numbers with gaps (Int16), not floats.
        return self.table.to_pandas(types_mapper={pa.int16(): pd.Int16Dtype()}.get)

    def summary(self) -> dict[str, Any]:
        import pyarrow.compute as pc

        dates = self.table.column("repatriation_date")
        first, last = pc.min(dates).as_py(), pc.max(dates).as_py()
        return {
            "kind": MICRODATA_KIND,
            "rows": self.table.num_rows,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "extra_fields": self.extra_fields,
            "first_date": first.isoformat() if first else None,
            "last_date": last.isoformat() if last else None,
        }


def _detect_encoding(content: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else Latin-1 (which every byte string is).

    The bytes decide, not a declaration: SEGOB's CSVs and pages are Latin-1 with no marker,
    and a Latin-1 text with any accented letter is never valid UTF-8."""
    import codecs

    # Decoded piece by piece: a year of microdata is ~15 MB and a whole-file decode would
    # hold a second copy of it just to learn one bit.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(content)
    step = 1 << 20
    try:
        for start in range(0, len(content), step):
            decoder.decode(view[start : start + step], final=start + step >= len(content))
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def parse_microdata(content: bytes, *, file: str) -> ParsedMicrodata:
    """Section 5 per-event CSV ``BDSIOMR_PUB_{YYYY}_UPMRIP.csv`` → ``raw.segob_repatriation_events``.

    pyarrow reads it with every field as text (no type guessing), then dates and ages are
    converted column-wise; a value that does not convert is a ``BadValue`` naming its line.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    expected = f"a CSV whose header has {', '.join(MICRODATA_FIELDS)}"
    _refuse_non_workbook(content, file, expected)
    refuse_nul(content, source=SOURCE, file=file, expected=expected)
    if content.startswith(_OLE_MAGIC):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="an Excel workbook (the codebook?) instead of the CSV",
            expected=expected,
            seen=content[:8].hex(" "),
        )
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    encoding = _detect_encoding(content)
    end = content.find(b"\n")
    first_line = content[: end if end >= 0 else len(content)].decode(encoding).rstrip("\r")
    delimiter = max((",", ";", "|", "\t"), key=first_line.count)
    names = [n.strip().strip('"').upper() for n in first_line.split(delimiter)]
    missing = [f for f in MICRODATA_FIELDS if f not in names]
    if missing:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem=f"fields {missing} are missing from the header",
            expected=expected,
            seen=first_line,
        )
    _refuse_truncated(content, file, len(names), delimiter, encoding)

    raw_names = [n.strip().strip('"') for n in first_line.split(delimiter)]
    wanted = {
        raw: MICRODATA_FIELDS[raw.upper()] for raw in raw_names if raw.upper() in MICRODATA_FIELDS
    }
    try:
        table = pacsv.read_csv(
            io.BytesIO(content),
            # One thread, 1 MB blocks: as fast here as the threaded reader (the file is a
            # few MB) and half its peak memory, which counts under the 300 MB budget.
            read_options=pacsv.ReadOptions(
                encoding=encoding, block_size=1 << 20, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={raw: pa.string() for raw in raw_names},
                include_columns=list(wanted),
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise BadValue(
            source=SOURCE,
            file=file,
            row=_arrow_error_row(str(exc)),
            problem="the CSV cannot be read",
            expected=expected,
            seen=str(exc),
        ) from None
    table = table.rename_columns([wanted[n] for n in table.column_names])
    lines = _line_numbers(content, table.num_rows)
    columns: dict[str, pa.Array] = {}
    for name in ("sex_code", "travel_condition_code", "detention_state", "repatriation_point"):
        text = pc.utf8_trim_whitespace(table.column(name))
        if pc.any(pc.equal(text, "")).as_py():  # empty is missing, not a code
            text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        columns[name] = text
        table = table.drop_columns([name])  # let the untrimmed copy go
    columns["repatriation_date"] = _dates(table.column("repatriation_date"), lines, file)
    columns["age"] = _ages(table.column("age"), lines, file)
    columns["source_row"] = lines
    out = pa.table({name: columns[name] for name in MICRODATA_COLUMNS})
    del table, columns
    # The intermediate columns are freed but Arrow's allocator keeps their pages; hand them
    # back so the rest of the task (Parquet, the DuckDB load) stays within its memory budget.
    pa.default_memory_pool().release_unused()
    extra = [n for n in raw_names if n.upper() not in MICRODATA_FIELDS]
    return ParsedMicrodata(
        file=file, table=out, encoding=encoding, delimiter=delimiter, extra_fields=extra
    )


def _refuse_truncated(
    content: bytes, file: str, fields: int, delimiter: str, encoding: str
) -> None:
    """A file cut mid-row (dropped download) ends without a newline on a short line."""
    if content.endswith((b"\n", b"\r")):
        return
    last = content[content.rfind(b"\n") + 1 :].decode(encoding, "replace")
    try:
        parsed = next(csv.reader([last], delimiter=delimiter), [])
    except csv.Error:  # a field over the csv module's limit: certainly not a whole line
        parsed = []
    if len(parsed) < fields or last.count('"') % 2:  # short, or cut inside a quoted field
        raise BadValue(
            source=SOURCE,
            file=file,
            row=content.count(b"\n") + 1,
            problem="the file ends in the middle of a line (truncated download?)",
            expected=f"{fields} fields on every line",
            seen=last,
        )


def _arrow_error_row(message: str) -> int | None:
    match = re.search(r"[Rr]ow #?(\d+)", message)
    return int(match.group(1)) if match else None


def _line_numbers(content: bytes, rows: int) -> pa.Array:
    """The file line (header = 1) of each parsed row; pyarrow skips blank lines."""
    import numpy as np
    import pyarrow as pa

    if b"\n\n" not in content and b"\n\r\n" not in content:
        return pa.array(np.arange(2, rows + 2, dtype=np.int32))
    numbers = [i for i, line in enumerate(content.split(b"\n")[1:], start=2) if line.strip()]
    return pa.array(np.asarray(numbers[:rows], dtype=np.int32))


def _dates(column: pa.ChunkedArray, lines: pa.Array, file: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    sample = next((v for v in text.slice(0, 1000).to_pylist() if v), None)
    spelling = next(((f, p) for f, p in _DATE_FORMATS if sample and re.match(p, sample)), None)
    if spelling is None:
        raise BadValue(
            source=SOURCE,
            file=file,
            row=2,
            column="FEC_REP",
            problem="the repatriation date cannot be read",
            expected="dates like 31/12/2024",
            seen=str(sample),
        )
    fmt, pattern = spelling
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    parts = pc.extract_regex(text, pattern)  # null where the pattern does not match
    day = pc.cast(pc.struct_field(parts, "d"), pa.int8(), safe=False)
    month = pc.cast(pc.struct_field(parts, "m"), pa.int8(), safe=False)
    same = pc.and_(pc.equal(pc.day(parsed), day), pc.equal(pc.month(parsed), month))
    good = pc.fill_null(same, False)
    bad = pc.and_(pc.invert(good), pc.not_equal(text, ""))
    if pc.any(bad).as_py():
        index = pc.index(bad, True).as_py()
        raise BadValue(
            source=SOURCE,
            file=file,
            row=lines[index].as_py(),
            column="FEC_REP",
            problem="the repatriation date cannot be read",
            expected=f"dates like {sample} ({fmt})",
            seen=text[index].as_py(),
        )
    return pc.cast(parsed, pa.date32())


def _ages(column: pa.ChunkedArray, lines: pa.Array, file: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    ok = pc.or_(pc.equal(text, ""), pc.match_substring_regex(text, r"^\d{1,3}$"))
    if not pc.all(ok).as_py():
        index = pc.index(ok, False).as_py()
        raise BadValue(
            source=SOURCE,
            file=file,
            row=lines[index].as_py(),
            column="EDA",
            problem="the age is not a whole number of years",
            expected="an age in years (0-120)",
            seen=text[index].as_py(),
        )
    nullable = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pc.cast(nullable, pa.int16())


# ------------------------------------------------------------------------------ validation


def _month_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns the GX suites need and the raw tables do not keep: whether a nationality label
    is one the countries table knows (months are first days of the title's year by
    construction, tests/sources/test_parser_guarantees.py)."""
    frame = frame.copy()
    if "country" in frame:
        known = frame["iso3"].notna() | frame["country"].map(
            lambda label: _key(label) in NON_COUNTRY_LABELS
        )
        frame["country_recognised"] = known
    return frame


def _microdata_checks(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frame = frame.copy()
    frame["repatriation_year"] = pd.to_datetime(frame["repatriation_date"]).dt.year
    return frame


# ------------------------------------------------------------------------------ the contract

KINDS: dict[str, FileKind] = {
    "cuadro_3_1_1": FileKind(
        kind="cuadro_3_1_1",
        parse=parse_cuadro_3_1_1,
        raw_table="segob_presented_by_nationality",
        suite="segob_presented_by_nationality",
        key_columns=("month", "country"),
        value_columns=("events",),
        description="Bulletin table 3.1.1: events of foreigners presented to (or channelled "
        "by) Mexico's migration authority, by nationality, one workbook per year.",
        prepare=_month_checks,
    ),
    "cuadro_3_1_3": FileKind(
        kind="cuadro_3_1_3",
        parse=parse_cuadro_3_1_3,
        raw_table="segob_presented_by_sex_age",
        suite="segob_presented_by_sex_age",
        key_columns=("month", "sex", "age_group", "travel_condition"),
        value_columns=("events",),
        description="Bulletin table 3.1.3: the events of 3.1.1 by sex and age group (18+, "
        "12-17, under 12 accompanied / unaccompanied).",
        prepare=_month_checks,
    ),
    "cuadro_3_2_4": FileKind(
        kind="cuadro_3_2_4",
        parse=parse_cuadro_3_2_4,
        raw_table="segob_returns_by_nationality",
        suite="segob_returns_by_nationality",
        key_columns=("month", "country", "return_type"),
        value_columns=("events",),
        description="Bulletin table 3.2.4: events of foreigners returned by Mexico "
        "(deportation, assisted return, assisted return of children), by "
        "nationality.",
        prepare=_month_checks,
    ),
    "section_5_minors": FileKind(
        kind="section_5_minors",
        parse=parse_section_5_minors,
        raw_table="segob_mexican_minor_repatriations",
        suite="segob_mexican_minor_repatriations",
        key_columns=("month", "sex", "age_group", "travel_condition"),
        value_columns=("events",),
        description="Bulletin section 5: repatriation events of Mexican minors from the US by "
        "sex, age group (0-11, 12-17) and travel condition (accompanied or not).",
        prepare=_month_checks,
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
        prepare=_microdata_checks,
    ),
}

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

# ------------------------------------------------------------------------------ detect_kind


def detect_kind(name: str, content: bytes) -> str:
    """Which kind a hand-downloaded file is: by its content, with the name as a hint."""
    hint = table_number(PurePath(name or "").name)  # a folder's digits are no hint
    if content.startswith(_OLE_MAGIC):
        book = _open_workbook(content, name)
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
    _refuse_non_workbook(content, name, "a bulletin workbook (.xls) or the microdata CSV")
    head = content[:4096].decode(_detect_encoding(content[:4096]), "replace").upper()
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


# ------------------------------------------------------------------------------ discovery

# The site answers with an empty page now and then (docs/sources.md C): a page is asked for again
# this many times, with these pauses, before the emptiness counts as a finding.
EMPTY_PAGE_ATTEMPTS = 3
EMPTY_PAGE_PAUSES = (2.0, 5.0)
_PAGES = "CuadrosBOLETIN"


def _decode_page(content: bytes) -> str:
    """Pages are Latin-1 (older ones, and most today), some UTF-8: the bytes decide."""
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", "replace")
    return content.decode(_detect_encoding(content))


def _links(content: bytes, url: str) -> Iterable[tuple[str, str]]:
    from bs4 import BeautifulSoup

    refuse_tag_flood(content, source=SOURCE, file=url, expected="a bulletin page")
    refuse_nul(content, source=SOURCE, file=url, expected="a bulletin page")
    soup = BeautifulSoup(_decode_page(content), "lxml")
    for anchor in soup.find_all("a", href=True):
        yield anchor["href"].strip(), " ".join(anchor.get_text(" ").split())


def _get_nonempty(
    get_page: GetPage, url: str, what: str, sleep: Callable[[float], None] = time.sleep
) -> bytes:
    for attempt in range(EMPTY_PAGE_ATTEMPTS):
        content = get_page(url)
        if content.strip():
            return content
        if attempt + 1 < EMPTY_PAGE_ATTEMPTS:
            pause = EMPTY_PAGE_PAUSES[min(attempt, len(EMPTY_PAGE_PAUSES) - 1)]
            log.warning(
                "%s: %s %s came back empty; asking again in %.0f s", SOURCE, what, url, pause
            )
            sleep(pause)
    # Deliberately a finding, not a silent skip: an empty page cannot be told apart from a
    # site that stopped listing its tables, and skipping would hide that year's revisions.
    # The run fails with this message, Airflow retries later, the incident resolves itself
    # on the next file that loads.
    raise LayoutChanged(
        source=SOURCE,
        file=url,
        row=None,
        problem=f"the {what} came back empty {EMPTY_PAGE_ATTEMPTS} times",
        expected="an HTML page listing the bulletin's tables",
        seen="",
    )


def discover(
    get_page: GetPage, *, landing_url: str, run_at: dt.datetime, options: dict[str, Any]
) -> list[Link]:
    """The bulletin's files for the configured years and sections, read off the site's pages.

    The landing page links one ``CuadrosBOLETIN?Anual={YYYY}&Secc={N}`` page per year and
    section; each of those lists the year's workbooks (names drift between years, so the table
    number is read from the link text or the file name) and, in section 5, the year's
    microdata CSV. Years run from ``options['first_year']`` to the current year in Mexico City;
    a year whose page lists no tables yet (early in the year) is normal and gives no links.
    """
    sections = {int(s) for s in options.get("sections", [3, 5])}
    first_year = int(options.get("first_year", 2018))
    this_year = run_at.astimezone(PUBLISHER_TZ).year
    landing = _get_nonempty(get_page, landing_url, "landing page")
    pages: dict[tuple[int, int], str] = {}
    listed = 0
    for href, _text in _links(landing, landing_url):
        if _PAGES.lower() not in href.lower():
            continue
        url = urljoin(landing_url, href)
        query = {k.lower(): v for k, v in parse_qs(urlsplit(url).query).items()}
        try:
            year, section = int(query["anual"][0]), int(query["secc"][0])
        except (KeyError, ValueError, IndexError):
            continue
        listed += 1
        if first_year <= year <= this_year and section in sections:
            pages.setdefault((year, section), url)
    if not pages:
        problem = (
            "the landing page lists no CuadrosBOLETIN pages"
            if not listed
            else f"the landing page lists no tables page for {first_year}-{this_year}, "
            f"sections {sorted(sections)}"
        )
        raise LayoutChanged(
            source=SOURCE,
            file=landing_url,
            row=None,
            problem=problem,
            expected="links to CuadrosBOLETIN?Anual={YYYY}&Secc={N}",
            seen=_decode_page(landing)[:200],
        )
    links: dict[tuple[str, str], Link] = {}
    for (year, section), url in sorted(pages.items()):
        page = _get_nonempty(get_page, url, f"tables page of {year}, section {section}")
        for link in _page_links(page, url, year, section):
            key = (link.kind, link.period or "")
            previous = links.get(key)
            if previous is not None and previous.url != link.url:
                raise LayoutChanged(
                    source=SOURCE,
                    file=url,
                    row=None,
                    problem=f"two files for {link.kind} {link.period}",
                    expected="one workbook per table and year",
                    seen=f"{previous.url} and {link.url}",
                )
            links[key] = link
    return sorted(links.values(), key=lambda link: (link.period or "", link.kind))


def _page_links(page: bytes, page_url: str, year: int, section: int) -> list[Link]:
    found = []
    for href, text in _links(page, page_url):
        url = urljoin(page_url, href)
        parts = urlsplit(url)
        name = parts.path.rsplit("/", 1)[-1]
        micro = MICRODATA_NAME.search(url)
        if micro and "dwnldbd" in parts.path.lower():
            found.append(
                Link(
                    url=url,
                    kind=MICRODATA_KIND,
                    label=text or micro.group(0),
                    period=micro.group(1),
                    extra={"section": str(section), "page": page_url},
                )
            )
            continue
        if not name.lower().endswith((".xls", ".xlsx")):
            continue
        # The file name is what gets downloaded and parsed: its number wins over the text's.
        number = table_number(name) or table_number(text)
        spec = TABLE_BY_NUMBER.get(number or "")
        if spec is None:
            continue
        found.append(
            Link(
                url=url,
                kind=spec.kind,
                label=text or f"Cuadro {number}",
                period=str(year),
                extra={"section": str(section), "table": spec.number, "page": page_url},
            )
        )
    return found


__all__ = [
    "KINDS",
    "RAW_DDL",
    "SOURCE",
    "COUNTRIES",
    "TABLES",
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
