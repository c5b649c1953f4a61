"""Bench: one year of SEGOB section-5 microdata at real scale, parsed and loaded into DuckDB.

What this owns: the figure behind "the microdata parser handles ~250k rows in ≤ 5 s and
≤ 300 MB peak RSS, DuckDB load included". The rows are GENERATED here (no real copy of
``BDSIOMR_PUB_{YYYY}_UPMRIP.csv`` exists offline): 250,000 invented repatriation events in the
layout of the constructed file the replay mirror serves (``FEC_REP``, ``SEXO``, ``EDA``,
``ACOM_REP``, ``EDO_DET``, ``PUNT_REP``, Latin-1, CRLF). Only the size and shape are realistic;
no figure here means anything.

The measured part runs in a fresh interpreter (started by a small wrapper process whose only
child it is), so its peak RSS — read with ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` —
is that of the parse and load alone, imports included, and not of whatever ran before.
It does what ingest does: parse (pyarrow), hand the rows over as Parquet, load them into a
temporary warehouse with ``warehouse.connect`` / ``init`` / ``load_file`` in one transaction.
The SEGOB raw tables are created from ``sources.segob_bulletin_monthly.RAW_DDL`` (``warehouse.py`` may not know
them yet).

Run: ``python bench/segob_microdata.py`` (prints a table); ``run()`` returns its rows for
``bench/run.py``.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 250_000
YEAR = 2024
TARGET_SECONDS = 5.0
TARGET_MB = 300.0
PROJECT = Path(__file__).resolve().parents[1]

# The wrapper's only child is the measured process, so RUSAGE_CHILDREN is that process alone.
RSS_WRAPPER = """
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(sys.argv[1], "w").write(json.dumps({"code": code, "peak_kb": peak_kb}))
sys.exit(code)
"""

POINTS = [
    "Tijuana, B.C.",
    "Mexicali, B.C.",
    "Nogales, Son.",
    "San Luis Río Colorado, Son.",
    "Ciudad Juárez, Chih.",
    "Ojinaga, Chih.",
    "Piedras Negras, Coah.",
    "Ciudad Acuña, Coah.",
    "Nuevo Laredo, Tamps.",
    "Reynosa, Tamps.",
    "Matamoros, Tamps.",
    "Aeropuerto Internacional de la Ciudad de México",
]
STATES = ["California", "Arizona", "Nuevo México", "Texas", "Florida", "Georgia", "Illinois"]


def generate(path: Path, rows: int = ROWS, year: int = YEAR, seed: int = 2024) -> int:
    """Write ``rows`` GENERATED events (not real data) to ``path``; returns its size."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = rng.integers(0, 365 if year % 4 else 366, rows)
    dates = pd.Timestamp(year=year, month=1, day=1) + pd.to_timedelta(np.sort(days), unit="D")
    ages = rng.integers(0, 70, rows)
    condition = np.where(ages >= 18, "9", rng.choice(["1", "2"], rows))
    frame = pd.DataFrame(
        {
            "FEC_REP": dates.strftime("%d/%m/%Y"),
            "SEXO": rng.choice(["1", "2"], rows, p=[0.8, 0.2]),
            "EDA": ages,
            "ACOM_REP": condition,
            "EDO_DET": rng.choice(STATES, rows),
            "PUNT_REP": rng.choice(POINTS, rows),
        }
    )
    frame.to_csv(path, index=False, encoding="latin-1", lineterminator="\r\n")
    return path.stat().st_size


def measure(csv_path: Path, folder: Path) -> dict[str, float | int]:
    """The measured part (runs in the fresh child): parse, Parquet handoff, load."""
    started = time.perf_counter()
    import datetime as dt
    import hashlib

    import pandas as pd
    import pyarrow as pa

    from returnwatch import warehouse
    from returnwatch.sources import segob_bulletin_monthly as segob

    imported = time.perf_counter()
    content = csv_path.read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    parsed = segob.parse_microdata(content, file="bench")
    rows, encoding, size = parsed.table.num_rows, parsed.encoding, len(content)
    frame = parsed.frame()
    parse_done = time.perf_counter()
    # In the pipeline, parse and load are two tasks (two processes) with Parquet in between;
    # here they share one process, so what the parse task would drop is dropped.
    del content, parsed
    parquet = folder / "parsed.parquet"
    frame.to_parquet(parquet, index=False)
    del frame
    gc.collect()
    pa.default_memory_pool().release_unused()  # Arrow keeps freed pages otherwise
    frame = pd.read_parquet(parquet)
    pa.default_memory_pool().release_unused()
    handoff_done = time.perf_counter()
    con = warehouse.connect(folder / "warehouse.duckdb")
    warehouse.init(con)
    for statement in segob.RAW_DDL:
        con.execute(statement)
    result = warehouse.load_file(
        con,
        table=segob.MICRODATA_TABLE,
        frame=frame,
        source=segob.SOURCE,
        sha256=sha256,
        url="bench:generated",
        vintage=dt.date(YEAR + 1, 2, 7),
        fetched_at=dt.datetime.now(dt.UTC),
    )
    loaded = con.execute(f"SELECT count(*) FROM raw.{segob.MICRODATA_TABLE}").fetchone()[0]
    con.close()
    done = time.perf_counter()
    return {
        "import_s": imported - started,
        "parse_s": parse_done - imported,
        "handoff_s": handoff_done - parse_done,
        "load_s": done - handoff_done,
        "rows": rows,
        "loaded": loaded,
        "rows_loaded": result.rows_loaded,
        "bytes": size,
        "encoding": encoding,
    }


def run() -> list[dict[str, object]]:
    """Generate, measure in a fresh process, and return the table's rows."""
    with tempfile.TemporaryDirectory(prefix="returnwatch-bench-segob-") as tmp:
        folder = Path(tmp)
        csv_path = folder / f"BDSIOMR_PUB_{YEAR}_UPMRIP_GENERATED.csv"
        size = generate(csv_path)
        result_file, rss_file = folder / "result.json", folder / "rss.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(PROJECT / "include"), os.environ.get("PYTHONPATH", "")]
            ),
        }
        child = [
            sys.executable,
            __file__,
            "--measure",
            str(csv_path),
            str(folder),
            str(result_file),
        ]
        subprocess.run(
            [sys.executable, "-c", RSS_WRAPPER, str(rss_file), *child],
            check=True,
            env=env,
            timeout=300,
        )
        result = json.loads(result_file.read_text())
        peak_mb = json.loads(rss_file.read_text())["peak_kb"] / 1024
    seconds = result["parse_s"] + result["handoff_s"] + result["load_s"]
    assert result["loaded"] == result["rows"] == ROWS, result
    label = f"{ROWS:,} GENERATED events, {size / 1e6:.1f} MB {result['encoding']} CSV"
    return [
        {
            "measure": f"segob microdata: parse ({label})",
            "value": f"{result['parse_s']:.2f} s",
            "target": "—",
            "verdict": "—",
            "seconds": result["parse_s"],
        },
        {
            "measure": "segob microdata: Parquet handoff (as ingest does)",
            "value": f"{result['handoff_s']:.2f} s",
            "target": "—",
            "verdict": "—",
            "seconds": result["handoff_s"],
        },
        {
            "measure": "segob microdata: load into DuckDB (one transaction)",
            "value": f"{result['load_s']:.2f} s",
            "target": "—",
            "verdict": "—",
            "seconds": result["load_s"],
        },
        {
            "measure": "segob microdata: parse + load",
            "value": f"{seconds:.2f} s",
            "target": f"≤ {TARGET_SECONDS:.0f} s",
            "verdict": "ok" if seconds <= TARGET_SECONDS else "over",
            "seconds": seconds,
        },
        {
            "measure": "segob microdata: peak RSS of that process (imports included)",
            "value": f"{peak_mb:.0f} MB",
            "target": f"≤ {TARGET_MB:.0f} MB",
            "verdict": "ok" if peak_mb <= TARGET_MB else "over",
            "mb": peak_mb,
        },
        {
            "measure": "segob microdata: imports (not in the target)",
            "value": f"{result['import_s']:.2f} s",
            "target": "—",
            "verdict": "—",
            "seconds": result["import_s"],
        },
    ]


def print_table(rows: list[dict[str, object]]) -> None:
    header = {"measure": "measure", "value": "value", "target": "target", "verdict": ""}
    keys = list(header)
    widths = {k: max(len(str(r[k])) for r in [header, *rows]) for k in keys}
    print("  ".join(str(header[k]).ljust(widths[k]) for k in keys))
    print("  ".join("-" * widths[k] for k in keys))
    for row in rows:
        print("  ".join(str(row[k]).ljust(widths[k]) for k in keys))


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--measure":
        result = measure(Path(sys.argv[2]), Path(sys.argv[3]))
        Path(sys.argv[4]).write_text(json.dumps(result))
        return 0
    rows = run()
    print("SEGOB microdata bench — the events are GENERATED (no real data), real scale only")
    print_table(rows)
    print(f"machine: {os.cpu_count()} cores")
    return 0 if all(r["verdict"] in {"ok", "—"} for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
