"""What a monitor found: the ``Finding`` record every monitor produces.

This module owns the shape of a finding and nothing else. A finding is one observation made by
one monitor during one run ("HHS daily figures: 4 publishing days missing"); it is stored in
``monitor.findings`` by ``monitor.store`` and turned into incidents by ``monitor.incidents``.

- ``severity="info"``: recorded for people who look at the warehouse (e.g. a Great
  Expectations ``warn`` result), never opens an incident, never alerts.
- ``"check"``: to confirm with the publisher before citing (a policy-rule finding resting on a
  handful of records); recorded and listed (summary, ops page), never opens an incident.
- ``"warning"`` / ``"critical"``: opens or updates the incident keyed by ``(monitor, series)``.

It imports only the standard library: DAG files and the validation code import it freely.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "check", "warning", "critical"]
# ``check``: a finding to confirm with the publisher before anyone cites it (a policy rule
# resting on a handful of records): recorded and listed like ``info``, never paged.
SEVERITY_RANK: dict[str, int] = {"info": 0, "check": 1, "warning": 2, "critical": 3}


@dataclass
class Finding:
    """One observation by one monitor in one run.

    ``series`` names what was observed within the monitor (a source for freshness, a metric
    for anomalies); ``(monitor, series)`` is the incident key, so it must be stable across runs.
    ``period`` is the data period the finding is about (ISO date or month), ``value`` the
    measured number, ``expected`` what the monitor expected instead (free text or ISO date).
    ``details`` must be JSON-serialisable: it is stored as JSON and quoted in alert messages.
    """

    monitor: str
    kind: str
    source: str
    series: str
    severity: Severity
    message: str
    run_at: dt.datetime
    period: str | None = None
    value: float | None = None
    expected: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(
                f"finding {self.monitor}/{self.kind} for {self.series}: severity "
                f"{self.severity!r} is not one of {sorted(SEVERITY_RANK)}"
            )
        if self.run_at.tzinfo is None or self.run_at.utcoffset() is None:
            # Runs are compared across DAGs and time zones; a naive time would be ambiguous.
            raise ValueError(
                f"finding {self.monitor}/{self.kind} for {self.series}: run_at must be "
                f"time-zone aware, got {self.run_at!r}"
            )

    @property
    def key(self) -> tuple[str, str]:
        """The incident key: one open incident at most per (monitor, series)."""
        return (self.monitor, self.series)

    @property
    def opens_incident(self) -> bool:
        return SEVERITY_RANK[self.severity] >= SEVERITY_RANK["warning"]

    def finding_id(self, run_id: str) -> str:
        """Deterministic id: recording the same run's findings again adds no row."""
        identity = [
            run_id,
            self.monitor,
            self.kind,
            self.source,
            self.series,
            self.period,
            self.message,
        ]
        digest = hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode("utf-8"))
        return "f_" + digest.hexdigest()[:24]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (run_at as ISO text), e.g. to travel through XCom."""
        row = dataclasses.asdict(self)
        row["run_at"] = self.run_at.isoformat()
        row["details"] = json.loads(json.dumps(self.details, default=_json_default))
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Finding:
        row = dict(row)
        if isinstance(row.get("run_at"), str):
            row["run_at"] = dt.datetime.fromisoformat(row["run_at"])
        if row.get("value") is not None:
            row["value"] = float(row["value"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in known})


def details_json(details: dict[str, Any]) -> str:
    """``details`` as stored in the warehouse (dates and other values as text)."""
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
