"""Monitor evaluation time on the full history of the replay mirror's real files.

``run()`` returns rows {measure, value, target, verdict} ("ok"/"over") for ``bench/run.py``'s
table. It builds a warehouse in a scratch folder with every vintage the mirror has
(``tests/dbt/realdata.py``, ``load_history(full=True)``) and its marts (``dbt build``, as
``make dbt`` runs it; neither is timed), then, in a fresh process like the monitor task,
times:

- **all monitors over the full history**: ``run_monitors`` on a warehouse no monitor has seen
  (freshness of the four sources, the six anomaly metrics on every period of every series, the
  three policy rules on every period, the revision monitor on every recorded revision, history
  written as info findings, incidents moved), target ≤ 5 s;
- the same process's next run (every mark set: the daily steady state);
- the interpreter's import of pandas/numpy/duckdb and the monitor modules (not in the target).

Run alone: ``.venv/bin/python bench/monitors.py`` prints the rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The sibling module, whether run alone, by bench/run.py or imported by a test.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch_history import BUILD, LOAD, child, scratch_env  # noqa: E402

TARGET_SECONDS = 5.0

MONITOR = """
import datetime as dt, json, time
began = time.perf_counter()
import duckdb, numpy, pandas  # noqa: F401
from returnwatch import warehouse
from returnwatch.monitor import anomalies, engine, freshness, rules, run_monitors  # noqa: F401
imported = time.perf_counter() - began

run_at = dt.datetime(2025, 12, 22, 16, tzinfo=dt.UTC)
with warehouse.session() as con:
    started = time.perf_counter()
    first = run_monitors(run_at=run_at, run_id="bench/first", con=con)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    second = run_monitors(run_at=run_at + dt.timedelta(days=1), run_id="bench/next", con=con)
    next_s = time.perf_counter() - started
    recorded = con.execute("SELECT count(*) FROM monitor.findings").fetchone()[0]
    series = con.execute("SELECT count(*) FROM monitor.judged").fetchone()[0]
print(json.dumps({"imports": imported, "first": first_s, "next": next_s,
                  "evaluated": first.evaluated, "findings": recorded, "series": series,
                  "history": first.history_findings, "alerts": len(first.alerts),
                  "skipped": first.skipped, "seconds": first.seconds,
                  "next_seconds": second.seconds}))
"""


def measure() -> dict:
    with scratch_env("monitors") as env:
        loaded, _ = child(LOAD, env)
        built, _ = child(BUILD, env)
        m, _ = child(MONITOR, env)
        return {**loaded, **built, **m}


def run() -> list[dict]:
    m = measure()
    history = (
        f"{m['files']} files, {m['raw_rows']:,} raw rows; {m['evaluated']} series "
        f"evaluated, {m['findings']} findings recorded"
    )
    per = ", ".join(f"{k} {v:.2f}" for k, v in m["seconds"].items())
    rows = [
        {
            "measure": f"all monitors over the full history, first run ({history}; {per} s)",
            "value": f"{m['first']:.2f} s",
            "target": f"≤ {TARGET_SECONDS:.0f} s",
            "verdict": "ok" if m["first"] <= TARGET_SECONDS else "over",
        },
        {
            "measure": "all monitors, next run (marks set: the daily steady state)",
            "value": f"{m['next']:.2f} s",
            "target": f"≤ {TARGET_SECONDS:.0f} s",
            "verdict": "ok" if m["next"] <= TARGET_SECONDS else "over",
        },
        {
            "measure": "imports of the monitor task (pandas, numpy, duckdb, monitor modules)",
            "value": f"{m['imports']:.2f} s",
            "target": "—",
            "verdict": "ok",
        },
        {
            "measure": "alerts that first run raises (newest periods only; freshness without an "
            "archive manifest, so the monthly sources count as never checked)",
            "value": str(m["alerts"]),
            "target": "—",
            "verdict": "ok",
        },
    ]
    if m["skipped"]:
        rows.append(
            {
                "measure": "metrics/rules skipped: " + "; ".join(m["skipped"]),
                "value": str(len(m["skipped"])),
                "target": "0",
                "verdict": "over",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['measure']:<110} {row['value']:>8}  {row['target']:<7} {row['verdict']}")
