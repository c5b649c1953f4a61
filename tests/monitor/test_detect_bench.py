"""The detection benchmark's scoring, checked by hand on a small real slice (bench/detect.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import detect as bench
from returnwatch_replay import series as real


@pytest.fixture(scope="module")
def gtm() -> real.RealSeries:
    # SEGOB 3.2.4 assisted returns of Guatemalan children, Jan 2015 - Dec 2017 (36 real months,
    # none inside the documented real events).
    full = next(s for s in real.segob_series() if s.name == "segob_children_returned:GTM")
    return real.RealSeries(full.name, full.source, "month", full.values["2015-01":"2017-12"],
                           full.description, full.origin)


def _stub(reference: np.ndarray) -> bench.Method:
    """A detector whose alerts are known in advance.

    - Always (on the real series too): onsets at positions 20 and 32 -> 2 natural alerts.
    - One period after the first position that differs from the real series: an onset (the
      injection is "detected" with delay 1).
    - For a single changed period that grew (a spike): one more onset 5 periods after it,
      outside the K=3 window (a false alert caused by the injection).
    """
    def detect(values: np.ndarray, old: np.ndarray | None, frequency: str):
        n = len(values)
        flag = np.zeros(n, dtype=np.int8)
        flag[[20, 32]] = 1
        differs = np.flatnonzero(~((values == reference) | (np.isnan(values)
                                                           & np.isnan(reference))))
        if len(differs):
            first = differs[0]
            flag[first + 1] = 1
            if len(differs) == 1 and values[first] > reference[first]:
                flag[first + 5] = 1
        previous = np.concatenate([[0], flag[:-1]])
        return (flag != 0) & (previous != flag), flag
    return bench.Method("stub", detect)


def test_scoring_by_hand(gtm: real.RealSeries) -> None:
    x = gtm.values.to_numpy(float)
    events = [bench.Event(gtm.name, "spike", 17, 3.0),
              bench.Event(gtm.name, "missing", 24, 1.0, 0),
              bench.Event(gtm.name, "level_shift", 28, 2.0, 1)]
    report = bench.run([gtm], methods=[_stub(x)], events=events)
    r = report["results"]["stub"]
    # Detected: spike (onset 18), missing (25), shift (29): all with delay 1.
    assert r["recall"] == 1.0 and r["median_delay"] == 1.0
    # Attributable onsets: 18, 22 (the spike's extra one, outside 17..20), 25, 29.
    # The shift's onset at 29 is followed by the natural 32 (also on the real series: not
    # attributable). TP 3, FP 1.
    assert (r["true_onsets"], r["false_onsets"]) == (3, 1)
    assert r["precision"] == 0.75
    # Natural alerts on the real series: 2 in 36 - 14 (warm-up) = 22 judged months.
    assert r["false_alerts"] == 2 and r["series_years"] == round(22 / 12, 2)
    assert r["false_alerts_per_series_year"] == round(2 / (22 / 12), 3)
    # Counting the natural alerts in each of the 3 copies too: 3 / (3 + 1 + 3 * 2).
    assert r["precision_all"] == 0.3
    assert r["recall_by_type"]["spike"] == 1.0 and r["recall_by_type"]["drop_to_zero"] is None


def test_an_alert_too_late_is_a_miss(gtm: real.RealSeries) -> None:
    x = gtm.values.to_numpy(float)

    def late(values, old, frequency):
        flag = np.zeros(len(values), dtype=np.int8)
        differs = np.flatnonzero(values != x)
        if len(differs):
            flag[differs[0] + bench.K["month"] + 1] = -1
        return flag != 0, flag

    events = [bench.Event(gtm.name, "level_shift", 20, 2.5, -1)]
    r = bench.run([gtm], methods=[bench.Method("late", late)], events=events)["results"]["late"]
    assert r["recall"] == 0.0 and r["precision"] == 0.0 and r["median_delay"] is None


def test_inject_on_real_values(gtm: real.RealSeries) -> None:
    x = gtm.values.to_numpy(float)
    shifted, old = bench.inject(x, bench.Event(gtm.name, "level_shift", 30, 2.0, -1))
    assert old is None and (shifted[:30] == x[:30]).all()
    assert (shifted[30:] == np.round(x[30:] / 2)).all()
    spiked, _ = bench.inject(x, bench.Event(gtm.name, "spike", 30, 3.0))
    assert spiked[30] == x[30] * 3 and (np.delete(spiked, 30) == np.delete(x, 30)).all()
    zero, _ = bench.inject(x, bench.Event(gtm.name, "drop_to_zero", 30, 2.0, -1))
    assert (zero[30:32] == 0).all() and zero[32] == x[32]
    gone, _ = bench.inject(x, bench.Event(gtm.name, "missing", 30, 1.0, 0))
    assert np.isnan(gone[30]) and np.isnan(gone).sum() == 1
    restated, older = bench.inject(x, bench.Event(gtm.name, "restatement", 30, 0.10, 1))
    assert (older == x).all() and restated[30] == round(x[30] * 1.1)


def test_our_method_finds_a_restatement_and_a_gap_the_baselines_cannot(gtm) -> None:
    x = gtm.values.to_numpy(float)
    restated, older = bench.inject(x, bench.Event(gtm.name, "restatement", 30, 0.10, 1))
    onset, _ = bench.robust_step(restated, older, "month")
    assert onset[30]
    z_onset, _ = bench.zscore_14(restated, older, "month")
    z_base, _ = bench.zscore_14(x, None, "month")
    assert not (z_onset[30] and not z_base[30])
    gone, _ = bench.inject(x, bench.Event(gtm.name, "missing", 30, 1.0, 0))
    assert bench.robust_step(gone, None, "month")[0][30]


def test_small_run_is_deterministic_and_covers_every_event_type() -> None:
    chosen = [s for s in real.real_series()
              if s.name in ("cbp_uc:GUATEMALA:Title 8", "hhs_uc_daily:discharged")]
    plan = {t: 2 for t in bench.EVENT_TYPES}
    first = bench.run(chosen, per_series=plan)
    again = bench.run(chosen, per_series=plan)
    assert first["results"] == again["results"]
    assert first["events_by_type"] == {t: 4 for t in bench.EVENT_TYPES}
    for r in first["results"].values():
        assert 0 <= r["recall"] <= 1 and r["false_alerts_per_series_year"] >= 0


def test_main_writes_the_results_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "detection.json"
    assert bench.main(["--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results) == {"robust_step", "zscore_14", "pct10_mean7"}
    for figures in results.values():
        assert set(figures) == {"recall", "precision", "median_delay",
                                "false_alerts_per_series_year"}
    printed = capsys.readouterr().out
    assert "recall by type" in printed and "targets (robust_step)" in printed
    assert "operating curves" in printed and "turned to our recall" in printed
    detail = json.loads((tmp_path / "detection_detail.json").read_text())
    assert detail["meta"]["events"] >= 500
    assert detail["meta"]["matched_recall"]["baseline"] == "zscore_14"
    assert {row["setting"] for row in detail["meta"]["curves"]["robust_step"]} >= {
        "threshold 3.5, x2.5 at once (default)"}


def test_each_curve_has_its_default_and_the_default_scores_as_the_headline(gtm) -> None:
    for family, settings in bench.CURVES.items():
        assert sum("(default)" in label for label, _ in settings) == 1, family
    events = [bench.Event(gtm.name, "level_shift", 20, 2.5, 1),
              bench.Event(gtm.name, "spike", 26, 4.0)]
    report = bench.run([gtm], events=events, with_curves=True)
    for family, rows in report["curves"].items():
        default = next(row for row in rows if "(default)" in row["setting"])
        headline = report["results"][family]
        assert default["recall"] == headline["recall"]
        assert default["false_alerts_per_series_year"] == (
            headline["false_alerts_per_series_year"])


def _curve(*points: tuple[str, float, float, float]) -> list[dict]:
    return [{"setting": s, "recall_x2_shifts": x2, "recall_time_series_events": ts,
             "false_alerts_per_series_year": fa} for s, x2, ts, fa in points]


def test_matched_recall_takes_the_quietest_setting_that_reaches_ours() -> None:
    ours = {"recall_by_type": {"level_shift_x2_or_more": 0.5},
            "recall_time_series_events": 0.6, "false_alerts_per_series_year": 0.5}
    curves = {"zscore_14": _curve(("3 SD", 0.45, 0.45, 0.7),
                                  ("2 SD", 0.55, 0.55, 2.0),    # x2 enough, time-series not
                                  ("1.5 SD", 0.52, 0.61, 3.0),
                                  ("1 SD", 0.60, 0.70, 6.0))}
    matched = bench.matched_recall(curves, ours)
    assert matched["baseline_setting"] == "1.5 SD"
    assert matched["ratio"] == 6.0
    unreachable = bench.matched_recall({"zscore_14": curves["zscore_14"][:2]}, ours)
    assert unreachable["ratio"] is None and unreachable["baseline_max_recall_x2"] == 0.55
