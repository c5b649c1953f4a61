"""SEGOB / UPM's bulletin site on the replay mirror (source ``segob_bulletin_monthly``).

What this module owns: serving the monthly migration bulletin as ``portales.segob.gob.mx``
serves it on the mirror's ``as_of`` day (``docs/sources.md`` section C): the landing page, the
yearly tables pages, the workbooks (BIFF8 ``.xls`` written with xlwt) and section 5's
microdata CSV, so discovery, fetch and ``sources/segob_bulletin_monthly/`` run unchanged.

Tables 3.1.1, 3.1.3 and 3.2.4 hold real figures (IOM's series) in a rebuilt layout; section 5
is constructed by hand and served as ``..._constructed`` (``constructed_name``). Month M
appears on day 7 of M+2 (an assumption). Paths, layout, publication model and faults:
docs/replay.md#mirror-site-segob-bulletin.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import html
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from returnwatch.sources import segob_bulletin_monthly as segob
from returnwatch_replay.responses import Response, with_validators

SOURCE = segob.SOURCE
DATA_DIR = Path("segob_upm")
LANDING_PATH = "/es/PoliticaMigratoria/Boletines_Estadisticos"
TABLES_PATH = "/es/PoliticaMigratoria/CuadrosBOLETIN"
WORKBOOK_DIR = "/work/models/PoliticaMigratoria/CEM/Estadisticas/Boletines_Estadisticos"
MICRODATA_PATH = "/work/models/PoliticaMigratoria/CEM/Estadisticas/BDatos/DevMexEUU/DwnldBD.php"

PUBLISHER_TZ = ZoneInfo("America/Mexico_City")
PUBLICATION_DAY = 7
PUBLICATION_TIME = dt.time(10, 0)
FIRST_YEAR = 2015  # the earliest year of the real series (table 3.2.4)

# Just above the 60,000,000-byte cap of segob_bulletin_monthly in config/sources.yaml.
OVERSIZE_BYTES = 60_250_000
# Data rows per printed page before the title and header repeat (Continúa / Concluye).
PAGE_ROWS = 45

SECTIONS = {
    1: "Registro de entradas",
    2: "Documentación y condición de estancia en México",
    3: "Alojamiento en condición migratoria irregular y devolución",
    4: "Acciones de protección a personas migrantes",
    5: "Repatriación de mexicanas y mexicanos desde Estados Unidos",
    6: "Connacionales devueltos desde Canadá",
}
SECTION_3_BEFORE_2021 = "Extranjeros presentados y devueltos"
# Tables whose figures the mirror makes up (no public copy exists): served as *_constructed.*.
CONSTRUCTED_TABLES = frozenset({"5.2.1"})

REPLICA_NOTE = (
    "Nota de la réplica de returnwatch: cifras de la serie mensual de OIM "
    "(iom/gdidata, commit c9e4cc69) de este cuadro; el libro, el título y las notas "
    "están reconstruidos según el formato documentado del boletín."
)
CONSTRUCTED_NOTE = (
    "Nota de la réplica de returnwatch: CUADRO CONSTRUIDO A MANO. No existe copia "
    "pública de este cuadro; las cifras son inventadas y no son reales."
)

# ------------------------------------------------------------------------------ publication


def published_on(year: int, month: int) -> dt.datetime:
    """When the workbook through ``month`` of ``year`` appeared (day 7 of month + 2)."""
    index = year * 12 + (month - 1) + 2
    return dt.datetime(
        index // 12,
        index % 12 + 1,
        PUBLICATION_DAY,
        PUBLICATION_TIME.hour,
        PUBLICATION_TIME.minute,
        tzinfo=PUBLISHER_TZ,
    )


def is_published(year: int, month: int, as_of: dt.date) -> bool:
    return published_on(year, month).date() <= as_of


def workbook_name(number: str, year: int) -> str:
    """The file name of a table's workbook, drifting between years as on the real site."""
    if year <= 2020:
        return f"cuadro{number}.xls"
    if year <= 2024:
        return f"cuadro_{number}.xls"
    return f"cuadro{number}_.xls"


def workbook_path(number: str, year: int) -> str:
    return f"{WORKBOOK_DIR}/{year}/Cuadros{year}/{workbook_name(number, year)}"


def microdata_name(year: int) -> str:
    return f"BDSIOMR_PUB_{year}_UPMRIP.csv"


def constructed_name(name: str) -> str:
    """The name a hand-made file is served under (``Content-Disposition``): the real name with
    ``_constructed`` before its extension, so the file's own record says what it is even where
    its URL is the publisher's real one (returnwatch.provenance reads it)."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}_constructed.{ext}" if dot else f"{name}_constructed"


def attachment(name: str) -> str:
    """A ``Content-Disposition`` value naming ``name`` (ASCII names; RFC 6266)."""
    return f'attachment; filename="{name}"'


# ------------------------------------------------------------------------------ the data


@dataclass
class _Series:
    """The series the mirror serves, by (year, month)."""

    nat: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    dmg: dict[tuple[int, int], dict[tuple[str, str], int]] = field(default_factory=dict)
    exp: dict[tuple[int, int], dict[tuple[str, str], int]] = field(default_factory=dict)
    minors: dict[tuple[int, int], dict[tuple[str, str, str], int]] = field(default_factory=dict)
    events_header: list[str] = field(default_factory=list)
    events: dict[tuple[int, int], list[list[str]]] = field(default_factory=dict)

    def months(self, table: str, year: int) -> list[int]:
        data = {
            "3.1.1": self.nat,
            "3.1.3": self.dmg,
            "3.2.4": self.exp,
            "5.2.1": self.minors,
            "microdata": self.events,
        }[table]
        return sorted(m for (y, m) in data if y == year)


def _count(text: str, path: Path, line: int) -> int:
    value = float(text)
    if value != int(value) or value < 0:
        raise ValueError(f"{path} line {line}: {text!r} is not a count")
    return int(value)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from enumerate(csv.DictReader(handle), start=2)


def _month(text: str) -> tuple[int, int]:
    year, month = text.split("-")
    return int(year), int(month)


def load_series(data_dir: Path) -> _Series:
    """Read the IOM series and the constructed section-5 files (a few hundred kB)."""
    folder = data_dir / DATA_DIR
    series = _Series()
    path = folder / "iom_gdidata_irreg_mexico_nat.csv"
    for line, row in _rows(path):
        cell = series.nat.setdefault(_month(row["t"]), {})
        # The series repeats GIN (33 months, up to three rows) and FRA (16 months): IOM's
        # name-to-code matching gave one code to several of the bulletin's rows. All are
        # served, as separate rows.
        key, copy = row["nat"], 1
        while key in cell:
            copy += 1
            key = f"{row['nat']}#{copy}"
        cell[key] = _count(row["n"], path, line)
    path = folder / "iom_gdidata_irreg_mexico_dmg.csv"
    for line, row in _rows(path):
        cell = series.dmg.setdefault(_month(row["t"]), {})
        cell[(row["sex"], row["age"])] = _count(row["n"], path, line)
    path = folder / "iom_gdidata_irreg_mexico_exp.csv"
    for line, row in _rows(path):
        cell = series.exp.setdefault(_month(row["t"]), {})
        cell[(row["nat"], row["type"])] = _count(row["n"], path, line)
    path = folder / "section5_minors_constructed.csv"
    for line, row in _rows(path):
        cell = series.minors.setdefault((int(row["year"]), int(row["month"])), {})
        cell[(row["sex"], row["age_group"], row["travel_condition"])] = _count(
            row["events"], path, line
        )
    path = folder / "BDSIOMR_PUB_UPMRIP_constructed.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        series.events_header = next(reader)
        for fields in reader:
            day, month, year = (int(part) for part in fields[0].split("/"))
            series.events.setdefault((year, month), []).append(fields)
    return series


# ------------------------------------------------------------------------------ workbooks

# IOM's return types -> 3.2.4 column-group headings (before 2021 / since 2021).
RETURN_GROUPS = (
    ("deportation", "Deportación", "Deportación"),
    ("assisted return", "Retorno asistido", "Retorno asistido"),
    (
        "assisted return of children",
        "Retorno asistido de menores",
        "Retorno asistido de niñas, niños y adolescentes",
    ),
)
# IOM code -> row label where the bulletin spells it with a footnote or a group name.
SPECIAL_LABELS = {"USA": "Estados Unidos 1", "OOO": "Otros 2", "STL": "Apátrida"}
# The label of the second (third) row of a code the IOM series repeats (GIN, FRA): which
# bulletin row it was is unknown, so the mirror says so instead of guessing a country.
DUPLICATE_LABEL = "fila {copy} con el mismo código en la serie de OIM"
FOOTNOTES = [
    "1 Nota de la réplica: en el boletín esta llamada remite a una nota al pie; su texto no se "
    "reproduce.",
    "2 Nacionalidades agrupadas por la fuente (código OOO de la serie de OIM).",
]
CONTINENT_ORDER = ("América", "Europa", "Asia", "África", "Oceanía")
REGION_ORDER = ("América del Norte", "América Central", "El Caribe", "América del Sur")


@dataclass
class _Line:
    """One row of a table body: a label and one figure per value column (None: no cell)."""

    label: str
    values: list[int | None]
    spacer: bool = False


@dataclass
class _Layout:
    number: str
    year: int
    title: str
    label_header: str
    # Value columns: (role, month or None, group heading or None) with role month/total/subtotal.
    columns: list[tuple[str, int | None, str | None]]
    lines: list[_Line]
    zero_as_text: bool
    extra_header: str | None = None  # a row such as "Mes" over the months
    notes: list[str] = field(default_factory=list)


def _period(months: list[int], year: int) -> str:
    first, last = (
        segob.MONTH_NAMES[months[0] - 1].lower(),
        segob.MONTH_NAMES[months[-1] - 1].lower(),
    )
    return f"{first} de {year}" if first == last else f"{first}-{last} de {year}"


def _month_columns(
    months: list[int], group: str | None, subtotals: bool
) -> list[tuple[str, int | None, str | None]]:
    columns: list[tuple[str, int | None, str | None]] = []
    for month in months:
        columns.append(("month", month, group))
        if subtotals and month in (6, 12):
            columns.append(("subtotal", None, group))  # enero-junio, julio-diciembre
    columns.append(("total", None, group))
    return columns


def _fill(columns: list[tuple[str, int | None, str | None]], figure: Any) -> list[int | None]:
    """Values for one row: ``figure(month, group)`` per month; a ``Subtotal`` sums the months
    left of it since the previous one, a ``Total`` every month of its group (wherever it sits)."""
    months = {
        i: figure(month, group) for i, (role, month, group) in enumerate(columns) if role == "month"
    }
    values: list[int | None] = []
    since: list[int] = []
    for i, (role, _month, group) in enumerate(columns):
        if role == "month":
            since.append(months[i])
            values.append(months[i])
        elif role == "subtotal":
            values.append(sum(since))
            since = []
        else:
            values.append(sum(v for j, v in months.items() if columns[j][2] == group))
    return values


def _nationality_lines(
    columns: list[tuple[str, int | None, str | None]], figure: Any, codes: set[str]
) -> list[_Line]:
    """Total general, then continents > regions > countries, then the groups of no continent."""

    def row(label: str, members: list[str]) -> _Line:
        return _Line(label, _fill(columns, lambda m, g: sum(figure(c, m, g) for c in members)))

    def label(code: str) -> str:
        base, _, copy = code.partition("#")
        if copy:  # another row the series gave the same code (see load_series)
            return f"{segob.COUNTRIES[base].label} ({DUPLICATE_LABEL.format(copy=copy)})"
        return SPECIAL_LABELS.get(code) or segob.COUNTRIES[code].label

    def ordered(members: list[str]) -> list[str]:
        return sorted(members, key=lambda c: segob.labels.label_key(label(c)))

    def info(code: str) -> segob.Country:
        return segob.COUNTRIES[code.partition("#")[0]]

    countries = [c for c in codes if c.partition("#")[0] in segob.COUNTRIES]
    others = sorted(c for c in codes if c.partition("#")[0] not in segob.COUNTRIES)
    lines = [row("Total general", sorted(codes)), _Line("", [], spacer=True)]
    for continent in CONTINENT_ORDER:
        members = [c for c in countries if info(c).continent == continent]
        if not members:
            continue
        lines.append(row(continent, members))
        if continent == "América":
            for region in REGION_ORDER:
                inside = [c for c in members if info(c).region == region]
                if inside:
                    lines.append(row(region, inside))
                    lines.extend(row(label(c), [c]) for c in ordered(inside))
        else:
            lines.extend(row(label(c), [c]) for c in ordered(members))
        lines.append(_Line("", [], spacer=True))
    lines.extend(row(label(c), [c]) for c in others)
    return lines


def _layout_3_1_1(series: _Series, year: int, months: list[int]) -> _Layout:
    columns = _month_columns(months, None, subtotals=year >= 2021)
    codes = {c for m in months for c in series.nat.get((year, m), {})}
    lines = _nationality_lines(
        columns, lambda c, m, g: series.nat.get((year, m), {}).get(c, 0), codes
    )
    if year <= 2020:
        title = (
            "Eventos de extranjeros presentados ante la autoridad migratoria, según "
            "continente y país de nacionalidad"
        )
    else:
        title = (
            "Eventos de personas en situación migratoria irregular en México, presentadas "
            "ante la autoridad migratoria o canalizadas, según continente y país de "
            "nacionalidad"
        )
    return _Layout(
        "3.1.1",
        year,
        f"{title}, {_period(months, year)}",
        "Continente y país de nacionalidad",
        columns,
        lines,
        zero_as_text=year <= 2020,
        extra_header="Mes" if year in (2019, 2022) else None,
        notes=FOOTNOTES,
    )


def _layout_3_2_4(series: _Series, year: int, months: list[int]) -> _Layout:
    heading = {iom: (old if year <= 2020 else new) for iom, old, new in RETURN_GROUPS}
    iom_type = {v: k for k, v in heading.items()}
    columns = [
        c
        for iom, _, _ in RETURN_GROUPS
        for c in _month_columns(months, heading[iom], subtotals=False)
    ]
    codes = {c for m in months for (c, _t) in series.exp.get((year, m), {})}
    lines = _nationality_lines(
        columns, lambda c, m, g: series.exp.get((year, m), {}).get((c, iom_type[g]), 0), codes
    )
    who = "extranjeros devueltos" if year <= 2020 else "personas extranjeras devueltas"
    title = (
        f"Eventos de {who} por la autoridad migratoria mexicana, según continente, país de "
        f"nacionalidad y tipo de devolución, {_period(months, year)}"
    )
    return _Layout(
        "3.2.4",
        year,
        title,
        "Continente y país de nacionalidad",
        columns,
        lines,
        zero_as_text=year <= 2020,
        notes=FOOTNOTES,
    )


@dataclass(frozen=True)
class _Node:
    """A row of a sex/age table: a leaf sums ``keys``; a parent sums its children."""

    label: str
    keys: tuple[Any, ...] = ()
    children: tuple[_Node, ...] = ()

    def all_keys(self) -> list[Any]:
        return [*self.keys, *(k for child in self.children for k in child.all_keys())]

    def walk(self) -> Iterator[_Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def _sex_age_lines(
    columns: list[tuple[str, int | None, str | None]], figure: Any, tree: tuple[_Node, ...]
) -> list[_Line]:
    """Total > Hombres / Mujeres > the tree under each sex; every parent is the sum of its
    leaves. ``figure(sex, key, month)`` gives one leaf figure."""

    def row(label: str, sexes: list[str], keys: list[Any]) -> _Line:
        return _Line(
            label, _fill(columns, lambda m, g: sum(figure(s, k, m) for s in sexes for k in keys))
        )

    every = [k for node in tree for k in node.all_keys()]
    lines = [row("Total", ["male", "female"], every)]
    for sex, sex_label in (("male", "Hombres"), ("female", "Mujeres")):
        lines.append(row(sex_label, [sex], every))
        lines.extend(row(node.label, [sex], node.all_keys()) for top in tree for node in top.walk())
    return lines


def _layout_3_1_3(series: _Series, year: int, months: list[int]) -> _Layout:
    columns = _month_columns(months, None, subtotals=False)
    if year <= 2020:
        # Column order changes between editions: these put Total before the months.
        columns = [columns[-1], *columns[:-1]]
    # IOM's age groups: "18+", "12-17", "under 12, accompanied", "under 12, unaccompanied".
    tree = (
        _Node("18 años y más", ("18+",)),
        _Node(
            "Menores de 18 años",
            children=(
                _Node("De 12 a 17 años", ("12-17",)),
                _Node(
                    "Menores de 12 años",
                    children=(
                        _Node("Acompañados", ("under 12, accompanied",)),
                        _Node("No acompañados", ("under 12, unaccompanied",)),
                    ),
                ),
            ),
        ),
    )
    lines = _sex_age_lines(
        columns, lambda s, k, m: series.dmg.get((year, m), {}).get((s, k), 0), tree
    )
    who = (
        "extranjeros presentados" if year <= 2020 else "personas en situación migratoria irregular"
    )
    title = (
        f"Eventos de {who} ante la autoridad migratoria, según sexo, grupo de edad y "
        f"condición de viaje, {_period(months, year)}"
    )
    return _Layout(
        "3.1.3",
        year,
        title,
        "Sexo, grupo de edad y condición de viaje",
        columns,
        lines,
        zero_as_text=year <= 2020,
    )


def _layout_5_2_1(series: _Series, year: int, months: list[int]) -> _Layout:
    columns = _month_columns(months, None, subtotals=False)
    tree = tuple(
        _Node(
            age_label,
            children=(
                _Node("Acompañados", ((age, "accompanied"),)),
                _Node("No acompañados", ((age, "unaccompanied"),)),
            ),
        )
        for age_label, age in (("De 0 a 11 años", "0-11"), ("De 12 a 17 años", "12-17"))
    )
    lines = _sex_age_lines(
        columns, lambda s, k, m: series.minors.get((year, m), {}).get((s, *k), 0), tree
    )
    title = (
        "Eventos de repatriación de menores mexicanos desde Estados Unidos, según sexo, "
        f"grupo de edad y condición de viaje, {_period(months, year)}"
    )
    return _Layout(
        "5.2.1",
        year,
        title,
        "Sexo, grupo de edad y condición de viaje",
        columns,
        lines,
        zero_as_text=False,
    )


LAYOUTS = {
    "3.1.1": _layout_3_1_1,
    "3.1.3": _layout_3_1_3,
    "3.2.4": _layout_3_2_4,
    "5.2.1": _layout_5_2_1,
}
TABLE_TITLES = {
    "3.1.1": "Eventos de personas presentadas ante la autoridad migratoria, según continente y "
    "país de nacionalidad",
    "3.1.3": "Eventos de personas presentadas ante la autoridad migratoria, según sexo, grupo de "
    "edad y condición de viaje",
    "3.2.4": "Eventos de personas extranjeras devueltas, según nacionalidad y tipo de devolución",
    "5.2.1": "Eventos de repatriación de menores mexicanos, según sexo, grupo de edad y condición "
    "de viaje",
}
# Listed on the pages like the real ones, but not mirrored (a 404 says so).
NOT_MIRRORED = {
    3: [
        ("3.1.2", "Eventos de personas presentadas, según entidad federativa"),
        ("3.2.1", "Eventos de personas devueltas, según continente y país de nacionalidad"),
    ],
    5: [],
}


def write_workbook(layout: _Layout, *, rename_month: str | None = None) -> bytes:
    """The layout as a BIFF8 workbook: the bulletin's look, down to the page breaks."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet(f"Cuadro {layout.number}")
    bold = xlwt.easyxf("font: bold on")
    head = xlwt.easyxf("font: bold on; align: horiz center, vert center, wrap on")
    count = xlwt.easyxf(num_format_str="#,##0")
    # A stored 0 that shows "-" (the look of real editions since 2021).
    dash_zero = xlwt.easyxf(num_format_str='#,##0;-#,##0;"-"')
    sheet.col(0).width = sheet.col(1).width = 600
    sheet.col(2).width = 9000
    first_col = 3
    last_col = first_col + len(layout.columns) - 1
    groups = [g for g in dict.fromkeys(g for _, _, g in layout.columns) if g]

    def header(top: int, suffix: str = "") -> int:
        """Title row, spacer, header block, spacer; returns the next free row."""
        sheet.write(top, 2, f"Cuadro {layout.number} {layout.title}{suffix}", bold)
        r = top + 2
        if groups:
            sheet.write_merge(r, r + 1, 2, 2, layout.label_header, head)
            start = first_col
            for group in groups:
                width = sum(1 for _, _, g in layout.columns if g == group)
                sheet.write_merge(r, r, start, start + width - 1, group, head)
                start += width
            r += 1
        elif layout.extra_header:
            sheet.write_merge(r, r, first_col, last_col, layout.extra_header, head)
            r += 1
        else:
            r += 1  # keeps the month header in row 5 (index 4)
        if not groups:
            sheet.write(r, 2, layout.label_header, head)
        for offset, (role, month, _g) in enumerate(layout.columns):
            text = {
                "month": segob.MONTH_NAMES[(month or 1) - 1],
                "total": "Total",
                "subtotal": "Subtotal",
            }[role]
            if role == "month" and month == 1 and rename_month:
                text = rename_month
            sheet.write(r, first_col + offset, text, head)
        return r + 2

    r = header(1)
    on_page = 0
    pages = -(-len(layout.lines) // PAGE_ROWS)
    page = 1
    breaks = []
    for line in layout.lines:
        if on_page == PAGE_ROWS:
            sheet.write(r, 2, "(-) Significa cero.")
            sheet.write(r + 1, 2, "Ver notas al final del cuadro.")
            sheet.write(r + 1, last_col, "Continúa")
            breaks.append((r + 2, 0, 255))
            page += 1
            r = header(r + 3, " (Concluye)" if page == pages else " (Continúa)")
            on_page = 0
        on_page += 1
        if line.spacer:
            r += 1
            continue
        sheet.write(
            r,
            2,
            line.label,
            bold
            if line.label in ("Total general", "Total", *CONTINENT_ORDER, *REGION_ORDER)
            else xlwt.Style.default_style,
        )
        for offset, value in enumerate(line.values):
            if value == 0 and layout.zero_as_text:
                sheet.write(r, first_col + offset, "-")
            else:
                sheet.write(r, first_col + offset, value, dash_zero if value == 0 else count)
        r += 1
    sheet.horz_page_breaks = breaks
    r += 1
    sheet.write(r, 2, "(-) Significa cero.")
    if layout.notes:
        sheet.write(r + 1, 2, "Notas:")
        for offset, note in enumerate(layout.notes, start=2):
            sheet.write(r + offset, 2, note)
        r += len(layout.notes) + 1
    sheet.write(
        r + 2, 2, "Fuente: Unidad de Política Migratoria, Registro e Identidad de Personas, SEGOB."
    )
    sheet.write(r + 3, 2, CONSTRUCTED_NOTE if layout.number == "5.2.1" else REPLICA_NOTE)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ pages


def _page(title: str, body: str) -> bytes:
    """A page as the site serves it: Latin-1, declared so."""
    text = f"""<!DOCTYPE html>
<html lang="es"><head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">
<title>{html.escape(title)} | Unidad de Política Migratoria</title></head>
<body>
<div class="encabezado">Secretaría de Gobernación &middot; Unidad de Política Migratoria, Registro e
Identidad de Personas</div>
{body}
</body></html>
"""
    return text.encode("latin-1", "xmlcharrefreplace")


def _latin1_html(status: int, page: bytes) -> Response:
    return Response(status, {"Content-Type": "text/html; charset=iso-8859-1"}, page)


MAINTENANCE_PAGE_ES = _page(
    "Sitio en mantenimiento",
    """
<h1>Sitio en mantenimiento</h1>
<p>Estamos realizando tareas de mantenimiento. Por favor, inténtelo más tarde.</p>""",
)


# ------------------------------------------------------------------------------ the site


class SegobSite:
    """portales.segob.gob.mx, as far as the bulletin goes."""

    name = SOURCE

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._series: _Series | None = None

    # ------------------------------------------------------------------ data

    @property
    def series(self) -> _Series:
        """Read on first use, not at start-up (the mirror must start in well under a second)."""
        with self._lock:
            if self._series is None:
                self._series = load_series(self.data_dir)
            return self._series

    def published_months(self, table: str, year: int, as_of: dt.date) -> list[int]:
        return [m for m in self.series.months(table, year) if is_published(year, m, as_of)]

    def tables(self, year: int, section: int, as_of: dt.date) -> list[str]:
        """Table numbers of a year's section page with something published by ``as_of``."""
        numbers = {3: ["3.1.1", "3.1.3", "3.2.4"], 5: ["5.2.1"]}.get(section, [])
        return [n for n in numbers if self.published_months(n, year, as_of)]

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one site per mirror; bounded cache
    def workbook(
        self, number: str, year: int, months: tuple[int, ...], rename_month: str | None = None
    ) -> bytes:
        return write_workbook(
            LAYOUTS[number](self.series, year, list(months)), rename_month=rename_month
        )

    def microdata(self, year: int, months: list[int], *, rename: bool = False) -> bytes:
        header = list(self.series.events_header)
        if rename:
            header[header.index("FEC_REP")] = "FECHA_REP"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(header)
        for month in months:
            writer.writerows(self.series.events.get((year, month), []))
        # Latin-1 for 2024, UTF-8 for 2025: both seen on Mexican open-data sites.
        return out.getvalue().encode("latin-1" if year <= 2024 else "utf-8")

    # ------------------------------------------------------------------ requests

    @staticmethod
    def is_data(path: str) -> bool:
        return path.startswith(WORKBOOK_DIR + "/") or path == MICRODATA_PATH

    def handle(
        self, path: str, query: str, headers: Any, as_of: dt.date, fault: str | None
    ) -> Response:
        if path.rstrip("/") == LANDING_PATH:
            return self._landing(as_of)
        if path == TABLES_PATH:
            return self._tables_page(query, as_of, fault)
        if path.startswith(WORKBOOK_DIR + "/"):
            return self._workbook(path, headers, as_of, fault)
        if path == MICRODATA_PATH:
            return self._microdata(query, headers, as_of, fault)
        return _latin1_html(404, _page("No encontrado", "<h1>Página no encontrada</h1>"))

    def _years(self, as_of: dt.date) -> list[int]:
        return list(range(FIRST_YEAR, as_of.year + 1))

    def _landing(self, as_of: dt.date) -> Response:
        rows = []
        for year in reversed(self._years(as_of)):
            cells = "".join(
                f'<td><a href="CuadrosBOLETIN?Anual={year}&amp;Secc={n}">'
                f"{n}. {html.escape(self._section_title(n, year))}</a></td>"
                for n in SECTIONS
            )
            rows.append(f"<tr><th>{year}</th>{cells}</tr>")
        body = f"""<h1>Boletín Mensual de Estadísticas Migratorias</h1>
<p>Consulte los cuadros estadísticos por año y sección.</p>
<table class="boletines">
{chr(10).join(rows)}
</table>
<p><small>Réplica local de returnwatch: el sitio como estaba el {as_of.isoformat()}.</small></p>"""
        return _latin1_html(200, _page("Boletines Estadísticos", body))

    @staticmethod
    def _section_title(section: int, year: int) -> str:
        if section == 3 and year <= 2020:
            return SECTION_3_BEFORE_2021
        return SECTIONS[section]

    def _tables_page(self, query: str, as_of: dt.date, fault: str | None) -> Response:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        try:
            year, section = int(params["Anual"]), int(params["Secc"])
        except (KeyError, ValueError):
            return _latin1_html(404, _page("No encontrado", "<h1>Página no encontrada</h1>"))
        if year not in self._years(as_of) or section not in SECTIONS:
            return _latin1_html(404, _page("No encontrado", "<h1>Página no encontrada</h1>"))
        if fault == "empty_page":
            return Response(200, {"Content-Type": "text/html; charset=iso-8859-1"}, b"")
        items = []
        for number in self.tables(year, section, as_of):
            href = "../.." + workbook_path(number, year)
            # 2020's page names its links without the table number: the file name carries it.
            text = (
                TABLE_TITLES[number]
                if year == 2020
                else (f"Cuadro {number} {TABLE_TITLES[number]}")
            )
            items.append(f'<li><a href="{html.escape(href)}">{html.escape(text)}</a></li>')
        if items:
            for number, text in NOT_MIRRORED.get(section, []):
                href = "../.." + workbook_path(number, year)
                items.append(
                    f'<li><a href="{html.escape(href)}">Cuadro {number} '
                    f"{html.escape(text)}</a> (no incluido en la réplica)</li>"
                )
        notes = ""
        if section == 5:
            months = self.published_months("microdata", year, as_of)
            if months:
                href = f"../..{MICRODATA_PATH}?f={microdata_name(year)}"
                items.append(
                    f'<li><a href="{html.escape(href)}">Base de datos de eventos de '
                    f"repatriación {year} (CSV)</a></li>"
                )
                items.append(
                    f"<li>Catálogo CatRepatriados_{year}.xls (no incluido en la réplica)</li>"
                )
            notes = (
                "<p><small>Réplica de returnwatch: no existe copia pública de los cuadros "
                "de menores ni de la base de datos de esta sección. Los que aparecen aquí "
                "(2024 y 2025) fueron construidos a mano; sus cifras son inventadas "
                "(include/replay/segob_upm/*_constructed.csv).</small></p>"
            )
        listing = (
            f"<ul>\n{chr(10).join(items)}\n</ul>"
            if items
            else "<p>Aún no hay cuadros publicados de este año.</p>"
        )
        body = f"""<h1>Boletín Mensual de Estadísticas Migratorias {year}</h1>
<h2>{section}. {html.escape(self._section_title(section, year))}</h2>
{listing}
{notes}
<p><small>Réplica local de returnwatch: el sitio como estaba el {as_of.isoformat()}.</small></p>"""
        return _latin1_html(200, _page(f"Cuadros {year}", body))

    def _workbook(self, path: str, headers: Any, as_of: dt.date, fault: str | None) -> Response:
        rest = path.removeprefix(WORKBOOK_DIR + "/").split("/")
        match = None
        if len(rest) == 3 and rest[0].isdigit() and rest[1] == f"Cuadros{rest[0]}":
            year = int(rest[0])
            match = next((n for n in LAYOUTS if workbook_name(n, year) == rest[2]), None)
        if match is None:
            return _latin1_html(
                404,
                _page(
                    "No encontrado",
                    "<h1>Archivo no encontrado</h1><p>Este cuadro no "
                    "está incluido en la réplica.</p>",
                ),
            )
        if year > as_of.year:
            return _latin1_html(404, _page("No encontrado", "<h1>Archivo no encontrado</h1>"))
        months = self.published_months(match, year, as_of)
        if not months:
            return _latin1_html(404, _page("No encontrado", "<h1>Archivo no encontrado</h1>"))
        content_type = "application/vnd.ms-excel"
        if fault == "html_error":
            return _latin1_html(200, MAINTENANCE_PAGE_ES)
        if fault == "empty":
            return Response(200, {"Content-Type": content_type}, b"")
        if fault == "oversize":
            return Response(
                200,
                {"Content-Type": content_type},
                stream=_oversize(self.workbook(match, year, tuple(months))),
            )
        body = self.workbook(
            match, year, tuple(months), "Ene." if fault == "renamed_column" else None
        )
        if fault == "truncated":
            body = body[: len(body) // 2]
        response = with_validators(headers, body, content_type, published_on(year, months[-1]))
        if match in CONSTRUCTED_TABLES:
            # Built by hand from section5_minors_constructed.csv: its served name says so.
            response.headers["Content-Disposition"] = attachment(constructed_name(rest[2]))
        return response

    def _microdata(self, query: str, headers: Any, as_of: dt.date, fault: str | None) -> Response:
        name = parse_qs(query).get("f", [""])[0]
        match = segob.MICRODATA_NAME.fullmatch(name)
        year = int(match.group(1)) if match else 0
        months = self.published_months("microdata", year, as_of) if match else []
        if not months or year > as_of.year:
            return _latin1_html(404, _page("No encontrado", "<h1>Archivo no encontrado</h1>"))
        content_type = "application/octet-stream"
        if fault == "html_error":
            return _latin1_html(200, MAINTENANCE_PAGE_ES)
        if fault == "empty":
            return Response(200, {"Content-Type": content_type}, b"")
        body = self.microdata(year, months, rename=fault == "renamed_column")
        if fault == "oversize":
            return Response(200, {"Content-Type": content_type}, stream=_oversize(body))
        if fault == "truncated":
            lines = body.splitlines(keepends=True)
            middle = len(lines) // 2
            body = b"".join(lines[:middle]) + lines[middle][: len(lines[middle]) // 2]
        response = with_validators(headers, body, content_type, published_on(year, months[-1]))
        # Built by hand from BDSIOMR_PUB_UPMRIP_constructed.csv, served at the real URL: the
        # name it is served under says it is constructed (nothing in the CSV can).
        response.headers["Content-Disposition"] = attachment(constructed_name(name))
        return response


def _oversize(sample: bytes) -> Iterator[bytes]:
    """A body past the size cap that starts like the real file, streamed in 64 kB chunks."""
    chunk = (sample * (65536 // max(1, len(sample)) + 1))[:65536]
    sent = 0
    while sent < OVERSIZE_BYTES:
        yield chunk
        sent += len(chunk)


def make_site(data_dir: Path) -> SegobSite:
    return SegobSite(data_dir)
