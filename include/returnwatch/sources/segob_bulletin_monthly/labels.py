"""The bulletin's words: month names, subtotal and split labels, sexes, travel conditions,
and how a printed label is cleaned (footnote digits) and compared (no accents or case).
"""

from __future__ import annotations

import re
import unicodedata

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


def label_key(text: str) -> str:
    """A label reduced for comparison: no accents, case or punctuation, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


# ------------------------------------------------------------------------------ labels

# A footnote number glued to a label: "Estados Unidos 1", "Otros 4", "Total 1/", "Corea, Rep.
# de 3". Never part of a longer number (a year) ...
_FOOTNOTE = re.compile(r"^(?P<label>.*\D)\s*\d{1,2}\s*/?\s*$")
# ... nor the end of an age range or bound ("De 0 a 11", "18 y 19", "Menores de 12").
_NUMBER_BELONGS = re.compile(r"(\d\s*(a|y|al|hasta|-)|\b(menores|mayores) de)\s*$", re.IGNORECASE)
_TABLE_NUMBER = re.compile(r"(?<![\d.])(\d{1,2})[._ ](\d{1,2})[._ ](\d{1,2})(?![\d])")
YEAR = re.compile(r"(?<!\d)(20\d{2}|19\d{2})(?!\d)")
DASHES = {"-", "–", "—", "- ", "--"}
PAGE_MARKER = re.compile(
    r"contin[uú]a|concluye|significa cero|ver notas|^fuente|^notas?:?$", re.IGNORECASE
)
TITLE_REPEAT = re.compile(r"\((contin[uú]a|concluye)\)", re.IGNORECASE)


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
