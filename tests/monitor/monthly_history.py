"""The monthly publishers' real files as they stood on a day, archived and loaded like a fetch.

``MonthlyHistory`` takes the files the replay mirror serves (``returnwatch_replay.sites``: CBP's
AOR CSVs re-laid from IOM's copy of CBP's files, SEGOB's table 3.1.1 workbooks from IOM's copy
of the bulletin, HHS's fiscal-year pages from the Washington Post's copy), stores their bytes in
the archive the way the fetcher does (one manifest row per URL per check, ``run_at`` = the check)
and loads them with the real parsers and ``warehouse.load_file`` (revisions recorded in the same
transaction, as ``ingest.load`` does). ``check()`` adds the rows a later fetch round leaves:
the same files again, 304s, failures. Publication days are the mirror's (CBP: mid-month, the
May 2025 file on Monday 16 June 2025; SEGOB: day 7 of M+2; HHS pages: the 15th of M+1).
Nothing here invents a figure.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from returnwatch import settings, warehouse
from returnwatch.archive import Archive
from returnwatch.monitor import revisions
from returnwatch.sources import cbp_encounters_monthly as cbp
from returnwatch.sources import hhs_uc_monthly as hhs_monthly
from returnwatch.sources import segob_bulletin_monthly as segob
from returnwatch_replay.sites import cbp as cbp_site
from returnwatch_replay.sites import hhs_gov as hhs_site
from returnwatch_replay.sites import segob as segob_site

CBP = "cbp_encounters_monthly"
SEGOB = "segob_bulletin_monthly"
HHS_MONTHLY = "hhs_uc_monthly"
MIRROR = "http://127.0.0.1"


@functools.cache
def _cbp_site() -> cbp_site.CbpSite:
    return cbp_site.CbpSite(settings.replay_data_dir())


@functools.cache
def _segob_site() -> segob_site.SegobSite:
    return segob_site.SegobSite(settings.replay_data_dir())


@functools.cache
def _hhs_site() -> hhs_site.HhsGovSite:
    return hhs_site.HhsGovSite(settings.replay_data_dir())


@functools.cache
def cbp_body(path: str) -> bytes:
    file = next(f for r in cbp_site.RELEASES for f in r.files if f.path == path)
    return _cbp_site().body(file)


@functools.cache
def _cbp_parsed(path: str) -> Any:
    file = next(f for r in cbp_site.RELEASES for f in r.files if f.path == path)
    return cbp.parse_aor(cbp_body(path), file=file.name).frame()


def cbp_release(as_of: dt.date) -> cbp_site.Release:
    release = cbp_site.release_on(as_of)
    assert release is not None, f"CBP had published nothing by {as_of}"
    return release


class MonthlyHistory:
    """Archive + load the monthly sources' real files into a warehouse connection."""

    def __init__(self, con: Any, archive: Archive | None = None) -> None:
        self.con = con
        self.archive = archive or Archive()
        # source -> {url: (bytes, vintage)} of the files listed at the last publish()
        self.listed: dict[str, dict[str, tuple[bytes, dt.date]]] = {}

    # ------------------------------------------------------------------ publishing + fetching

    def cbp(
        self, as_of: dt.date, *, received: dt.datetime, files: tuple[str, ...] | None = None
    ) -> list[str]:
        """Fetch round: every AOR file CBP's page listed on ``as_of`` (or those in ``files``)."""
        release = cbp_release(as_of)
        out = []
        for file in release.files:
            if files is not None and file.path not in files:
                continue
            url = f"{MIRROR}/{CBP}{file.path}"
            body = cbp_body(file.path)
            vintage = file.published.date()
            out.append(
                self._store_and_load(
                    CBP,
                    url,
                    body,
                    vintage,
                    received,
                    table=cbp.RAW_TABLES["aor"],
                    frame=lambda p=file.path: _cbp_parsed(p),
                    kind=cbp.KINDS["aor"],
                )
            )
        return out

    def segob(self, as_of: dt.date, years: tuple[int, ...], *, received: dt.datetime) -> list[str]:
        """Fetch round: table 3.1.1's workbook of each year as SEGOB served it on ``as_of``."""
        site = _segob_site()
        kind = segob.KINDS["cuadro_3_1_1"]
        out = []
        for year in years:
            months = site.published_months("3.1.1", year, as_of)
            if not months:
                continue
            body = site.workbook("3.1.1", year, tuple(months))
            url = f"{MIRROR}/{SEGOB}{segob_site.workbook_path('3.1.1', year)}"
            vintage = segob_site.published_on(year, months[-1]).date()
            out.append(
                self._store_and_load(
                    SEGOB,
                    url,
                    body,
                    vintage,
                    received,
                    table=kind.raw_table,
                    frame=lambda b=body, y=year: kind.parse(
                        b, file=segob_site.workbook_name("3.1.1", y)
                    ).frame(),
                    kind=kind,
                )
            )
        return out

    def hhs_pages(
        self, as_of: dt.date, fiscal_years: tuple[int, ...], *, received: dt.datetime
    ) -> list[str]:
        """Fetch round: HHS's fiscal-year pages as they stood on ``as_of``."""
        out = []
        for fiscal_year in fiscal_years:
            page = _hhs_site().page(fiscal_year, as_of)
            if page is None:
                continue
            body, published = page
            url = (
                f"{MIRROR}/{HHS_MONTHLY}/programs/social-services/unaccompanied-children/"
                f"latest-uc-data-fy{fiscal_year}/index.html"
            )
            out.append(
                self._store_and_load(
                    HHS_MONTHLY,
                    url,
                    body,
                    published.date(),
                    received,
                    table=hhs_monthly.RAW_TABLE,
                    frame=lambda b=body, y=fiscal_year: hhs_monthly.parse(
                        b, file=f"latest-uc-data-fy{y}"
                    ).frame(),
                    kind=hhs_monthly.KINDS[next(iter(hhs_monthly.KINDS))],
                )
            )
        return out

    def check(
        self,
        source: str,
        when: dt.datetime,
        outcome: str = "not_modified",
        *,
        urls: list[str] | None = None,
    ) -> None:
        """A later fetch round over the URLs of the last publish: ``unchanged`` (same bytes),
        ``not_modified`` (304) or ``failed`` (503), one manifest row per URL."""
        listed = self.listed[source]
        for url in urls or list(listed):
            body, vintage = listed[url]
            if outcome == "unchanged":
                self.archive.store(source, url, body, fetched_at=when, run_at=when, vintage=vintage)
            elif outcome == "not_modified":
                self.archive.record_not_modified(source, url, fetched_at=when, run_at=when)
            elif outcome == "failed":
                self.archive.record_failure(
                    source,
                    url,
                    fetched_at=when,
                    run_at=when,
                    error="HTTP 503 Service Unavailable",
                    http_status=503,
                )
            else:
                raise ValueError(outcome)

    # ------------------------------------------------------------------ internals

    def _store_and_load(
        self,
        source: str,
        url: str,
        body: bytes,
        vintage: dt.date,
        received: dt.datetime,
        *,
        table: str,
        frame: Any,
        kind: Any,
    ) -> str:
        entry = self.archive.store(
            source, url, body, fetched_at=received, run_at=received, vintage=vintage
        )
        self.listed.setdefault(source, {})[url] = (body, vintage)
        if entry.outcome == "new":
            warehouse.load_file(
                self.con,
                table=table,
                frame=frame(),
                source=source,
                sha256=entry.sha256,
                url=url,
                vintage=vintage,
                fetched_at=received,
                also=lambda con: revisions.record(
                    con,
                    kind,
                    source=source,
                    sha256=entry.sha256,
                    vintage=vintage,
                    run_id=f"test/{source}/{received:%Y%m%d}",
                ),
            )
        return entry.sha256
