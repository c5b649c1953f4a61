"""What ops read in the Airflow UI leads somewhere: every DAG's ``doc_md`` says what it fetches
and when it runs and links into ``docs/runbook.md``; every runbook link anywhere (DAG docs,
alert texts, the CLI, config, docs) points at a heading that exists; every finding kind the code
can record has its own runbook section, whose anchor is the kind itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from returnwatch import config, settings

PROJECT = settings.PROJECT_DIR
RUNBOOK = PROJECT / "docs" / "runbook.md"
# Where runbook links are written: DAG docs, alert texts and the CLI (include/), config, docs.
LINKING_FILES = [
    *sorted((PROJECT / "include" / "returnwatch").rglob("*.py")),
    *sorted((PROJECT / "dags").glob("*.py")),
    *sorted((PROJECT / "config").glob("*.yaml")),
    *sorted((PROJECT / "docs").glob("*.md")),
    PROJECT / "README.md",
]
RUNBOOK_LINK = re.compile(r"runbook\.md#([A-Za-z0-9_\-]+)")
WEEKDAYS = ("Sundays", "Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays")


# --------------------------------------------------------------------------- the runbook


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: the rendered text, lower case, punctuation dropped
    (letters, digits, ``_``, ``-`` and spaces stay), spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts as its text
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def runbook_headings() -> list[tuple[int, str]]:
    """(level, anchor) of every heading, in order, outside fenced code; repeated anchors get
    GitHub's ``-1``, ``-2`` suffixes."""
    headings: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    fenced = False
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        headings.append((len(match.group(1)), anchor if count == 0 else f"{anchor}-{count}"))
    return headings


ANCHORS = {anchor for _, anchor in runbook_headings()}


def kind_sections() -> set[str]:
    """The anchors of the level-3 sections under "## Finding kinds"."""
    sections, inside = set(), False
    for level, anchor in runbook_headings():
        if level == 2:
            inside = anchor == "finding-kinds"
        elif level == 3 and inside:
            sections.add(anchor)
    return sections


def test_the_github_anchor_rules() -> None:
    assert github_anchor("`freshness_late`") == "freshness_late"
    assert github_anchor("Sources found on their pages") == "sources-found-on-their-pages"
    assert (
        github_anchor("cbp_encounters_monthly, segob_bulletin_monthly")
        == "cbp_encounters_monthly-segob_bulletin_monthly"
    )
    assert (
        github_anchor("Blocked again and again (HTTP 403 / 429)")
        == "blocked-again-and-again-http-403--429"
    )


# --------------------------------------------------------------------------- the DAGs


@pytest.fixture(scope="module")
def dags() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def schedule_paragraph(doc: str) -> str:
    match = re.search(r"\*\*Schedule\*\*(.*?)(?:\n\s*\n|\Z)", doc, re.S)
    assert match, "doc_md has no **Schedule** paragraph"
    return " ".join(match.group(1).split())


def schedule_words(dag) -> list[str]:
    """What the doc must say about the schedule, from the DAG's own timetable."""
    timetable = dag.timetable
    # By class name: the DAG holds the Task SDK's timetable classes, not the scheduler's.
    if type(timetable).__name__ == "AssetTriggeredTimetable":  # on Assets: name each one
        return sorted(_asset_names(timetable.asset_condition))
    if type(timetable).__name__ == "AssetOrTimeSchedule":  # both: each Asset and the cron
        return [
            *sorted(_asset_names(timetable.asset_condition)),
            *_cron_words(dag, timetable.timetable),
        ]
    return _cron_words(dag, timetable)


def _cron_words(dag, timetable) -> list[str]:
    assert type(timetable).__name__ == "CronTriggerTimetable", (
        f"{dag.dag_id}: teach this test the timetable {type(timetable).__name__}"
    )
    # The scheduler's timetable has .summary; the Task SDK's (inside an asset-or-time
    # schedule) has .expression: both are the cron text.
    cron = getattr(timetable, "summary", None) or timetable.expression
    minute, hour, day, month, weekday = cron.split()
    if minute.startswith("*/") and (hour, day, month, weekday) == ("*", "*", "*", "*"):
        return [f"every {int(minute[2:])} minutes"]
    assert (day, month) == ("*", "*"), f"{dag.dag_id}: teach this test the cron {cron}"
    when = "daily" if weekday == "*" else WEEKDAYS[int(weekday)]
    return [when, f"{int(hour):02d}:{int(minute):02d} UTC"]


def _asset_names(condition) -> set[str]:
    """The Assets of an Asset condition (``AssetAny``/``AssetAll`` nest them in ``objects``)."""
    if hasattr(condition, "objects"):
        return set().union(*(_asset_names(part) for part in condition.objects))
    return {condition.name}


def test_every_dag_says_when_it_runs(dags) -> None:
    for dag_id, dag in sorted(dags.items()):
        paragraph = schedule_paragraph(dag.doc_md or "")
        missing = [w for w in schedule_words(dag) if w not in paragraph]
        assert not missing, f"{dag_id}: the **Schedule** paragraph lacks {missing}: {paragraph}"


def test_every_source_dag_names_what_it_fetches(dags) -> None:
    for dag_id, dag in sorted(dags.items()):
        if dag_id not in config.sources():
            continue
        source = config.source(dag_id)
        # The real address (not the replay mirror's) and the config key it comes from.
        assert source.base_url.rstrip("/") + source.path in dag.doc_md, dag_id
        assert f"sources.{dag_id}" in dag.doc_md, dag_id


def test_every_dag_links_to_the_runbook_when_it_fails(dags) -> None:
    for dag_id, dag in sorted(dags.items()):
        doc = dag.doc_md or ""
        after = doc[doc.find("**When it fails**") :] if "**When it fails**" in doc else ""
        assert RUNBOOK_LINK.search(after), f"{dag_id}: no docs/runbook.md#... link when it fails"


def test_every_task_name_in_a_dag_doc_is_a_task(dags) -> None:
    """A renamed task leaves no stale name in its DAG's documentation."""
    for dag_id, dag in sorted(dags.items()):
        if "dbt" in dag.task_group.children:
            continue  # Cosmos names the dbt tasks from the manifest; the doc names patterns
        tasks = {t.task_id.rsplit(".", 1)[-1] for t in dag.tasks}
        named = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", dag.doc_md or ""))
        looks_like_tasks = {
            n
            for n in named
            if n.split("_")[0]
            in {
                "fetch",
                "parse",
                "validate",
                "load",
                "discover",
                "publish",
                "evaluate",
                "send",
                "refresh",
                "check",
            }
        }
        assert looks_like_tasks <= tasks, f"{dag_id}: doc names {looks_like_tasks - tasks}"


# --------------------------------------------------------------------------- every link


def test_every_runbook_link_points_at_a_heading(dags) -> None:
    texts = {f"DAG {dag_id} doc_md": dag.doc_md or "" for dag_id, dag in dags.items()}
    texts.update(
        {
            str(path.relative_to(PROJECT)): path.read_text(encoding="utf-8")
            for path in LINKING_FILES
            if path.exists()
        }
    )
    broken = sorted(
        {
            (where, anchor)
            for where, text in texts.items()
            for anchor in RUNBOOK_LINK.findall(text)
            if anchor not in ANCHORS
        }
    )
    assert broken == []
    # The runbook's own links to its sections.
    internal = re.findall(r"\]\(#([A-Za-z0-9_\-]+)\)", RUNBOOK.read_text(encoding="utf-8"))
    assert internal and sorted(set(internal) - ANCHORS) == []


# --------------------------------------------------------------------------- finding kinds


# Kinds made from a value the scan cannot follow: freshness's finding while the data are still
# on time takes the cause's name (monitor/freshness.py ``_finding``).
KINDS_FROM_RUNTIME_VALUES = {"not_checked", "source_unreachable"}


def _strings(node: ast.AST, module: ast.Module) -> tuple[set[str], set[str]]:
    """String constants an expression can evaluate to, and f-string prefixes."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        exact.add(node.value)
    elif isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
        if isinstance(first, ast.Constant) and first.value:
            prefixes.add(first.value)
    elif isinstance(node, ast.IfExp):
        for part in (node.body, node.orelse):
            more = _strings(part, module)
            exact |= more[0]
            prefixes |= more[1]
    elif isinstance(node, ast.BoolOp):
        for part in node.values:
            more = _strings(part, module)
            exact |= more[0]
            prefixes |= more[1]
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
    ):
        # MAPPING.get(key, default): the module-level dict's values and the default.
        for statement in module.body:
            if (
                isinstance(statement, ast.Assign)
                and isinstance(statement.value, ast.Dict)
                and any(
                    isinstance(t, ast.Name) and t.id == node.func.value.id
                    for t in statement.targets
                )
            ):
                exact |= {
                    v.value
                    for v in statement.value.values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                }
        for argument in node.args[1:]:
            more = _strings(argument, module)
            exact |= more[0]
            prefixes |= more[1]
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) == 3
    ):
        more = _strings(node.args[2], module)  # the default, not the attribute's name
        exact |= more[0]
        prefixes |= more[1]
    return exact - {""}, prefixes


def _assigned(function: ast.AST, name: str) -> list[ast.AST]:
    """The expressions ``name`` is assigned in ``function`` (tuple unpacking included)."""
    values = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                values += [
                    v
                    for t, v in zip(target.elts, node.value.elts)
                    if isinstance(t, ast.Name) and t.id == name
                ]
    return values


def finding_kinds() -> tuple[set[str], set[str]]:
    """The kinds ``Finding(kind=...)`` is given anywhere in the package, and f-string prefixes
    (``anomaly_``), plus the kinds of the errors a bad file raises (``ingest.report_bad_file``
    records ``error.kind``)."""
    from returnwatch import quality  # noqa: F401  (defines ValidationFailed)
    from returnwatch.sources.errors import SourceFileError

    exact, prefixes = set(KINDS_FROM_RUNTIME_VALUES), set()
    pending = [SourceFileError]
    while pending:
        cls = pending.pop()
        exact.add(cls.kind)
        pending += cls.__subclasses__()
    for path in sorted((PROJECT / "include" / "returnwatch").rglob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        functions = [
            n for n in ast.walk(module) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        for function in functions:
            for call in ast.walk(function):
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id == "Finding"
                ):
                    continue
                [kind] = [k.value for k in call.keywords if k.arg == "kind"] or [None]
                assert kind is not None, f"{path.name}:{call.lineno}: Finding without kind="
                sources = _assigned(function, kind.id) if isinstance(kind, ast.Name) else [kind]
                for expression in sources:
                    more = _strings(expression, module)
                    exact |= more[0]
                    prefixes |= more[1]
                assert sources, f"{path.name}:{call.lineno}: cannot tell this Finding's kind"
    return exact, prefixes


def test_the_scan_finds_the_kinds_of_every_monitor() -> None:
    exact, prefixes = finding_kinds()
    assert {
        "freshness_no_data",
        "same_file_again",
        "new_file_no_new_period",
        "missing_period",
        "rule_violation",
        "revision_restated",
        "quality_warning",
        "layout_changed",
        "validation_failed",
        "bad_file",
    } <= exact
    assert {"anomaly_", "restatement_", "freshness_"} <= prefixes


def test_every_finding_kind_has_a_runbook_section() -> None:
    exact, prefixes = finding_kinds()
    sections = kind_sections()
    assert sorted(exact - sections) == [], "add a ### section named after the kind"
    assert sorted(p for p in prefixes if not any(s.startswith(p) for s in sections)) == []


def test_every_anomaly_kind_the_detector_names_has_a_section() -> None:
    """``anomaly_<kind>``: the detector's kinds, as its docstring lists them."""
    from returnwatch.monitor import anomalies

    source = Path(anomalies.__file__).read_text(encoding="utf-8")
    detector_kinds = set(re.findall(r'kind\[\w+\] = "(\w+)"', source))
    assert detector_kinds >= {"spike", "drop", "drop_to_zero", "level_up", "level_down"}
    assert (
        sorted(f"anomaly_{k}" for k in detector_kinds if f"anomaly_{k}" not in kind_sections())
        == []
    )
