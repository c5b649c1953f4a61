"""Words for findings about the figures (advocates) and about unreadable files (ops).

What this module owns: turning anomaly, policy-rule, revision and discrepancy findings (and
ingest findings) into sentences a non-engineer reads on a phone:

    "Share of unaccompanied Mexican children returned by the US rose to 97% in March 2021,
     from a usual 80–88%."

Every data message says what changed (value, the usual band, the period), where the figures
come from (source, vintage, a link to the document) and links to the Airflow run. Findings of
one run and one incident arrive together and become one message: the newest period leads, the
others are listed under it.

Pure, like ``messages``: no network, no warehouse. Finding shapes: ``monitor/findings.py``;
anomaly details: ``monitor/anomalies.py::findings``; rule details: ``monitor/rules.py``.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from returnwatch.alerts.blocks import (
    Message,
    Paragraph,
    assemble,
    long_date,
    redact,
    run_link,
    runbook_link,
    source_info,
)

# A finding list longer than this is summarised ("and 4 more periods").
_MAX_LISTED = 6


# --------------------------------------------------------------------------- numbers


def is_share(details: Mapping[str, Any], *values: float | None) -> bool:
    """Whether figures are fractions shown as percentages (rates, shares, gaps)."""
    params = details.get("params") or {}
    name = " ".join(str(details.get(k) or "") for k in ("metric", "condition", "rule")).lower()
    hinted = params.get("transform") == "identity" or any(
        word in name for word in ("rate", "share", "pct", "gap", "ratio")
    )
    finite = [v for v in values if v is not None and not _nan(v)]
    return hinted and bool(finite) and all(abs(v) <= 5 for v in finite)


def number(value: float | None, share: bool) -> str:
    """'97%' / '0.4%' for shares, '1,234' / '2.5' for counts."""
    if value is None or _nan(value):
        return "no figure"
    if share:
        pct = value * 100
        return f"{pct:.1f}%" if 0 < abs(pct) < 10 and round(pct) != pct else f"{pct:.0f}%"
    if abs(value - round(value)) < 1e-9:
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def band_text(low: float, high: float, share: bool) -> str:
    """'80–88%' / '1,200–1,900'."""
    if share:
        return f"{number(low, True)[:-1]}–{number(high, True)}"
    return f"{max(low, 0.0):,.0f}–{high:,.0f}"


def period_text(period: Any) -> str:
    """'March 2021' for a month, 'Tuesday 10 June 2025' for a day."""
    text = str(period or "")
    if len(text) == 7:  # YYYY-MM
        day = dt.date.fromisoformat(text + "-01")
        return f"{day:%B %Y}"
    try:
        return long_date(dt.date.fromisoformat(text[:10]))
    except ValueError:
        return text


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _label(incident: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> str:
    """The series in plain words: its figure's name from config/monitors.yaml ``figures``
    (group values written out, never an internal key), else the finding's label."""
    from returnwatch.monitor import figures

    try:
        named = figures.series_name(str(incident.get("series") or ""))
    except Exception:  # noqa: BLE001 - an unreadable config must not cost the alert
        named = None
    if named:
        return named
    for f in findings:
        label = (f.get("details") or {}).get("label")
        if label:
            return str(label) + series_suffix(str(incident.get("series") or ""))
    return str(incident.get("series") or incident.get("source"))


def _counts(incident: Mapping[str, Any]) -> str | None:
    from returnwatch.monitor import figures

    try:
        figure = figures.figure_for(str(incident.get("series") or ""))
    except Exception:  # noqa: BLE001 - an unreadable config must not cost the alert
        return None
    if figure is None:
        return None
    return f"{figure.counts}; from {figure.publisher_table}"


def series_suffix(series: str) -> str:
    """' (Mexico, Title 8)' for 'cbp_uc_encounters:encounters:MEXICO:Title 8' (anomaly
    series are '<metric>:<figure>[:<group values>]')."""
    parts = [p for p in series.split(":")[2:] if p]
    if not parts:
        return ""
    pretty = [p.title() if p.isupper() and len(p) > 3 else p for p in parts]
    return f" ({', '.join(pretty)})"


def _context(
    incident: Mapping[str, Any],
    run_id: str | None,
    vintage: Any,
    document_url: str | None,
    method: str | None = None,
) -> list[tuple[str, str | None]]:
    title, landing, _ = source_info(incident["source"])
    context: list[tuple[str, str | None]] = [(f"Source: {title}", landing)]
    if vintage:
        day = vintage if isinstance(vintage, dt.date) else dt.date.fromisoformat(str(vintage)[:10])
        context.append((f"File published {day.day} {day:%B %Y}", document_url))
    elif document_url:
        context.append(("Source document", document_url))
    if method:
        context.append((method, None))
    context += run_link(run_id) or ([(f"Run {run_id}", None)] if run_id else [])
    return context


def _previous_period(period: str) -> str | None:
    if len(period) == 7:
        day = dt.date.fromisoformat(period + "-01") - dt.timedelta(days=1)
        return f"{day:%Y-%m}"
    try:
        return (dt.date.fromisoformat(period[:10]) - dt.timedelta(days=1)).isoformat()
    except ValueError:
        return None


def policy_paragraph(
    period: Any, totals: Mapping[str, Any] | None = None, direction: str | None = None
) -> tuple[str, str] | None:
    """'Policy in force in December 2020: …; changed within one period before: 18 November
    2020, …' from the policy timeline; with ``totals`` (the same children all titles, this
    period and the one before), says when this title moved against the total."""
    from returnwatch.monitor import figures

    text = str(period or "")
    if not text:
        return None
    try:
        here = figures.policy_context(text)
        before = _previous_period(text)
        earlier = figures.policy_context(before) if before else {"changes": []}
    except Exception:  # noqa: BLE001 - a missing timeline must not cost the alert
        return None
    if not here["in_force"] and not here["changes"] and not earlier["changes"]:
        return None
    p = Paragraph().add("Policy context: ", bold=True)
    if here["in_force"]:
        p.add(
            f"in force in {period_text(text)}: "
            + "; ".join(x.label for x in here["in_force"])
            + ". "
        )
    else:
        p.add(f"no recorded policy regime in force in {period_text(text)}. ")
    changes = [*earlier["changes"], *here["changes"]]
    if changes:
        p.add("Changed within one period of the figure: ")
        p.add(
            "; ".join(
                f"{long_date(day)}: {words}"
                + (
                    f" ({_lower(policy.effect_on_children.rstrip('.'))})"
                    if words.endswith("began") or policy.kind == "event"
                    else ""
                )
                for day, words, policy in changes
            )
            + ". "
        )
    if totals and direction in ("up", "down"):
        now, prev = totals.get("value"), totals.get("previous")
        title = totals.get("title")
        if now is not None and prev is not None and title:
            total_dir = "up" if now > prev else "down" if now < prev else "flat"
            if total_dir != direction and changes:
                verb = "rose" if direction == "up" else "fell"
                total_verb = {"up": "rose", "down": "fell", "flat": "held"}[total_dir]
                p.add(
                    f"After that change {title} encounters {verb} while total encounters "
                    f"(all titles) {total_verb}: {number(prev, False)} in "
                    f"{period_text(before)} → {number(now, False)} in {period_text(text)}. "
                    "Read the change as a reclassification between titles before citing it."
                )
    urls = list(dict.fromkeys(x.url for x in [*here["in_force"], *(c[2] for c in changes)]))
    if urls:
        p.add(("" if p.plain[-1].endswith(" ") else " ") + "Sources: " + " · ".join(urls))
    return p.texts()


def _newest_first(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(findings, key=lambda f: str(f.get("period") or ""), reverse=True)


# --------------------------------------------------------------------------- dispatch


def data_message(
    event: str,
    *,
    incident: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]],
    opening: Mapping[str, Any] | None,
    run_id: str | None,
    vintage: Any = None,
    document_url: str | None = None,
    totals: Mapping[str, Any] | None = None,
) -> Message:
    """Anomaly / policy_rule / revision / discrepancy, opened, updated or resolved.

    Every message but "resolved" names the policy regimes in force in the lead finding's
    period and any change within one period of it (``policy_paragraph``); ``totals`` (compose
    reads them from the warehouse) lets it say when one title moved against the total.
    """
    monitor = incident["monitor"]
    if event == "resolved":
        return _resolved(incident, opening or {}, run_id, vintage, document_url)
    findings = _newest_first(findings) or [
        {"kind": incident.get("kind"), "message": incident.get("summary")}
    ]
    if monitor == "anomaly" and any("band" in (f.get("details") or {}) for f in findings):
        message = _anomaly(incident, findings, run_id, vintage, document_url, totals)
    elif monitor == "policy_rule":
        message = _rule(incident, findings, run_id, vintage, document_url)
    elif monitor == "revision":
        message = _revision(incident, findings, run_id, vintage, document_url)
    else:
        message = _other_data(incident, findings, run_id, vintage, document_url)
    if event == "updated":
        header = message.blocks[0]["text"]["text"]
        return _assemble_again(message, f"Update: {header}")
    return message


def _assemble_again(message: Message, header: str) -> Message:
    blocks = [dict(b) for b in message.blocks]
    blocks[0] = {**blocks[0], "text": {**blocks[0]["text"], "text": header[:150]}}
    old_header = message.text.split("\n", 1)[0]
    return Message(text=header + message.text[len(old_header) :], blocks=blocks)


# --------------------------------------------------------------------------- anomaly


def anomaly_sentence(label: str, finding: Mapping[str, Any]) -> tuple[str, str, bool]:
    """('<Label> rose to 97% in March 2021', 'from a usual 80–88%', share?)."""
    d = finding.get("details") or {}
    value = d.get("value", finding.get("value"))
    low, high = (d.get("band") or [None, None])[:2]
    share = is_share(d, value, low, high)
    kind = str(finding.get("kind") or "")
    if kind.endswith("drop_to_zero") or (value == 0 and d.get("direction") == "down"):
        verb = "fell to zero"
        what = f"{_cap(label)} {verb} in {period_text(finding.get('period'))}"
    else:
        verb = "rose to" if d.get("direction", "up") == "up" else "fell to"
        what = (
            f"{_cap(label)} {verb} {number(value, share)} in {period_text(finding.get('period'))}"
        )
    usual = f"from a usual {band_text(low, high, share)}" if low is not None else ""
    return what, usual, share


def _usual_band(finding: Mapping[str, Any], share: bool) -> str:
    """' (usual 80–88%)' for a finding whose details carry a band, else ''."""
    band = (finding.get("details") or {}).get("band")
    return f" (usual {band_text(band[0], band[1], share)})" if band else ""


def _anomaly(
    incident: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]],
    run_id: str | None,
    vintage: Any,
    document_url: str | None,
    totals: Mapping[str, Any] | None = None,
) -> Message:
    label = _label(incident, findings)
    lead = findings[0]
    d = lead.get("details") or {}
    what, usual, share = anomaly_sentence(label, lead)
    header = f"{what}, {usual}" if usual else what
    # The header already says what changed; the paragraph says why it stands out.
    p = Paragraph()
    base = d.get("baseline")
    used = d.get("baseline_periods") or []
    if base is not None and used:
        span = (
            period_text(used[0])
            if len(used) == 1
            else f"{period_text(used[0])} to {period_text(used[-1])}"
        )
        p.add(f"The level before it was {number(base, share)} (median of {span}). ")
    score = d.get("score")
    if score is not None:
        p.add("A change this size happens rarely in this series: ")
        p.add(f"{abs(float(score)):.1f} times", bold=True)
        p.add(" its ordinary period-to-period movement.")
    paragraphs = [p.texts()]
    counted = _counts(incident)
    if counted:
        paragraphs.append(
            Paragraph().add("What is counted: ", bold=True).add(counted + ".").texts()
        )
    others = findings[1:]
    if others:
        paragraphs.append(
            _listed(
                "Also flagged in this run",
                [
                    f"{period_text(f.get('period'))}: {number((f.get('details') or {}).get('value'), share)}"
                    + _usual_band(f, share)
                    for f in others
                ],
            )
        )
    context = policy_paragraph(lead.get("period"), totals, d.get("direction"))
    if context:
        paragraphs.append(context)
    if d.get("severity_policy"):
        paragraphs.append(
            Paragraph()
            .add(
                f"Severity: {lead.get('severity')} by the figure's policy ({d['severity_policy']})."
            )
            .texts()
        )
    method = f"Method: {d.get('method', 'robust_step')}"
    return assemble(header, paragraphs, _context(incident, run_id, vintage, document_url, method))


def _listed(title: str, items: Sequence[str]) -> tuple[str, str]:
    shown = list(items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown.append(f"and {len(items) - _MAX_LISTED} more")
    p = Paragraph().add(f"{title}:", bold=True)
    for item in shown:
        p.add(f"\n• {item}")
    return p.texts()


# --------------------------------------------------------------------------- policy rules

_CONDITION_WORDS = {">": "above", ">=": "at or above", "<": "below"}


def _condition(d: Mapping[str, Any], share: bool) -> str:
    """'above 90%' from 'max(return_rate) > 0.9'."""
    text = str(d.get("condition") or "")
    parts = text.rsplit(" ", 2)
    if len(parts) == 3 and parts[1] in _CONDITION_WORDS:
        try:
            return f"{_CONDITION_WORDS[parts[1]]} {number(float(parts[2]), share)}"
        except ValueError:
            pass
    return text


def _rule(
    incident: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]],
    run_id: str | None,
    vintage: Any,
    document_url: str | None,
) -> Message:
    label = _label(incident, findings)
    lead = findings[0]
    d = lead.get("details") or {}
    values = [f.get("value") for f in findings]
    share = is_share({**d, "metric": d.get("condition")}, *values)
    condition = _condition(d, share)
    kind = str(lead.get("kind") or "")
    header = f"{_cap(label)}: {period_text(lead.get('period'))}"
    if kind == "rule_contested_period":
        header += " (legal status contested)"
    p = Paragraph().add("In ").add(period_text(lead.get("period")), bold=True)
    p.add(f" the figure was {number(lead.get('value'), share)}, {condition}").add(". ")
    if d.get("history"):
        h = d["history"]
        p.add(
            f"It is {number(h.get('rise'), share)} above the median "
            f"{number(h.get('baseline_median'), share)} of its previous "
            f"{h.get('baseline_periods')} periods. "
        )
    p.add(f"The rule: {label}.")
    applies = d.get("applies") or {}
    if applies.get("from"):
        p.add(
            f" It applies from {long_date(dt.date.fromisoformat(applies['from']))}"
            + (
                f" until {long_date(dt.date.fromisoformat(applies['until']))}."
                if applies.get("until")
                else "."
            )
        )
    paragraphs = [p.texts()]
    if d.get("contested"):
        paragraphs.append(
            Paragraph()
            .add("The legal status of this period was contested: ", bold=True)
            .add(str(d["contested"].get("why")))
            .texts()
        )
    if d.get("check_note"):
        paragraphs.append(Paragraph().add(f"{d['check_note']}.", bold=True).texts())
    if d.get("caveat"):
        paragraphs.append(
            Paragraph()
            .add("Before citing: ", bold=True)
            .add(" ".join(str(d["caveat"]).split()))
            .texts()
        )
    rows = d.get("rows") or []
    if rows and any(len(r) > 1 for r in rows):
        paragraphs.append(
            _listed(
                f"{d.get('row_count', len(rows))} row(s) behind it",
                [", ".join(f"{k} {v}" for k, v in r.items()) for r in rows],
            )
        )
    if len(findings) > 1:
        paragraphs.append(
            _listed(
                "Other periods breaking the rule in this run",
                [
                    f"{period_text(f.get('period'))}: {number(f.get('value'), share)}"
                    for f in findings[1:]
                ],
            )
        )
    sources = [s for s in d.get("sources") or [] if isinstance(s, Mapping)]
    context = _context(incident, run_id, vintage, document_url)
    if sources:
        q = Paragraph().add("The rule rests on: ")
        q.add(
            "; ".join(
                " ".join(str(s.get("citation", "")).split())
                + (f" ({s['url']})" if s.get("url") else "")
                for s in sources
            )
            + "."
        )
        paragraphs.append(q.texts())
        # A link label short enough for Slack's context line, cut at a word (never "202:").
        context[1:1] = [
            (
                f"Rule source: {textwrap.shorten(str(s.get('citation')), 70, placeholder=' …')}",
                s.get("url"),
            )
            for s in sources
            if s.get("url")
        ]
    policy = policy_paragraph(lead.get("period"))
    if policy:
        paragraphs.append(policy)
    return assemble(header, paragraphs, context)


# --------------------------------------------------------------------------- revisions etc.


def _revision(
    incident: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]],
    run_id: str | None,
    vintage: Any,
    document_url: str | None,
) -> Message:
    label = _label(incident, findings)
    lead = findings[0]
    d = lead.get("details") or {}
    rows = [
        r
        for r in d.get("periods") or d.get("restated") or d.get("revisions") or []
        if isinstance(r, Mapping)
    ]
    share = is_share(d, *[r.get("new") for r in rows])
    header = f"{_cap(label)}: published figures were changed"
    p = Paragraph()
    if rows:
        n = len(rows)
        p.add(f"The publisher changed {n} figure{'s' if n != 1 else ''} it had already published")
        if d.get("old_vintage") and d.get("new_vintage"):
            p.add(
                f", between the files of {period_text(d['old_vintage'])} and "
                f"{period_text(d['new_vintage'])}"
            )
        p.add(".")
        paragraphs = [
            p.texts(),
            _listed(
                "Changed",
                [
                    f"{period_text(r.get('period'))}: {number(r.get('old'), share)} → "
                    f"{number(r.get('new'), share)}"
                    for r in rows
                ],
            ),
        ]
    else:
        p.add(str(lead.get("message") or incident.get("summary") or "Figures were revised."))
        paragraphs = [p.texts()]
    if len(findings) > 1 and not rows:
        paragraphs.append(
            _listed("Also in this run", [str(f.get("message")) for f in findings[1:]])
        )
    return assemble(header, paragraphs, _context(incident, run_id, vintage, document_url))


def _other_data(
    incident: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]],
    run_id: str | None,
    vintage: Any,
    document_url: str | None,
) -> Message:
    """Discrepancies and anomaly findings without a band (a missing period, a restatement)."""
    label = _label(incident, findings)
    lead = findings[0]
    kind = str(lead.get("kind") or incident.get("kind") or "")
    if incident["monitor"] == "discrepancy":
        header = f"{_cap(label)}: the agencies' figures disagree"
    elif kind == "missing_period":
        header = f"{_cap(label)}: no figure for {period_text(lead.get('period'))}"
    elif kind.startswith("restatement"):
        header = f"{_cap(label)}: a published figure changed"
    else:
        header = f"{_cap(label)}: {kind.replace('_', ' ')}"
    p = Paragraph().add(str(lead.get("message") or incident.get("summary") or kind))
    paragraphs = [p.texts()]
    if len(findings) > 1:
        paragraphs.append(
            _listed("Also in this run", [str(f.get("message")) for f in findings[1:]])
        )
    return assemble(header, paragraphs, _context(incident, run_id, vintage, document_url))


def _resolved(
    incident: Mapping[str, Any],
    opening: Mapping[str, Any],
    run_id: str | None,
    vintage: Any,
    document_url: str | None,
) -> Message:
    # The same plain-words series as the opening alert named, so "Resolved" says what is over.
    label = _label(incident, [opening])
    monitor = incident["monitor"]
    if monitor == "anomaly":
        text = f"{_cap(label)} is back within its usual range."
    elif monitor == "policy_rule":
        text = "The latest figures no longer break the rule."
    else:
        text = "The latest run no longer finds this problem."
    p = Paragraph().add("Resolved: ", bold=True).add(text)
    if opening.get("period"):
        p.add(f" The alert was about {period_text(opening['period'])}.")
    return assemble(
        f"Resolved: {_cap(label)}", [p.texts()], _context(incident, run_id, vintage, document_url)
    )


# --------------------------------------------------------------------------- ingest (ops)

_INGEST_HEADERS = {
    "layout_changed": "{title}: the file layout changed",
    "bad_value": "{title}: a value in the file could not be read",
    "validation_failed": "{title}: the figures failed validation",
    "bad_file": "{title}: a file could not be used",
}
_INGEST_WHAT = {
    "layout_changed": "The newest file does not look like the files returnwatch knows (a "
    "column or table was renamed, added or moved), so none of its figures "
    "were loaded. The parser needs updating.",
    "bad_value": "The newest file has a value returnwatch could not read as a number or a "
    "date, so none of its figures were loaded.",
    "validation_failed": "The newest file's figures failed a validation check that must "
    "hold, so none of them were loaded. The file is kept for review.",
    "bad_file": "The newest file could not be opened or read, so none of its figures were loaded.",
}


def ingest_message(
    *, incident: Mapping[str, Any], finding: Mapping[str, Any], run_id: str | None
) -> Message:
    title, landing, _ = source_info(incident["source"])
    kind = str(finding.get("kind") or incident.get("kind") or "bad_file")
    header = _INGEST_HEADERS.get(kind, "{title}: " + kind.replace("_", " ")).format(title=title)
    what = Paragraph().add(_INGEST_WHAT.get(kind, "A received file could not be used."))
    what.add(" Earlier figures are unaffected.")
    detail = redact(str(finding.get("message") or incident.get("summary") or ""))
    paragraphs = [what.texts()]
    if detail:
        paragraphs.append(Paragraph().add("Details: ").add(detail[:1500]).texts())
    context = [
        (f"Source: {title}", landing),
        *(run_link(run_id) or ([(f"Run {run_id}", None)] if run_id else [])),
        *runbook_link(kind),
    ]
    return assemble(header, paragraphs, context)
