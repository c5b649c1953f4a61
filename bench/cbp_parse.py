"""Bench: a nationwide-size CBP AOR file parsed (the figure the parser's tests used to time).

The file is the replay mirror's re-laid ``nationwide-encounters-fy21-fy24-aor.csv`` (real
figures, IOM's copy of CBP's files) repeated four times: 113,776 rows, as large as a real
nationwide AOR file. The parse runs in this process after a warm-up, best of three.

Run: ``python bench/cbp_parse.py`` (prints a table); ``run()`` returns its rows for
``bench/run.py``.
"""

from __future__ import annotations

import time

TARGET_SECONDS = 5.0
FILE = "nationwide-encounters-fy21-fy24-aor.csv"


def run() -> list[dict[str, object]]:
    from returnwatch import settings
    from returnwatch.sources import cbp_encounters_monthly as cbp
    from returnwatch_replay.sites import cbp as site

    mirror = site.CbpSite(settings.replay_data_dir())
    (link,) = [f for f in mirror.files if f.name == FILE]
    header, _, rows = mirror.body(link).partition(b"\r\n")
    big = header + b"\r\n" + rows * 4
    expected = 4 * rows.count(b"\r\n")
    cbp.parse_aor(big[: len(header) + 2 + 10_000].rsplit(b"\r\n", 1)[0] + b"\r\n", file="warm-up")
    times = []
    for _ in range(3):
        started = time.perf_counter()
        parsed = cbp.parse_aor(big, file="bench")
        times.append(time.perf_counter() - started)
        assert len(parsed.frame()) == expected
    best = min(times)
    return [
        {
            "measure": f"cbp AOR parse ({expected:,} rows, best of 3)",
            "value": f"{best:.2f} s",
            "target": f"≤ {TARGET_SECONDS:.0f} s",
            "verdict": "ok" if best <= TARGET_SECONDS else "over",
            "seconds": best,
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['measure']:<55} {row['value']:>8}  {row['target']:>6}  {row['verdict']}")
