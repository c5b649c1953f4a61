"""Who hears about what, and how alerts are sent: config/alerts.yaml as validated models.

What this module owns: the models of config/alerts.yaml (channels, routes, overrides, quiet
hours, digest, suppression, delivery settings), ``alerts_config()``, and the routing answers
``audience_for(monitor, kind, severity)`` and ``channel_for(audience)``. It sits below both
the monitors (an incident records its audience) and the alerts package, importing only
``config`` and ``settings``, so either may ask it without tying one to the other.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from returnwatch import config, settings


class Override(BaseModel):
    """One routing exception: findings of ``monitor`` (and ``kind`` / ``severity``) -> audience."""

    model_config = ConfigDict(extra="forbid")

    monitor: str
    kind: str | None = None  # exact kind, or a prefix ending in '*' (restatement_*)
    severity: str | None = None  # warning / critical
    audience: str

    def matches(self, monitor: str, kind: str | None, severity: str | None) -> bool:
        if self.monitor != monitor:
            return False
        if self.kind is not None:
            if kind is None:
                return False
            if self.kind.endswith("*") and not kind.startswith(self.kind[:-1]):
                return False
            if not self.kind.endswith("*") and kind != self.kind:
                return False
        return self.severity is None or self.severity == severity


class QuietHours(BaseModel):
    """Hours when an audience is not disturbed: alerts wait until ``end`` (local time)."""

    model_config = ConfigDict(extra="forbid")

    start: dt.time
    end: dt.time
    timezone: str = "America/New_York"
    # Alerts of this severity go out anyway (a child expelled after a court order can't wait).
    except_severity: str | None = "critical"

    def deferred_until(self, now: dt.datetime, severity: str | None) -> dt.datetime | None:
        """When an alert of ``severity`` may go out, if ``now`` is quiet; else None."""
        from zoneinfo import ZoneInfo

        if self.except_severity and severity == self.except_severity:
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        t = local.time()
        quiet = (
            (self.start <= t < self.end)
            if self.start < self.end
            else (t >= self.start or t < self.end)
        )
        if not quiet:
            return None
        day = local.date() if t < self.end else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, self.end, tzinfo=ZoneInfo(self.timezone))


class Digest(BaseModel):
    """Gather an audience's non-urgent openings into one message a day, sent at ``at``."""

    model_config = ConfigDict(extra="forbid")

    at: dt.time
    timezone: str = "America/New_York"
    except_severity: str | None = "critical"

    def holds(self, event: str, severity: str | None) -> bool:
        """Whether an alert waits for the digest: openings, never ``except_severity`` (as
        quiet hours); updates and resolutions follow their opening (see the outbox)."""
        return event == "opened" and not (self.except_severity and severity == self.except_severity)

    def next_time(self, now: dt.datetime) -> dt.datetime:
        from zoneinfo import ZoneInfo

        local = now.astimezone(ZoneInfo(self.timezone))
        moment = dt.datetime.combine(local.date(), self.at, tzinfo=ZoneInfo(self.timezone))
        return moment if moment > local else moment + dt.timedelta(days=1)


class AudienceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quiet_hours: QuietHours | None = None
    digest: Digest | None = None


class Suppression(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # An incident's "updated" alerts: at most one per this many hours (later ones are kept in
    # monitor.alerts as 'suppressed'). Openings and resolutions are never suppressed.
    updates_within_hours: float = Field(ge=0, le=24 * 30, default=24)


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(ge=1, le=100, default=5)
    timeout_seconds: float = Field(gt=0, le=120, default=10)
    max_rate_limit_wait_seconds: float = Field(ge=0, le=600, default=30)
    backoff_first_seconds: float = Field(ge=0, le=3600, default=60)
    backoff_max_seconds: float = Field(ge=1, le=24 * 3600, default=3600)
    give_up_after_hours: float = Field(gt=0, le=24 * 60, default=72)
    charts: bool = True


class AlertsConfig(BaseModel):
    """config/alerts.yaml."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[str, str]
    routes: dict[str, str] = Field(default_factory=dict)
    overrides: list[Override] = Field(default_factory=list)
    default_audience: str = "ops"
    audiences: dict[str, AudienceSettings] = Field(default_factory=dict)
    suppression: Suppression = Field(default_factory=Suppression)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @model_validator(mode="after")
    def _audiences_have_channels(self) -> AlertsConfig:
        used = {
            *self.routes.values(),
            self.default_audience,
            *(o.audience for o in self.overrides),
            *self.audiences,
        }
        unknown = sorted(used - set(self.channels))
        if unknown:
            raise ValueError(f"audience(s) {unknown} have no entry under channels")
        return self


@functools.cache
def _alerts_config(directory: str) -> AlertsConfig:
    return config.load_yaml("alerts.yaml", AlertsConfig, Path(directory))


def alerts_config() -> AlertsConfig:
    return _alerts_config(str(settings.config_dir()))


def audience_for(monitor: str, kind: str | None = None, severity: str | None = None) -> str:
    """Who hears about a finding of ``monitor`` (and ``kind``, ``severity``): advocates / ops."""
    cfg = alerts_config()
    for override in cfg.overrides:
        if override.matches(monitor, kind, severity):
            return override.audience
    return cfg.routes.get(monitor, cfg.default_audience)


def channel_for(audience: str) -> str | None:
    """The Slack channel of an audience, from config/alerts.yaml."""
    return alerts_config().channels.get(audience)
