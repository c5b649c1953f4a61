"""Nationalities as the bulletin spells them, mapped to ISO 3166-1 alpha-3 codes.

The countries come from the project's one countries table (``returnwatch.reference``); the
aliases here are other spellings of the same nationalities seen in older editions.
"""

from __future__ import annotations

from dataclasses import dataclass

from returnwatch import reference
from returnwatch.sources.segob_bulletin_monthly.labels import clean_label, label_key

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
_ISO3_BY_KEY = {label_key(c.label): c.iso3 for c in COUNTRIES.values()}
_ISO3_BY_KEY.update({label_key(name): iso3 for name, iso3 in ALIASES.items()})


def iso3_for(label: str) -> str | None:
    """The ISO 3166-1 alpha-3 code of a nationality as the bulletin labels it, or None."""
    return _ISO3_BY_KEY.get(label_key(clean_label(label)))
