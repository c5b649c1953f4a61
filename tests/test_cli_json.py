"""Scripting the CLI: `status`, `summary`, `alerts list` and `alerts show` print JSON that
follows docs/cli-json.schema.json, and `status` exits 0 (healthy), 1 (attention: any state but
fresh, or an open critical incident) or 2 (no status)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from returnwatch import settings, status
from returnwatch.cli import main
from tests.test_read_only_data import late_source  # noqa: F401 - fixture

SCHEMA = json.loads((settings.PROJECT_DIR / "docs" / "cli-json.schema.json").read_text())


def validated(document: dict[str, Any], definition: str) -> dict[str, Any]:
    """Valid against the whole schema (one of its commands) and against ``definition``."""
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        raise error
    part = {**SCHEMA, "oneOf": [{"$ref": f"#/$defs/{definition}"}]}
    jsonschema.Draft202012Validator(part).validate(document)
    return document


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)


def test_every_json_document_follows_the_schema(late_source: str) -> None:  # noqa: F811
    code, document = run_json("status")
    validated(document, "status")
    assert code == document["exit_code"] == 1 and document["healthy"] is False
    hhs = next(s for s in document["sources"] if s["source"] == "hhs_uc_daily")
    assert (hhs["state"], hhs["newest_period"], hhs["expected_period"]) == (
        "late",
        "2025-06-10",
        "2025-06-15",
    )
    assert "hhs_uc_daily: late" in document["attention"]

    code, document = run_json("summary")
    validated(document, "summary")
    assert code == 0
    [hhs_load] = [load for load in document["loads"] if load["source"] == "hhs_uc_daily"]
    assert hhs_load["tables"][0]["table"] == "raw.hhs_uc_daily"
    assert hhs_load["tables"][0]["latest_period"] == "2025-06-10"

    code, document = run_json("alerts", "list")
    validated(document, "alerts_list")
    assert code == 0 and [i["incident_id"] for i in document["incidents"]] == [late_source]

    code, document = run_json("alerts", "list", "--all")
    validated(document, "alerts_list")
    assert document["all"] is True and len(document["incidents"]) == 1

    code, document = run_json("alerts", "show", late_source[:8])
    validated(document, "alerts_show")
    assert code == 0 and document["incident"]["incident_id"] == late_source
    assert document["incident"]["alerts"] and document["incident"]["alerts"][0]["event"] == "opened"


def test_the_schema_rejects_a_document_that_breaks_it(late_source: str) -> None:  # noqa: F811
    """So the test above can fail: a missing field or a wrong type is an error."""
    _, document = run_json("status")
    broken = {**document, "sources": [{**document["sources"][0], "missed_periods": "three"}]}
    with pytest.raises(jsonschema.ValidationError):
        validated(broken, "status")
    without = {k: v for k, v in document.items() if k != "attention"}
    with pytest.raises(jsonschema.ValidationError):
        validated(without, "status")


def test_no_warehouse_is_exit_code_2_in_one_line(data_dir: Path) -> None:
    for args in (["status"], ["status", "--json"], ["summary", "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("Error: cannot read") and "make demo" in result.output
        assert result.output.count("\n") == 1
    result = CliRunner().invoke(main, ["alerts", "list"])
    assert result.exit_code == 1 and "make demo" in result.output


# ------------------------------------------------------------------ the exit code's rules ---

NOW = dt.datetime(2025, 6, 17, 16, tzinfo=dt.UTC)


def _source(name: str, state: str | None) -> status.SourceStatus:
    return status.SourceStatus(
        source=name,
        title=None,
        calendar="monthly",
        state=state,
        newest_period=None,
        expected_period=None,
        missed_periods=0,
        last_new_file_at=None,
        last_check_at=None,
        last_check_outcome=None,
        judged_at=NOW,
        open_incidents=0,
        recent_revisions=0,
    )


def _incident(severity: str) -> status.OpenIncident:
    return status.OpenIncident(
        source="cbp_encounters_monthly",
        monitor="anomaly",
        series="s",
        kind="anomaly_spike",
        severity=severity,
        audience="advocates",
        opened_at=NOW,
        updated_at=NOW,
        summary="constructed incident for this test",
    )


HEALTHY = status.Status(
    sources=[_source("a", "fresh"), _source("b", "fresh")],
    incidents=[],
    revisions=[],
    revisions_total=0,
    judged_at=NOW,
)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({}, 0),
        ({"incidents": [_incident("warning")]}, 0),  # a warning is shown, not an emergency
        ({"incidents": [_incident("critical")]}, 1),
        ({"sources": [_source("a", "fresh"), _source("b", "late")]}, 1),
        ({"sources": [_source("a", "fresh"), _source("b", "stopped")]}, 1),
        ({"sources": [_source("a", "fresh"), _source("b", "no_data")]}, 1),
        ({"sources": [_source("a", "fresh"), _source("b", "unchecked")]}, 1),
        ({"sources": [_source("a", "fresh"), _source("b", "a_state_from_a_later_version")]}, 1),
        ({"sources": [_source("a", "fresh"), _source("b", None)]}, 1),  # never judged
    ],
)
def test_exit_code_rules(change: dict[str, Any], expected: int) -> None:
    current = dataclasses.replace(HEALTHY, **change)
    assert status.exit_code(current) == expected
    document = validated(status.as_json_document(current, read_from="constructed"), "status")
    assert document["exit_code"] == expected and document["healthy"] is (expected == 0)
    assert len(document["attention"]) == (0 if expected == 0 else 1)
