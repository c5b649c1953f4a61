"""Anomalies: a figure that breaks from its own recent history, judged robustly.

What this module owns:

- the ``anomalies`` section of ``config/monitors.yaml`` (``load_config``; its models,
  ``AnomaliesConfig``, ``DetectorParams``, ``MetricMonitor``, ``Regime``, are in
  ``monitor.monitors_config``);
- ``scan()``: the "robust_step" detector, pure and vectorised over one series;
- ``missing_periods()`` and ``detect_restatements()``;
- ``findings()`` / ``evaluate_frame()`` / ``evaluate_metric()``: ``Finding`` records from a
  metric's rows read from DuckDB.

The method, why it was chosen and how its settings were measured (``make bench-detect``):
docs/internals.md#monitor-anomalies.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from returnwatch.monitor import monitors_config
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.monitors_config import (
    AnomaliesConfig,
    DetectorParams,
    Frequency,
    MetricMonitor,
    Regime,
    default_params,
)

if TYPE_CHECKING:
    import duckdb

MONITOR = "anomaly"
METHOD = "robust_step"


# --------------------------------------------------------------------------- config


# The models of this section (``AnomaliesConfig``, ``DetectorParams``, ``MetricMonitor``,
# ``Regime``) are part of the one model of the file, in ``monitor.monitors_config``.


def load_config(directory: Path | str | None = None) -> AnomaliesConfig:
    """The ``anomalies`` section of config/monitors.yaml (validated, cached per folder)."""
    return monitors_config.load(directory).anomalies


# --------------------------------------------------------------------------- detector


@dataclass
class Scan:
    """The detector's view of every period of one series (all arrays of the series' length).

    ``exceed`` is +1 / -1 / 0 (outside the band, above or below); ``alert`` is True where the
    persistence rule (or a strong change) makes the exceedance an alert; ``onset`` where an
    alert starts (the period before did not alert in that direction). ``kind`` names it:
    ``spike`` (at once, up), ``drop`` (at once, down), ``drop_to_zero``, ``level_up``,
    ``level_down`` (persistent), or "".
    """

    values: np.ndarray
    baseline: np.ndarray  # expected value (original units)
    low: np.ndarray  # band, original units, floors included
    high: np.ndarray
    score: np.ndarray  # robust score on the transformed scale
    scale: np.ndarray  # noise used (transformed scale)
    history: np.ndarray  # published periods before this one
    exceed: np.ndarray
    alert: np.ndarray
    onset: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


def _trailing(a: np.ndarray, width: int) -> np.ndarray:
    """Rows t = a[t-width .. t-1] (the ``width`` periods before t), NaN-padded."""
    padded = np.concatenate([np.full(width, np.nan), a])
    return np.lib.stride_tricks.sliding_window_view(padded, width)[: len(a)]


def _nanmedian_rows(block: np.ndarray) -> np.ndarray:
    """``np.nanmedian(block, axis=1)`` (NaN for an all-NaN row), by one sort: NaNs sort last,
    so each row's median sits at its count of numbers. numpy's nanmedian goes through masked
    arrays and was most of the detector's time."""
    if block.size == 0:
        return np.full(block.shape[0], np.nan)
    ordered = np.sort(block, axis=1)
    count = (~np.isnan(block)).sum(axis=1)
    rows = np.arange(block.shape[0])
    low = ordered[rows, np.maximum((count - 1) // 2, 0)]
    high = ordered[rows, np.maximum(count // 2, 0)]
    return np.where(count > 0, (low + high) / 2.0, np.nan)


def scan(
    values: Sequence[float] | np.ndarray | pd.Series, params: DetectorParams | None = None
) -> Scan:
    """Judge every period of one series against its own past. Pure and vectorised.

    ``values`` is the series in period order; NaN means "no figure published for this period"
    (it is neither judged nor used). Each period is compared only with periods before it, so
    the result for period t is what a monitor running right after t was published would say.
    """
    p = params or DetectorParams()
    x = np.asarray(values, dtype=float)
    n = len(x)
    valid = ~np.isnan(x)
    if p.transform == "log":
        y = np.log1p(np.clip(x, 0, None))
    else:
        y = x.copy()
    history = np.concatenate([[0], np.cumsum(valid)[:-1]]) if n else np.zeros(0)

    level = _nanmedian_rows(_trailing(y, p.level_periods))
    diffs = np.full(n, np.nan)
    if n > 1:
        diffs[1:] = y[1:] - y[:-1]  # NaN next to a missing period
    window = _trailing(diffs, p.noise_periods)
    centre = _nanmedian_rows(window)
    mad = _nanmedian_rows(np.abs(window - centre[:, None]))
    # Noise of one value around a median-of-L baseline: one-step change noise / sqrt(2),
    # inflated by the baseline median's own error (variance ~ pi/(2L) of one value's).
    inflate = math.sqrt(1.0 + math.pi / (2.0 * p.level_periods))
    scale = 1.4826 * mad / math.sqrt(2.0) * inflate
    if p.transform == "log":
        expected = np.expm1(level)
        poisson = np.sqrt(np.clip(expected, 0, None)) / (np.clip(expected, 0, None) + 1.0)
        scale = np.fmax(scale, poisson * inflate)
    else:
        expected = level
    scale = np.fmax(scale, p.min_scale)

    with np.errstate(invalid="ignore", divide="ignore"):
        score = (y - level) / scale
        if p.transform == "log":
            stat_high = np.expm1(level + p.threshold * scale)
            stat_low = np.expm1(level - p.threshold * scale)
            rel_high = expected * (1 + p.relative_floor)
            rel_low = expected / (1 + p.relative_floor)
        else:
            stat_high = level + p.threshold * scale
            stat_low = level - p.threshold * scale
            rel_high = expected + p.relative_floor * np.abs(expected)
            rel_low = expected - p.relative_floor * np.abs(expected)
        high = np.fmax(np.fmax(stat_high, rel_high), expected + p.absolute_floor)
        low = np.fmin(np.fmin(stat_low, rel_low), expected - p.absolute_floor)
        if p.transform == "log":
            low = np.fmax(low, 0.0)  # a count's band stops at 0 (a 0 is judged on its own)

    judged = valid & (history >= p.min_history) & ~np.isnan(level) & ~np.isnan(scale)
    up = judged & (x > high)
    down = judged & (x < low)
    if p.direction == "up":
        down[:] = False
    elif p.direction == "down":
        up[:] = False
    exceed = up.astype(np.int8) - down.astype(np.int8)

    zero = judged & (x == 0) & (expected >= p.zero_floor) & (p.direction != "up")
    if p.transform == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = (x + 1.0) / (expected + 1.0)
        strong_up = up & ((ratio >= p.strong_ratio) | (score >= p.strong_threshold))
        strong_down = down & ((ratio <= 1 / p.strong_ratio) | (score <= -p.strong_threshold))
        if p.strong_ratio_alone:
            # A break often lands in a period already moving (a surge, a trough): the noise
            # band is wide then, but a change of x strong_ratio is news whatever the noise.
            big = judged & (np.abs(x - expected) >= p.absolute_floor)
            strong_up |= big & (ratio >= p.strong_ratio) & (p.direction != "down")
            strong_down |= big & (ratio <= 1 / p.strong_ratio) & (p.direction != "up")
            up |= strong_up
            down |= strong_down
            exceed = up.astype(np.int8) - down.astype(np.int8)
    else:
        strong_up = up & (score >= p.strong_threshold)
        strong_down = down & (score <= -p.strong_threshold)
    zero_alert = zero & (down | (x < expected))  # a 0 below baseline >= zero_floor

    need, of = p.persistence
    count_up = _trailing_sum(up, of)
    count_down = _trailing_sum(down, of)
    level_up = up & (count_up >= need)
    level_down = down & (count_down >= need)

    kind = np.full(n, "", dtype=object)
    kind[level_up] = "level_up"
    kind[level_down] = "level_down"
    kind[strong_up] = "spike"
    kind[strong_down] = "drop"
    kind[zero_alert] = "drop_to_zero"
    alert = kind != ""
    direction = np.where(kind == "", 0, np.where(np.isin(kind, ["spike", "level_up"]), 1, -1))
    previous = np.concatenate([[0], direction[:-1]]) if n else direction
    onset = alert & (previous != direction)
    return Scan(
        values=x,
        baseline=expected,
        low=low,
        high=high,
        score=score,
        scale=scale,
        history=history,
        exceed=np.where(zero_alert, -1, exceed).astype(np.int8),
        alert=alert,
        onset=onset,
        kind=kind,
    )


def _trailing_sum(flags: np.ndarray, width: int) -> np.ndarray:
    """For each t, how many of flags[t-width+1 .. t] are set (the current period included)."""
    c = np.concatenate([[0], np.cumsum(flags.astype(np.int64))])
    idx = np.arange(1, len(flags) + 1)
    return c[idx] - c[np.maximum(idx - width, 0)]


# --------------------------------------------------------------------------- other detectors


def expected_months(first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """Every month start from ``first`` to ``last`` (a monthly publisher skips none)."""
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    # The unit and zone are part of the key: equal Timestamps of another unit or zone give
    # another index (its dtype), and callers reindex on it.
    return _month_range(first, last, _kind(first), _kind(last))


def _kind(ts: pd.Timestamp) -> tuple[str | None, str]:
    return getattr(ts, "unit", None), str(getattr(ts, "tz", None))


@functools.lru_cache(maxsize=1024)
def _month_range(
    first: pd.Timestamp,
    last: pd.Timestamp,
    first_kind: tuple[str | None, str],
    last_kind: tuple[str | None, str],
) -> pd.DatetimeIndex:
    """``expected_months``, cached: a monitor run asks for the same few spans thousands of
    times (the series of a table share them), and building the range cost more than placing
    a series on it. A DatetimeIndex is immutable, so sharing one is safe."""
    return pd.date_range(
        first.to_period("M").to_timestamp(), last.to_period("M").to_timestamp(), freq="MS"
    )


def missing_periods(
    present: Iterable[Any], expected: Iterable[Any] | None = None, *, frequency: Frequency = "month"
) -> list[pd.Timestamp]:
    """Periods that should be there and are not: a missing period is found by its absence.

    ``expected`` defaults, for monthly series, to every month between the first and the last
    present one; daily series must pass their publishing calendar's periods
    (``monitor.calendar.DailyCalendar.periods``), because weekends and holidays are not gaps.
    A period with a NaN value counts as absent.
    """
    if isinstance(present, pd.Series):
        present = present.dropna().index
    have = pd.DatetimeIndex(pd.to_datetime(list(present))).normalize()
    if len(have) == 0:
        return []
    if expected is None:
        if frequency != "month":
            raise ValueError("daily series need their expected periods (publishing calendar)")
        expected_index = expected_months(have.min(), have.max())
    else:
        expected_index = pd.DatetimeIndex(pd.to_datetime(list(expected))).normalize()
    return list(expected_index.difference(have))


def detect_restatements(
    old: pd.Series, new: pd.Series, tolerance: float = 0.02, absolute_floor: float = 2.0
) -> pd.DataFrame:
    """Periods whose figure changed between two vintages beyond a tolerance.

    A change counts when it is at least ``tolerance`` of the old figure AND at least
    ``absolute_floor`` (CBP's routine revisions are well under 1%: Jan 2021 UC 5,707 in March
    2021, 5,688 in June 2025; a 2% tolerance keeps those quiet). A figure present in one vintage
    and absent from the other is reported too (``withdrawn`` / ``added``).
    Returns columns period, old, new, change, relative_change, kind.
    """
    both = pd.concat({"old": old, "new": new}, axis=1)
    o, nw = both["old"].to_numpy(float), both["new"].to_numpy(float)
    change = nw - o
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(o != 0, change / np.abs(o), np.inf * np.sign(change))
    changed = (np.abs(change) >= absolute_floor) & (np.abs(relative) >= tolerance)
    withdrawn = ~np.isnan(o) & np.isnan(nw)
    added = np.isnan(o) & ~np.isnan(nw)
    mask = changed | withdrawn | added
    kind = np.where(withdrawn, "withdrawn", np.where(added, "added", "restated"))
    return pd.DataFrame(
        {
            "period": both.index[mask],
            "old": o[mask],
            "new": nw[mask],
            "change": change[mask],
            "relative_change": relative[mask],
            "kind": kind[mask],
        }
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- findings


def _iso(period: Any, frequency: Frequency) -> str:
    ts = pd.Timestamp(period)
    return ts.strftime("%Y-%m") if frequency == "month" else ts.date().isoformat()


def regime_notes(
    period: Any, regimes: dict[str, Regime], *, frequency: Frequency, within_periods: int
) -> list[dict[str, Any]]:
    """Known regime changes in force during ``period`` or started/ended shortly before it."""
    ts = pd.Timestamp(period)
    if frequency == "month":
        start, end = ts, ts + pd.offsets.MonthEnd(0)
        lookback = ts - pd.DateOffset(months=within_periods)
    else:
        start = end = ts
        lookback = ts - pd.Timedelta(days=within_periods * 7 // 5 + 1)  # publishing days
    notes = []
    for name, regime in regimes.items():
        r_start = pd.Timestamp(regime.start)
        r_end = pd.Timestamp(regime.end) if regime.end else None
        in_force = r_start <= end and (r_end is None or r_end >= start)
        changes = [
            (label, day)
            for label, day in (("started", r_start), ("ended", r_end))
            if day is not None and lookback <= day <= end
        ]
        if in_force or changes:
            notes.append(
                {
                    "regime": name,
                    "label": regime.label,
                    "in_force": bool(in_force),
                    "changed": [f"{label} {day.date().isoformat()}" for label, day in changes],
                    "source": regime.source,
                }
            )
    return notes


def findings(
    result: Scan,
    index: Sequence[Any],
    *,
    metric: str,
    series: str,
    source: str,
    label: str,
    run_at: dt.datetime,
    params: DetectorParams,
    frequency: Frequency = "month",
    regimes: dict[str, Regime] | None = None,
    annotate_within_periods: int = 3,
    since: Any = None,
    onsets_only: bool = False,
) -> list[Finding]:
    """One ``Finding`` per alerting period (or per onset) of a scan, from ``since`` on.

    ``details`` holds the value, the baseline, the band, the score and noise, the method and
    its parameters, and the periods the baseline and the noise were computed from.
    """
    # A series' own DatetimeIndex is used as it is (periods are only compared and formatted
    # here): converting it element by element cost more than the scan itself.
    idx = (
        index
        if isinstance(index, pd.DatetimeIndex)
        else pd.DatetimeIndex(pd.to_datetime(list(index)))
    )
    mask = result.onset if onsets_only else result.alert
    if since is not None:
        mask = mask & (idx >= pd.Timestamp(since))
    out: list[Finding] = []
    published = np.flatnonzero(~np.isnan(result.values))
    for t in np.flatnonzero(mask):
        before = published[published < t]
        level_used = before[-params.level_periods :]
        noise_used = np.arange(max(0, int(t) - params.noise_periods), t)
        value, base = float(result.values[t]), float(result.baseline[t])
        kind = str(result.kind[t])
        ratio = (value + 1) / (base + 1) if params.transform == "log" else None
        severity = _severity(kind, float(result.score[t]), ratio, params)
        change = f"x{ratio:.2f}" if ratio is not None else f"{value - base:+.3g}"
        period = _iso(idx[t], frequency)
        band = [round(float(result.low[t]), 4), round(float(result.high[t]), 4)]
        details = {
            "metric": metric,
            "label": label,
            "method": METHOD,
            "value": value,
            "baseline": round(base, 4),
            "band": band,
            "score": round(float(result.score[t]), 2),
            "noise": round(float(result.scale[t]), 4),
            "change": change,
            "direction": "up" if kind in ("spike", "level_up") else "down",
            "onset": bool(result.onset[t]),
            "baseline_periods": [_iso(idx[i], frequency) for i in level_used],
            "noise_periods": (
                [_iso(idx[noise_used[0]], frequency), _iso(idx[noise_used[-1]], frequency)]
                if len(noise_used)
                else []
            ),
            "history_periods": int(result.history[t]),
            "params": params.describe(),
            "regimes": regime_notes(
                idx[t], regimes or {}, frequency=frequency, within_periods=annotate_within_periods
            ),
        }
        out.append(
            Finding(
                monitor=MONITOR,
                kind=f"anomaly_{kind}",
                source=source,
                series=series,
                severity=severity,  # type: ignore[arg-type]
                message=(
                    f"{label} ({series}) {period}: {value:,.4g} against a baseline of "
                    f"{base:,.4g} ({change}; band {band[0]:,.4g} .. {band[1]:,.4g}), {kind}"
                ),
                run_at=run_at,
                period=period,
                value=value,
                expected=f"{band[0]:.4g} .. {band[1]:.4g}",
                details=details,
            )
        )
    return out


def _severity(kind: str, score: float, ratio: float | None, params: DetectorParams) -> str:
    """critical: a drop to zero, or a change both far beyond the noise and x3 (or /3) or more
    (rates: far beyond the noise); warning: every other alert."""
    if kind == "drop_to_zero":
        return "critical"
    far = abs(score) >= params.strong_threshold
    if ratio is None:
        return "critical" if far else "warning"
    return "critical" if far and (ratio >= 3 or ratio <= 1 / 3) else "warning"


def missing_findings(
    missing: Iterable[Any],
    *,
    metric: str,
    series: str,
    source: str,
    label: str,
    run_at: dt.datetime,
    frequency: Frequency = "month",
) -> list[Finding]:
    """One warning per period absent from a series that has periods after it."""
    return [
        Finding(
            monitor=MONITOR,
            kind="missing_period",
            source=source,
            series=series,
            severity="warning",
            message=f"{label} ({series}): no figure for {_iso(p, frequency)}, "
            "though later periods are published",
            run_at=run_at,
            period=_iso(p, frequency),
            value=None,
            expected="a figure",
            details={"metric": metric, "label": label, "method": "absence"},
        )
        for p in missing
    ]


def restatement_findings(
    restated: pd.DataFrame,
    *,
    metric: str,
    series: str,
    source: str,
    label: str,
    run_at: dt.datetime,
    tolerance: float,
    frequency: Frequency = "month",
) -> list[Finding]:
    """One warning per restated figure (``detect_restatements`` output)."""
    out = []
    for row in restated.itertuples(index=False):
        period = _iso(row.period, frequency)
        out.append(
            Finding(
                monitor=MONITOR,
                kind=f"restatement_{row.kind}",
                source=source,
                series=series,
                severity="warning",
                message=(
                    f"{label} ({series}) {period}: {row.old:,.4g} in the older vintage, "
                    f"{row.new:,.4g} now ({row.relative_change:+.1%})"
                ),
                run_at=run_at,
                period=period,
                value=None if math.isnan(row.new) else row.new,
                expected=None if math.isnan(row.old) else f"{row.old:.4g}",
                details={
                    "metric": metric,
                    "label": label,
                    "method": "vintage_comparison",
                    "old": row.old,
                    "new": row.new,
                    "change": row.change,
                    "relative_change": row.relative_change,
                    "tolerance": tolerance,
                },
            )
        )
    return out


# --------------------------------------------------------------------------- evaluation


def series_frames(frame: pd.DataFrame, monitor: MetricMonitor) -> dict[str, pd.Series]:
    """Split a metric's rows into its series: ``<value column>[:<group values>]`` -> values.

    Rows are filtered by ``where``, summed per period and group, and put on a full period
    index (months with no row are zero for count tables; use NaN-holding rows for "absent").
    """
    rows = frame
    for column, allowed in monitor.where.items():
        rows = rows[rows[column].isin(allowed)]
    rows = rows.assign(_period=pd.to_datetime(rows[monitor.period_column]))
    out: dict[str, pd.Series] = {}
    # Tables listing only non-zero cells: every series runs over the span of the table's rows
    # that have its grouping columns and its figure (CBP names nationalities only from October
    # 2019 on; a mart may start one figure later than another).
    keyed = rows.dropna(subset=monitor.series_by) if monitor.series_by else rows
    spans = {
        c: (
            keyed.loc[keyed[c].notna(), "_period"].min(),
            keyed.loc[keyed[c].notna(), "_period"].max(),
        )
        for c in monitor.value_columns
        if keyed[c].notna().any()
    }
    # One groupby over (group values, period) sums every series at once: a groupby per series
    # and figure cost a pandas set-up each (thousands per run). Rows with an empty group value
    # or period drop out (dropna), as they did from the per-group sums; sums are the same
    # (same rows, same order within each (group, period)), groups come in sorted order.
    value_columns = list(monitor.value_columns)
    sums = rows.groupby([*monitor.series_by, "_period"], dropna=True, sort=True)[value_columns].sum(
        min_count=1
    )
    for keys, periods, figures in _group_slices(sums, len(monitor.series_by)):
        for column in value_columns:
            values = figures[column]
            if pd.isna(values).all():
                continue  # this group never has this figure (e.g. presented by nationality)
            name = ":".join([column, *(str(k) for k in keys)])
            if monitor.frequency == "month" and len(values):
                if monitor.absent_rows == "zero" and column in spans:
                    months = expected_months(*spans[column])
                    out[name] = _on_months(values, periods, months, column, zero=True)
                else:
                    months = expected_months(periods.min(), periods.max())
                    out[name] = _on_months(values, periods, months, column, zero=False)
            else:
                out[name] = pd.Series(values, index=periods, name=column).astype(float)
    return out


def _group_slices(
    sums: pd.DataFrame, depth: int
) -> Iterable[tuple[tuple[Any, ...], pd.DatetimeIndex, dict[str, Any]]]:
    """The per-group parts of ``sums`` (index: ``depth`` group levels, then the period; sorted):
    (group values, the group's periods, column -> its figures on them), in the index's order.

    Each group's rows are one contiguous slice of the sorted index, found from its codes;
    slicing arrays is cheaper than pandas' groupby plus ``droplevel`` per group. Figures are
    numpy arrays for numpy dtypes, pandas' own arrays otherwise (nullable integers).
    """
    columns = {c: _figures(sums[c]) for c in sums.columns}
    if not depth:
        yield (), sums.index, columns
        return
    if sums.empty:
        return
    index = sums.index
    codes = np.column_stack([index.codes[level] for level in range(depth)])
    starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]).any(axis=1)])
    ends = np.r_[starts[1:], len(sums)]
    periods = index.get_level_values(depth)  # a DatetimeIndex named "_period"
    for start, end in zip(starts, ends):
        keys = tuple(index.levels[level][codes[start, level]] for level in range(depth))
        yield keys, periods[start:end], {c: a[start:end] for c, a in columns.items()}


def _figures(column: pd.Series) -> Any:
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return column.to_numpy()
    return column.array


def _on_months(
    values: Any, periods: pd.DatetimeIndex, months: pd.DatetimeIndex, column: str, *, zero: bool
) -> pd.Series:
    """``values`` (on ``periods``) on every month of ``months``, as floats: a month without a
    row is 0 (``zero``) or NaN, as ``Series.reindex`` puts them. For numpy figures the same
    is done with arrays (a reindex per series cost more than the detector)."""
    if isinstance(values, np.ndarray):
        out = np.full(len(months), 0.0 if zero else np.nan)
        where = months.get_indexer(periods)  # -1: a period not on the month grid, dropped
        found = where >= 0
        out[where[found]] = values[found].astype(float)
        return pd.Series(out, index=months, name=column)
    series = pd.Series(values, index=periods, name=column)
    if zero:
        return series.reindex(months, fill_value=0.0).astype(float)
    return series.reindex(months).astype(float)


def evaluate_frame(
    frame: pd.DataFrame,
    metric: str,
    monitor: MetricMonitor,
    *,
    run_at: dt.datetime,
    params: DetectorParams | None = None,
    regimes: dict[str, Regime] | None = None,
    annotate_within_periods: int = 3,
    since: Any = None,
    onsets_only: bool = False,
) -> list[Finding]:
    """Findings of one metric over the rows in ``frame`` (pure: no warehouse, no config file)."""
    return evaluate_series(
        series_frames(frame, monitor),
        metric,
        monitor,
        run_at=run_at,
        params=params,
        regimes=regimes,
        annotate_within_periods=annotate_within_periods,
        since=since,
        onsets_only=onsets_only,
    )


def evaluate_series(
    series: dict[str, pd.Series],
    metric: str,
    monitor: MetricMonitor,
    *,
    run_at: dt.datetime,
    params: DetectorParams | None = None,
    regimes: dict[str, Regime] | None = None,
    annotate_within_periods: int = 3,
    since: Any = None,
    onsets_only: bool = False,
) -> list[Finding]:
    """Findings of one metric's series (``series_frames`` output), each named
    ``<metric>:<series>``: for a caller that needs the series themselves too (the monitor run
    reads each series' newest period from them)."""
    p = params or default_params(monitor.frequency)
    out: list[Finding] = []
    for name, values in series.items():
        result = scan(values.to_numpy(), p)
        out += findings(
            result,
            values.index,
            metric=metric,
            series=f"{metric}:{name}",
            source=monitor.source,
            label=monitor.label,
            run_at=run_at,
            params=p,
            frequency=monitor.frequency,
            regimes=regimes,
            annotate_within_periods=annotate_within_periods,
            since=since,
            onsets_only=onsets_only,
        )
        if monitor.frequency == "month" and monitor.absent_rows == "missing":
            gaps = [m for m in missing_periods(values) if since is None or m >= pd.Timestamp(since)]
            out += missing_findings(
                gaps,
                metric=metric,
                series=f"{metric}:{name}",
                source=monitor.source,
                label=monitor.label,
                run_at=run_at,
            )
    return out


def metric_rows(con: duckdb.DuckDBPyConnection, monitor: MetricMonitor) -> pd.DataFrame:
    """The rows a metric needs, read from the warehouse (the only SQL in this module)."""
    columns = list(
        dict.fromkeys(
            [monitor.period_column, *monitor.series_by, *monitor.value_columns, *monitor.where]
        )
    )
    select = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"SELECT {select} FROM {monitor.table}").df()


def evaluate_metric(
    con: duckdb.DuckDBPyConnection,
    metric: str,
    *,
    run_at: dt.datetime,
    config: AnomaliesConfig | None = None,
    since: Any = None,
) -> list[Finding]:
    """Findings of one configured metric, reading its table from DuckDB."""
    cfg = config or load_config()
    monitor = cfg.metrics[metric]
    return evaluate_frame(
        metric_rows(con, monitor),
        metric,
        monitor,
        run_at=run_at,
        params=cfg.params(monitor),
        regimes=cfg.regimes,
        annotate_within_periods=cfg.annotate_within_periods,
        since=since,
    )


__all__ = [
    "METHOD",
    "MONITOR",
    "AnomaliesConfig",
    "DetectorParams",
    "MetricMonitor",
    "Regime",
    "Scan",
    "default_params",
    "detect_restatements",
    "evaluate_frame",
    "evaluate_metric",
    "evaluate_series",
    "expected_months",
    "findings",
    "load_config",
    "metric_rows",
    "missing_findings",
    "missing_periods",
    "regime_notes",
    "restatement_findings",
    "scan",
    "series_frames",
]
