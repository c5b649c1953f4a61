"""The detection benchmark's scoring (bench/detect.py), checked by hand on small real slices,
and its labelled real breaks (bench/labels/real_breaks.csv)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import detect as bench
from returnwatch_replay import series as real


@pytest.fixture(scope="module")
def gtm() -> real.RealSeries:
    # SEGOB 3.2.4 assisted returns of Guatemalan children, Jan 2015 - Dec 2017 (36 real months;
    # no labelled break covers SEGOB's figures).
    full = next(s for s in real.segob_series() if s.name == "segob_children_returned:GTM")
    return real.RealSeries(
        full.name,
        full.source,
        "month",
        full.values["2015-01":"2017-12"],
        full.description,
        full.origin,
    )


@pytest.fixture(scope="module")
def everything() -> dict[str, real.RealSeries]:
    return {s.name: s for s in real.real_series()}


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
        differs = np.flatnonzero(
            ~((values == reference) | (np.isnan(values) & np.isnan(reference)))
        )
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
    events = [
        bench.Event(gtm.name, "spike", 17, 3.0),
        bench.Event(gtm.name, "missing", 24, 1.0, 0),
        bench.Event(gtm.name, "level_shift", 28, 2.0, 1),
    ]
    report = bench.run([gtm], methods=[_stub(x)], events=events)
    r = report["results"]["stub"]
    injected = r["injected"]
    # Detected: spike (onset 18), missing (25), shift (29): all with delay 1.
    assert injected["recall"] == 1.0 and injected["median_delay"] == 1.0
    # Attributable onsets: 18, 22 (the spike's extra one, outside 17..20), 25, 29.
    # The shift's onset at 29 is followed by the natural 32 (also on the real series: not
    # attributable). TP 3, FP 1.
    assert (injected["true_onsets"], injected["false_onsets"]) == (3, 1)
    assert injected["precision"] == 0.75
    # Natural alerts on the real series: 2 in 36 - 14 (warm-up) = 22 judged months.
    assert r["false_alerts"] == 2 and r["series_years"] == round(22 / 12, 2)
    assert r["false_alerts_per_series_year"] == round(2 / (22 / 12), 3)
    assert injected["recall_by_type"]["spike"] == 1.0
    assert injected["recall_by_type"]["drop_to_zero"] is None
    assert r["real_breaks"]["scored"] == 0 and r["real_breaks"]["recall"] is None


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
    assert r["injected"]["recall"] == 0.0 and r["injected"]["precision"] == 0.0
    assert r["injected"]["median_delay"] is None


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
    onset, _ = bench.robust_step(restated, older, "month", series=gtm.name)
    assert onset[30]
    z_onset, _ = bench.zscore_14(restated, older, "month")
    z_base, _ = bench.zscore_14(x, None, "month")
    assert not (z_onset[30] and not z_base[30])
    gone, _ = bench.inject(x, bench.Event(gtm.name, "missing", 30, 1.0, 0))
    assert bench.robust_step(gone, None, "month", series=gtm.name)[0][30]


def test_small_run_is_deterministic_and_covers_every_event_type(everything) -> None:
    chosen = [everything["cbp_uc:GUATEMALA:Title 8"], everything["hhs_uc_daily:discharged"]]
    plan = {t: 2 for t in bench.EVENT_TYPES}
    first = bench.run(chosen, per_series=plan)
    again = bench.run(chosen, per_series=plan)
    assert first["results"] == again["results"]
    assert first["events_by_type"] == {t: 4 for t in bench.EVENT_TYPES}
    for r in first["results"].values():
        assert 0 <= r["injected"]["recall"] <= 1 and r["false_alerts_per_series_year"] >= 0


# --------------------------------------------------------------------------- labels


def test_every_label_cites_a_public_primary_source_and_matches_series(everything) -> None:
    with bench.LABELS.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len({r["event_id"] for r in rows}) >= 6
    for r in rows:
        assert r["citation"] and r["basis"], r["event_id"]
        # (no local path in any file: tests/test_repository_stands_alone.py)
        assert r["url"].startswith("https://")
        assert r["expected_direction"] in {"up", "down", "none", "uncertain"}
        # The first full period starts after the measure took effect.
        assert pd.Timestamp(r["first_full_month"] + "-01") > pd.Timestamp(r["effective_date"])
        if r["first_full_day"]:
            assert r["first_full_day"] >= r["effective_date"]
        assert any(bench.fnmatch.fnmatchcase(name, r["series"]) for name in everything), r


def test_breaks_take_the_most_specific_row_and_place_the_window(everything) -> None:
    mexico = {b.event_id: b for b in bench.breaks_for(everything["cbp_uc:MEXICO:Title 8"])}
    # uc_exception_2021: the MEXICO row (uncertain) beats the '*' row (up).
    assert mexico["uc_exception_2021"].direction == "uncertain"
    assert not mexico["uc_exception_2021"].scored
    # Title 42's start: nationality series begin in Oct 2019, within the warm-up.
    assert "warm-up" in mexico["title42_start"].reason
    pjes = mexico["pjes_injunction"]
    index = everything["cbp_uc:MEXICO:Title 8"].values.index
    assert (
        pjes.scored
        and pjes.direction == "up"
        and index[pjes.position] == pd.Timestamp("2020-12-01")
    )
    total = {b.event_id: b for b in bench.breaks_for(everything["cbp_uc:ALL:all"])}
    assert total["pjes_injunction"].direction == "none"  # a reclassification: no step
    daily = bench.breaks_for(everything["hhs_uc_daily:apprehended"])
    jan_2025 = next(b for b in daily if b.event_id == "proclamation_10888")
    assert jan_2025.period == "2025-01-21" and jan_2025.scored
    # none-labels do not shield their window from false alerts; the others do.
    mask = bench.break_mask(len(index), list(mexico.values()))
    assert mask[pjes.position - 1 : pjes.position + 2].all()
    tail = next(b for b in mexico.values() if b.event_id == "title42_end")
    assert not mask[tail.position]


def test_a_break_is_caught_only_in_its_window_and_direction(everything) -> None:
    s = everything["cbp_uc:MEXICO:Title 8"]
    pjes = next(b for b in bench.breaks_for(s) if b.event_id == "pjes_injunction")
    n, t = len(s.values), pjes.position

    def scored(at: int, direction: int) -> dict:
        onset = np.zeros(n, dtype=bool)
        flag = np.zeros(n, dtype=np.int64)
        onset[at], flag[at] = True, direction
        return bench.score_breaks([pjes], (onset, flag))[0]

    assert scored(t - 1, 1)["caught"] and scored(t - 1, 1)["delay"] == -1
    assert scored(t + 1, 1)["delay"] == 1
    assert not scored(t + 2, 1)["caught"]  # two months late
    assert not scored(t, -1)["caught"]  # the wrong way


# --------------------------------------------------------------------------- ruptures, online


def test_ruptures_is_online_and_its_shortcut_changes_nothing(everything) -> None:
    s = everything["cbp_uc:HONDURAS:Title 8"]
    x = s.values.to_numpy(float)
    detect = bench.ruptures_with(bench.RUPTURES_DEFAULT_BETA)
    full_onset, full_flag = detect(x, None, "month")
    # Period t is judged on periods up to t only: the prefix gives the same answers.
    cut = 40
    _, prefix_flag = detect(x[: cut + 1], None, "month")
    assert (prefix_flag == full_flag[: cut + 1]).all()
    assert full_onset.any()
    # An injected copy computed only from the event on equals the whole computation.
    event = bench.Event(s.name, "level_shift", 50, 2.5, 1)
    shifted, _ = bench.inject(x, event)
    whole = detect(shifted, None, "month")
    short = detect(shifted, None, "month", since=50, until=x.size - 1, base=(full_onset, full_flag))
    assert (whole[1] == short[1]).all()


# --------------------------------------------------------------------------- curves, budgets


def _row(setting: str, x2: float, fa: float, real_recall: float = 0.0) -> dict:
    return {
        "setting": setting,
        "recall": x2,
        "recall_x2_shifts": x2,
        "real_break_recall": real_recall,
        "false_alerts_per_series_year": fa,
    }


def test_budgets_read_the_best_recall_within_each_budget() -> None:
    curves = {
        "a": [_row("quiet", 0.2, 0.2), _row("mid", 0.4, 0.45), _row("loud", 0.7, 1.2)],
        "b": [_row("only", 0.9, 0.6)],
    }
    at = bench.at_budgets(curves)
    assert at["a"]["0.25"]["setting"] == "quiet" and at["a"]["0.5"]["recall_x2_shifts"] == 0.4
    assert at["a"]["1"]["setting"] == "mid"  # loud is over budget
    assert at["b"]["0.25"] == {
        "recall_x2_shifts": 0.0,
        "recall": 0.0,
        "real_break_recall": None,
        "false_alerts_per_series_year": None,
        "setting": None,
    }


def test_the_rule_prefers_real_breaks_within_the_limit() -> None:
    rows = [
        _row("quiet", 0.3, 0.2, 0.5),
        _row("breaks", 0.2, 0.45, 0.8),
        _row("loud", 0.9, 0.9, 0.9),
    ]
    assert bench.evidence_choice(rows)["setting"] == "breaks"
    assert bench.evidence_choice([_row("loud", 0.9, 0.9, 0.9)]) is None


def test_main_writes_results_plot_and_ships_what_the_figures_choose(tmp_path: Path, capsys) -> None:
    out, png = tmp_path / "detection.json", tmp_path / "curves.png"
    assert bench.main(["--out", str(out), "--plot", str(png)]) == 0
    results = json.loads(out.read_text())
    assert set(results["methods"]) == {"robust_step", "zscore_14", "pct10_mean7", "ruptures_binseg"}
    assert set(results["schema"]) >= {"methods.<name>.real_breaks", "methods.<name>.budgets.<b>"}
    for figures in results["methods"].values():
        assert set(figures["budgets"]) == {"0.25", "0.5", "1"}
        assert (
            figures["real_breaks"]["scored"]
            == results["methods"]["robust_step"]["real_breaks"]["scored"]
            > 20
        )
        assert figures["false_alerts_per_series_year"] >= 0
    # Defaults follow the evidence: every metric ships the setting its figures choose.
    assert all(pick["shipped"] for pick in results["chosen_by_metric"].values())
    assert {t["target"].split(":")[0] for t in results["targets"]} >= {"real breaks", "budget 0.25"}
    printed = capsys.readouterr().out
    assert "labelled real breaks" in printed and "targets (robust_step)" in printed
    assert "operating curves" in printed and "at each false-alert budget" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    detail = json.loads((tmp_path / "detection_detail.json").read_text())
    assert detail["meta"]["events"] >= 500
    shipped = [r for r in detail["meta"]["curves"]["robust_step"] if r["setting"] == bench.SHIPPED]
    assert len(shipped) == 1


def test_each_baseline_curve_has_its_default_and_it_scores_as_the_headline(gtm) -> None:
    for family, settings in bench.CURVES.items():
        if family != "robust_step":
            assert sum("(default)" in label for label, _ in settings) == 1, family
    events = [
        bench.Event(gtm.name, "level_shift", 20, 2.5, 1),
        bench.Event(gtm.name, "spike", 26, 4.0),
    ]
    report = bench.run([gtm], events=events, with_curves=True)
    for family, rows in report["curves"].items():
        marked = [
            row for row in rows if "(default)" in row["setting"] or row["setting"] == bench.SHIPPED
        ]
        assert len(marked) == 1, family
        headline = report["results"][family]
        assert marked[0]["recall"] == headline["injected"]["recall"]
        assert (
            marked[0]["false_alerts_per_series_year"] == (headline["false_alerts_per_series_year"])
        )
