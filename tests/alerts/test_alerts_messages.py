"""The words of alerts: dates for people, Slack's limits and escaping, no secrets."""

from __future__ import annotations

import datetime as dt

from returnwatch.alerts.messages import day_list, incident_message, long_date, redact

D = dt.date.fromisoformat


def test_dates_are_written_for_people() -> None:
    assert long_date(D("2025-06-10")) == "Tuesday 10 June 2025"
    assert day_list([D("2025-06-11")]) == "11 June"
    assert day_list([D("2025-06-11"), D("2025-06-12"), D("2025-06-15"), D("2025-06-16")]) == (
        "11, 12, 15 and 16 June"
    )
    assert day_list([D("2025-05-29"), D("2025-06-01")]) == "29 May and 1 June"
    many = [D("2025-06-01") + dt.timedelta(days=i) for i in range(9)]
    assert day_list(many) == "1 June to 9 June"


def test_redact_removes_credentials() -> None:
    text = (
        "failed: https://bot:s3cret@host/x?api_key=K1&token=T2 Authorization: Bearer abc "
        "xoxb-1-2-3 xapp-9"
    )
    clean = redact(text, ["extra-secret-value"])
    for secret in ("s3cret", "K1", "T2", "abc", "xoxb-1-2-3", "xapp-9"):
        assert secret not in clean
    assert redact("extra-secret-value here", ["extra-secret-value"]) == "[redacted] here"


def test_generic_incident_message_escapes_and_fits_slack_limits() -> None:
    incident = {
        "monitor": "ingest",
        "series": "hhs_uc_daily",
        "source": "hhs_uc_daily",
        "kind": "layout_changed",
        "summary": "s",
    }
    finding = {
        "kind": "layout_changed",
        "message": "header <Children in ORR Care> & more " + "x" * 4000,
    }
    message = incident_message("opened", incident=incident, finding=finding, run_id="r")
    header, what, section, _ = message.blocks
    assert header["text"]["text"] == (
        "HHS Unaccompanied Alien Children Program (daily): the file layout changed"
    )
    assert "parser needs updating" in what["text"]["text"]
    assert section["text"]["text"].startswith(
        "Details: header &lt;Children in ORR Care&gt; &amp; more"
    )
    assert len(section["text"]["text"]) <= 3000
    assert "<Children in ORR Care>" in message.text  # plain text is not escaped


def test_unknown_source_still_renders() -> None:
    incident = {
        "monitor": "freshness",
        "series": "elsewhere",
        "source": "elsewhere",
        "kind": "freshness_late",
        "opened_at": "2025-06-17T16:00:00+00:00",
    }
    finding = {
        "details": {
            "state": "late",
            "newest_period": "2025-06-10",
            "missed_periods": ["2025-06-11"],
        }
    }
    message = incident_message("opened", incident=incident, finding=finding)
    assert message.blocks[0]["text"]["text"] == "elsewhere are late"
    assert "Tuesday 10 June 2025" in message.text
