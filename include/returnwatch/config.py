"""Reads and validates the YAML files people edit in ``config/``.

pydantic does the validation so that a typo in a reviewed config file fails loudly with the
file and the key, instead of surfacing later as a KeyError inside a task.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from returnwatch import settings

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is missing, is not YAML, or does not match its schema."""


class SourceConfig(BaseModel):
    """One publisher endpoint, as declared in config/sources.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    title: str
    publisher: str
    landing_page: str
    base_url: str
    path: str
    params: dict[str, str] = Field(default_factory=dict)
    allowed_hosts: list[str]
    format: str
    max_bytes: int = Field(gt=0)
    timeout_seconds: float = Field(gt=0, default=30)
    retries: int = Field(ge=0, le=10, default=3)
    timezone: str = "UTC"
    # Source-specific discovery settings (e.g. SEGOB's first bulletin year), read by the
    # source module's ``discover``.
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def effective_base_url(self) -> str:
        """The base URL to fetch from: the environment's override (replay mirror) or the real one."""
        return settings.source_base_url_override(self.name) or self.base_url

    @property
    def url(self) -> str:
        return self.effective_base_url.rstrip("/") + self.path

    @property
    def effective_allowed_hosts(self) -> list[str]:
        """Hosts the fetcher may talk to. An env override is allowed only on the loopback."""
        hosts = list(self.allowed_hosts)
        override = settings.source_base_url_override(self.name)
        if override:
            host = urlsplit(override).hostname or ""
            if host in {"127.0.0.1", "localhost", "::1"}:
                hosts.append(host)
        return hosts


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: dict[str, SourceConfig]


def load_yaml(name: str, model: type[M], directory: Path | None = None) -> M:
    """Load ``config/<name>`` and validate it against ``model``."""
    path = (directory or settings.config_dir()) / name
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} is missing") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"config file {path} does not match its schema:\n{exc}") from exc


@functools.cache
def _sources(directory: str) -> dict[str, SourceConfig]:
    parsed = load_yaml("sources.yaml", SourcesFile, Path(directory))
    return {key: src.model_copy(update={"name": key}) for key, src in parsed.sources.items()}


def sources() -> dict[str, SourceConfig]:
    return _sources(str(settings.config_dir()))


def source(name: str) -> SourceConfig:
    try:
        return sources()[name]
    except KeyError:
        raise ConfigError(f"source {name!r} is not declared in config/sources.yaml") from None
