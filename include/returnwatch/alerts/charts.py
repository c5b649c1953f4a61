"""A small chart per data alert: the series, its usual band, the flagged period(s).

What this module owns:

- ``ChartSpec``: what to draw (periods, values, optional band / threshold / second series,
  flagged periods), independent of where the figures came from;
- ``render_png(spec)``: the PNG (``CHART_SIZE_PX``, readable on a phone). matplotlib is
  imported inside the function, with the Agg backend: nothing graphical at import time;
- ``spec_for(incident, findings, con=None)``: the spec for an alert. With a warehouse
  connection the series is read as the monitor reads it (anomalies: ``anomalies.metric_rows``
  then ``scan`` for the band of every period; rules: ``rules.rule_rows`` aggregated per
  period); without one, or when that fails, it is drawn from the findings' own details.
  Kinds without a series (ingest, task failures) get no chart.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.alerts.wording import is_share, number, period_text, series_suffix

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

CHART_SIZE_PX = (800, 400)
_DPI = 100
# Periods shown before the newest flagged one: two years of months, ~3 months of days.
_SHOWN = {"month": 30, "day": 60}


@dataclass(frozen=True)
class ChartSpec:
    """What a chart shows. ``periods`` are ISO dates or months, oldest first."""

    kind: str  # anomaly / policy_rule / revision / discrepancy / freshness
    title: str
    periods: list[str]
    values: list[float | None]
    flagged: list[str] = field(default_factory=list)
    band_low: list[float | None] | None = None
    band_high: list[float | None] | None = None
    threshold: float | None = None
    threshold_label: str | None = None
    second: list[float | None] | None = None  # e.g. the older vintage, the other agency
    values_label: str = "published figure"
    second_label: str | None = None
    share: bool = False  # values are fractions shown as percentages
    note: str | None = None  # one line under the title (source, vintage)


def render_png(spec: ChartSpec) -> bytes:
    """The chart as PNG bytes, exactly ``CHART_SIZE_PX``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    width, height = CHART_SIZE_PX
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    ax = fig.add_axes((0.09, 0.14, 0.88, 0.70))
    # Matplotlib plots dates through its units registry; its stubs type x as numbers only.
    xs: list[Any] = [_x(p) for p in spec.periods]
    values = [_nan(v) for v in spec.values]
    if spec.band_low is not None and spec.band_high is not None:
        ax.fill_between(
            xs,
            [_nan(v) for v in spec.band_low],
            [_nan(v) for v in spec.band_high],
            color="#9ecae1",
            alpha=0.45,
            linewidth=0,
            label="usual range",
            step="mid" if spec.kind == "freshness" else None,
        )
    if spec.second is not None:
        ax.plot(
            xs,
            [_nan(v) for v in spec.second],
            color="#888888",
            linewidth=1.5,
            linestyle="--",
            label=spec.second_label or "other",
        )
    if spec.kind == "freshness":
        # A day without figures is a NaN bar, which draws nothing, yet each bar costs
        # matplotlib a patch (a "stopped" source spans years of days). Only the days with
        # figures are drawn, and the first and last days, which keep the axis's span and the
        # legend's swatch (the first bar) as they were: the PNG is the same.
        shown = [
            i for i, v in enumerate(values) if not math.isnan(v) or i == 0 or i == len(values) - 1
        ]
        ax.bar(
            [xs[i] for i in shown],
            [values[i] for i in shown],
            width=0.8,
            color="#3182bd",
            label=spec.values_label,
        )
        ax.set_yticks([])
    else:
        ax.plot(
            xs,
            values,
            color="#08519c",
            linewidth=2,
            marker="o",
            markersize=3,
            label=spec.values_label,
        )
    if spec.threshold is not None:
        ax.axhline(
            spec.threshold,
            color="#e6550d",
            linewidth=1.2,
            linestyle=":",
            label=spec.threshold_label or "rule level",
        )
    flagged = [(x, v) for p, x, v in zip(spec.periods, xs, values) if p in set(spec.flagged)]
    if flagged:
        fx, fy = zip(*flagged)
        if spec.kind == "freshness":
            for x in fx:
                ax.axvspan(
                    x - dt.timedelta(hours=10),
                    x + dt.timedelta(hours=10),
                    color="#de2d26",
                    alpha=0.35,
                )
            ax.plot([], [], color="#de2d26", alpha=0.35, linewidth=8, label="missing")
        else:
            ax.scatter(fx, fy, s=90, color="#de2d26", zorder=5, label="flagged")
    if spec.share:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:.0f}%"))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.tick_params(labelsize=9)
    for label in ax.get_xticklabels():
        label.set_rotation(0)
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncol=4)
    fig.text(0.02, 0.94, spec.title[:95], fontsize=12, fontweight="bold", ha="left")
    if spec.note:
        fig.text(0.02, 0.885, spec.note[:130], fontsize=8.5, color="#555555", ha="left")
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=_DPI)
    return out.getvalue()


def _x(period: str) -> dt.date:
    text = str(period)
    return dt.date.fromisoformat(text + "-01" if len(text) == 7 else text[:10])


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


# --------------------------------------------------------------------------- specs


def spec_for(
    incident: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]],
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    note: str | None = None,
) -> ChartSpec | None:
    """The chart for an alert about ``findings`` of ``incident``; None when there is none."""
    monitor = incident.get("monitor")
    findings = [f for f in findings if f]
    if not findings:
        return None
    try:
        if monitor == "anomaly" and con is not None:
            spec = _anomaly_from_warehouse(con, findings, note)
            if spec is not None:
                return spec
        if monitor == "policy_rule" and con is not None:
            spec = _rule_from_warehouse(con, findings, note)
            if spec is not None:
                return spec
    except Exception as exc:  # noqa: BLE001 - a chart is a nicety: the message goes anyway
        log.warning(
            "chart for %s: series not readable (%s: %s); drawing from the findings",
            incident.get("incident_id"),
            type(exc).__name__,
            str(exc)[:200],
        )
    return spec_from_details(incident, findings, note=note)


def spec_from_details(
    incident: Mapping[str, Any], findings: Sequence[Mapping[str, Any]], *, note: str | None = None
) -> ChartSpec | None:
    """A chart from what the findings themselves carry (no warehouse)."""
    monitor = incident.get("monitor")
    ordered = sorted(findings, key=lambda f: str(f.get("period") or ""))
    lead = (ordered[-1].get("details") or {}) if ordered else {}
    label = str(lead.get("label") or incident.get("series"))
    if monitor == "freshness":
        return _freshness(label, ordered[-1], note)
    if monitor == "anomaly":
        rows = [f for f in ordered if (f.get("details") or {}).get("band")]
        if not rows:
            return None
        values = [(f.get("details") or {}).get("value", f.get("value")) for f in rows]
        lows = [(f.get("details") or {})["band"][0] for f in rows]
        highs = [(f.get("details") or {})["band"][1] for f in rows]
        share = is_share(lead, *values, *lows, *highs)
        return ChartSpec(
            kind="anomaly",
            title=label,
            periods=[str(f["period"]) for f in rows],
            values=values,
            band_low=lows,
            band_high=highs,
            flagged=[str(f["period"]) for f in rows],
            share=share,
            note=note,
        )
    if monitor == "policy_rule":
        values = [f.get("value") for f in ordered]
        share = is_share({**lead, "metric": lead.get("condition")}, *values)
        return ChartSpec(
            kind="policy_rule",
            title=label,
            periods=[str(f["period"]) for f in ordered],
            values=values,
            flagged=[str(f["period"]) for f in ordered],
            threshold=_threshold(lead),
            threshold_label="rule level",
            share=share,
            note=note,
        )
    if monitor in ("revision", "discrepancy"):
        rows = [
            r
            for r in lead.get("periods") or lead.get("restated") or lead.get("revisions") or []
            if isinstance(r, Mapping) and r.get("period")
        ]
        if not rows:
            return None
        rows = sorted(rows, key=lambda r: str(r["period"]))
        old = [r.get("old", r.get("other")) for r in rows]
        new = [r.get("new", r.get("value")) for r in rows]
        share = is_share(lead, *old, *new)
        revision = monitor == "revision"
        return ChartSpec(
            kind=monitor,
            title=label,
            periods=[str(r["period"]) for r in rows],
            values=new,
            second=old,
            flagged=[str(r["period"]) for r in rows],
            values_label="new figures"
            if revision
            else str(lead.get("values_label") or "first source"),
            second_label="as first published"
            if revision
            else str(lead.get("second_label") or "second source"),
            share=share,
            note=note,
        )
    return None


def _freshness(label: str, finding: Mapping[str, Any], note: str | None) -> ChartSpec | None:
    d = finding.get("details") or {}
    missed = [str(p)[:10] for p in d.get("missed_periods") or []]
    newest = d.get("newest_period")
    if not missed or not newest:
        return None
    first = _x(str(newest)) - dt.timedelta(days=14)
    last = _x(missed[-1])
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    newest_day = _x(str(newest))
    periods = [d_.isoformat() for d_ in days]
    # Published days up to the newest period (weekends included: the calendar is in details).
    values = [1.0 if d_ <= newest_day and d_.weekday() < 5 else None for d_ in days]
    return ChartSpec(
        kind="freshness",
        title=f"{label}: days with figures",
        periods=periods,
        values=values,
        flagged=missed,
        values_label="figures published",
        note=note or f"newest figures: {period_text(newest)}",
    )


def _threshold(details: Mapping[str, Any]) -> float | None:
    parts = str(details.get("condition") or "").rsplit(" ", 1)
    try:
        return float(parts[-1])
    except ValueError:
        return None


def _anomaly_from_warehouse(
    con: duckdb.DuckDBPyConnection, findings: Sequence[Mapping[str, Any]], note: str | None
) -> ChartSpec | None:
    from returnwatch.monitor import anomalies

    lead = findings[0].get("details") or {}
    metric = lead.get("metric")
    cfg = anomalies.load_config()
    if metric not in cfg.metrics:
        return None
    monitor = cfg.metrics[metric]
    frame = anomalies.metric_rows(con, monitor)
    series_name = str(findings[0].get("series") or "")
    return anomaly_spec(frame, monitor, cfg.params(monitor), series_name, findings, note=note)


def anomaly_spec(
    frame: Any,
    monitor: Any,
    params: Any,
    series_name: str,
    findings: Sequence[Mapping[str, Any]],
    *,
    note: str | None = None,
) -> ChartSpec | None:
    """Series, band of every period (``anomalies.scan``) and flagged periods, from rows."""
    import numpy as np

    from returnwatch.monitor import anomalies

    name = series_name.split(":", 1)[1] if ":" in series_name else series_name
    frames = anomalies.series_frames(frame, monitor)
    if name not in frames:
        return None
    values = frames[name]
    result = anomalies.scan(values.to_numpy(), params)
    flagged = sorted(str(f.get("period")) for f in findings if f.get("period"))
    iso = [
        (ts.strftime("%Y-%m") if monitor.frequency == "month" else ts.date().isoformat())
        for ts in values.index
    ]
    end = max((iso.index(p) for p in flagged if p in iso), default=len(iso) - 1)
    start = max(0, end - _SHOWN[monitor.frequency])
    stop = min(len(iso), end + 4)
    window = slice(start, stop)

    def clean(arr: Any) -> list[float | None]:
        return [None if not np.isfinite(v) else float(v) for v in np.asarray(arr)[window]]

    lead = findings[0].get("details") or {}
    vals = clean(result.values)
    share = is_share(lead, *[v for v in vals if v is not None])
    return ChartSpec(
        kind="anomaly",
        title=str(lead.get("label") or monitor.label) + series_suffix(series_name),
        periods=iso[window],
        values=vals,
        band_low=clean(result.low),
        band_high=clean(result.high),
        flagged=flagged,
        share=share,
        note=note,
    )


def _rule_from_warehouse(
    con: duckdb.DuckDBPyConnection, findings: Sequence[Mapping[str, Any]], note: str | None
) -> ChartSpec | None:
    from returnwatch.monitor import rules

    lead = findings[0].get("details") or {}
    name = lead.get("rule") or findings[0].get("series")
    configured = rules.load_rules()
    if name not in configured:
        return None
    rule = configured[name]
    return rule_spec(rules.rule_rows(con, rule), rule, findings, note=note)


def rule_spec(
    frame: Any, rule: Any, findings: Sequence[Mapping[str, Any]], *, note: str | None = None
) -> ChartSpec | None:
    """The rule's per-period figure over time, its level and the periods breaking it."""
    import pandas as pd

    from returnwatch.monitor import rules

    rows = rules.matching_rows(frame, rule)
    if rows.empty:
        return None
    start = pd.to_datetime(rows[rule.period_column]).dt.normalize()
    if rule.period == "month":
        start = start.dt.to_period("M").dt.to_timestamp()
    per = (
        rows.assign(_start=start.to_numpy())
        .groupby("_start")[rule.value_column]
        .agg(rule.aggregate)
        .sort_index()
    )
    iso = [
        (ts.strftime("%Y-%m") if rule.period == "month" else ts.date().isoformat())
        for ts in per.index
    ]
    flagged = sorted(str(f.get("period")) for f in findings if f.get("period"))
    end = max((iso.index(p) for p in flagged if p in iso), default=len(iso) - 1)
    window = slice(max(0, end - _SHOWN[rule.period]), min(len(iso), end + 4))
    lead = findings[0].get("details") or {}
    values = [None if pd.isna(v) else float(v) for v in per.to_numpy()[window]]
    threshold = (
        rule.condition.above
        if rule.condition.above is not None
        else (
            rule.condition.at_least if rule.condition.at_least is not None else rule.condition.below
        )
    )
    share = is_share({**lead, "metric": rule.value_column}, *values, threshold)
    return ChartSpec(
        kind="policy_rule",
        title=str(rule.label),
        periods=iso[window],
        values=values,
        flagged=flagged,
        threshold=threshold,
        threshold_label=f"rule level ({number(threshold, share)})",
        share=share,
        note=note,
    )
