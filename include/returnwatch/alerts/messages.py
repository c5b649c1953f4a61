"""The words of an alert: Slack Block Kit blocks plus a plain-text version of the same message.

What this module owns: turning an incident event (opened / resolved, later updated) or a failed
task into a ``Message`` that a non-engineer can read on a phone: a header that says what
happened, a paragraph with dates written out ("Tuesday 10 June 2025"), then a small context
line with the source, a link to the publisher's page and, when configured, to the Airflow run.
The parts these are built from (``Message``, paragraphs, dates, links, ``redact()``) are in
``alerts.blocks``, shared with ``alerts.wording``, which words the findings about the figures.

It is pure: no network, no warehouse. Messages are rendered when an alert is enqueued, so
``monitor.alerts`` holds exactly what is (or was) sent, and the console fallback prints the
same words.

Never put a secret in a message: the only free text that reaches one comes from findings and
exception messages, and the latter go through ``redact()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from returnwatch.alerts.blocks import (
    SECTION_MAX,
    Message,
    Paragraph,
    airflow_run_url,
    assemble,
    day_list,
    escape,
    long_date,
    redact,
    run_link,
    runbook_link,
    short_date,
    source_info,
)
from returnwatch.alerts.wording import data_message, ingest_message

# Message, redact, airflow_run_url, long_date and day_list live in alerts.blocks; they stay
# importable from here, where the outbox and the tests look for them.
__all__ = [
    "Message",
    "airflow_run_url",
    "day_list",
    "digest_message",
    "incident_message",
    "long_date",
    "redact",
    "replace_status_in_text",
    "status_line",
    "task_failure_message",
    "with_status_line",
]
_source_info = source_info  # alerts/compose.py imports it under this name


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
        "elements": [{"type": "mrkdwn", "text": escape(line)}],
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
    title, landing, tz = source_info(source)
    label = details.get("label") or title
    site = details.get("site") or "The publisher"
    state = details.get("state", "late")
    newest = _date(details.get("newest_period"))
    missed = [_date(d) for d in details.get("missed_periods", [])]
    missed_days = [d for d in missed if d is not None]
    # Monthly sources (CBP, SEGOB, HHS's monthly pages): months, named by freshness.
    monthly = details.get("frequency") == "month"

    header = f"{label} have stopped arriving" if state == "stopped" else f"{label} are late"
    what = Paragraph()
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
    context += run_link(run_id) + runbook_link(incident.get("kind") or finding.get("kind"))
    return assemble(header, paragraphs, context)


def _cause_paragraph(details: Mapping[str, Any], site: str, tz: str) -> tuple[str, str] | None:
    cause = details.get("cause")
    last_check = _local(details.get("last_check_at"), tz)
    when = (
        f"{long_date(last_check.date())}, {last_check:%H:%M} {_tz_name(tz)}" if last_check else None
    )
    p = Paragraph()
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
    title, landing, tz = source_info(source)
    label = resolution.get("label") or (opening.get("details") or {}).get("label") or title
    newest = _date(resolution.get("newest_period"))
    arrived = _local(resolution.get("newest_file_received_at"), tz)
    resumed = arrived.date() if arrived else _date(_local(incident.get("resolved_at"), tz))
    before = _date((opening.get("details") or {}).get("newest_period") or opening.get("period"))
    monthly = resolution.get("frequency") == "month"
    before_label = (opening.get("details") or {}).get("newest_label")

    p = Paragraph().add("Resolved: figures resumed on ")
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
    context = [(f"Source: {title}", landing), *run_link(run_id)]
    return assemble(f"{label} are arriving again", [p.texts()], context)


def _generic(
    event: str, incident: Mapping[str, Any], finding: Mapping[str, Any], run_id: str | None
) -> Message:
    """Any other monitor: the finding's own message, framed."""
    source = incident["source"]
    title, landing, _ = source_info(source)
    kind = str(finding.get("kind") or incident.get("kind") or "problem").replace("_", " ")
    if event == "resolved":
        header = f"{title}: resolved ({kind})"
        p = Paragraph().add(
            f"Resolved: the {incident['monitor']} check of {incident['series']} "
            "no longer finds a problem."
        )
    else:
        header = f"{title}: {kind}"
        p = Paragraph().add(str(finding.get("message") or incident.get("summary") or kind))
    # Ops read these: the run id helps even without a link to the Airflow UI.
    context = [
        (f"Source: {title}", landing),
        *(run_link(run_id) or ([(f"Run {run_id}", None)] if run_id else [])),
    ]
    if event != "resolved":  # what to do, e.g. a file that reaches no mart
        context += runbook_link(finding.get("kind") or incident.get("kind"))
    return assemble(header, [p.texts()], context)


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
    p = Paragraph().add("Task ").add(task_id, bold=True).add(" of DAG ").add(dag_id, bold=True)
    p.add(f" failed{tries} in run {run_id}, with no retry left.")
    e = Paragraph().add("Error: ").add(error or "(no message)")
    context = [("Airflow task", log_url)] if log_url else [(f"Run {run_id}", None)]
    return assemble(header, [p.texts(), e.texts()], context + runbook_link("task_failed"))


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
        rich = f"*{escape(headline)}*\nIncident `{escape(ref)}`"
        links = [b for b in alert.get("blocks") or [] if b.get("type") == "context"]
        if links:
            rich += " · " + links[-1]["elements"][0]["text"]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": rich[:SECTION_MAX]}})
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
