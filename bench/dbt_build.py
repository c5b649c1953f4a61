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

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BUILD_TARGET_SECONDS = 15.0

LOAD = """
import json
from returnwatch import warehouse
from tests.dbt import realdata

with warehouse.session() as con:
    loaded = realdata.load_history(con, full=True)
print(json.dumps({"files": len(loaded), "raw_rows": sum(item.rows for item in loaded)}))
"""

# What `make dbt` runs (python -m returnwatch.transform build), with the publish timed apart.
BUILD = """
import json, sys, time
from returnwatch import transform

result = transform.dbt_build()
result.raise_for_status()
out = {"nodes": len(result.statuses), "warned": result.warned}
if sys.argv[1] == "publish":
    started = time.perf_counter()
    published = transform.publish_snapshot()
    out["publish"] = time.perf_counter() - started
    out["marts"] = len(published.tables)
    out["mart_rows"] = sum(published.tables.values())
    out["snapshot_mb"] = published.path.stat().st_size / 1e6
print(json.dumps(out))
"""


def _child(code: str, env: dict[str, str], *args: str) -> tuple[dict, float]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"dbt bench step failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds


def measure() -> dict:
    with tempfile.TemporaryDirectory(prefix="returnwatch-bench-dbt-") as scratch:
        env = {**os.environ, "RETURNWATCH_DATA_DIR": str(Path(scratch) / "data"),
               "PYTHONPATH": str(PROJECT)}
        env.pop("RETURNWATCH_WAREHOUSE", None)
        m, _ = _child(LOAD, env)
        _, m["cold"] = _child(BUILD, env, "no-publish")
        warm, m["warm"] = _child(BUILD, env, "publish")
        m.update(warm)
        m["warm"] -= warm["publish"]
        return m


def run() -> list[dict]:
    m = measure()
    cores = os.cpu_count()
    history = f"{m['files']} files, {m['raw_rows']:,} raw rows, {m['nodes']} nodes"
    return [
        {"measure": f"dbt build, cold: first build, full parse ({history}; {cores} cores)",
         "value": f"{m['cold']:.1f} s", "target": f"≤ {BUILD_TARGET_SECONDS:.0f} s",
         "ok": m["cold"] <= BUILD_TARGET_SECONDS},
        {"measure": "dbt build, warm: partial parse, as make dbt runs it again",
         "value": f"{m['warm']:.1f} s", "target": f"≤ {BUILD_TARGET_SECONDS:.0f} s",
         "ok": m["warm"] <= BUILD_TARGET_SECONDS},
        {"measure": f"snapshot publish ({m['snapshot_mb']:.0f} MB copy, {m['marts']} marts, "
                    f"{m['mart_rows']:,} rows to Parquet)",
         "value": f"{m['publish']:.1f} s", "target": "—", "ok": True},
        {"measure": "dbt tests that warned on the full history"
                    + (f" ({', '.join(w.split('.')[2] for w in m['warned'])})" if m["warned"] else ""),
         "value": str(len(m["warned"])), "target": "—", "ok": True},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['measure']:<100} {row['value']:>8}  {row['target']:<7} "
              f"{'ok' if row['ok'] else 'over'}")
