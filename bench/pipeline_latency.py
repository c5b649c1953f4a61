"""`make bench` rows for the publish → Slack latency (issue 19).

The figures are measured inside the production-stack integration test, on its one pipeline run
(method: tests/support/pipeline_latency.py), which leaves them in
``bench/out/pipeline_latency.json``: ``make bench`` runs that test as part of ``make test`` in
its fresh clone; with ``--skip-tests`` it shows this checkout's last measurement, dated.

Target: a new file reaches Slack within its source's schedule interval plus 10 minutes. The
test publishes just before a scheduled run, so the schedule's wait is not measured but bounded
by the cron interval; what is measured is everything after the run starts, which must stay
within the 10 minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

LATENCY_FILE = Path("bench") / "out" / "pipeline_latency.json"
PROCESSING_TARGET_SECONDS = 600


def _pair(pair: dict) -> str:
    return " / ".join("-" if v is None else f"{v:.0f} s" for v in (pair["p50"], pair["max"]))


def latency_rows(path: Path, *, from_this_run: bool) -> list[tuple[str, str, str, str]]:
    """Rows (measure, value, target, verdict) of the latency JSON at ``path``."""
    if not path.exists():
        return [
            (
                "publish → Slack latency (production-stack test)",
                "not measured: run tests/deploy/test_production_stack.py",
                "—",
                "—",
            )
        ]
    latency = json.loads(path.read_text())
    s = latency["summary"]
    origin = (
        ""
        if from_this_run
        else f" [last stack run {latency['measured_at'][:16]}, commit {latency['commit']}]"
    )
    n = s["files"]
    processing = s["schedule_run_to_slack"]["max"]
    within = processing is not None and processing <= PROCESSING_TARGET_SECONDS
    verdict = "ok" if within else ("no message" if processing is None else "over")
    interval_h = s["longest_schedule_interval_h"]
    rows = [
        (
            f"publish → Slack, scheduled run → message, p50 / max over {n} new files{origin}",
            _pair(s["schedule_run_to_slack"]),
            f"≤ {PROCESSING_TARGET_SECONDS} s",
            verdict,
        ),
        (
            "publish → Slack worst case: schedule interval + the max above",
            "-"
            if interval_h is None or processing is None
            else f"{interval_h:g} h + {processing:.0f} s",
            "≤ interval + 10 min",
            verdict,
        ),
        (
            "publish → archive (manifest fetched_at), p50 / max",
            _pair(s["publish_to_archive"]),
            "—",
            "—",
        ),
        (
            "publish → marts (transform run end, snapshot), p50 / max",
            _pair(s["publish_to_marts"]),
            "—",
            "—",
        ),
        ("publish → Slack message as measured, p50 / max", _pair(s["publish_to_slack"]), "—", "—"),
    ]
    rows += [
        (f"  latency stage: {stage}, p50 / max", _pair(pair), "—", "—")
        for stage, pair in s["stages"].items()
    ]
    return rows
