"""One parsed file per file kind, for tests that need a frame of every raw table.

Each entry is a real file (the replay mirror's real figures, the real healthdata.gov copy) or a
small fixture of ``tests/fixtures`` (constructed ones say so in their names), parsed by its
file kind, with the run date its suite's ``latest_possible_date`` is measured against.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from returnwatch import settings
from returnwatch.sources import cbp_encounters_monthly as cbp
from returnwatch.sources import hhs_uc_daily as hhs
from returnwatch.sources import hhs_uc_monthly as hhs_monthly
from returnwatch.sources import segob_bulletin_monthly as segob
from returnwatch.sources.base import FileKind, read

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL_HHS_CSV = settings.replay_data_dir() / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv"


@dataclass(frozen=True)
class ParsedFile:
    source: str
    kind: FileKind
    name: str
    frame: pd.DataFrame
    latest_possible_date: dt.date


def _cbp_aor() -> bytes:
    from returnwatch_replay.sites import cbp as site

    mirror = site.CbpSite(settings.replay_data_dir())
    return mirror.body(
        next(f for f in mirror.files if f.name == "nationwide-encounters-fy22-fy25-may-aor.csv")
    )


def _segob_site():  # noqa: ANN202 - the replay package is a test double, typed loosely
    from returnwatch_replay.sites import segob as site

    return site.SegobSite(settings.replay_data_dir())


# kind key -> (source, file kind, file name, bytes, the run's date for latest_possible_date)
_FILES = {
    "cbp_aor": (
        cbp.SOURCE,
        cbp.KINDS["aor"],
        "nationwide-encounters-fy22-fy25-may-aor.csv",
        _cbp_aor,
        dt.date(2025, 6, 20),
    ),
    "cbp_state": (
        cbp.SOURCE,
        cbp.KINDS["state"],
        "state_fy22_fy23_jan_excerpt_constructed.csv",
        lambda: (FIXTURES / "cbp" / "state_fy22_fy23_jan_excerpt_constructed.csv").read_bytes(),
        dt.date(2025, 6, 20),
    ),
    "cbp_sbo": (
        cbp.SOURCE,
        cbp.KINDS["sbo"],
        "sbo_fy22_fy25_may_uac_excerpt_constructed.csv",
        lambda: (FIXTURES / "cbp" / "sbo_fy22_fy25_may_uac_excerpt_constructed.csv").read_bytes(),
        dt.date(2025, 6, 20),
    ),
    "hhs_export_csv": (
        hhs.SOURCE,
        hhs.KINDS["export_csv"],
        REAL_HHS_CSV.name,
        REAL_HHS_CSV.read_bytes,
        dt.date(2025, 12, 22),
    ),
    "hhs_daily_report_pdf": (
        hhs.SOURCE,
        hhs.KINDS["daily_report_pdf"],
        "uc_daily_report_2021-04-13_constructed.pdf",
        lambda: (FIXTURES / "hhs" / "uc_daily_report_2021-04-13_constructed.pdf").read_bytes(),
        dt.date(2021, 4, 14),
    ),
    "hhs_monthly_fy_page": (
        hhs_monthly.SOURCE,
        hhs_monthly.KINDS["fy_page"],
        "latest-uc-data-fy2021_as_of_2021-03-11_constructed.html",
        lambda: (
            FIXTURES / "hhs" / "latest-uc-data-fy2021_as_of_2021-03-11_constructed.html"
        ).read_bytes(),
        dt.date(2021, 3, 11),
    ),
    "segob_cuadro_3_1_1": (
        segob.SOURCE,
        segob.KINDS["cuadro_3_1_1"],
        "cuadro 3.1.1 2023",
        lambda: _segob_site().workbook("3.1.1", 2023, tuple(range(1, 13))),
        dt.date(2025, 6, 10),
    ),
    "segob_cuadro_3_1_3": (
        segob.SOURCE,
        segob.KINDS["cuadro_3_1_3"],
        "cuadro 3.1.3 2019",
        lambda: _segob_site().workbook("3.1.3", 2019, tuple(range(1, 13))),
        dt.date(2025, 6, 10),
    ),
    "segob_cuadro_3_2_4": (
        segob.SOURCE,
        segob.KINDS["cuadro_3_2_4"],
        "cuadro 3.2.4 2024",
        lambda: _segob_site().workbook("3.2.4", 2024, tuple(range(1, 13))),
        dt.date(2025, 6, 10),
    ),
    "segob_section_5_minors": (
        segob.SOURCE,
        segob.KINDS["section_5_minors"],
        "cuadro 5.2.1 2025 (constructed)",
        lambda: _segob_site().workbook("5.2.1", 2025, (1, 2, 3, 4)),
        dt.date(2025, 6, 10),
    ),
    "segob_microdata": (
        segob.SOURCE,
        segob.KINDS["microdata"],
        "BDSIOMR_PUB_2024_UPMRIP.csv",
        lambda: _segob_site().microdata(2024, [1, 2, 3]),
        dt.date(2025, 6, 10),
    ),
}
KEYS = sorted(_FILES)


def kinds() -> set[tuple[str, str]]:
    """(source, file kind) of every file here, without reading them."""
    return {(source, kind.kind) for source, kind, *_ in _FILES.values()}


@functools.cache
def content(key: str) -> bytes:
    """The bytes of the file of ``key`` (one of ``KEYS``), as published or as the fixture."""
    return _FILES[key][3]()


@functools.cache
def parsed(key: str) -> ParsedFile:
    """The file of ``key`` read as ingest reads it (``sources.base.read``)."""
    source, kind, name, _, run_date = _FILES[key]
    frame = read(source, kind, content(key), file=name).frame()
    return ParsedFile(source, kind, name, frame, run_date)
