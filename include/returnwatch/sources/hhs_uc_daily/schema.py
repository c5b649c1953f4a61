"""The daily UC figures' raw tables: the source id, the tables' names and DDL, and the derived
columns the GX suites check.

``RAW_TABLE_PREFIX`` is what every raw table of this source starts with (docs/sources.md,
"Source ids and raw-table prefixes").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SOURCE = "hhs_uc_daily"
# Every raw table of this source starts with it (docs/sources.md).
RAW_TABLE_PREFIX = "hhs_uc_daily"
# The dataset's CSV export (kind export_csv).
RAW_TABLE = "hhs_uc_daily"
# The daily report PDF (kind daily_report_pdf): the same five figures, plus the 30-day averages
# and a release date, and a vintage stream of its own, so a table of its own.
REPORT_RAW_TABLE = "hhs_uc_daily_report"

RAW_DDL = [
    """
    CREATE TABLE IF NOT EXISTS raw.hhs_uc_daily (
        report_date                       DATE NOT NULL,
        apprehended_placed_in_cbp_custody INTEGER,  -- excludes Mexican children (publisher's footnote)
        in_cbp_custody                    INTEGER,
        transferred_out_of_cbp_custody    INTEGER,
        in_hhs_care                       INTEGER,
        discharged_from_hhs_care          INTEGER,
        source_file                       VARCHAR NOT NULL,
        source_row                        INTEGER NOT NULL,  -- line number in the file, header = 1
        vintage                           DATE NOT NULL,
        PRIMARY KEY (source_file, source_row)
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS raw.{REPORT_RAW_TABLE} (
        report_date                                  DATE NOT NULL,  -- the data day ('April 13th Data')
        release_date                                 DATE NOT NULL,  -- 'Release date: April 14, 2021'
        apprehended_placed_in_cbp_custody            INTEGER,  -- excludes Mexican children (footnote)
        in_cbp_custody                               INTEGER,
        transferred_out_of_cbp_custody               INTEGER,
        in_hhs_care                                  INTEGER,
        discharged_from_hhs_care                     INTEGER,
        apprehended_placed_in_cbp_custody_30day_avg  DOUBLE,
        in_cbp_custody_30day_avg                     DOUBLE,
        transferred_out_of_cbp_custody_30day_avg     DOUBLE,
        source_file                                  VARCHAR NOT NULL,
        source_row                                   INTEGER NOT NULL,  -- text line of the data heading
        vintage                                      DATE NOT NULL,
        PRIMARY KEY (source_file, source_row)
    )
    """,
]


def prepare_export_for_suite(frame: pd.DataFrame) -> pd.DataFrame:
    """The weekday of each report date, for the publishing-calendar expectation."""
    import pandas as pd

    frame = frame.copy()
    frame["report_weekday"] = pd.to_datetime(frame["report_date"]).dt.day_name()
    return frame


def prepare_report_for_suite(frame: pd.DataFrame) -> pd.DataFrame:
    """Days between the data day and the release, for the release-lag expectations."""
    import pandas as pd

    frame = frame.copy()
    lag = pd.to_datetime(frame["release_date"]) - pd.to_datetime(frame["report_date"])
    frame["release_lag_days"] = lag.dt.days
    return frame
