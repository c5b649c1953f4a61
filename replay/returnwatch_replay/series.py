"""The real series the anomaly benchmark and the monitor tests run on, read from real files.

What this module owns: turning the real published figures in ``include/replay/`` into

- ``cbp_uc_rows()``: CBP Southwest-border UC encounters shaped like
  ``marts.cbp_uc_encounters_monthly``;
- ``real_series()``: the monthly and daily count series the detector is benchmarked on;
- ``inm_children_return_rate()``: INM assisted returns of children / minors presented.

Nothing here invents a figure; what is derived (citizenship names, absent rows as zeros) and
the files used: docs/replay.md#real-series-for-the-benchmarks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from returnwatch import reference, settings

Frequency = Literal["month", "day"]

CBP_FILE = "cbp_encounters/iom_gdidata_irreg_usa.csv"
SEGOB_DMG_FILE = "segob_upm/iom_gdidata_irreg_mexico_dmg.csv"
SEGOB_EXP_FILE = "segob_upm/iom_gdidata_irreg_mexico_exp.csv"
HHS_FILE = "hhs_uc/healthdata_ehpz-xc9n_copy_mihirg42.csv"

UC_DEMOGRAPHICS = ("UC / Single Minors", "UAC")

# IOM ISO3 code -> citizenship as CBP prints it (upper case), from the project's countries
# table; only used to shape IOM's rows like the warehouse's, so the same rule text runs on both.
# Unknown codes keep the ISO3 code.
CBP_CITIZENSHIP: dict[str, str] = reference.cbp_citizenship_by_iso3()

HHS_FLOWS: dict[str, str] = {
    "apprehended": "Children apprehended and placed in CBP custody",
    "transferred": "Children transferred out of CBP custody",
    "discharged": "Children discharged from HHS Care",
}


@dataclass(frozen=True)
class RealSeries:
    """One real series: values indexed by period start (month start or day), oldest first."""

    name: str  # stable id, e.g. "cbp_uc:GUATEMALA:Title 8"
    source: str  # returnwatch source name: cbp_encounters, segob_upm, hhs_uc_daily
    frequency: Frequency
    values: pd.Series  # float, DatetimeIndex of period starts; NaN = no figure published
    description: str
    origin: str  # file it was read from, relative to the data folder

    @property
    def periods_per_year(self) -> float:
        if self.frequency == "month":
            return 12.0
        span_days = (self.values.index[-1] - self.values.index[0]).days or 1
        return len(self.values) / (span_days / 365.25)


# --------------------------------------------------------------------------- files


def data_root(root: Path | str | None = None) -> Path:
    """The folder holding the real files: ``root`` if given, else the repo's include/replay/."""
    return Path(root) if root is not None else settings.replay_data_dir()


def _path(root: Path | str | None, relative: str) -> Path:
    base = data_root(root)
    path = base / relative
    if not path.exists():
        raise FileNotFoundError(
            f"real data file {relative} not found under {base}: pass the folder holding it "
            "(the real published series) as root"
        )
    return path


@functools.cache
def _read_csv(path: str) -> pd.DataFrame:
    return pd.read_csv(
        path, dtype={"t": "str", "nat": "str"}, keep_default_na=False, na_values=[""]
    )


def cbp_uc_rows(root: Path | str | None = None) -> pd.DataFrame:
    """CBP encounters of unaccompanied children, shaped like ``marts.cbp_uc_encounters_monthly``.

    Columns: month (Timestamp, month start), fiscal_year, component, land_border_region,
    area_of_responsibility, citizenship (CBP spelling, mapped from ISO3; None before Oct 2019),
    nationality_iso3, title_of_authority, encounter_type, encounters (int), source_layout
    (``aor``). One row per row of IOM's file with a UC demographic (both labels); nothing
    summed, nothing dropped.
    """
    raw = _read_csv(str(_path(root, CBP_FILE)))
    uc = raw[raw["demog"].isin(UC_DEMOGRAPHICS)]
    nat = uc["nat"].astype("object").where(uc["nat"].notna(), None)
    month = pd.to_datetime(uc["t"], format="%Y-%m")
    frame = pd.DataFrame(
        {
            "month": month.to_numpy(),
            "fiscal_year": (month.dt.year + (month.dt.month >= 10)).to_numpy(),
            "component": uc["component"].to_numpy(),
            "land_border_region": "Southwest Land Border",
            "area_of_responsibility": uc["area"]
            .astype("object")
            .where(uc["area"].notna(), None)
            .to_numpy(),
            "citizenship": [None if n is None else CBP_CITIZENSHIP.get(n, n) for n in nat],
            "nationality_iso3": nat.to_numpy(),
            "title_of_authority": uc["authority"].to_numpy(),
            "encounter_type": uc["type"].to_numpy(),
            "encounters": uc["n"].astype("int64").to_numpy(),
            # IOM's copy re-lays CBP's AOR files (the mart's source_layout for such rows).
            "source_layout": "aor",
        }
    )
    return frame.sort_values(
        ["month", "component", "title_of_authority"], kind="stable"
    ).reset_index(drop=True)


def _monthly(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Sum by month, zeros for months inside [start, end] with no row."""
    months = pd.date_range(start, end, freq="MS")
    return frame.groupby("month")["n"].sum().reindex(months, fill_value=0.0).astype(float)


# --------------------------------------------------------------------------- series


def cbp_series(
    root: Path | str | None = None, *, min_median: float = 10.0, min_periods: int = 36
) -> list[RealSeries]:
    """Monthly CBP UC encounters: totals by title (Oct 2017 on) and nationality x title.

    Totals: ``cbp_uc:ALL:<title>`` with title ``Title 8``, ``Title 42`` or ``all`` (both).
    By nationality: ``cbp_uc:<CITIZENSHIP>:<Title 8|Title 42>``, over the months its title existed (Title 42: 2020-03 .. 2023-05) from Oct 2019 (first month with
    nationality). Series whose median is below ``min_median`` or with fewer than
    ``min_periods`` months are left out (a median of 2 children a month is not a series to
    alert on; the policy rules cover those).
    """
    rows = cbp_uc_rows(root).rename(columns={"encounters": "n"})
    last = rows["month"].max()
    out: list[RealSeries] = []
    titles = {"Title 8": ["Title 8"], "Title 42": ["Title 42"], "all": ["Title 8", "Title 42"]}
    spans = {
        "Title 8": (rows["month"].min(), last),
        "Title 42": (pd.Timestamp("2020-03-01"), pd.Timestamp("2023-05-01")),
        "all": (rows["month"].min(), last),
    }
    for title, members in titles.items():
        start, end = spans[title]
        values = _monthly(rows[rows["title_of_authority"].isin(members)], start, end)
        out.append(
            RealSeries(
                f"cbp_uc:ALL:{title}",
                "cbp_encounters",
                "month",
                values,
                f"CBP SW-border UC encounters, all nationalities, {title}",
                CBP_FILE,
            )
        )
    with_nat = rows[rows["citizenship"].notna()]
    first_nat = with_nat["month"].min()
    for citizenship in sorted(with_nat["citizenship"].unique()):
        of_nat = with_nat[with_nat["citizenship"] == citizenship]
        for title in ("Title 8", "Title 42"):
            members = titles[title]
            start, end = spans[title]
            values = _monthly(
                of_nat[of_nat["title_of_authority"].isin(members)], max(start, first_nat), end
            )
            out.append(
                RealSeries(
                    f"cbp_uc:{citizenship}:{title}",
                    "cbp_encounters",
                    "month",
                    values,
                    f"CBP SW-border UC encounters, {citizenship}, {title}",
                    CBP_FILE,
                )
            )
    return [s for s in out if len(s.values) >= min_periods and s.values.median() >= min_median]


def segob_series(
    root: Path | str | None = None, *, min_median: float = 10.0, min_periods: int = 36
) -> list[RealSeries]:
    """Monthly SEGOB/UPM series on children.

    - ``segob_minors_presented:<age>``: Boletín 3.1.3, minors presented to the migration
      authority (both sexes) for ages 12-17, under 12 accompanied, under 12 unaccompanied, and
      all minors (Jan 2018 - Apr 2025).
    - ``segob_children_returned:<ISO3>``: Boletín 3.2.4, "assisted return of children" by
      nationality (Jan 2015 - Apr 2025).
    """
    dmg = _read_csv(str(_path(root, SEGOB_DMG_FILE)))
    dmg = dmg.assign(month=pd.to_datetime(dmg["t"], format="%Y-%m"))
    start, end = dmg["month"].min(), dmg["month"].max()
    out: list[RealSeries] = []
    minors = dmg[dmg["age"] != "18+"]
    for age in ["12-17", "under 12, accompanied", "under 12, unaccompanied", "all minors"]:
        part = minors if age == "all minors" else minors[minors["age"] == age]
        out.append(
            RealSeries(
                f"segob_minors_presented:{age}",
                "segob_upm",
                "month",
                _monthly(part, start, end),
                f"SEGOB 3.1.3 minors presented, {age}",
                SEGOB_DMG_FILE,
            )
        )
    exp = _read_csv(str(_path(root, SEGOB_EXP_FILE)))
    exp = exp.assign(month=pd.to_datetime(exp["t"], format="%Y-%m"))
    start, end = exp["month"].min(), exp["month"].max()
    children = exp[exp["type"] == "assisted return of children"]
    for nat in sorted(children["nat"].dropna().unique()):
        out.append(
            RealSeries(
                f"segob_children_returned:{nat}",
                "segob_upm",
                "month",
                _monthly(children[children["nat"] == nat], start, end),
                f"SEGOB 3.2.4 assisted returns of children, {nat}",
                SEGOB_EXP_FILE,
            )
        )
    return [s for s in out if len(s.values) >= min_periods and s.values.median() >= min_median]


def hhs_daily(root: Path | str | None = None) -> pd.DataFrame:
    """The HHS/DHS daily file as numbers: one row per published date, oldest first."""
    raw = pd.read_csv(_path(root, HHS_FILE), thousands=",", dtype={"Date": "str"})
    raw = raw.dropna(how="all")  # the copy's trailing blank rows
    raw.index = pd.to_datetime(raw.pop("Date"), format="%B %d, %Y")
    raw.index.name = "date"
    return raw.sort_index().astype(float)


def hhs_series(root: Path | str | None = None) -> list[RealSeries]:
    """Daily HHS/DHS flows (apprehended, transferred, discharged), one value per published day.

    Unpublished days (weekends, holidays, outages) are absent, not zero: the index holds the
    published days only.
    """
    daily = hhs_daily(root)
    return [
        RealSeries(
            f"hhs_uc_daily:{name}",
            "hhs_uc_daily",
            "day",
            daily[column].rename(name),
            f"HHS/DHS daily: {column}",
            HHS_FILE,
        )
        for name, column in HHS_FLOWS.items()
    ]


def real_series(root: Path | str | None = None) -> list[RealSeries]:
    """Every benchmark series: CBP monthly, SEGOB monthly, HHS daily."""
    return [*cbp_series(root), *segob_series(root), *hhs_series(root)]


def inm_children_return_rate(root: Path | str | None = None) -> pd.Series:
    """INM assisted returns of children (3.2.4, all nationalities) / minors presented (3.1.3).

    Monthly, Jan 2018 - Apr 2025. Not the same people (events of two tables): a ratio of events
    that can exceed 1, as published.
    """
    minors = next(
        s
        for s in segob_series(root, min_median=0, min_periods=0)
        if s.name == "segob_minors_presented:all minors"
    ).values
    exp = _read_csv(str(_path(root, SEGOB_EXP_FILE)))
    exp = exp.assign(month=pd.to_datetime(exp["t"], format="%Y-%m"))
    returned = _monthly(
        exp[exp["type"] == "assisted return of children"], minors.index[0], minors.index[-1]
    )
    return (returned / minors).rename("inm_children_return_rate")


def inm_minor_returns_rows(root: Path | str | None = None) -> pd.DataFrame:
    """SEGOB rows shaped like ``marts.inm_minor_returns_monthly`` (docs/architecture.md), as far as real.

    Columns month, nationality_key (ISO3, or ``ALL``), minors_presented, minors_returned,
    minor_return_rate. Per nationality only ``minors_returned`` is published (3.2.4);
    ``minors_presented`` exists only for all nationalities together (3.1.3), so the ``ALL`` rows
    carry the three figures and the others leave minors_presented and the rate empty.
    """
    exp = _read_csv(str(_path(root, SEGOB_EXP_FILE)))
    children = exp[exp["type"] == "assisted return of children"]
    per_nat = pd.DataFrame(
        {
            "month": pd.to_datetime(children["t"], format="%Y-%m").to_numpy(),
            "nationality_key": children["nat"].to_numpy(),
            "minors_presented": float("nan"),
            "minors_returned": children["n"].astype(float).to_numpy(),
            "minor_return_rate": float("nan"),
        }
    )
    rate = inm_children_return_rate(root)
    minors = next(
        s
        for s in segob_series(root, min_median=0, min_periods=0)
        if s.name == "segob_minors_presented:all minors"
    ).values
    total = pd.DataFrame(
        {
            "month": rate.index,
            "nationality_key": "ALL",
            "minors_presented": minors.reindex(rate.index).to_numpy(),
            "minors_returned": (rate * minors.reindex(rate.index)).to_numpy(),
            "minor_return_rate": rate.to_numpy(),
        }
    )
    return (
        pd.concat([per_nat, total], ignore_index=True)
        .sort_values(["month", "nationality_key"], kind="stable")
        .reset_index(drop=True)
    )


def hhs_uc_daily_rows(root: Path | str | None = None) -> pd.DataFrame:
    """The HHS daily figures with ``marts.hhs_uc_daily``'s column names (the flows only)."""
    daily = hhs_daily(root)
    return pd.DataFrame(
        {
            "report_date": daily.index,
            "cbp_apprehended_excl_mexico": daily[HHS_FLOWS["apprehended"]].to_numpy(),
            "cbp_transferred_out": daily[HHS_FLOWS["transferred"]].to_numpy(),
            "hhs_discharged": daily[HHS_FLOWS["discharged"]].to_numpy(),
        }
    )


def monitor_frames(root: Path | str | None = None) -> dict[str, pd.DataFrame]:
    """Real rows for every warehouse table a monitor reads that real files can fill.

    ``marts.mexico_uc_return_rate_monthly`` and ``marts.cbp_segob_discrepancy_monthly`` are
    missing: their SEGOB side (Boletín section 5, Mexican minors repatriated) has no public
    copy (real-data/PROVENANCE.md), so no real frame exists for them.
    """
    return {
        "marts.cbp_uc_encounters_monthly": cbp_uc_rows(root),
        "marts.inm_minor_returns_monthly": inm_minor_returns_rows(root),
        "marts.hhs_uc_daily": hhs_uc_daily_rows(root),
    }


__all__ = [
    "CBP_CITIZENSHIP",
    "RealSeries",
    "cbp_series",
    "cbp_uc_rows",
    "data_root",
    "hhs_daily",
    "hhs_series",
    "hhs_uc_daily_rows",
    "inm_children_return_rate",
    "inm_minor_returns_rows",
    "monitor_frames",
    "real_series",
    "segob_series",
]
