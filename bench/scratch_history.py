"""A scratch data folder holding the full real history, for the benchmarks that need one.

``bench/dbt_build.py`` and ``bench/monitors.py`` both measure on the whole history loaded
through the real ingest code (``tests/dbt/realdata.py``) and built with dbt; each step runs in
a fresh interpreter (``child``) so that imports and memory of one step do not leak into the
next one's figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

# Every real file the mirror serves, loaded through parse -> validate -> load.
LOAD = """
import json
from returnwatch import warehouse
from tests.dbt import realdata

with warehouse.session() as con:
    loaded = realdata.load_history(con, full=True)
print(json.dumps({"files": len(loaded), "raw_rows": sum(item.rows for item in loaded)}))
"""

# What `make dbt` runs (python -m returnwatch.transform build); with the argument "publish"
# the snapshot publish follows, timed apart.
BUILD = """
import json, sys, time
from returnwatch import transform

result = transform.dbt_build()
result.raise_for_status()
out = {"nodes": len(result.statuses), "warned": result.warned}
if sys.argv[1:] == ["publish"]:
    started = time.perf_counter()
    published = transform.publish_snapshot()
    out["publish"] = time.perf_counter() - started
    out["marts"] = len(published.tables)
    out["mart_rows"] = sum(published.tables.values())
    out["snapshot_mb"] = published.path.stat().st_size / 1e6
print(json.dumps(out))
"""


@contextlib.contextmanager
def scratch_env(name: str) -> Iterator[dict[str, str]]:
    """The environment of a fresh, empty data folder (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix=f"returnwatch-bench-{name}-") as scratch:
        env = {
            **os.environ,
            "RETURNWATCH_DATA_DIR": str(Path(scratch) / "data"),
            "PYTHONPATH": str(PROJECT),
        }
        env.pop("RETURNWATCH_WAREHOUSE", None)
        yield env


def child(code: str, env: dict[str, str], *args: str, timeout: float = 1200) -> tuple[dict, float]:
    """Run ``code`` in a fresh interpreter; its last output line is JSON. Returns it and the
    wall time of the whole process."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"bench step failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds
