"""`make bench-detect`: the anomaly detector against three baselines, on real series.

What it does (fixed seed, no network):

1. Loads the real series (``returnwatch_replay.series.real_series``): CBP monthly UC encounters
   by nationality x title and in total, SEGOB minors presented (3.1.3, by age) and children
   returned (3.2.4, by nationality), HHS/DHS daily flows.
2. **Real breaks**: reads ``bench/labels/real_breaks.csv`` (dated policy events from the Federal
   Register and the court record, each with the series it should move and the direction,
   labelled from the event's scope before any tuning; ``bench/labels/README.md``). A break is
   caught when a method raises an alert onset in the expected direction within one period of
   the event's first full period (delay -1..+1). False alerts: onsets on the real series
   outside ±1 period of that series' labelled breaks, per series-year judged.
3. **Injected events**, one per copy of a series so events never mask each other: level shifts
   (x1.5..x3, up or down, to the end of the series), single-period spikes (x2..x5), drops to
   zero (1-3 periods), missing periods, and restatements (one past figure changed by 5-20% in
   a newer vintage), placed where the local level is at least ``MIN_LEVEL`` children, after
   ``WARMUP`` periods and away from the big real regime changes (``REAL_EVENTS``). Recall: an
   onset attributable to the injection within ``K`` periods of its start.
4. **Operating curves**: each method's knobs from quiet to sensitive on the same events and
   breaks; the recall on x2+ shifts each method reaches within a false-alert budget (0.25, 0.5,
   1 per series-year); per configured metric, the setting the figures choose (most real breaks
   within 0.5 false alerts per series-year on its own series) and whether the config ships it.
5. Prints the tables and the issue's targets (met / missed, with the numbers), writes
   ``bench/results/detection.json`` (schema inside it), ``detection_detail.json`` and the
   curves' plot ``docs/img/detection_curves.png``.

Methods (alerts counted as onsets: a run of consecutive alerts in one direction is one alert,
as an incident is one Slack message):
- ``robust_step`` (ours, ``returnwatch.monitor.anomalies``) as shipped, each series with its
  metric's setting from config/monitors.yaml; plus absence (missing periods) and vintage
  comparison (``detect_restatements``, 2% and 2 children);
- ``zscore_14``: |x - mean| > 3 SD of the previous 14 periods, on the raw values;
- ``pct10_mean7``: |x - mean| > 10% of the mean of the previous 7 periods;
- ``ruptures_binseg``: ruptures' binary segmentation (least squares) run online: at each period
  the last 24 months / 60 publishing days up to it, on log(1 + count) in noise units, penalty
  ``beta * log(n)``; an alert when a change point falls among the last 3 periods.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import ruptures as rpt
from ruptures.base import BaseCost

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT / "include") not in sys.path:
    sys.path.insert(0, str(PROJECT / "include"))

from returnwatch.monitor import anomalies as an  # noqa: E402
from returnwatch_replay.series import RealSeries, real_series  # noqa: E402

SEED = 20251123
# An onset 0..K periods after the event start detects it: 3 months, or 5 publishing days (one
# publishing week) for daily series. A copy is scored up to H periods after its event start.
K = {"month": 3, "day": 5}
H = {"month": 12, "day": 20}
MIN_LEVEL = 20.0  # events start only where the local level is at least this (2x the floor)
WARMUP = {"month": 14, "day": 20}  # no method judges before this many periods
RESULTS = PROJECT / "bench" / "results" / "detection.json"
PLOT = PROJECT / "docs" / "img" / "detection_curves.png"
EVENT_TYPES = ("level_shift", "spike", "drop_to_zero", "missing", "restatement")
# Events per series, per type (about 30 series -> ~900 events).
PER_SERIES = {"level_shift": 10, "spike": 6, "drop_to_zero": 4, "missing": 4, "restatement": 6}

# Where injected events are NOT placed (so an injection never lands on a real regime change;
# dates inclusive). Placement only: false alerts and real-break recall use the labels below.
REAL_EVENTS: dict[str, tuple[str, str]] = {
    "title_42_start (2020-03-21)": ("2020-03-01", "2020-05-31"),
    "early_2021_surge": ("2021-01-01", "2021-05-31"),
    "title_42_end (2023-05-11)": ("2023-05-01", "2023-07-31"),
}
# The real policy breaks, labelled from each event's scope before any detector was tuned
# (bench/labels/README.md says what the columns mean and how they are scored).
LABELS = PROJECT / "bench" / "labels" / "real_breaks.csv"
# False-alert budgets (alerts per series-year) at which the operating curves are read.
BUDGETS = (0.25, 0.5, 1.0)


# --------------------------------------------------------------------------- methods


@dataclass
class Method:
    name: str
    # values (NaN = absent) -> (onset, direction) arrays; old = previous vintage or None
    detect: Callable[[np.ndarray, np.ndarray | None, str], tuple[np.ndarray, np.ndarray]]


def _onsets(flag_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    previous = np.concatenate([[0], flag_dir[:-1]])
    return (flag_dir != 0) & (previous != flag_dir), flag_dir


@functools.lru_cache(maxsize=1024)
def _restated(old: bytes, new: bytes) -> np.ndarray:
    """Positions ``detect_restatements`` reports between two vintages (the same for every
    setting of the detector: computed once per injected copy)."""
    o, nw = np.frombuffer(old, dtype=float), np.frombuffer(new, dtype=float)
    idx = pd.RangeIndex(len(nw))
    restated = an.detect_restatements(pd.Series(o, idx), pd.Series(nw, idx))
    return restated["period"].to_numpy(int)


def robust_step_with(
    month: dict | None = None, day: dict | None = None, **overrides: object
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Our detector with some of its defaults changed (``overrides`` for both frequencies,
    ``month`` / ``day`` for one): the operating curve.

    The scan is causal (period t uses only periods up to t), so ``until`` lets the benchmark
    stop at the last period it scores."""
    params = {
        f: an.default_params(f).model_copy(  # type: ignore[arg-type]
            update={**overrides, **((month if f == "month" else day) or {})}
        )
        for f in ("month", "day")
    }
    return _robust_step(lambda frequency, series: params[frequency])


def shipped_robust_step(
    config_dir: Path | str | None = None,
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Our detector as shipped: each series judged with its metric's parameters in
    config/monitors.yaml (``METRIC_OF`` maps a benchmark series to its metric)."""
    cfg = an.load_config(config_dir)
    params = {family: cfg.params(metric) for family, metric in METRIC_OF.items()}
    # A series of no configured metric (a test's hand-made one) gets the frequency's default.
    return _robust_step(
        lambda frequency, series: (
            params.get(_family(series))
            or cfg.defaults.get(frequency)  # type: ignore[call-overload]
            or an.default_params(frequency)
        )
    )  # type: ignore[arg-type]


SHIPPED = "as shipped: each metric's setting in config/monitors.yaml"
# The configured metric each benchmark series family is monitored by.
METRIC_OF = {
    "cbp_uc": "cbp_uc_encounters",
    "segob_minors_presented": "segob_minors",
    "segob_children_returned": "segob_minors",
    "hhs_uc_daily": "hhs_uc_daily_flows",
}


def _robust_step(
    params_for: Callable[[str, str], an.DetectorParams],
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    def detect(
        values: np.ndarray,
        old: np.ndarray | None,
        frequency: str,
        *,
        since: int = 0,
        until: int | None = None,
        base: tuple[np.ndarray, np.ndarray] | None = None,
        series: str = "",
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(values)
        stop = n if until is None else min(n, until + 1)
        result = an.scan(values[:stop], params_for(frequency, series))
        direction = np.zeros(n, dtype=np.int64)
        direction[:stop] = np.where(
            result.alert, np.where(np.isin(result.kind, ["spike", "level_up"]), 1, -1), 0
        )
        onset = np.zeros(n, dtype=bool)
        onset[:stop] = result.onset
        absent = np.isnan(values)
        # A missing period: absent here, with a published period after it (found by absence).
        later = np.flip(np.cumsum(np.flip(~absent))) > 0
        onset |= absent & np.roll(later, -1) & (np.arange(n) < n - 1)
        if old is not None:
            onset[
                _restated(
                    np.ascontiguousarray(old, dtype=float).tobytes(),
                    np.ascontiguousarray(values, dtype=float).tobytes(),
                )
            ] = True
        return onset, direction

    detect.online = True  # type: ignore[attr-defined]
    return detect


def _outside(deviation: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Onsets where ``|deviation| > limit`` (+1 above, -1 below; nothing where either is NaN)."""
    with np.errstate(invalid="ignore"):
        flag = np.where(deviation > limit, 1, np.where(deviation < -limit, -1, 0))
    flag[np.isnan(deviation) | np.isnan(limit)] = 0
    return _onsets(flag)


def zscore_with(
    threshold: float = 3.0, window: int = 14
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """|x - mean| > ``threshold`` SD of the previous ``window`` periods, on the raw values."""

    def detect(
        values: np.ndarray, old: np.ndarray | None, frequency: str
    ) -> tuple[np.ndarray, np.ndarray]:
        s = pd.Series(values)
        mean = s.rolling(window, min_periods=window).mean().shift(1)
        sd = s.rolling(window, min_periods=window).std().shift(1)
        return _outside((s - mean).to_numpy(), threshold * sd.to_numpy())

    return detect


def pct_of_mean_with(
    share: float = 0.10, window: int = 7
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """|x - mean| > ``share`` of the mean of the previous ``window`` periods."""

    def detect(
        values: np.ndarray, old: np.ndarray | None, frequency: str
    ) -> tuple[np.ndarray, np.ndarray]:
        s = pd.Series(values)
        mean = s.rolling(window, min_periods=window).mean().shift(1).to_numpy()
        return _outside(values - mean, share * np.abs(mean))

    return detect


class _SumsL2(BaseCost):
    """ruptures' least-squares cost ("l2") from running sums: the same figure as
    ``ruptures.costs.CostL2``, in O(1) per segment instead of a numpy call on each slice (the
    online scan fits ~10^5 small windows; ruptures' documented extension point for costs)."""

    model = "l2_sums"
    min_size = 1

    def fit(self, signal: np.ndarray) -> _SumsL2:
        x = np.asarray(signal, dtype=float).ravel()
        self.signal = x.reshape(-1, 1)
        self._s1 = np.concatenate([[0.0], np.cumsum(x)]).tolist()
        self._s2 = np.concatenate([[0.0], np.cumsum(x * x)]).tolist()
        return self

    def error(self, start: int, end: int) -> float:
        total = self._s1[end] - self._s1[start]
        return (self._s2[end] - self._s2[start]) - total * total / (end - start)


# ruptures, online: at each period, the last W published periods up to it (24 months / 60
# publishing days), on log(1 + count), in units of their noise (MAD of period-to-period changes).
RUPTURES_WINDOW = {"month": 24, "day": 60}
RUPTURES_RECENT = 3  # a change point at most this many periods old is news at period t


RUPTURES_BETAS = (12.0, 8.0, 5.0, 3.0, 2.0, 1.0)  # the penalty sweep (operating curve)
RUPTURES_DEFAULT_BETA = 3.0


def _ruptures_flags(window: np.ndarray, betas: Sequence[float]) -> list[int]:
    """+1 / -1 / 0 per penalty: does binary segmentation of this window (oldest first, newest
    last) put a change point among its last ``RUPTURES_RECENT`` values, and which way does the
    level go? One fit serves every penalty (Binseg caches its splits)."""
    n = len(window)
    diffs = np.diff(window)
    mad = float(np.median(np.abs(diffs - np.median(diffs)))) if len(diffs) else 0.0
    sigma = max(1.4826 * mad / math.sqrt(2.0), 0.05)
    z = window / sigma
    algo = rpt.Binseg(custom_cost=_SumsL2(), min_size=1, jump=1).fit(z)
    out = []
    for beta in betas:
        bkps = algo.predict(pen=beta * math.log(n))[:-1]
        recent = [b for b in bkps if b >= n - RUPTURES_RECENT]
        if not recent:
            out.append(0)
            continue
        before = [b for b in bkps if b < recent[0]]
        reference = z[(before[-1] if before else 0) : recent[0]].mean()
        change = z[recent[-1] :].mean() - reference
        # A newest segment back at the old level is the end of a one-period spike, not news.
        out.append(0 if abs(change) < 1.0 else int(np.sign(change)))
    return out


@functools.lru_cache(maxsize=4096)
def _ruptures_scan(raw: bytes, frequency: str, since: int, stop: int) -> np.ndarray:
    """Flags (periods x penalties) for periods ``since`` .. ``stop - 1``, each judged on the
    last W published periods up to it only (online); rows before ``since`` are 0."""
    values = np.frombuffer(raw, dtype=float)
    width = RUPTURES_WINDOW[frequency]
    y = np.log1p(np.clip(values, 0, None))
    published = np.flatnonzero(~np.isnan(values))
    flags = np.zeros((len(values), len(RUPTURES_BETAS)), dtype=np.int64)
    for t in range(since, stop):
        if np.isnan(values[t]):
            continue
        upto = published[published <= t][-width:]
        if len(upto) >= WARMUP[frequency]:
            flags[t] = _ruptures_flags(y[upto], RUPTURES_BETAS)
    return flags


def ruptures_with(
    beta: float = RUPTURES_DEFAULT_BETA,
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """ruptures' binary segmentation (Binseg, least squares) run online, penalty
    ``beta * log(n)`` (n: the window's length) in noise units squared (``beta`` 2 is BIC's);
    ``beta`` from ``RUPTURES_BETAS``. Online: ``since``/``until``/``base`` let the benchmark compute only the
    periods an injected event can change (before it, the answers are the real series')."""
    column = RUPTURES_BETAS.index(beta)

    def detect(
        values: np.ndarray,
        old: np.ndarray | None,
        frequency: str,
        *,
        since: int = 0,
        until: int | None = None,
        base: tuple[np.ndarray, np.ndarray] | None = None,
        series: str = "",
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(values)
        stop = n if until is None else min(n, until + 1)
        raw = np.ascontiguousarray(values, dtype=float).tobytes()
        flag = _ruptures_scan(raw, frequency, since, stop)[:, column].copy()
        if base is not None and since > 0:
            flag[:since] = base[1][:since]  # same data up to since - 1: same answers
        return _onsets(flag)

    detect.online = True  # type: ignore[attr-defined]
    return detect


robust_step = shipped_robust_step()
zscore_14 = zscore_with(3.0, 14)
pct10_mean7 = pct_of_mean_with(0.10, 7)
ruptures_binseg = ruptures_with(RUPTURES_DEFAULT_BETA)

METHODS = [
    Method("robust_step", robust_step),
    Method("zscore_14", zscore_14),
    Method("pct10_mean7", pct10_mean7),
    Method("ruptures_binseg", ruptures_binseg),
]


# --------------------------------------------------------------------------- events


@dataclass
class Event:
    series: str
    type: str
    start: int
    size: float = 1.0  # factor (shift, spike), length (zero), relative change (restate)
    direction: int = 1
    detail: dict = field(default_factory=dict)

    def label(self) -> str:
        if self.type == "level_shift":
            return f"x{self.size:.2f}" if self.direction > 0 else f"/{self.size:.2f}"
        return f"{self.size:.3g}"


def excluded_mask(index: pd.DatetimeIndex, windows: dict[str, tuple[str, str]]) -> np.ndarray:
    mask = np.zeros(len(index), dtype=bool)
    for start, end in windows.values():
        mask |= (index >= pd.Timestamp(start)) & (index <= pd.Timestamp(end))
    return mask


@dataclass(frozen=True)
class Break:
    """One labelled real break (``LABELS``) placed on one benchmark series."""

    event_id: str
    series: str
    direction: str  # up / down (scored), none (negative control), uncertain
    mechanism: str
    period: str  # the first full period (month or day)
    position: int  # its index in the series
    scored: bool
    reason: str  # why it is not scored ("" when scored)

    @property
    def window(self) -> tuple[int, int]:
        return self.position - 1, self.position + 1


@functools.cache
def load_labels(path: str = str(LABELS)) -> pd.DataFrame:
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad = set(labels["expected_direction"]) - {"up", "down", "none", "uncertain"}
    if bad:
        raise ValueError(f"{path}: expected_direction must be up/down/none/uncertain, got {bad}")
    return labels


_BREAKS: dict[tuple, list[Break]] = {}  # per series (name, span): labels are read once


def breaks_for(s: RealSeries, labels: pd.DataFrame | None = None) -> list[Break]:
    """The labelled breaks on one series: per event, the most specific matching row (fewest
    ``*``), placed at the event's first full period (monthly) or the first published day on or
    after its first full day (daily). Events outside the series' span are left out."""
    if labels is None:
        key = (s.name, s.frequency, len(s.values), str(s.values.index[0]), str(s.values.index[-1]))
        if key not in _BREAKS:
            _BREAKS[key] = breaks_for(s, load_labels())
        return _BREAKS[key]
    idx = s.values.index
    x = s.values.to_numpy(float)
    out: list[Break] = []
    for event_id, rows in labels.groupby("event_id", sort=False):
        matching = [
            r for r in rows.itertuples(index=False) if fnmatch.fnmatchcase(s.name, r.series)
        ]
        if not matching:
            continue
        row = min(matching, key=lambda r: r.series.count("*"))
        first = row.first_full_day if s.frequency == "day" else row.first_full_month
        if not first:
            continue
        if s.frequency == "month":
            position = int(idx.get_indexer([pd.Timestamp(f"{first}-01")])[0])
        else:
            position = int(idx.searchsorted(pd.Timestamp(first)))
        if position < 1 or position >= len(idx) - 1:
            continue
        level = (
            float(np.nanmedian(x[max(0, position - 4) : position - 1]))
            if position >= 2
            else float("nan")
        )
        reason = ""
        if row.expected_direction not in ("up", "down"):
            reason = f"expected direction {row.expected_direction}"
        elif position < WARMUP[s.frequency]:
            reason = f"before the warm-up ({WARMUP[s.frequency]} periods)"
        elif not level >= MIN_LEVEL:
            reason = f"level {level:.0f} before it, under {MIN_LEVEL:.0f} children"
        out.append(
            Break(
                str(event_id),
                s.name,
                row.expected_direction,
                row.mechanism,
                str(idx[position].date()) if s.frequency == "day" else first,
                position,
                not reason,
                reason,
            )
        )
    return out


def break_mask(n: int, breaks: Sequence[Break]) -> np.ndarray:
    """Periods inside the ±1 window of an up / down / uncertain break: not false alerts."""
    mask = np.zeros(n, dtype=bool)
    for b in breaks:
        if b.direction != "none":
            lo, hi = b.window
            mask[max(lo, 0) : hi + 1] = True
    return mask


def score_breaks(breaks: Sequence[Break], base: tuple[np.ndarray, np.ndarray]) -> list[dict]:
    """Each break: caught when an onset in the expected direction falls in its window."""
    onset, direction = base
    rows = []
    for b in breaks:
        lo, hi = b.window
        want = 1 if b.direction == "up" else -1 if b.direction == "down" else 0
        hits = [
            t
            for t in range(max(lo, 0), min(hi, len(onset) - 1) + 1)
            if onset[t] and direction[t] == want
        ]
        rows.append(
            {
                "event": b.event_id,
                "series": b.series,
                "period": b.period,
                "direction": b.direction,
                "mechanism": b.mechanism,
                "scored": b.scored,
                "reason": b.reason,
                "caught": bool(hits) if b.scored else None,
                "delay": hits[0] - b.position if hits and b.scored else None,
                "alerts_in_window": int(onset[max(lo, 0) : hi + 1].sum()),
            }
        )
    return rows


def _local_level(values: np.ndarray) -> np.ndarray:
    return an._nanmedian_rows(an._trailing(values, 3))


def plan_events(
    series: Sequence[RealSeries], rng: np.random.Generator, per_series: dict[str, int] | None = None
) -> list[Event]:
    """Draw the labelled events (deterministic for a given generator state)."""
    plan = per_series or PER_SERIES
    events: list[Event] = []
    for s in series:
        x = s.values.to_numpy(float)
        n = len(x)
        excluded = excluded_mask(s.values.index, REAL_EVENTS)
        level = _local_level(x)
        k = K[s.frequency]
        starts = np.arange(WARMUP[s.frequency] + 1, n - k - 1)
        ok = np.array(
            [not excluded[max(0, t - 1) : t + k + 1].any() for t in starts], dtype=bool
        ) & (level[starts] >= MIN_LEVEL)
        candidates = starts[ok]
        if len(candidates) == 0:
            continue
        for kind in EVENT_TYPES:
            pool = candidates
            if kind == "restatement":
                pool = candidates[x[candidates] >= 2 * MIN_LEVEL]
            for _ in range(plan.get(kind, 0)):
                if len(pool) == 0:
                    break
                t = int(rng.choice(pool))
                if kind == "level_shift":
                    ev = Event(
                        s.name, kind, t, float(rng.uniform(1.5, 3.0)), int(rng.choice([1, -1]))
                    )
                elif kind == "spike":
                    ev = Event(s.name, kind, t, float(rng.uniform(2.0, 5.0)))
                elif kind == "drop_to_zero":
                    ev = Event(s.name, kind, t, float(rng.integers(1, 4)), -1)
                elif kind == "missing":
                    ev = Event(s.name, kind, t, 1.0, 0)
                else:
                    ev = Event(
                        s.name, kind, t, float(rng.uniform(0.05, 0.20)), int(rng.choice([1, -1]))
                    )
                events.append(ev)
    return events


def inject(values: np.ndarray, event: Event) -> tuple[np.ndarray, np.ndarray | None]:
    """The injected copy, and the older vintage for restatements (else None)."""
    x = values.astype(float).copy()
    t = event.start
    if event.type == "level_shift":
        factor = event.size if event.direction > 0 else 1 / event.size
        x[t:] = np.round(x[t:] * factor)
    elif event.type == "spike":
        x[t] = np.round(x[t] * event.size)
    elif event.type == "drop_to_zero":
        x[t : t + int(event.size)] = 0.0
    elif event.type == "missing":
        x[t] = np.nan
    elif event.type == "restatement":
        x[t] = np.round(x[t] * (1 + event.direction * event.size))
        return x, values.astype(float)
    return x, None


# --------------------------------------------------------------------------- scoring


@dataclass
class Outcome:
    event: Event
    detected: bool
    delay: int | None
    true_onsets: int
    false_onsets: int


def score_event(
    method: Method, s: RealSeries, event: Event, base: tuple[np.ndarray, np.ndarray]
) -> Outcome:
    x = s.values.to_numpy(float)
    injected, old = inject(x, event)
    if getattr(method.detect, "online", False):
        # An online method's answers before the event are those on the real series: only the
        # periods the event can change are computed.
        onset, direction = method.detect(
            injected,
            old,
            s.frequency,
            since=event.start,
            until=event.start + H[s.frequency],
            base=base,
            series=s.name,
        )
    else:
        onset, direction = method.detect(injected, old, s.frequency)
    base_onset, base_dir = base
    attributable = onset & ~(base_onset & (base_dir == direction))
    attributable[: WARMUP[s.frequency]] = False
    # A shifted series is, after a while, just a bigger or smaller series: score only the
    # event's neighbourhood (its own aftermath up to H periods included).
    attributable[event.start + H[s.frequency] + 1 :] = False
    positions = np.flatnonzero(attributable)
    in_window = positions[(positions >= event.start) & (positions <= event.start + K[s.frequency])]
    false = len(positions) - len(in_window)
    return Outcome(
        event,
        len(in_window) > 0,
        int(in_window[0] - event.start) if len(in_window) else None,
        len(in_window),
        false,
    )


def natural_alerts(
    s: RealSeries, base: tuple[np.ndarray, np.ndarray], breaks: Sequence[Break]
) -> dict:
    """Onsets on the real series after the warm-up and outside its labelled breaks (±1 period
    of each up / down / uncertain break), and the series-years judged."""
    idx = s.values.index
    judged = np.arange(len(idx)) >= WARMUP[s.frequency]
    judged &= ~break_mask(len(idx), breaks)
    onset = base[0] & judged
    return {
        "alerts": int(onset.sum()),
        "years": float(judged.sum() / s.periods_per_year),
        "periods": [str(p.date()) for p in idx[onset]],
    }


def _family(name: str) -> str:
    return name.split(":", 1)[0]


def natural_steps(series: Sequence[RealSeries], factor: float = 2.0) -> dict[str, float]:
    """How often the REAL history itself does what an injected xfactor shift does.

    A step at t: the figures of t and t+1 are both at least ``factor`` times (or at most
    1/``factor`` of) the median of the 3 periods before t, which is at least ``MIN_LEVEL``;
    judged and counted like false alerts (after the warm-up, outside the labelled breaks, one
    per run). A detector that flags injected xfactor shifts must flag these too: they are the
    floor of its false-alert rate at that recall.
    """
    steps, years = 0, 0.0
    for s in series:
        x = s.values.to_numpy(float)
        base = _local_level(x)
        nxt = np.concatenate([x[1:], [np.nan]])
        with np.errstate(invalid="ignore", divide="ignore"):
            up = (x >= factor * base) & (nxt >= factor * base)
            down = (x <= base / factor) & (nxt <= base / factor)
        judged = (np.arange(len(x)) >= WARMUP[s.frequency]) & ~break_mask(len(x), breaks_for(s))
        flag = np.where(up, 1, np.where(down, -1, 0)) * (base >= MIN_LEVEL) * judged
        steps += int(_onsets(flag)[0].sum())
        years += float(judged.sum() / s.periods_per_year)
    return {
        "steps": steps,
        "series_years": round(years, 2),
        "per_series_year": round(steps / years, 3) if years else 0.0,
    }


def summarise(outcomes: list[Outcome], natural: list[dict], real: list[dict]) -> dict:
    """A method's figures: real breaks (recall, delay), false alerts on the real history
    outside them, and recall / precision / delay on the injected events."""
    detected = [o for o in outcomes if o.detected]
    tp = sum(o.true_onsets for o in outcomes)
    fp = sum(o.false_onsets for o in outcomes)
    alerts = sum(n["alerts"] for n in natural)
    years = sum(n["years"] for n in natural)
    delays = [o.delay for o in detected if o.delay is not None]

    def recall(selected: list[Outcome]) -> float | None:
        return round(sum(o.detected for o in selected) / len(selected), 4) if selected else None

    by_type = {t: recall([o for o in outcomes if o.event.type == t]) for t in EVENT_TYPES}
    shifts = [o for o in outcomes if o.event.type == "level_shift"]
    by_type["level_shift_x2_or_more"] = recall([o for o in shifts if o.event.size >= 2])
    by_type["level_shift_x2_or_more_up"] = recall(
        [o for o in shifts if o.event.size >= 2 and o.event.direction > 0]
    )
    by_type["level_shift_x2_or_more_down"] = recall(
        [o for o in shifts if o.event.size >= 2 and o.event.direction < 0]
    )
    by_type["level_shift_under_x2"] = recall([o for o in shifts if o.event.size < 2])
    by_type["spike_x3_or_more"] = recall(
        [o for o in outcomes if o.event.type == "spike" and o.event.size >= 3]
    )
    by_type["spike_under_x3"] = recall(
        [o for o in outcomes if o.event.type == "spike" and o.event.size < 3]
    )
    series_detectable = [
        o for o in outcomes if o.event.type in ("level_shift", "spike", "drop_to_zero")
    ]
    by_metric = {}
    for metric in dict.fromkeys(METRIC_OF.values()):
        fams = {f for f, m in METRIC_OF.items() if m == metric}
        nat = [n for n in natural if _family(n["series"]) in fams]
        sc = [r for r in real if r["scored"] and _family(r["series"]) in fams]
        x2 = [o for o in shifts if o.event.size >= 2 and _family(o.event.series) in fams]
        yrs = sum(n["years"] for n in nat)
        by_metric[metric] = {
            "false_alerts_per_series_year": (
                round(sum(n["alerts"] for n in nat) / yrs, 3) if yrs else None
            ),
            "real_breaks": f"{sum(bool(r['caught']) for r in sc)}/{len(sc)}",
            "real_break_recall": (
                round(sum(bool(r["caught"]) for r in sc) / len(sc), 4) if sc else None
            ),
            "recall_x2_shifts": recall(x2),
        }
    scored = [r for r in real if r["scored"]]
    caught = [r for r in scored if r["caught"]]
    controls = [r for r in real if r["direction"] == "none"]
    return {
        "real_breaks": {
            "scored": len(scored),
            "caught": len(caught),
            "recall": round(len(caught) / len(scored), 4) if scored else None,
            "median_delay": (float(np.median([r["delay"] for r in caught])) if caught else None),
            "by_event": {
                e: f"{sum(r['caught'] for r in scored if r['event'] == e)}/"
                f"{sum(r['event'] == e for r in scored)}"
                for e in dict.fromkeys(r["event"] for r in scored)
            },
            "missed": [
                f"{r['event']} {r['series']} {r['period']}" for r in scored if not r["caught"]
            ],
            "negative_controls_alerted": f"{sum(r['alerts_in_window'] > 0 for r in controls)}"
            f"/{len(controls)}",
        },
        "false_alerts_per_series_year": round(alerts / years, 3) if years else None,
        "false_alerts": alerts,
        "series_years": round(years, 2),
        "by_metric": by_metric,
        "false_alerts_per_series_year_by_family": {
            fam: round(
                sum(n["alerts"] for n in natural if _family(n["series"]) == fam)
                / sum(n["years"] for n in natural if _family(n["series"]) == fam),
                3,
            )
            for fam in sorted({_family(n["series"]) for n in natural})
        },
        "injected": {
            "recall": recall(outcomes),
            "recall_x2_shifts": by_type["level_shift_x2_or_more"],
            "recall_time_series_events": recall(series_detectable),
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "median_delay": float(np.median(delays)) if delays else None,
            "median_delay_by_type": {
                t: (
                    float(np.median([o.delay for o in detected if o.event.type == t]))
                    if any(o.event.type == t for o in detected)
                    else None
                )
                for t in EVENT_TYPES
            },
            "recall_by_type": by_type,
            "recall_by_family": {
                fam: recall([o for o in outcomes if _family(o.event.series) == fam])
                for fam in sorted({_family(o.event.series) for o in outcomes})
            },
            "events": len(outcomes),
            "true_onsets": tp,
            "false_onsets": fp,
        },
    }


def score_method(
    method: Method, series: Sequence[RealSeries], events: Sequence[Event], *, detail: bool = True
) -> dict:
    """One method's figures (``summarise``): its alerts on the real history (real breaks and
    false alerts) and on every injected copy."""
    by_name = {s.name: s for s in series}
    bases = {
        s.name: (
            method.detect(s.values.to_numpy(float), None, s.frequency, series=s.name)
            if getattr(method.detect, "online", False)
            else method.detect(s.values.to_numpy(float), None, s.frequency)
        )
        for s in series
    }
    breaks = {s.name: breaks_for(s) for s in series}
    outcomes = [score_event(method, by_name[e.series], e, bases[e.series]) for e in events]
    natural = [
        natural_alerts(s, bases[s.name], breaks[s.name]) | {"series": s.name} for s in series
    ]
    real = [row for s in series for row in score_breaks(breaks[s.name], bases[s.name])]
    result = summarise(outcomes, natural, real)
    if detail:
        result["natural_alerts_by_series"] = {
            n["series"]: n["periods"] for n in natural if n["alerts"]
        }
        result["real_breaks_by_series"] = real
    return result


def run(
    series: Sequence[RealSeries] | None = None,
    *,
    seed: int = SEED,
    per_series: dict[str, int] | None = None,
    methods: Sequence[Method] = METHODS,
    events: Sequence[Event] | None = None,
    with_curves: bool = False,
) -> dict:
    """The whole benchmark; returns the results (per method) and the run's facts.

    ``events`` replaces the drawn events (tests score hand-made ones); ``with_curves`` adds
    every method's operating curve on the same events and its recall at each budget.
    """
    started = time.perf_counter()
    all_series = list(series) if series is not None else real_series()
    if events is None:
        events = plan_events(all_series, np.random.default_rng(seed), per_series)
    results = {method.name: score_method(method, all_series, events) for method in methods}
    report = {
        "results": results,
        "events": len(events),
        "natural_x2_steps": natural_steps(all_series),
        "events_by_type": {t: sum(e.type == t for e in events) for t in EVENT_TYPES},
        "series": len(all_series),
        "seed": seed,
        "window_k": K,
        "min_level": MIN_LEVEL,
    }
    if with_curves:
        report["curves"] = operating_curves(all_series, events)
        if "robust_step" in results:
            # The configuration as shipped (a setting per metric) is a point of our curve too.
            r = results["robust_step"]
            report["curves"]["robust_step"].append(
                {
                    "setting": SHIPPED,
                    "recall": r["injected"]["recall"],
                    "recall_x2_shifts": r["injected"]["recall_x2_shifts"],
                    "recall_time_series_events": r["injected"]["recall_time_series_events"],
                    "precision": r["injected"]["precision"],
                    "real_break_recall": r["real_breaks"]["recall"],
                    "false_alerts_per_series_year": r["false_alerts_per_series_year"],
                    "by_metric": r["by_metric"],
                }
            )
        report["budgets"] = at_budgets(report["curves"])
        report["chosen"] = {
            family: (evidence_choice(rows) or {}).get("setting")
            for family, rows in report["curves"].items()
        }
        report["chosen_by_metric"] = choose_by_metric(report["curves"]["robust_step"])
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


# Each method's operating curve: its knobs turned from quiet to sensitive, the default marked.
# A target that no setting of any method reaches is a property of the data, not of a knob.
def _ours_label(t: float, r: float, alone: bool = False) -> str:
    return (
        f"threshold {t:g}, x{r:g} at once"
        if not alone
        else f"threshold {t:g}, x{r:g} at once in any band (months)"
    )


# Our curve has two arms: the band's threshold and the strong ratio turned together (both
# frequencies), and, for monthly series, a change of x``strong_ratio`` alerting even when the
# recent noise band is wide (``strong_ratio_alone``). Setting label -> (month, day) overrides.
_BAND_ARM = (
    (6.0, 5.0),
    (5.0, 4.0),
    (4.5, 3.0),
    (4.0, 3.0),
    (3.5, 2.5),
    (3.0, 2.0),
    (2.5, 2.0),
    (2.0, 1.75),
    (1.5, 1.5),
    (1.0, 1.5),
)
_ALONE_ARM = ((4.5, 4.0), (4.0, 3.0), (3.5, 3.0), (3.5, 2.5), (3.5, 2.0))
OURS_SETTINGS: dict[str, tuple[dict, dict]] = {
    **{
        _ours_label(t, r): (
            {"threshold": t, "strong_ratio": r, "strong_ratio_alone": False},
            {"threshold": t, "strong_ratio": r, "strong_ratio_alone": False},
        )
        for t, r in _BAND_ARM
    },
    **{
        _ours_label(t, r, True): (
            {"threshold": t, "strong_ratio": r, "strong_ratio_alone": True},
            {"threshold": t, "strong_ratio": r, "strong_ratio_alone": False},
        )
        for t, r in _ALONE_ARM
    },
}
CURVES: dict[str, list[tuple[str, Callable[..., tuple[np.ndarray, np.ndarray]]]]] = {
    "robust_step": [
        (label, robust_step_with(month=m, day=d)) for label, (m, d) in OURS_SETTINGS.items()
    ],
    "zscore_14": [
        (f"threshold {t:g} SD" + (" (default)" if t == 3 else ""), zscore_with(t, 14))
        for t in (8.0, 6.0, 5.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0)
    ],
    "pct10_mean7": [
        (
            f"{share:.0%} of the mean" + (" (default)" if share == 0.10 else ""),
            pct_of_mean_with(share, 7),
        )
        for share in (2.0, 1.0, 0.75, 0.5, 0.3, 0.2, 0.1)
    ],
    "ruptures_binseg": [
        (
            f"penalty {beta:g} log n" + (" (default)" if beta == RUPTURES_DEFAULT_BETA else ""),
            ruptures_with(beta),
        )
        for beta in RUPTURES_BETAS
    ],
}


def operating_curves(series: Sequence[RealSeries], events: Sequence[Event]) -> dict:
    """Every setting in ``CURVES`` scored on the same events and real breaks."""
    curves: dict[str, list[dict]] = {}
    for family, settings in CURVES.items():
        rows = []
        for label, detect in settings:
            r = score_method(Method(family, detect), series, events, detail=False)
            rows.append(
                {
                    "setting": label,
                    "recall": r["injected"]["recall"],
                    "recall_x2_shifts": r["injected"]["recall_x2_shifts"],
                    "recall_time_series_events": r["injected"]["recall_time_series_events"],
                    "precision": r["injected"]["precision"],
                    "real_break_recall": r["real_breaks"]["recall"],
                    "false_alerts_per_series_year": r["false_alerts_per_series_year"],
                    "by_metric": r["by_metric"],
                }
            )
        curves[family] = rows
    return curves


# How the figures choose a default: the most real breaks caught among the settings within the
# issue's false-alert limit; then the most injected x2+ shifts; then the fewest false alerts.
FALSE_ALERT_LIMIT = 0.5


def evidence_choice(rows: Sequence[dict], limit: float = FALSE_ALERT_LIMIT) -> dict | None:
    """The setting of one operating curve that the rule above chooses (None if none fits)."""
    within = [
        r
        for r in rows
        if r["false_alerts_per_series_year"] is not None
        and r["false_alerts_per_series_year"] <= limit
    ]
    return max(
        within,
        key=lambda r: (
            r["real_break_recall"] or 0,
            r["recall_x2_shifts"],
            -r["false_alerts_per_series_year"],
        ),
        default=None,
    )


def choose_by_metric(rows: Sequence[dict], config_dir: Path | str | None = None) -> dict:
    """Per configured metric, the setting of our curve that ``evidence_choice`` picks on that
    metric's own series (the quietest one when none is within the limit), what it costs, and
    whether config/monitors.yaml ships it."""
    cfg = an.load_config(config_dir)
    out = {}
    for metric in dict.fromkeys(METRIC_OF.values()):
        own = [
            {"setting": r["setting"], **r["by_metric"][metric]}
            for r in rows
            if r["setting"] in OURS_SETTINGS
        ]
        pick = evidence_choice(own) or min(
            own,
            key=lambda r: (
                r["false_alerts_per_series_year"] is None,
                r["false_alerts_per_series_year"] or 0.0,
            ),
        )
        frequency = cfg.metrics[metric].frequency
        overrides = OURS_SETTINGS[pick["setting"]][0 if frequency == "month" else 1]
        shipped = cfg.params(metric)
        out[metric] = {
            **pick,
            "shipped": all(getattr(shipped, k) == v for k, v in overrides.items()),
            "within_limit": (pick["false_alerts_per_series_year"] or 0.0) <= FALSE_ALERT_LIMIT,
        }
    return out


def at_budgets(curves: dict, budgets: Sequence[float] = BUDGETS) -> dict:
    """Per method and budget: its best x2+ shift recall among the settings whose false alerts
    per series-year stay within the budget (0 and no setting when none does)."""
    out: dict[str, dict[str, dict]] = {}
    for family, rows in curves.items():
        out[family] = {}
        for budget in budgets:
            within = [r for r in rows if r["false_alerts_per_series_year"] <= budget]
            best = max(
                within,
                key=lambda r: (r["recall_x2_shifts"], -r["false_alerts_per_series_year"]),
                default=None,
            )
            out[family][f"{budget:g}"] = {
                "recall_x2_shifts": best["recall_x2_shifts"] if best else 0.0,
                "recall": best["recall"] if best else 0.0,
                "real_break_recall": best["real_break_recall"] if best else None,
                "false_alerts_per_series_year": (
                    best["false_alerts_per_series_year"] if best else None
                ),
                "setting": best["setting"] if best else None,
            }
    return out


def time_all_monitors(root: str | None = None) -> dict:
    """Every configured anomaly metric and policy rule over the full real history, timed.

    Uses config/monitors.yaml and the mart-shaped real frames (``series.monitor_frames``);
    metrics and rules whose table has no real figures (SEGOB section 5) are listed apart.
    """
    import datetime as dt

    from returnwatch.monitor import rules
    from returnwatch_replay.series import monitor_frames

    run_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    frames = monitor_frames(root)
    loaded = time.perf_counter()
    cfg = an.load_config()
    policy = rules.load_rules()
    found, skipped = [], []
    for name, monitor in cfg.metrics.items():
        if monitor.table not in frames:
            skipped.append(name)
            continue
        found += an.evaluate_frame(
            frames[monitor.table],
            name,
            monitor,
            run_at=run_at,
            params=cfg.params(monitor),
            regimes=cfg.regimes,
            annotate_within_periods=cfg.annotate_within_periods,
        )
    for name, rule in policy.items():
        if rule.table not in frames:
            skipped.append(name)
            continue
        found += rules.evaluate_rule(frames[rule.table], name, rule, run_at=run_at)
    done = time.perf_counter()
    return {
        "seconds_evaluate": round(done - loaded, 3),
        "seconds_load_real_files": round(loaded - started, 3),
        "findings": len(found),
        "series": len({f.series for f in found}),
        "without_real_figures": skipped,
    }


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def real_breaks_table(report: dict) -> str:
    events = list(next(iter(report["results"].values()))["real_breaks"]["by_event"])
    rows = [
        f"{'method':<16} {'caught':>8} {'recall':>6} {'delay':>5} {'false/s-yr':>10} "
        f"{'controls':>8}  " + "  ".join(f"{e:>18}" for e in events)
    ]
    for name, r in report["results"].items():
        rb = r["real_breaks"]
        delay = "-" if rb["median_delay"] is None else f"{rb['median_delay']:g}"
        rows.append(
            f"{name:<16} {rb['caught']:>3}/{rb['scored']:<4} {_fmt(rb['recall']):>6} "
            f"{delay:>5} {_fmt(r['false_alerts_per_series_year']):>10} "
            f"{rb['negative_controls_alerted']:>8}  "
            + "  ".join(f"{rb['by_event'].get(e, '-'):>18}" for e in events)
        )
    return "\n".join(rows)


def table(report: dict) -> str:
    rows = ["injected events   recall  x2 shifts  precision  median_delay  recall_ts"]
    for name, r in report["results"].items():
        i = r["injected"]
        rows.append(
            f"{name:<16} {_fmt(i['recall']):>7}  {_fmt(i['recall_x2_shifts']):>9}  "
            f"{_fmt(i['precision']):>9}  {_fmt(i['median_delay'], '.1f'):>12}  "
            f"{_fmt(i['recall_time_series_events']):>9}"
        )
    rows.append("")
    types = list(next(iter(report["results"].values()))["injected"]["recall_by_type"])
    rows.append("recall by type".ljust(34) + "".join(f"{n:>17}" for n in report["results"]))
    for t in types:
        cells = []
        for r in report["results"].values():
            v = r["injected"]["recall_by_type"][t]
            cells.append(f"{'-' if v is None else f'{v:.3f}':>17}")
        rows.append(f"{t:<34}" + "".join(cells))
    return "\n".join(rows)


def budgets_table(report: dict) -> str:
    rows = [
        f"{'method':<16} "
        + "  ".join(f"{'<= ' + b + ' false/s-yr':>36}" for b in map(lambda x: f"{x:g}", BUDGETS))
    ]
    for family, at in report["budgets"].items():
        cells = []
        for b in BUDGETS:
            cell = at[f"{b:g}"]
            cells.append(
                f"{cell['recall_x2_shifts']:.3f} ({cell['setting'] or 'no setting'})".rjust(36)
            )
        rows.append(f"{family:<16} " + "  ".join(cells))
    return "\n".join(rows)


def target_checks(report: dict, ours: str = "robust_step") -> list[dict]:
    """The issue's targets, each with the measured figure and whether it holds."""
    r = report["results"][ours]
    rb = r["real_breaks"]
    checks = [
        {
            "target": "real breaks: recall >= 0.9 within one period",
            "met": rb["recall"] >= 0.9,
            "value": rb["recall"],
            "detail": f"{rb['caught']}/{rb['scored']}; missed: {', '.join(rb['missed']) or 'none'}",
        },
        {
            "target": "<= 0.5 false alerts per series-year outside the labelled breaks",
            "met": r["false_alerts_per_series_year"] <= 0.5,
            "value": r["false_alerts_per_series_year"],
            "detail": "",
        },
    ]
    for metric, pick in report["chosen_by_metric"].items():
        checks.append(
            {
                "target": f"{metric}: config ships the setting its figures choose (most real "
                f"breaks within {FALSE_ALERT_LIMIT:g} false alerts/series-year)",
                "met": pick["shipped"],
                "value": pick["setting"],
                "detail": f"real breaks {pick['real_breaks']}, false alerts "
                f"{pick['false_alerts_per_series_year']}, x2+ shifts "
                f"{pick['recall_x2_shifts']}",
            }
        )
    for b in BUDGETS:
        at = {f: report["budgets"][f][f"{b:g}"]["recall_x2_shifts"] for f in report["budgets"]}
        mine, z = at[ours], at["zscore_14"]
        best_other = max((v, f) for f, v in at.items() if f != ours)
        checks.append(
            {
                "target": f"budget {b:g}: x2+ shift recall >= 1.5x zscore_14's and >= every baseline",
                "met": mine >= 1.5 * z and mine >= best_other[0],
                "value": mine,
                "detail": f"ours {mine:.3f}, zscore_14 {z:.3f} (x1.5 = {1.5 * z:.3f}), best "
                f"baseline {best_other[1]} {best_other[0]:.3f}",
            }
        )
    return checks


def curves_table(report: dict) -> str:
    rows = [
        f"{'method':<16} {'setting':<50} {'recall':>6}  {'x2 shifts':>9}  "
        f"{'real breaks':>11}  {'false alerts/series-yr':>22}"
    ]
    for family, settings in report["curves"].items():
        for row in settings:
            real = row["real_break_recall"]
            rows.append(
                f"{family:<16} {row['setting']:<50} {row['recall']:>6.3f}  "
                f"{row['recall_x2_shifts']:>9.3f}  "
                f"{'-' if real is None else f'{real:.3f}':>11}  "
                f"{row['false_alerts_per_series_year']:>22.3f}"
            )
    return "\n".join(rows)


def plot_curves(report: dict, path: Path) -> None:
    """The operating curves (x2+ shift recall, and real-break recall, against false alerts per
    series-year), defaults marked, budgets drawn: docs/img/detection_curves.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for family, all_rows in report["curves"].items():
        # Our two arms are drawn apart (the ratio-alone arm dashed); the shipped point is a star.
        arms = [
            [r for r in all_rows if r["setting"] != SHIPPED and "in any band" not in r["setting"]],
            [r for r in all_rows if "in any band" in r["setting"]],
        ]
        for ax, key in zip(axes, ("recall_x2_shifts", "real_break_recall")):
            line = None
            for arm, style in zip(arms, ("-", "--")):
                if not arm:
                    continue
                (line,) = ax.plot(
                    [r["false_alerts_per_series_year"] for r in arm],
                    [r[key] or 0 for r in arm],
                    marker="o",
                    ms=3,
                    ls=style,
                    label=(family if style == "-" else f"{family}, x ratio alone (months)"),
                    color=None if line is None else line.get_color(),
                )
            shipped = report["results"][family]
            y = (
                shipped["injected"]["recall_x2_shifts"]
                if key == "recall_x2_shifts"
                else shipped["real_breaks"]["recall"]
            )
            ax.plot(
                shipped["false_alerts_per_series_year"],
                y or 0,
                marker="*",
                ms=12,
                color=line.get_color(),
            )
    for ax, title in zip(axes, ("injected shifts of x2 or more", "labelled real policy breaks")):
        for b in BUDGETS:
            ax.axvline(b, color="grey", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_xlim(0.05, 20)
        ax.set_ylim(0, 1)
        ax.set_xlabel("false alerts per series-year on the real history (log)")
        ax.set_title(f"recall: {title}")
    axes[0].set_ylabel("recall (alert within the window)")
    axes[1].axhline(0.9, color="grey", lw=0.6, ls="--")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        "make bench-detect: each method's knobs from quiet to sensitive "
        "(star = as shipped; dotted = budgets 0.25, 0.5, 1)",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


SCHEMA = {
    "methods.<name>.setting": "the method's default setting (its operating curve marks it)",
    "methods.<name>.real_breaks": "labelled real breaks (bench/labels/real_breaks.csv) scored / "
    "caught (an onset in the expected direction within one period of the first full period), "
    "recall, median_delay (periods after the first full period; -1 = the event's own partial "
    "period), by_event, missed, negative_controls_alerted (none-labels with an alert within ±1)",
    "methods.<name>.false_alerts_per_series_year": "alert onsets on the real series after the "
    "warm-up, outside ±1 period of that series' up/down/uncertain labels, per series-year",
    "methods.<name>.injected": "on the injected events: recall (alert within K periods), "
    "recall_x2_shifts (level shifts of x2 or /2 and more), precision, median_delay",
    "methods.<name>.budgets.<b>": "over the method's operating curve, the best recall_x2_shifts "
    "among settings with at most b false alerts per series-year, with that setting, its "
    "recall on all events and on the real breaks (recall 0 and setting null: no setting fits)",
    "chosen_by_metric.<metric>": "the setting of robust_step's curve the rule picks on that "
    "metric's series (most real breaks within 0.5 false alerts per series-year, then most x2+ "
    "shifts), its figures there, and whether config/monitors.yaml ships it",
    "targets": "the issue's targets for robust_step: met, value, detail",
}


def results_file(report: dict) -> dict:
    """``bench/results/detection.json``: the figures a reader needs, schema included."""
    methods = {}
    for name, r in report["results"].items():
        curve = report.get("curves", {}).get(name, [])
        default = next(
            (row["setting"] for row in curve if "(default)" in row["setting"]),
            "per metric, config/monitors.yaml (see chosen_by_metric)",
        )
        methods[name] = {
            "setting": default,
            "real_breaks": {k: v for k, v in r["real_breaks"].items()},
            "false_alerts_per_series_year": r["false_alerts_per_series_year"],
            "injected": {
                k: r["injected"][k]
                for k in ("recall", "recall_x2_shifts", "precision", "median_delay")
            },
            "budgets": report.get("budgets", {}).get(name),
        }
    return {
        "schema": SCHEMA,
        "labels": "bench/labels/real_breaks.csv",
        "events": report["events"],
        "series": report["series"],
        "seed": report["seed"],
        "budgets": list(BUDGETS),
        "methods": methods,
        "chosen_by_metric": report.get("chosen_by_metric"),
        "targets": target_checks(report) if "budgets" in report else [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with the real files (default include/replay)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--plot", default=str(PLOT), help="operating curves PNG ('' for none)")
    args = parser.parse_args(argv)
    report = run(real_series(args.data) if args.data else None, with_curves=True)
    print(
        f"{report['events']} injected events {report['events_by_type']} on "
        f"{report['series']} real series, seed {report['seed']}, window K={K}, "
        f"{report['seconds']} s\n"
    )
    print("labelled real breaks (bench/labels/real_breaks.csv), each method at its default:")
    print(real_breaks_table(report))
    print("\n" + table(report))
    steps = report["natural_x2_steps"]
    print(
        f"\nthe real history itself steps x2 (2 periods running, outside the labelled "
        f"breaks) {steps['steps']} times in {steps['series_years']} series-years = "
        f"{steps['per_series_year']} per series-year"
    )
    print("\noperating curves (the same events; each method from quiet to sensitive):")
    print(curves_table(report))
    print("\nrecall on x2+ shifts at each false-alert budget (setting that reaches it):")
    print(budgets_table(report))
    print("\ntargets (robust_step):")
    for check in target_checks(report):
        print(
            f"  [{'met' if check['met'] else 'MISSED'}] {check['target']}: "
            f"{check['value']} {check['detail']}"
        )
    timing = time_all_monitors(args.data)
    report["all_monitors_full_history"] = timing
    print(
        f"\nall monitors over the full real history: {timing['seconds_evaluate']} s "
        f"(+{timing['seconds_load_real_files']} s reading the files), "
        f"{timing['findings']} findings; no real figures for "
        f"{', '.join(timing['without_real_figures'])}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results_file(report), indent=2) + "\n")
    detail = out.with_name(out.stem + "_detail.json")
    detail.write_text(
        json.dumps(
            {
                "meta": {k: v for k, v in report.items() if k != "results"},
                "methods": report["results"],
            },
            indent=2,
        )
        + "\n"
    )
    if args.plot:
        plot_curves(report, Path(args.plot))
    print(f"\nwrote {out}, {detail.name}" + (f" and {args.plot}" if args.plot else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
