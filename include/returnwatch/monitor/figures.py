"""What each monitored figure is, in plain words, where it comes from, and how severe its changes are.

What this module owns: the ``figures`` section of ``config/monitors.yaml`` (its models are
in ``monitor.monitors_config``), one entry per anomaly series figure (``<metric>:<value
column>``: ``name``, ``counts``, ``publisher_table``, ``raw_tables``, ``severity`` per
direction), and ``policy_context(period)``, the policy regimes in force and the changes within
a period from ``dbt_project/seeds/policy_timeline.csv``, for every data alert.

Pure apart from reading those two files (cached). Each field explained:
docs/internals.md#monitor-figures.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from returnwatch.monitor import monitors_config
from returnwatch.monitor.monitors_config import Figure, SeverityPolicy

if TYPE_CHECKING:
    from returnwatch.monitor.findings import Finding

# ``Figure`` and ``SeverityPolicy`` are part of the one model of the file, in
# ``monitor.monitors_config``.


def load_figures(directory: Path | str | None = None) -> dict[str, Figure]:
    """The ``figures`` section of config/monitors.yaml (validated, cached per folder)."""
    return monitors_config.load(directory).figures


def figure_for(series: str, directory: Path | str | None = None) -> Figure | None:
    """The figure of an anomaly series '<metric>:<column>[:<group values>]'."""
    parts = series.split(":")
    if len(parts) < 2:
        return None
    return load_figures(directory).get(f"{parts[0]}:{parts[1]}")


# --------------------------------------------------------------------------- plain names


@functools.cache
def _countries() -> dict[str, str]:
    """ISO3 and CBP citizenship label -> English name (the dbt countries seed)."""
    from returnwatch import settings

    path = settings.dbt_project_dir() / "seeds" / "countries.csv"
    out: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out[row["iso3"]] = row["name_en"]
            if row.get("cbp_citizenship"):
                out[row["cbp_citizenship"]] = row["name_en"]
    return out


def group_words(value: str) -> str:
    """A series group value in plain words: 'ALL' -> 'all nationalities', 'GTM' ->
    'Guatemala', 'MEXICO' -> 'Mexico', CBP's 'OTHER' -> 'countries CBP groups as OTHER'."""
    if value == "ALL":
        return "all nationalities"
    if value == "OTHER":
        return "countries CBP groups as OTHER"
    if value == "unaccompanied_minors":
        return "unaccompanied Mexican children"
    known = _countries().get(value)
    if known:
        return known
    return value.title() if value.isupper() and len(value) > 3 else value


def series_name(series: str, directory: Path | str | None = None) -> str | None:
    """The plain name of an anomaly series, its group values filled in; None if unknown."""
    figure = figure_for(series, directory)
    if figure is None:
        return None
    groups = [group_words(p) for p in series.split(":")[2:] if p]
    name = figure.name
    for i, words in enumerate(groups):
        name = name.replace(f"{{{i}}}", words)
    return name


# --------------------------------------------------------------------------- severity


_RANK = {"info": 0, "check": 1, "warning": 2, "critical": 3}


def apply_severity_policy(finding: Finding, directory: Path | str | None = None) -> Finding:
    """``finding`` with its severity capped by its figure's policy for the direction."""
    figure = figure_for(finding.series, directory)
    direction = (finding.details or {}).get("direction")
    if figure is None or direction not in ("up", "down"):
        return finding
    cap = getattr(figure.severity, direction)
    if _RANK[finding.severity] <= _RANK[cap]:
        return finding
    details = {
        **finding.details,
        "severity_by_detector": finding.severity,
        "severity_policy": f"{direction}: at most {cap} ({figure.severity.why})",
    }
    return dataclasses.replace(finding, severity=cap, details=details)


# --------------------------------------------------------------------------- policy timeline


@dataclasses.dataclass(frozen=True)
class Policy:
    policy_id: str
    kind: str
    starts_on: dt.date
    ends_on: dt.date | None
    label: str
    effect_on_children: str
    citation: str
    url: str


@functools.cache
def policy_timeline() -> tuple[Policy, ...]:
    from returnwatch import settings

    path = settings.dbt_project_dir() / "seeds" / "policy_timeline.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return tuple(
            Policy(
                policy_id=r["policy_id"],
                kind=r["kind"],
                starts_on=dt.date.fromisoformat(r["starts_on"]),
                ends_on=dt.date.fromisoformat(r["ends_on"]) if r["ends_on"] else None,
                label=r["label"],
                effect_on_children=r["effect_on_children"],
                citation=r["citation"],
                url=r["url"],
            )
            for r in csv.DictReader(handle)
        )


def _bounds(period: str) -> tuple[dt.date, dt.date]:
    if len(period) == 7:
        start = dt.date.fromisoformat(period + "-01")
        nxt = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        return start, nxt - dt.timedelta(days=1)
    day = dt.date.fromisoformat(period[:10])
    return day, day


def policy_context(period: Any) -> dict[str, Any]:
    """The regimes in force in ``period`` ('YYYY-MM' or a day) and the changes within it.

    ``{"in_force": [Policy...], "changes": [(day, text, Policy)...]}``; a change is a regime
    beginning or ending, or an event, on a day inside the period.
    """
    if not period:
        return {"in_force": [], "changes": []}
    first, last = _bounds(str(period))
    in_force, changes = [], []
    for p in policy_timeline():
        if p.kind == "law":
            continue
        if p.kind == "regime" and p.starts_on <= last and (p.ends_on or dt.date.max) >= first:
            in_force.append(p)
        if first <= p.starts_on <= last:
            changes.append((p.starts_on, p.label if p.kind == "event" else f"{p.label} began", p))
        if p.kind == "regime" and p.ends_on and first <= p.ends_on < last:
            changes.append((p.ends_on, f"last day of: {p.label}", p))
    changes.sort(key=lambda c: (c[0], c[2].policy_id))
    return {"in_force": in_force, "changes": changes}


__all__ = [
    "Figure",
    "Policy",
    "SeverityPolicy",
    "apply_severity_policy",
    "figure_for",
    "group_words",
    "load_figures",
    "policy_context",
    "policy_timeline",
    "series_name",
]
