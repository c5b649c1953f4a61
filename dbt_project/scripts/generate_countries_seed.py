"""Write ``dbt_project/seeds/countries.csv`` from the mapping tables the parsers already use.

Run once (and again only if a source module's country table changes):

    .venv/bin/python dbt_project/scripts/generate_countries_seed.py [--pycountry-path DIR]

Where each column comes from, nothing typed by hand:

- ``iso3``, ``segob_country``, ``segob_continent``, ``segob_region``: ``returnwatch.sources.segob.
  COUNTRIES`` (the bulletin's own spelling, "Dominicana, Rep.", and its continent / region
  blocks), the table the SEGOB parser gives every row its ISO3 from;
- ``cbp_citizenship``: ``returnwatch.replay_sites.cbp.CITIZENSHIP`` (ISO3 -> CBP's upper-case
  citizenship, "CHINA, PEOPLES REPUBLIC OF"), the names CBP's encounter files print, merged
  with ``returnwatch.monitor.series.CBP_CITIZENSHIP`` (the same mapping, for IOM's copy);
  CBP's "OTHER" has no ISO3 and is not a row;
- ``name_en``: the ISO 3166-1 English short name, from the ``pycountry`` package when it can be
  imported (it is not a project dependency: the seed was generated with pycountry 26.2.16
  installed into a scratch folder, ``--pycountry-path``); ``XKX`` (Kosovo, a user-assigned
  code that ISO 3166 does not list) is named in ``NOT_IN_ISO``.

Codes CBP uses that SEGOB's table lacks are added with an empty ``segob_country``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

SEED = Path(__file__).resolve().parents[1] / "seeds" / "countries.csv"
# Codes the parsers use that ISO 3166-1 does not assign.
NOT_IN_ISO = {"XKX": "Kosovo"}
COLUMNS = ["iso3", "name_en", "segob_country", "segob_continent", "segob_region",
           "cbp_citizenship"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pycountry-path", help="folder holding the pycountry package")
    args = parser.parse_args()
    if args.pycountry_path:
        sys.path.insert(0, args.pycountry_path)
    try:
        import pycountry
    except ImportError:
        pycountry = None

    from returnwatch.monitor.series import CBP_CITIZENSHIP
    from returnwatch.replay_sites.cbp import CITIZENSHIP
    from returnwatch.sources.segob import COUNTRIES

    cbp = {code: name for code, name in {**CBP_CITIZENSHIP, **CITIZENSHIP}.items()
           if code != "OOO"}
    rows = []
    for iso3 in sorted(set(COUNTRIES) | set(cbp)):
        country = COUNTRIES.get(iso3)
        found = pycountry.countries.get(alpha_3=iso3) if pycountry else None
        rows.append({
            "iso3": iso3,
            "name_en": found.name if found else NOT_IN_ISO.get(iso3, ""),
            "segob_country": country.label if country else "",
            "segob_continent": country.continent if country else "",
            "segob_region": (country.region or "") if country else "",
            "cbp_citizenship": cbp.get(iso3, ""),
        })
    with SEED.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{SEED}: {len(rows)} countries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
