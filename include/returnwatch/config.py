"""Reads and validates the YAML files people edit in ``config/``.

pydantic does the validation so that a typo in a reviewed config file fails loudly with the
file, the line, the key path and what was expected, instead of surfacing later as a KeyError
inside a task. Each file has exactly one model, which validates all of it: ``load_yaml`` refuses
a second model for a file (``MODELS`` records which model reads which file):
sources.yaml -> ``SourcesFile`` (here), monitors.yaml -> ``monitor.monitors_config.MonitorsFile``,
alerts.yaml -> ``alerts.delivery.AlertsConfig``.
"""

from __future__ import annotations

import datetime as dt
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


# File name -> "module.Model" of the one model that validates it (filled as files are loaded).
MODELS: dict[str, str] = {}


def load_yaml(name: str, model: type[M], directory: Path | None = None) -> M:
    """Load ``config/<name>`` and validate all of it against ``model``, its one model."""
    model_name = f"{model.__module__}.{model.__qualname__}"
    known = MODELS.setdefault(name, model_name)
    if known != model_name:
        raise ConfigError(f"{name} is validated by {known}; {model_name} may not read it too")
    path = (directory or settings.config_dir()) / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} is missing") from exc
    try:
        raw, root = _parse(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if root is not None:
        _refuse_duplicate_keys(path, root)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc, root)) from exc


def _parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The data (as ``yaml.safe_load`` gives it) and the node tree (for line numbers)."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def _refuse_duplicate_keys(path: Path, node: yaml.Node) -> None:
    # YAML keeps the last of two equal keys without a word: the first would be silently lost.
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise ConfigError(
                            f"config file {path} line {line}: key {key.value!r} is written "
                            f"twice (first on line {seen[key.value]}); keep one"
                        )
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _locate(root: yaml.Node | None, loc: tuple[int | str, ...], missing: bool) -> tuple[str, int]:
    """The key path of a pydantic error location as written in the file, and its line.

    Location parts that are not in the file (a union member's tag, ``[key]``) are left out; a
    missing key, the last part of a ``missing`` error, is kept (its line is its parent's)."""
    path: list[str] = []
    node, line = root, (root.start_mark.line + 1 if root is not None else 1)
    for i, part in enumerate(loc):
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
        if child is not None:
            node = child
            path.append(f"[{part}]" if isinstance(part, int) else str(part))
        elif missing and i == len(loc) - 1:
            path.append(str(part))
    return ".".join(path).replace(".[", "[") or "(the whole file)", line


def _describe(path: Path, exc: ValidationError, root: yaml.Node | None) -> str:
    errors = exc.errors()
    lines = [
        f"config file {path} does not match its schema "
        f"({len(errors)} error{'s' if len(errors) != 1 else ''}):"
    ]
    for error in errors:
        keys, line = _locate(root, tuple(error["loc"]), error["type"] == "missing")
        got = error.get("input")
        shown = (
            f" (got {got!r})"
            if isinstance(got, str | int | float | bool | dt.date) and error["type"] != "missing"
            else ""
        )
        lines.append(f"  {path.name} line {line}, {keys}: {error['msg']}{shown}")
    return "\n".join(lines)


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
