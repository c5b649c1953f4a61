"""dbt build and snapshot publish times on the full history of the replay mirror's real files.

``run()`` returns rows {measure, value, target, ok} for ``bench/run.py``'s table. It builds a
warehouse in a scratch folder with every vintage the mirror has (``tests/dbt/realdata.py``,
``load_history(full=True)``: all ten CBP files, SEGOB's workbooks as of every month of 2024-2025
plus March 2021 and June 2025, HHS's monthly pages and the daily copy; loading is not timed),
then times, each in a fresh process like ``make dbt`` (Python start-up and dbt's import
included):

- ``dbt build`` of every model, seed and test, cold (first build in the data folder: dbt parses
  the whole project) and warm (the next one: partial parse, the usual case for ``make dbt``);
- ``publish_snapshot()``: checkpoint, copy of the warehouse, Parquet export of every mart.

Run alone: ``.venv/bin/python bench/dbt_build.py`` prints the rows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The sibling module, whether run alone, by bench/run.py or imported by a test.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratch_history import BUILD, LOAD, child, scratch_env  # noqa: E402

BUILD_TARGET_SECONDS = 15.0


def measure() -> dict:
    with scratch_env("dbt") as env:
        m, _ = child(LOAD, env, timeout=900)
        _, m["cold"] = child(BUILD, env, timeout=900)
        warm, m["warm"] = child(BUILD, env, "publish", timeout=900)
        m.update(warm)
        m["warm"] -= warm["publish"]
        return m


def run() -> list[dict]:
    m = measure()
    cores = os.cpu_count()
    history = f"{m['files']} files, {m['raw_rows']:,} raw rows, {m['nodes']} nodes"
    return [
        {
            "measure": f"dbt build, cold: first build, full parse ({history}; {cores} cores)",
            "value": f"{m['cold']:.1f} s",
            "target": f"≤ {BUILD_TARGET_SECONDS:.0f} s",
            "ok": m["cold"] <= BUILD_TARGET_SECONDS,
        },
        {
            "measure": "dbt build, warm: partial parse, as make dbt runs it again",
            "value": f"{m['warm']:.1f} s",
            "target": f"≤ {BUILD_TARGET_SECONDS:.0f} s",
            "ok": m["warm"] <= BUILD_TARGET_SECONDS,
        },
        {
            "measure": f"snapshot publish ({m['snapshot_mb']:.0f} MB copy, {m['marts']} marts, "
            f"{m['mart_rows']:,} rows to Parquet)",
            "value": f"{m['publish']:.1f} s",
            "target": "—",
            "ok": True,
        },
        {
            "measure": "dbt tests that warned on the full history"
            + (f" ({', '.join(w.split('.')[2] for w in m['warned'])})" if m["warned"] else ""),
            "value": str(len(m["warned"])),
            "target": "—",
            "ok": True,
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(
            f"{row['measure']:<100} {row['value']:>8}  {row['target']:<7} "
            f"{'ok' if row['ok'] else 'over'}"
        )
