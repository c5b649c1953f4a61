"""Load the replay mirror's real files into a warehouse, fast, for the dbt tests and the bench.

The files are the mirror's own (``replay/returnwatch_replay/sites/``: CBP AOR CSVs re-laid from
IOM's copy of CBP's files, SEGOB workbooks of IOM's series of tables 3.1.1 / 3.1.3 / 3.2.4 and the
constructed section 5, HHS's monthly pages) and the real healthdata.gov copy, rendered in process
instead of over HTTP, parsed by the real parsers and loaded by ``warehouse.load_file`` with the
vintage the fetcher would record (the file's Last-Modified day in the publisher's time zone).
The GX validation step is skipped: it is tested elsewhere and would triple the time.

Each file is recorded with a loopback URL (``http://127.0.0.1/<source><path>``), as when fetched
from the mirror, and with the file's own provenance (``provenance.is_constructed`` on its name
and bytes, as the parse step records it), so the marts flag the constructed SEGOB section 5.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from returnwatch import settings

MIRROR = "http://127.0.0.1"

# SEGOB workbooks: table number -> parser kind.
SEGOB_TABLES = {
    "3.1.1": "cuadro_3_1_1",
    "3.1.3": "cuadro_3_1_3",
    "3.2.4": "cuadro_3_2_4",
    "5.2.1": "section_5_minors",
}


@dataclass(frozen=True)
class Loaded:
    source: str
    table: str
    sha256: str
    vintage: dt.date
    rows: int
    name: str


def _load(
    con: Any,
    *,
    source: str,
    table: str,
    body: bytes,
    frame: Any,
    url: str,
    vintage: dt.date,
    name: str,
) -> Loaded:
    from returnwatch import warehouse
    from returnwatch.provenance import is_constructed

    sha = hashlib.sha256(body).hexdigest()
    result = warehouse.load_file(
        con,
        table=table,
        frame=frame,
        source=source,
        sha256=sha,
        url=url,
        vintage=vintage,
        fetched_at=dt.datetime.now(dt.UTC),
        constructed=is_constructed(url, body),
    )
    return Loaded(source, table, sha, vintage, result.rows_loaded, name)


# ------------------------------------------------------------------------------------- CBP


def cbp_files(published: Iterable[dt.date] | None = None) -> list[Any]:
    """The mirror's CBP AOR files, all of them or those published on the given days."""
    from returnwatch_replay.sites import cbp as site

    files = {f.path: f for r in site.RELEASES for f in r.files}.values()
    wanted = set(published) if published is not None else None
    return sorted(
        (f for f in files if wanted is None or f.published.date() in wanted),
        key=lambda f: f.published,
    )


def load_cbp(con: Any, files: Iterable[Any]) -> list[Loaded]:
    from returnwatch.sources import cbp_encounters_monthly as cbp
    from returnwatch_replay.sites import cbp as site

    mirror = site.CbpSite(settings.replay_data_dir())
    loaded = []
    for file in files:
        body = mirror.body(file)
        parsed = cbp.parse_aor(body, file=file.name)
        loaded.append(
            _load(
                con,
                source=cbp.SOURCE,
                table=cbp.RAW_TABLES["aor"],
                body=body,
                frame=parsed.frame(),
                url=f"{MIRROR}/{site.SOURCE}{file.path}",
                vintage=file.published.date(),
                name=file.name,
            )
        )
    return loaded


# ----------------------------------------------------------------------------------- SEGOB


def load_segob(
    con: Any, as_of: dt.date, years: Iterable[int], tables: Iterable[str] = tuple(SEGOB_TABLES)
) -> list[Loaded]:
    """Each table's workbook of each year as the mirror served it on ``as_of``."""
    from returnwatch.sources import segob_bulletin_monthly as segob
    from returnwatch_replay.sites import segob as site

    mirror = site.SegobSite(settings.replay_data_dir())
    loaded = []
    for number in tables:
        kind = segob.KINDS[SEGOB_TABLES[number]]
        for year in years:
            months = mirror.published_months(number, year, as_of)
            if not months:
                continue
            body = mirror.workbook(number, year, tuple(months))
            parsed = kind.parse(body, file=site.workbook_name(number, year))
            loaded.append(
                _load(
                    con,
                    source=segob.SOURCE,
                    table=kind.raw_table,
                    body=body,
                    frame=parsed.frame(),
                    url=f"{MIRROR}/{site.SOURCE}{site.workbook_path(number, year)}",
                    vintage=site.published_on(year, months[-1]).date(),
                    name=f"{number} {year} as of {as_of}",
                )
            )
    return loaded


# ------------------------------------------------------------------------------------- HHS


def load_hhs_daily(con: Any, vintage: dt.date = dt.date(2025, 12, 22)) -> Loaded:
    """The real healthdata.gov copy (2023-01-12 .. 2025-12-21), as served from 2025-12-22."""
    from returnwatch.sources import hhs_uc_daily as hhs

    path = settings.replay_data_dir() / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv"
    body = path.read_bytes()
    parsed = hhs.parse(body, file=path.name)
    return _load(
        con,
        source="hhs_uc_daily",
        table="hhs_uc_daily",
        body=body,
        frame=parsed.frame(),
        url=f"{MIRROR}/hhs_uc_daily/api/views/ehpz-xc9n/rows.csv",
        vintage=vintage,
        name=path.name,
    )


def load_hhs_monthly(con: Any, fiscal_years: Iterable[int], as_of: dt.date) -> list[Loaded]:
    """HHS's "Latest UC Data – FY" pages as the mirror served them on ``as_of``."""
    from returnwatch.sources import hhs_uc_monthly as hhs_monthly
    from returnwatch_replay.sites import hhs_gov as site

    mirror = site.HhsGovSite(settings.replay_data_dir())
    loaded = []
    for fiscal_year in fiscal_years:
        page = mirror.page(fiscal_year, as_of)
        if page is None:
            continue
        body, published = page
        parsed = hhs_monthly.parse(body, file=f"latest-uc-data-fy{fiscal_year}")
        loaded.append(
            _load(
                con,
                source=hhs_monthly.SOURCE,
                table=hhs_monthly.RAW_TABLE,
                body=body,
                frame=parsed.frame(),
                url=f"{MIRROR}/hhs_uc_monthly/programs/social-services/unaccompanied-children/"
                f"latest-uc-data-fy{fiscal_year}/index.html",
                vintage=published.date(),
                name=f"FY{fiscal_year} page as of {as_of}",
            )
        )
    return loaded


# ------------------------------------------------------------------------------ together


def load_history(con: Any, *, full: bool = False) -> list[Loaded]:
    """The demo's history: the world as of 20 March 2021 and as of 17 June 2025.

    ``full`` adds every other CBP release (each monthly FY22-FY25 file from Nov 2024) and
    SEGOB's workbooks as of the 8th of every month of 2024 and 2025 (each month's overwrite),
    the most vintages the mirror has: what ``bench/dbt_build.py`` builds on.
    """
    march_2021, june_2025 = dt.date(2021, 3, 20), dt.date(2025, 6, 17)
    loaded: list[Loaded] = []
    cbp_days = None if full else {dt.date(2021, 3, 2), dt.date(2024, 10, 15), dt.date(2025, 6, 16)}
    loaded += load_cbp(con, cbp_files(cbp_days))
    loaded += load_segob(con, march_2021, range(2015, 2022))
    if full:
        day = dt.date(2024, 2, 8)
        while day < june_2025:
            loaded += load_segob(
                con, day, [day.year - 1, day.year] if day.month <= 2 else [day.year]
            )
            day = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 8)
    loaded += load_segob(con, june_2025, range(2015, 2026))
    loaded += load_hhs_monthly(con, range(2018, 2022), march_2021)
    loaded.append(load_hhs_daily(con))
    return loaded
