"""The mutation fuzz of every parser, bounded for ``make test`` (``make fuzz`` runs more).

It runs in a fresh process (``python -m tests.fuzz.fuzz``) so its peak memory is its own, not
the test session's; the child's own interval timer stops any case at 10 s, and the whole run
is bounded in cases and in seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fuzz.fuzz import CASE_SECONDS, MEMORY_LIMIT_MB

ROOT = Path(__file__).resolve().parents[2]
CASES = 2000
SEED = 14


def test_every_mutant_of_every_file_kind_parses_or_is_refused() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.fuzz",
            "--cases",
            str(CASES),
            "--seed",
            str(SEED),
            "--max-seconds",
            "75",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in figures.items() if k != "by_kind"}, indent=1))
    assert figures["escaped"] == [], figures["escaped"]
    assert figures["peak_rss_mb"] < MEMORY_LIMIT_MB, figures["peak_rss_case"]
    assert figures["slowest_case_s"] < CASE_SECONDS, figures["slowest_case"]
    # Every file kind was exercised, each with mutants that parsed and mutants refused.
    assert figures["kinds"] >= 14
    assert figures["cases"] >= 1000  # the time bound may stop a very busy machine early
    for kind, counts in figures["by_kind"].items():
        assert counts["refused"] > 0, kind
    assert done.returncode == 0
