"""Reference data every layer shares: the countries table.

One home, ``dbt_project/seeds/countries.csv``: one row per ISO 3166-1 alpha-3 code with its
English name, its spelling and continent/region block in SEGOB's bulletin, and its citizenship
as CBP's files print it. dbt loads it as the ``countries`` seed; the SEGOB parser, the replay
mirror and the benchmark series read it here, so a country is named in one place only.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from returnwatch import settings


@dataclass(frozen=True)
class CountryRow:
    iso3: str
    name_en: str
    segob_country: str | None  # SEGOB's label ("Dominicana, Rep."); None: not in the bulletin
    segob_continent: str | None
    segob_region: str | None
    cbp_citizenship: str | None  # CBP's upper-case name ("CHINA, PEOPLES REPUBLIC OF")


def countries_csv() -> Path:
    return settings.PROJECT_DIR / "dbt_project" / "seeds" / "countries.csv"


@functools.cache
def countries() -> tuple[CountryRow, ...]:
    """Every row of the countries table, in its file's order (by ISO3)."""
    with countries_csv().open(encoding="utf-8", newline="") as handle:
        return tuple(
            CountryRow(
                iso3=row["iso3"],
                name_en=row["name_en"],
                segob_country=row["segob_country"] or None,
                segob_continent=row["segob_continent"] or None,
                segob_region=row["segob_region"] or None,
                cbp_citizenship=row["cbp_citizenship"] or None,
            )
            for row in csv.DictReader(handle)
        )


def cbp_citizenship_by_iso3() -> dict[str, str]:
    """ISO3 -> the citizenship CBP prints. CBP's ``OTHER`` (every other country) is ``OOO``,
    the code IOM's harmonised copy of CBP's files uses for it."""
    names = {row.iso3: row.cbp_citizenship for row in countries() if row.cbp_citizenship}
    return {**names, "OOO": "OTHER"}
