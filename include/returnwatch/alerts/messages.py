"""The words of an alert: Slack Block Kit blocks plus a plain-text version of the same message.

What this module owns: turning an incident event (opened / resolved, later updated) or a failed
task into a ``Message`` that a non-engineer can read on a phone: a header that says what
happened, a paragraph with dates written out ("Tuesday 10 June 2025"), then a small context
line with the source, a link to the publisher's page and, when configured, to the Airflow run.
It also owns ``redact()``, used on anything that came from an exception.

It is pure: no network, no warehouse. Messages are rendered when an alert is enqueued, so
``monitor.alerts`` holds exactly what is (or was) sent, and the console fallback prints the
same words.

Never put a secret in a message: the only free text that reaches one comes from findings and
exception messages, and the latter go through ``redact()``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

# Slack limits (Block Kit reference): header text 150 chars, section text 3000.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FALLBACK_TZ = "America/New_York"


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


def _escape(text: str) -> str:
    # Slack mrkdwn control characters (Slack docs, "Escaping text").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Paragraph:
    """Builds the plain and the mrkdwn version of a paragraph side by side."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.rich: list[str] = []

    def add(self, text: str, bold: bool = False) -> _Paragraph:
        self.plain.append(text)
        self.rich.append(f"*{_escape(text)}*" if bold and text else _escape(text))
        return self

    def texts(self) -> tuple[str, str]:
        return "".join(self.plain), "".join(self.rich)


def _date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _moment(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _local(value: Any, tz: str) -> dt.datetime | None:
    moment = _moment(value)
    return moment.astimezone(ZoneInfo(tz)) if moment is not None else None


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


def _source_info(source: str) -> tuple[str, str | None, str]:
    """(title, landing page, time zone) from config/sources.yaml, tolerant of unknown sources."""
    from returnwatch import config

    try:
        src = config.source(source)
    except config.ConfigError:
        return source, None, _FALLBACK_TZ
    return src.title, src.landing_page, src.timezone


def _context(elements: list[tuple[str, str | None]]) -> tuple[str, dict[str, Any]]:
    """A context block of 'label' or 'label' linked to a URL; plus the plain version."""
    plain, rich = [], []
    for label, url in elements:
        if url:
            rich.append(f"<{url}|{_escape(label)}>")
            plain.append(f"{label}: {url}")
        else:
            rich.append(_escape(label))
            plain.append(label)
    block = {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(rich)}]}
    return "\n".join(plain), block


def _assemble(
    header: str, paragraphs: list[tuple[str, str]], context: list[tuple[str, str | None]]
) -> Message:
    header = header if len(header) <= _HEADER_MAX else header[: _HEADER_MAX - 1] + "…"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
    ]
    for _, rich in paragraphs:
        if len(rich) > _SECTION_MAX:
            rich = rich[: _SECTION_MAX - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": rich}})
    context_plain, context_block = _context(context)
    blocks.append(context_block)
    text = "\n\n".join([header, *(plain for plain, _ in paragraphs), context_plain])
    return Message(text=text, blocks=blocks)


# --------------------------------------------------------------------------- incidents


def incident_message(
    event: str,
    *,
    incident: Mapping[str, Any],
    finding: Mapping[str, Any] | None,
    resolution: Mapping[str, Any] | None = None,
    opening: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    related: Sequence[Mapping[str, Any]] | None = None,
    vintage: Any = None,
    document_url: str | None = None,
    status: str | None = None,
    totals: Mapping[str, Any] | None = None,
) -> Message:
    """The message for an incident event.

    ``finding``: the finding behind the event (as ``Finding.as_dict()``), None for resolved.
    ``resolution``: what the monitor saw when the problem went away (freshness details).
    ``opening``: the finding that opened the incident (the resolved message quotes it).
    ``related``: every finding of this run for this incident (grouped into one message);
    defaults to ``[finding]``.
    ``vintage`` / ``document_url``: publication date of the newest file the figures come from
    and where it was fetched (the message links to it).
    ``status``: a status line for a thread's parent message (``status_line()``).
    ``totals``: for a series that is one legal title of a group, the group's total over all
    titles this period and the period before (``{title, value, previous}``).
    """
    if incident["monitor"] == "freshness":
        if event == "resolved":
            message = _freshness_resolved(incident, resolution or {}, opening or {}, run_id)
        else:
            message = _freshness_problem(incident, finding or {}, run_id)
        return _with_status(message, status)
    found = [f for f in (related or ([finding] if finding else [])) if f]
    if incident["monitor"] in DATA_MONITORS:
        from returnwatch.alerts.wording import data_message

        message = data_message(
            event,
            incident=incident,
            findings=found,
            opening=opening,
            run_id=run_id,
            vintage=vintage,
            document_url=document_url,
            totals=totals,
        )
    elif incident["monitor"] == "ingest" and event != "resolved":
        from returnwatch.alerts.wording import ingest_message

        message = ingest_message(
            incident=incident, finding=found[0] if found else {}, run_id=run_id
        )
    else:
        message = _generic(event, incident, finding or {}, run_id)
    return _with_status(message, status)


# Monitors whose findings are about the figures themselves (advocates read them).
DATA_MONITORS = ("anomaly", "policy_rule", "revision", "discrepancy")
STATUS_BLOCK_ID = "rw_status"


def status_line(
    state: str,
    *,
    opened: Any = None,
    resolved: Any = None,
    acknowledged_by: str | None = None,
    updates: int = 0,
) -> str:
    """The parent message's status line ('Status: open since 17 June 2025 · 2 updates')."""
    opened_day, resolved_day = _date(opened), _date(resolved)
    if state == "resolved":
        text = "Status: resolved" + (f" on {long_date(resolved_day)}" if resolved_day else "")
    else:
        text = "Status: open" + (f" since {long_date(opened_day)}" if opened_day else "")
    if updates:
        text += f" · {updates} update{'s' if updates != 1 else ''} in the thread"
    if acknowledged_by and state != "resolved":
        text += f" · acknowledged by {acknowledged_by}"
    return text


def with_status_line(blocks: list[dict[str, Any]], line: str) -> list[dict[str, Any]]:
    """``blocks`` with the status context block set to ``line`` (added when absent)."""
    block = {
        "type": "context",
        "block_id": STATUS_BLOCK_ID,
        "elements": [{"type": "mrkdwn", "text": _escape(line)}],
    }
    out = [b for b in blocks if b.get("block_id") != STATUS_BLOCK_ID]
    # Right under the header, where a phone shows it first.
    position = 1 if out and out[0].get("type") == "header" else 0
    out.insert(position, block)
    return out


def replace_status_in_text(text: str, line: str) -> str:
    lines = text.split("\n")
    kept = [x for x in lines if not x.startswith("Status: ")]
    if kept and len(kept) > 1:
        return "\n".join([kept[0], line, *kept[1:]])
    return "\n".join([*kept, line])


def _with_status(message: Message, status: str | None) -> Message:
    if not status:
        return message
    return Message(
        text=replace_status_in_text(message.text, status),
        blocks=with_status_line(message.blocks, status),
    )


def _freshness_problem(
    incident: Mapping[str, Any], finding: Mapping[str, Any], run_id: str | None
) -> Message:
    details: Mapping[str, Any] = finding.get("details") or {}
    source = incident["source"]
    title, landing, tz = _source_info(source)
    label = details.get("label") or title
    site = details.get("site") or "The publisher"
    state = details.get("state", "late")
    newest = _date(details.get("newest_period"))
    missed = [_date(d) for d in details.get("missed_periods", [])]
    missed_days = [d for d in missed if d is not None]
    # Monthly sources (CBP, SEGOB, HHS's monthly pages): months, named by freshness.
    monthly = details.get("frequency") == "month"

    header = f"{label} have stopped arriving" if state == "stopped" else f"{label} are late"
    what = _Paragraph()
    if newest is not None:
        what.add(f"{site} has published no new figures since those for ")
        what.add(details["newest_label"] if monthly else long_date(newest), bold=True).add(". ")
    if details.get("calendar"):
        what.add(f"It normally posts {details['calendar']}. ")
    count = len(missed_days)
    unit = "month" if monthly else "publishing day"
    what.add("Figures for ").add(f"{count} {unit}{'s' if count != 1 else ''}", bold=True).add(
        " are now missing"
    )
    listed = details.get("missed_label") if monthly else day_list(missed_days)
    what.add(f": {listed}." if missed_days else ".")

    paragraphs = [what.texts()]
    cause = _cause_paragraph(details, site, tz)
    if cause:
        paragraphs.append(cause)
    opened = _date(_local(incident.get("opened_at"), tz))
    context = [(f"Source: {title}", landing)]
    if opened:
        context.append((f"Noticed {short_date(opened)} {opened.year}", None))
    context += _run_link(run_id) + runbook_link(incident.get("kind") or finding.get("kind"))
    return _assemble(header, paragraphs, context)


def _cause_paragraph(details: Mapping[str, Any], site: str, tz: str) -> tuple[str, str] | None:
    cause = details.get("cause")
    last_check = _local(details.get("last_check_at"), tz)
    when = (
        f"{long_date(last_check.date())}, {last_check:%H:%M} {_tz_name(tz)}" if last_check else None
    )
    p = _Paragraph()
    if cause == "same_file_again":
        n = details.get("unchanged_checks_since_new_file") or 0
        p.add(f"{site} is up, but the file has not changed: returnwatch checked it ")
        p.add(f"{n} time{'s' if n != 1 else ''}")
        p.add(" since the last new file" + (f" (latest check: {when})." if when else "."))
    elif cause == "source_unreachable":
        n = details.get("consecutive_failed_checks") or 0
        status = details.get("last_check_http_status")
        p.add(f"{site} is not answering: the last ")
        p.add(f"{n} check{'s' if n != 1 else ''} failed", bold=True)
        p.add((f" (latest: {when}" if when else " (") + (f", HTTP {status})." if status else ")."))
    elif cause == "not_checked":
        p.add(
            "returnwatch itself has not checked the site"
            + (f" since {when}" if when else "")
            + ", so this may be a problem on our side rather than the publisher's."
        )
    elif cause == "no_new_figures":
        p.add("New files did arrive, but none had newer figures.")
    else:
        return None
    return p.texts()


def _freshness_resolved(
    incident: Mapping[str, Any],
    resolution: Mapping[str, Any],
    opening: Mapping[str, Any],
    run_id: str | None,
) -> Message:
    source = incident["source"]
    title, landing, tz = _source_info(source)
    label = resolution.get("label") or (opening.get("details") or {}).get("label") or title
    newest = _date(resolution.get("newest_period"))
    arrived = _local(resolution.get("newest_file_received_at"), tz)
    resumed = arrived.date() if arrived else _date(_local(incident.get("resolved_at"), tz))
    before = _date((opening.get("details") or {}).get("newest_period") or opening.get("period"))
    monthly = resolution.get("frequency") == "month"
    before_label = (opening.get("details") or {}).get("newest_label")

    p = _Paragraph().add("Resolved: figures resumed on ")
    p.add(long_date(resumed) if resumed else "the latest check", bold=True)
    if newest:
        shown = resolution.get("newest_label") if monthly else long_date(newest)
        p.add(f" (newest figures: {shown}).")
    else:
        p.add(".")
    if before:
        p.add(
            " No figures had arrived after those for "
            f"{before_label if monthly and before_label else long_date(before)}."
        )
    context = [(f"Source: {title}", landing), *_run_link(run_id)]
    return _assemble(f"{label} are arriving again", [p.texts()], context)


def _generic(
    event: str, incident: Mapping[str, Any], finding: Mapping[str, Any], run_id: str | None
) -> Message:
    """Any other monitor: the finding's own message, framed."""
    source = incident["source"]
    title, landing, _ = _source_info(source)
    kind = str(finding.get("kind") or incident.get("kind") or "problem").replace("_", " ")
    if event == "resolved":
        header = f"{title}: resolved ({kind})"
        p = _Paragraph().add(
            f"Resolved: the {incident['monitor']} check of {incident['series']} "
            "no longer finds a problem."
        )
    else:
        header = f"{title}: {kind}"
        p = _Paragraph().add(str(finding.get("message") or incident.get("summary") or kind))
    # Ops read these: the run id helps even without a link to the Airflow UI.
    context = [
        (f"Source: {title}", landing),
        *(_run_link(run_id) or ([(f"Run {run_id}", None)] if run_id else [])),
    ]
    if event != "resolved":  # what to do, e.g. a file that reaches no mart
        context += runbook_link(finding.get("kind") or incident.get("kind"))
    return _assemble(header, [p.texts()], context)


def _run_link(run_id: str | None) -> list[tuple[str, str | None]]:
    url = airflow_run_url(run_id)
    return [("Airflow run", url)] if url else []


def _tz_name(tz: str) -> str:
    return {
        "America/New_York": "New York time",
        "America/Mexico_City": "Mexico City time",
        "UTC": "UTC",
    }.get(tz, tz)


# --------------------------------------------------------------------------- task failures


def task_failure_message(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int | None,
    max_tries: int | None,
    error: str,
    log_url: str | None = None,
) -> Message:
    """Ops alert for a task that failed for good. ``error`` must already be redacted."""
    header = f"Task failed: {dag_id}.{task_id}"
    tries = ""
    if try_number is not None:
        total = (max_tries + 1) if max_tries is not None else None
        tries = f" on try {try_number}" + (f" of {total}" if total else "")
    p = _Paragraph().add("Task ").add(task_id, bold=True).add(" of DAG ").add(dag_id, bold=True)
    p.add(f" failed{tries} in run {run_id}, with no retry left.")
    e = _Paragraph().add("Error: ").add(error or "(no message)")
    context = [("Airflow task", log_url)] if log_url else [(f"Run {run_id}", None)]
    return _assemble(header, [p.texts(), e.texts()], context + runbook_link("task_failed"))


# --------------------------------------------------------------------------- digests

# Slack takes at most 50 blocks per message: a header, this many alerts, one "and N more".
_DIGEST_MAX_ITEMS = 45


def digest_message(alerts: list[Mapping[str, Any]], *, since: dt.datetime) -> Message:
    """One message for the alerts an audience's digest held (rows of ``monitor.alerts``, in
    creation order): a header "N alerts since <time>", then per alert its headline and a
    reference to its incident (``returnwatch alerts show ID``) with the alert's own links."""
    count = len(alerts)
    header = (
        f"{count} alert{'' if count == 1 else 's'} since {long_date(since.date())}, {since:%H:%M}"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}
    ]
    plain = [header]
    for i, alert in enumerate(alerts):
        headline = str(alert["text"]).split("\n", 1)[0]
        ref = alert.get("incident_id") or alert["alert_id"]
        plain.append(f"• {headline}\n  Incident {ref} (returnwatch alerts show {ref})")
        if i >= _DIGEST_MAX_ITEMS:
            continue
        rich = f"*{_escape(headline)}*\nIncident `{_escape(ref)}`"
        links = [b for b in alert.get("blocks") or [] if b.get("type") == "context"]
        if links:
            rich += " · " + links[-1]["elements"][0]["text"]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": rich[:_SECTION_MAX]}})
    if count > _DIGEST_MAX_ITEMS:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"…and {count - _DIGEST_MAX_ITEMS} more: `returnwatch alerts list --all`"
                    ),
                },
            }
        )
    return Message(text="\n".join(plain), blocks=blocks)
