"""The anomaly detector on small slices of real series (include/replay/, see PROVENANCE.md).

Where a test changes a real figure to make an event, the change is constructed and says so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from returnwatch import config, settings
from returnwatch.monitor import anomalies as an
from returnwatch.monitor.calendar import hhs_daily
from returnwatch_replay import series as real

RUN_AT = dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC)
MONTH = an.default_params("month")


def _series(name: str) -> pd.Series:
    everything = real.real_series()
    return next(s for s in everything if s.name == name).values


def _alerts(values: pd.Series, params: an.DetectorParams = MONTH) -> dict[str, str]:
    result = an.scan(values.to_numpy(), params)
    return {
        values.index[t].strftime("%Y-%m"): str(result.kind[t]) for t in np.flatnonzero(result.alert)
    }


# --------------------------------------------------------------------------- the detector


def test_2025_collapse_of_mexican_children_is_found_and_2024_is_quiet() -> None:
    # CBP UC encounters, Mexican children, Title 8, Jan 2023 - May 2025 (real).
    values = _series("cbp_uc:MEXICO:Title 8")["2023-01":"2025-05"]
    assert _alerts(values) == {"2025-02": "drop", "2025-03": "level_down"}
    found = an.findings(
        an.scan(values.to_numpy(), MONTH),
        values.index,
        metric="cbp_uc_encounters",
        series="cbp_uc_encounters:MEXICO:Title 8",
        source="cbp_encounters",
        label="CBP UC encounters",
        run_at=RUN_AT,
        params=MONTH,
    )
    first = found[0]
    assert first.period == "2025-02" and first.value == 367
    # Baseline = median of Nov 2024 - Jan 2025 (1,929, 1,603, 1,013).
    assert first.details["baseline"] == 1603
    assert first.details["baseline_periods"] == ["2024-11", "2024-12", "2025-01"]
    assert first.details["noise_periods"] == ["2024-02", "2025-01"]
    low, high = first.details["band"]
    assert low < 1603 < high and not low <= 367 <= high
    # x0.23: beyond /3 and far beyond the noise -> critical.
    assert first.details["method"] == an.METHOD and first.severity == "critical"
    assert first.details["params"]["threshold"] == MONTH.threshold
    assert first.kind == "anomaly_drop" and first.details["direction"] == "down"


def test_floors_keep_small_counts_quiet() -> None:
    # Brazilian children, Title 8 (real): a handful a month, jumping around.
    values = _series("cbp_uc:BRAZIL:Title 8")
    result = an.scan(values.to_numpy(), MONTH)
    alerted = np.flatnonzero(result.alert)
    assert len(alerted) <= 4
    for t in alerted:  # every alert moved the figure by at least the absolute floor
        assert abs(result.values[t] - result.baseline[t]) >= MONTH.absolute_floor


def test_no_judgement_before_min_history() -> None:
    values = _series("segob_children_returned:GTM")[: MONTH.min_history]
    result = an.scan(values.to_numpy(), MONTH)
    assert not result.alert.any() and (result.exceed == 0).all()


def test_one_odd_month_waits_two_in_a_row_alert() -> None:
    # SEGOB 3.2.4 assisted returns of Guatemalan children, 2015-2016 (real: one real alert,
    # the fall from 2,202 in Dec 2015 to 1,157 and 948), then a CONSTRUCTED x1.7 in Nov 2016
    # only, or in Nov and (x2) Dec 2016.
    values = _series("segob_children_returned:GTM")["2015-01":"2016-12"].copy()
    assert _alerts(values) == {"2016-02": "level_down"}
    one = values.copy()
    one["2016-11"] = one["2016-11"] * 1.7
    assert _alerts(one) == {"2016-02": "level_down"}
    two = one.copy()
    two["2016-12"] = two["2016-12"] * 2  # x1.8 of its baseline: out of band, not x2.5
    assert _alerts(two) == {"2016-02": "level_down", "2016-12": "level_up"}


def test_a_break_inside_a_rise_needs_the_ratio_alone() -> None:
    # CBP Guatemalan UC under Title 8, real: rising since Aug 2020 (the noise band is wide),
    # x2.7 of its baseline in Dec 2020 (the month after the P.J.E.S. injunction) and x4.0 in
    # Mar 2021 (after the UC exception). The band alone stays quiet there.
    values = _series("cbp_uc:GUATEMALA:Title 8")["2019-10":"2021-04"]
    assert _alerts(values) == {}
    alone = MONTH.model_copy(update={"strong_ratio_alone": True})
    found = _alerts(values, alone)
    assert found["2020-12"] == "spike" and found["2021-03"] == "spike"
    assert "2021-01" not in found and "2021-02" not in found  # x2.0 and x2.4: under x2.5


def test_the_ratio_alone_keeps_the_floors_and_the_direction() -> None:
    # CONSTRUCTED: a flat series of 6 children, then 16 (x2.4 of 6+1 -> not x2.5) and 20
    # (x3.0, but only 14 more children: above the 10-child floor) and a drop.
    flat = np.array([6.0] * 14 + [20.0, 6.0, 6.0, 6.0, 1.0])
    p = MONTH.model_copy(update={"strong_ratio_alone": True, "absolute_floor": 15.0})
    assert not an.scan(flat, p).alert.any()  # 14 more children: under the floor
    p = MONTH.model_copy(update={"strong_ratio_alone": True, "direction": "down"})
    assert not an.scan(flat, p).alert[14]  # an increase, and only drops asked for


def test_nanmedian_rows_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    block = rng.normal(size=(40, 6))
    block[rng.random(block.shape) < 0.4] = np.nan
    block[3] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(block, axis=1)
    np.testing.assert_allclose(an._nanmedian_rows(block), expected, equal_nan=True)


def test_a_drop_to_zero_alerts_at_once() -> None:
    values = _series("segob_children_returned:GTM")["2015-01":"2016-12"].copy()
    values["2016-10"] = 0.0  # CONSTRUCTED: the figure printed as 0
    assert _alerts(values)["2016-10"] == "drop_to_zero"
    found = an.evaluate_frame(
        pd.DataFrame({"month": values.index, "minors_returned": values.to_numpy()}),
        "segob_minors",
        an.MetricMonitor(
            label="x",
            source="segob_upm",
            table="marts.x",
            period_column="month",
            value_columns=["minors_returned"],
        ),
        run_at=RUN_AT,
    )
    assert [(f.period, f.severity) for f in found] == [
        ("2016-02", "warning"),
        ("2016-10", "critical"),
    ]


def test_direction_up_ignores_drops() -> None:
    values = _series("cbp_uc:MEXICO:Title 8")["2023-01":"2025-05"]
    up = MONTH.model_copy(update={"direction": "up"})
    assert _alerts(values, up) == {}


def test_title_42_is_an_annotation_not_a_silencer() -> None:
    # SEGOB minors presented, all ages under 18 (real): April 2020 collapses.
    cfg = an.load_config()
    values = _series("segob_minors_presented:all minors")["2019-01":"2020-08"]
    found = an.findings(
        an.scan(values.to_numpy(), MONTH),
        values.index,
        metric="m",
        series="m",
        source="segob_upm",
        label="SEGOB minors",
        run_at=RUN_AT,
        params=MONTH,
        regimes=cfg.regimes,
    )
    april = next(f for f in found if f.period == "2020-04")
    assert april.severity == "critical"
    note = april.details["regimes"][0]
    assert note["regime"] == "title_42" and note["in_force"]
    assert note["changed"] == ["started 2020-03-21"]


def test_daily_flows_use_publishing_days() -> None:
    # HHS discharges (real), Oct 2024 - Mar 2025: only the 2025 fall alerts, all downward.
    flows = real.hhs_uc_daily_rows()
    part = flows[(flows["report_date"] >= "2024-10-01") & (flows["report_date"] <= "2025-03-31")]
    monitor = an.load_config().metrics["hhs_uc_daily_flows"]
    found = an.evaluate_frame(
        part, "hhs_uc_daily_flows", monitor, run_at=RUN_AT, params=an.load_config().params(monitor)
    )
    discharged = [f for f in found if f.series.endswith("hhs_discharged")]
    assert discharged and all(f.period >= "2025-01" for f in discharged)
    assert all(f.details["direction"] == "down" for f in discharged)


def test_a_rate_is_judged_on_its_own_scale() -> None:
    # INM returns of children / minors presented (real), 2019-2020: April 2020 (1.87 against
    # ~0.8) is out of band; the rate monitor's floors are in rate units.
    cfg = an.load_config()
    rate = real.inm_children_return_rate()["2019-01":"2020-06"]
    monitor = cfg.metrics["inm_children_return_rate"]
    frame = pd.DataFrame(
        {"month": rate.index, "nationality_key": "ALL", "minor_return_rate": rate.to_numpy()}
    )
    found = an.evaluate_frame(
        frame, "inm_children_return_rate", monitor, run_at=RUN_AT, params=cfg.params(monitor)
    )
    assert [f.period for f in found] == ["2020-04"]
    assert found[0].details["params"]["transform"] == "identity"
    assert found[0].details["change"].startswith("+1.0")


def test_monitors_without_real_figures_run_on_their_columns() -> None:
    # No public copy of SEGOB section 5 exists, so the Mexican UC return rate and the
    # CBP-SEGOB gap have no real series. CONSTRUCTED frames with the marts' columns check the
    # wiring and the floors only: a steady rate, then a jump of 0.5.
    cfg = an.load_config()
    months = pd.date_range("2022-01-01", periods=18, freq="MS")
    steady = 0.60 + 0.01 * (np.arange(18) % 3)
    for metric, column in (
        ("mexico_uc_return_rate", "min_return_rate"),
        ("cbp_segob_gap", "pct_difference"),
    ):
        monitor = cfg.metrics[metric]
        values = steady.copy()
        values[-2:] += 0.5
        frame = pd.DataFrame(
            {"month": months, column: values, "comparison": "unaccompanied_minors"}
        )
        found = an.evaluate_frame(frame, metric, monitor, run_at=RUN_AT, params=cfg.params(monitor))
        assert [f.period for f in found] == ["2023-05", "2023-06"], metric


# --------------------------------------------------------------------------- absence, vintages


def test_missing_month_is_found_by_absence() -> None:
    values = _series("cbp_uc:GUATEMALA:Title 8")["2023-01":"2023-12"]
    gone = values.drop(pd.Timestamp("2023-06-01"))
    assert an.missing_periods(gone) == [pd.Timestamp("2023-06-01")]
    assert an.missing_periods(values) == []


def test_missing_days_follow_the_publishing_calendar() -> None:
    # The real June 2025 outage: no figures for 11, 12, 15 and 16 June (PROVENANCE.md).
    days = real.hhs_daily().index
    window = days[(days >= "2025-06-08") & (days <= "2025-06-19")]
    expected = hhs_daily().periods(dt.date(2025, 6, 8), dt.date(2025, 6, 19))
    missing = an.missing_periods(window, expected, frequency="day")
    assert [d.date().isoformat() for d in missing] == [
        "2025-06-11",
        "2025-06-12",
        "2025-06-15",
        "2025-06-16",
    ]
    with pytest.raises(ValueError):
        an.missing_periods(window, frequency="day")


def test_routine_revisions_stay_under_the_tolerance() -> None:
    # USBP SW-border UC, Oct 2020 - Jan 2021, in two real vintages (real-data/PROVENANCE.md):
    # a March 2021 scrape and the June 2025 CBP file. The June 2025 side is IOM's file.
    months = pd.date_range("2020-10-01", periods=4, freq="MS")
    march_2021 = pd.Series([4686.0, 4471.0, 4855.0, 5707.0], index=months)
    rows = real.cbp_uc_rows()
    usbp = rows[rows["component"] == "U.S. Border Patrol"].groupby("month")["encounters"].sum()
    june_2025 = usbp.reindex(months).astype(float)
    assert june_2025.tolist() == [4687.0, 4475.0, 4852.0, 5688.0]
    assert an.detect_restatements(march_2021, june_2025).empty
    strict = an.detect_restatements(march_2021, june_2025, tolerance=0.001)
    assert strict["period"].tolist() == [pd.Timestamp("2021-01-01")]
    assert strict.loc[0, "change"] == -19
    # CONSTRUCTED: a figure withdrawn, and a restatement of 10%.
    later = june_2025.copy()
    later.iloc[0] = np.nan
    later.iloc[1] = round(later.iloc[1] * 1.10)
    found = an.detect_restatements(june_2025, later)
    assert found["kind"].tolist() == ["withdrawn", "restated"]
    findings = an.restatement_findings(
        found,
        metric="m",
        series="m",
        source="cbp_encounters",
        label="USBP UC",
        run_at=RUN_AT,
        tolerance=0.02,
    )
    assert findings[1].details["relative_change"] == pytest.approx(0.1, abs=0.001)


# --------------------------------------------------------------------------- config, DuckDB


def test_config_sections_parse() -> None:
    cfg = an.load_config()
    assert set(cfg.metrics) == {
        "mexico_uc_return_rate",
        "cbp_uc_encounters",
        "segob_minors",
        "inm_children_return_rate",
        "hhs_uc_daily_flows",
        "cbp_segob_gap",
    }
    # The count metrics carry the setting make bench-detect chose for them (monitors.yaml
    # says why); everything else is the frequency's default.
    assert cfg.params("cbp_uc_encounters") == an.default_params("month").model_copy(
        update={"strong_ratio_alone": True}
    )
    assert cfg.params("segob_minors") == an.default_params("month").model_copy(
        update={"threshold": 4.5, "strong_ratio": 3.0}
    )
    assert cfg.params("hhs_uc_daily_flows") == an.default_params("day").model_copy(
        update={"threshold": 6.0, "strong_ratio": 5.0}
    )
    assert cfg.regimes["title_42"].end == dt.date(2023, 5, 11)


def test_a_bad_override_names_the_metric(tmp_path: Path) -> None:
    text = (settings.config_dir() / "monitors.yaml").read_text()
    (tmp_path / "monitors.yaml").write_text(
        text.replace("        absolute_floor: 0.10\n", "        absolute_flor: 0.10\n", 1)
    )
    with pytest.raises(config.ConfigError, match="mexico_uc_return_rate"):
        an.load_config(tmp_path)


def test_evaluate_metric_reads_duckdb_like_a_frame() -> None:
    cfg = an.load_config()
    rows = real.cbp_uc_rows()
    rows = rows[(rows["month"] >= "2023-01-01") & rows["citizenship"].isin(["MEXICO", "GUATEMALA"])]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.register("rows_df", rows)
    con.execute("CREATE TABLE marts.cbp_uc_encounters_monthly AS SELECT * FROM rows_df")
    from_db = an.evaluate_metric(con, "cbp_uc_encounters", run_at=RUN_AT, config=cfg)
    from_frame = an.evaluate_frame(
        rows,
        "cbp_uc_encounters",
        cfg.metrics["cbp_uc_encounters"],
        run_at=RUN_AT,
        params=cfg.params("cbp_uc_encounters"),
        regimes=cfg.regimes,
    )
    assert [f.as_dict() for f in from_db] == [f.as_dict() for f in from_frame]
    assert {f.series for f in from_db} >= {"cbp_uc_encounters:encounters:MEXICO:Title 8"}
    recent = an.evaluate_metric(
        con, "cbp_uc_encounters", run_at=RUN_AT, config=cfg, since="2025-03-01"
    )
    assert recent and all(f.period >= "2025-03" for f in recent)
