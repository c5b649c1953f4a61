"""Mutation fuzzing of every parser on its real fixtures: each case parses or is refused.

What this module owns: the seed files (one or more real fixture per file kind), a seeded
mutator, and a runner that feeds mutants to ``sources.base.read`` / ``detect`` (the path
``ingest`` uses) and sorts each outcome into

- ``parsed``: rows came out;
- ``refused``: a ``SourceFileError`` (the project's bad-file error);
- ``escaped``: any other exception (a bug: the issue this guards against);
- ``slow``: over ``CASE_SECONDS`` (stopped by an interval timer, not a sleep).

Peak memory is the process's peak RSS (``resource.getrusage``), measured in a fresh process
(``python -m tests.fuzz.fuzz``) so nothing else a test session loaded counts; the case that
raised it is named. Every case is reproducible from ``--seed`` and its number.

Seeds: the real HHS export copy, CBP AOR files rendered by the replay mirror from real IOM
figures, the SEGOB workbooks of tables 3.1.1 / 3.1.3 / 3.2.4 the mirror writes from IOM's real
series (section 5's table and microdata are constructed: no public copy exists), and the
fixtures in tests/fixtures/ (the HHS PDFs and monthly page are constructed from real figures,
the CBP excerpts and SEGOB CSV are labelled constructed). Big real files are cut to their
first lines (real lines, whole) so a case stays fast; the layouts are the same.

``make test`` runs a few thousand cases (tests/fuzz/test_fuzz.py); ``make fuzz`` many more.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CASE_SECONDS = 10.0
MESSAGE_LIMIT = 1500  # characters of one refusal (file name, problem, expected, seen)
MEMORY_LIMIT_MB = 1024


@dataclass(frozen=True)
class Seed:
    name: str  # file kind and which seed file, e.g. "segob/cuadro_3_1_1 2019"
    source: str
    kind: str  # a file kind, or "discover": a listing page read by the source's discover
    content: bytes
    weight: float = 1.0  # relative share of cases (PDFs are slow to parse)
    # discover seeds: the mutated page's URL, the landing URL and the other pages (unmutated)
    url: str = ""
    landing: str = ""
    pages: tuple[tuple[str, bytes], ...] = ()


SEGOB = "https://portales.segob.gob.mx/es/PoliticaMigratoria"
CBP_LANDING = "https://www.cbp.gov/document/stats/nationwide-encounters"
RUN_AT = "2025-06-10T12:00:00+00:00"


def _head(content: bytes, lines: int) -> bytes:
    """The first ``lines`` lines of a CSV, whole (real lines, still ending in a newline)."""
    return b"".join(content.splitlines(keepends=True)[:lines])


def seeds() -> list[Seed]:
    from returnwatch import settings
    from returnwatch_replay.sites import cbp as cbp_site
    from returnwatch_replay.sites import segob as segob_site

    replay = settings.replay_data_dir()
    out: list[Seed] = []
    hhs_csv = (replay / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv").read_bytes()
    out.append(Seed("hhs/export_csv", "hhs_uc_daily", "export_csv", _head(hhs_csv, 80)))
    for pdf in sorted((FIXTURES / "hhs").glob("*.pdf"))[:3]:
        out.append(
            Seed(
                f"hhs/daily_report_pdf {pdf.stem[16:26]}",
                "hhs_uc_daily",
                "daily_report_pdf",
                pdf.read_bytes(),
                weight=0.15,
            )
        )
    page = next((FIXTURES / "hhs").glob("latest-uc-data-*.html")).read_bytes()
    out.append(Seed("hhs_monthly/fy_page", "hhs_uc_monthly", "fy_page", page, weight=0.7))

    cbp = cbp_site.CbpSite(replay)
    aor = next(f for f in cbp.files if f.name == "nationwide-encounters-fy21-fy24-aor.csv")
    out.append(Seed("cbp/aor", "cbp_encounters_monthly", "aor", _head(cbp.body(aor), 80)))
    for kind in ("state", "sbo"):
        path = next((FIXTURES / "cbp").glob(f"{kind}_*.csv"))
        out.append(Seed(f"cbp/{kind}", "cbp_encounters_monthly", kind, path.read_bytes()))

    segob = segob_site.SegobSite(replay)
    for number, kind, year in (
        ("3.1.1", "cuadro_3_1_1", 2019),
        ("3.1.3", "cuadro_3_1_3", 2019),
        ("3.2.4", "cuadro_3_2_4", 2021),
        ("5.2.1", "section_5_minors", 2024),
    ):
        out.append(
            Seed(
                f"segob/{kind} {year}",
                "segob_bulletin_monthly",
                kind,
                segob.workbook(number, year, (1, 2, 3)),
                weight=0.8,
            )
        )
    out.append(
        Seed(
            "segob/microdata",
            "segob_bulletin_monthly",
            "microdata",
            _head(segob.microdata(2024, [1]), 60),
        )
    )
    constructed = next((FIXTURES / "segob").glob("BDSIOMR_*_constructed.csv"))
    out.append(
        Seed(
            "segob/microdata constructed",
            "segob_bulletin_monthly",
            "microdata",
            constructed.read_bytes(),
            weight=0.5,
        )
    )

    # Listing pages (all constructed: tests/fixtures/*/README.md), read by discover.
    cbp_landing = (FIXTURES / "cbp" / "landing_page_constructed.html").read_bytes()
    out.append(
        Seed(
            "cbp/landing_page",
            "cbp_encounters_monthly",
            "discover",
            cbp_landing,
            weight=0.5,
            url=CBP_LANDING,
            landing=CBP_LANDING,
        )
    )
    landing = f"{SEGOB}/Boletines_Estadisticos"
    segob_landing = (FIXTURES / "segob" / "landing_utf8_constructed.html").read_bytes()
    out.append(
        Seed(
            "segob/landing_page",
            "segob_bulletin_monthly",
            "discover",
            segob_landing,
            weight=0.5,
            url=landing,
            landing=landing,
        )
    )
    for year, section, name in (
        (2021, 3, "cuadros_2021_secc3_latin1_constructed.html"),
        (2024, 5, "cuadros_2024_secc5_latin1_constructed.html"),
    ):
        page = f"{SEGOB}/CuadrosBOLETIN?Anual={year}&Secc={section}"
        lists = (
            f'<html><body><a href="CuadrosBOLETIN?Anual={year}&amp;Secc={section}">'
            f"{year}</a></body></html>"
        ).encode()
        out.append(
            Seed(
                f"segob/tables_page {year}",
                "segob_bulletin_monthly",
                "discover",
                (FIXTURES / "segob" / name).read_bytes(),
                weight=0.5,
                url=page,
                landing=landing,
                pages=((landing, lists),),
            )
        )
    return out


def _run_seed(s: Seed, content: bytes, *, file: str, use_detect: bool) -> None:
    """One case: ``read`` (or ``detect``) a file, or ``discover`` over a mutated page."""
    import datetime as dt

    from returnwatch.sources import module
    from returnwatch.sources.base import detect, discover, read

    if s.kind == "discover":
        pages = dict(s.pages) | {s.url: content}
        discover(
            s.source,
            lambda url: pages.get(url, b"<html><body>Sin cuadros</body></html>"),
            landing_url=s.landing,
            run_at=dt.datetime.fromisoformat(RUN_AT),
            options={"sections": [3, 5], "first_year": 2018} if "segob" in s.source else {},
        )
    elif use_detect:
        detect(s.source, f"fuzz/{s.kind}", content)
    else:
        read(s.source, module(s.source).KINDS[s.kind], content, file=file)


# ------------------------------------------------------------------------------ mutations


def _flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _duplicate(rng: random.Random, data: bytes) -> bytes:
    a = rng.randrange(len(data) + 1)
    b = min(len(data), a + rng.randint(1, 4096))
    return data[:b] + data[a:b] * rng.randint(1, 20) + data[b:]


def _delete(rng: random.Random, data: bytes) -> bytes:
    a = rng.randrange(len(data) + 1)
    return data[:a] + data[a + rng.randint(1, 512) :]


def _nul(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + b"\x00" * rng.choice((1, 1, 2, 64)) + data[at:]


_HUGE = (
    b"2147483648",
    b"99999999999999999999",
    b"9" * 400,
    b"-1",
    b"1e309",
    b"NaN",
    b"4294967296.0",
    b"1,000,000,000,000",
)


def _huge_number(rng: random.Random, data: bytes) -> bytes:
    """A digit run replaced by a number too large (or negative) for its column."""
    import re

    runs = [m.span() for m in re.finditer(rb"\d+", data[:200_000])]
    if not runs:
        return data
    a, b = rng.choice(runs)
    return data[:a] + rng.choice(_HUGE) + data[b:]


def _huge_field(rng: random.Random, data: bytes) -> bytes:
    """A field of 150k-1M characters (past the csv module's 131,072 limit), maybe quoted."""
    at = rng.randrange(len(data) + 1)
    size = rng.choice((150_000, 150_000, 1_000_000))
    body = rng.choice((b"A", b"9", b",", b'"', b"<td>")) * size
    if rng.random() < 0.5:
        body = b'"' + body + b'"'
    return data[:at] + body + data[at:]


def _splice(rng: random.Random, data: bytes) -> bytes:
    """A line (or a 512-byte block) of the file moved elsewhere."""
    a = rng.randrange(len(data) + 1)
    piece = data[a : a + rng.randint(1, 512)]
    b = rng.randrange(len(data) + 1)
    return data[:b] + piece + data[b:]


MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": _flip,
    "truncate": _truncate,
    "duplicate": _duplicate,
    "delete": _delete,
    "nul": _nul,
    "huge_number": _huge_number,
    "huge_field": _huge_field,
    "splice": _splice,
}
_WEIGHTS = {
    "flip": 5,
    "truncate": 2,
    "duplicate": 2,
    "delete": 2,
    "nul": 1,
    "huge_number": 3,
    "huge_field": 0.5,
    "splice": 2,
}


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    names = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()), k=rng.randint(1, 3))
    for name in names:
        data = MUTATIONS[name](rng, data)
    return data, names


# ------------------------------------------------------------------------------ running


class CaseTimeout(BaseException):
    """Raised by the interval timer; a BaseException so no parser's ``except`` swallows it."""


def _alarm(signum: int, frame: object) -> None:
    raise CaseTimeout


def _self_peak_kb() -> int:
    """This process's own peak RSS, KiB. Linux's ``ru_maxrss`` for a process started by
    fork + exec keeps the peak of the process it was forked from (the test session, which can
    be 1 GB after the end-to-end tests), so the peak of this process's own memory map,
    ``VmHWM``, is read instead where /proc has it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss_mb() -> float:
    """The peak RSS of this process or of any child it waited for (the PDF reader), MiB."""
    return max(_self_peak_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run(cases: int, seed: int, *, max_seconds: float | None = None) -> dict[str, object]:
    """Run ``cases`` cases (or until ``max_seconds``); return the figures as a dict."""
    from returnwatch.sources import segob_bulletin_monthly as segob
    from returnwatch.sources.errors import SourceFileError
    from returnwatch.sources.hhs_uc_daily import report_pdf as hhs_report

    segob.discovery.EMPTY_PAGE_PAUSES = (
        0.0,
        0.0,
    )  # no pause between asking for an empty page again
    corpus = seeds()
    weights = [s.weight for s in corpus]
    # Every seed parses unmutated (else the fuzz would only exercise refusals), with the PDF
    # reader's own deadline: on a busy machine a real report can take over a second.
    for s in corpus:
        _run_seed(s, s.content, file=s.name, use_detect=False)
    # Then the deadline is lowered so pathological PDFs cost 1 s, not 8 s, of the run (a
    # mutant cut off by it is a refusal, which the fuzz counts as a correct answer).
    hhs_report.PDF_SECONDS = 1.0
    baseline = _peak_rss_mb()
    signal.signal(signal.SIGALRM, _alarm)
    by_kind: dict[str, dict[str, int]] = {}
    escaped: list[dict[str, object]] = []
    guarded: dict[str, int] = {}
    slowest = (0.0, "")
    peak = (baseline, "")
    began = time.monotonic()
    done = 0
    for number in range(cases):
        if max_seconds is not None and time.monotonic() - began > max_seconds:
            break
        rng = random.Random(f"{seed}:{number}")
        s = rng.choices(corpus, weights=weights)[0]
        content, names = mutate(rng, s.content)
        use_detect = s.kind != "discover" and rng.random() < 0.1
        label = f"case {number} ({s.name}; {'+'.join(names)}{'; detect' if use_detect else ''})"
        counts = by_kind.setdefault(
            s.name.split(" ")[0], {"cases": 0, "parsed": 0, "refused": 0, "seconds": 0.0}
        )
        counts["cases"] += 1
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        try:
            _run_seed(s, content, file=label, use_detect=use_detect)
            counts["parsed"] += 1
        except SourceFileError as refusal:
            counts["refused"] += 1
            if len(str(refusal)) > MESSAGE_LIMIT:  # it goes into an ops alert: stays readable
                escaped.append(
                    {"case": label, "error": f"a {len(str(refusal)):,}-character refusal"}
                )
            if refusal.__cause__ is not None:  # caught by the last-resort guard, not a check
                cause = refusal.__cause__
                where = traceback.extract_tb(cause.__traceback__)[-1]
                key = f"{type(cause).__name__} at {Path(where.filename).name}:{where.lineno}"
                guarded[key] = guarded.get(key, 0) + 1
        except CaseTimeout:
            escaped.append({"case": label, "error": f"over {CASE_SECONDS:.0f} s"})
        except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
            where = traceback.extract_tb(exc.__traceback__)[-1]
            escaped.append(
                {
                    "case": label,
                    "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                    "at": f"{Path(where.filename).name}:{where.lineno}",
                }
            )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.perf_counter() - started
        counts["seconds"] = round(counts["seconds"] + seconds, 2)
        if seconds > slowest[0]:
            slowest = (seconds, label)
        rss = _peak_rss_mb()
        if rss > peak[0]:
            peak = (rss, label)
        done += 1
    return {
        "seed": seed,
        "cases": done,
        "kinds": len(by_kind),
        "by_kind": by_kind,
        "escaped": escaped,
        "guarded": guarded,
        "seconds": round(time.monotonic() - began, 1),
        "slowest_case_s": round(slowest[0], 3),
        "slowest_case": slowest[1],
        "baseline_rss_mb": round(baseline),
        "peak_rss_mb": round(peak[0]),
        "peak_rss_case": peak[1],
        "case_limit_s": CASE_SECONDS,
        "memory_limit_mb": MEMORY_LIMIT_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop early after this long (the cases run so far are reported)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args.cases, args.seed, max_seconds=args.max_seconds)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            if key not in ("by_kind", "escaped", "guarded"):
                print(f"{key}: {value}")
        for kind, counts in sorted(figures["by_kind"].items()):  # type: ignore[union-attr]
            print(f"  {kind}: {counts}")
        for where, count in sorted(figures["guarded"].items()):  # type: ignore[union-attr]
            print(f"  refused by the guard: {count} x {where}")
        for case in figures["escaped"]:  # type: ignore[union-attr]
            print(f"ESCAPED {case}")
    bad = figures["escaped"] or figures["peak_rss_mb"] > MEMORY_LIMIT_MB  # type: ignore[operator]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
