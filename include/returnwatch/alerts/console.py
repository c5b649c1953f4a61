"""The console fallback: without a Slack token, alerts are printed.

What this module owns: how an alert looks on stdout. The embedded default (no token) and the
demo show alerts this way; in Airflow, stdout lands in the task log. The same text is kept in
``monitor.alerts.text``, so nothing is lost when nobody watches the console.
"""

from __future__ import annotations

import sys
from typing import TextIO

_RULE = "─" * 72


def print_alert(
    *,
    text: str,
    audience: str,
    channel: str | None,
    event: str,
    alert_id: str,
    stream: TextIO | None = None,
    chart: str | None = None,
) -> None:
    """Print one alert's plain-text version, framed so it stands out in a log."""
    out = stream or sys.stdout
    where = f"{audience} → {channel}" if channel else audience
    print(_RULE, file=out)
    print(f"returnwatch alert ({event}, for {where}; Slack not configured)", file=out)
    print(_RULE, file=out)
    print(text, file=out)
    if chart:
        print(f"({chart})", file=out)
    print(f"[{alert_id}]", file=out)
    print(_RULE, file=out, flush=True)
