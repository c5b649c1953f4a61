"""The parts every alert is built from: a ``Message``, its paragraphs, context line and dates.

What this module owns: ``Message`` (Slack Block Kit blocks plus the same words as plain text),
``Paragraph`` (plain and mrkdwn side by side), ``assemble()`` (header, paragraphs, context line,
cut to Slack's limits), the date words ("Tuesday 10 June 2025"), the links an alert carries
(Airflow run, runbook, the source's page) and ``redact()``.

Both ``messages`` (incident, task-failure and digest messages) and ``wording`` (the words for
findings about the figures) build on it; it imports neither, so they import it one way.
Pure: no network, no warehouse.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

# Slack limits (Block Kit reference): header text 150 chars, section text 3000.
HEADER_MAX = 150
SECTION_MAX = 3000
FALLBACK_TZ = "America/New_York"


@dataclass(frozen=True)
class Message:
    """One alert's content: ``text`` is the notification / fallback / console version."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- secrets

_SECRET_PATTERNS = [
    re.compile(r"xox[abposrce]-[0-9A-Za-z-]+"),  # Slack bot/user/app tokens
    re.compile(r"xapp-[0-9A-Za-z-]+"),
    re.compile(r"(?i)(bearer\s+)[^\s'\"]+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"),
    re.compile(r"(?i)((?:token|password|passwd|secret|api[_-]?key)=)[^&\s'\"]+"),
    re.compile(r"(//[^/\s:@]+:)[^@/\s]+(@)"),  # URL user:password@
]


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with known secrets and anything shaped like a credential replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(r"\1[redacted]\2", text)
        elif pattern.groups == 1:
            text = pattern.sub(r"\1[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


# --------------------------------------------------------------------------- formatting


def long_date(day: dt.date) -> str:
    """'Tuesday 10 June 2025' (no leading zero, weekday spelt out: read on a phone)."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def short_date(day: dt.date) -> str:
    """'10 June'."""
    return f"{day.day} {day:%B}"


def day_list(days: list[dt.date]) -> str:
    """'11, 12, 15 and 16 June' / '30 May and 2 June' / '2 June to 20 June' when long."""
    if not days:
        return ""
    if len(days) > 6:
        return f"{short_date(days[0])} to {short_date(days[-1])}"
    parts: list[str] = []
    for i, day in enumerate(days):
        last_of_month = i == len(days) - 1 or days[i + 1].month != day.month
        parts.append(short_date(day) if last_of_month else str(day.day))
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def escape(text: str) -> str:
    # Slack mrkdwn control characters (Slack docs, "Escaping text").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Paragraph:
    """Builds the plain and the mrkdwn version of a paragraph side by side."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.rich: list[str] = []

    def add(self, text: str, bold: bool = False) -> Paragraph:
        self.plain.append(text)
        self.rich.append(f"*{escape(text)}*" if bold and text else escape(text))
        return self

    def texts(self) -> tuple[str, str]:
        return "".join(self.plain), "".join(self.rich)


def airflow_run_url(run_id: str | None, task_id: str | None = None) -> str | None:
    """Link to an Airflow run when RETURNWATCH_AIRFLOW_BASE_URL is set.

    ``run_id`` is returnwatch's '<dag_id>/<airflow run id>' (airflow_support.run_id).
    """
    base = os.environ.get("RETURNWATCH_AIRFLOW_BASE_URL", "").rstrip("/")
    if not base or not run_id or "/" not in run_id:
        return None
    dag_id, airflow_run = run_id.split("/", 1)
    url = f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(airflow_run, safe='')}"
    if task_id:
        url += f"/tasks/{quote(task_id, safe='')}"
    return url


def runbook_link(kind: str | None) -> list[tuple[str, str | None]]:
    """Ops alerts link what to do: the runbook section of their kind (every finding kind has
    one, whose anchor is the kind; tests/dags/test_dag_docs.py holds that), as the returnwatch
    plugin serves it in the Airflow UI. Only when RETURNWATCH_AIRFLOW_BASE_URL is set."""
    base = os.environ.get("RETURNWATCH_AIRFLOW_BASE_URL", "").rstrip("/")
    if not base or not kind:
        return []
    return [("What to do (runbook)", f"{base}/returnwatch/docs/runbook.md#{quote(kind)}")]


def source_info(source: str) -> tuple[str, str | None, str]:
    """(title, landing page, time zone) from config/sources.yaml, tolerant of unknown sources."""
    from returnwatch import config

    try:
        src = config.source(source)
    except config.ConfigError:
        return source, None, FALLBACK_TZ
    return src.title, src.landing_page, src.timezone


def context_line(elements: list[tuple[str, str | None]]) -> tuple[str, dict[str, Any]]:
    """A context block of 'label' or 'label' linked to a URL; plus the plain version."""
    plain, rich = [], []
    for label, url in elements:
        if url:
            rich.append(f"<{url}|{escape(label)}>")
            plain.append(f"{label}: {url}")
        else:
            rich.append(escape(label))
            plain.append(label)
    block = {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(rich)}]}
    return "\n".join(plain), block


def assemble(
    header: str, paragraphs: list[tuple[str, str]], context: list[tuple[str, str | None]]
) -> Message:
    header = header if len(header) <= HEADER_MAX else header[: HEADER_MAX - 1] + "…"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
    ]
    for _, rich in paragraphs:
        if len(rich) > SECTION_MAX:
            rich = rich[: SECTION_MAX - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": rich}})
    context_plain, context_block = context_line(context)
    blocks.append(context_block)
    text = "\n\n".join([header, *(plain for plain, _ in paragraphs), context_plain])
    return Message(text=text, blocks=blocks)


def run_link(run_id: str | None) -> list[tuple[str, str | None]]:
    url = airflow_run_url(run_id)
    return [("Airflow run", url)] if url else []
