"""The returnwatch page and its JSON, served by Airflow's own API server app.

The app under test is the one ``airflow api-server`` serves: ``create_app()`` with the plugin
loaded from its entry point, SimpleAuthManager with a Viewer whose password is in a passwords
file, and a migrated metadata DB (token revocation lives there). The warehouse behind it holds
real published rows: CBP's files of March 2021 and June 2025 (19 restated figures) and HHS's
daily file with its real gap of 11–16 June 2025, judged by the monitors on 17 June 2025 and
published as the analysts' snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from returnwatch import airflow_env, transform, warehouse
from returnwatch.monitor import run_monitors
from tests.monitor.hhs_history import HhsHistory, at
from tests.monitor.monthly_history import MonthlyHistory

D = dt.date.fromisoformat
USER, PASSWORD = "ops", "viewer-password-for-tests"
JUDGED_AT = at("2025-06-17")


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data folder whose snapshot holds real rows and the monitors' verdict of 17 June 2025."""
    data = tmp_path_factory.mktemp("ops-view") / "data"
    data.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RETURNWATCH_DATA_DIR", str(data))
        with warehouse.session() as con:
            monthly = MonthlyHistory(con)
            monthly.cbp(D("2021-03-20"), received=at("2021-03-20", 14))
            monthly.cbp(D("2025-06-17"), received=at("2025-06-17", 14))  # restates 19 figures
            hhs = HhsHistory(con)
            hhs.publish("2025-06-10", received=at("2025-06-11", 15))
            for day in ("2025-06-12", "2025-06-13", "2025-06-16", "2025-06-17"):
                hhs.check(at(day, 15), "unchanged")  # real gap: the same file again
            run_monitors(run_at=JUDGED_AT, run_id="test/ops_view", con=con)
        transform.publish_snapshot()
    yield data


@pytest.fixture(scope="module")
def client(history_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Airflow's API server app, signed-out; ``login()`` gives a Viewer's token."""
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RETURNWATCH_DATA_DIR", str(history_dir))
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{USER}:viewer")
        env.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        airflow_env.prepare_metadata_db()
        from airflow.api_fastapi.app import create_app, purge_cached_app
        from fastapi.testclient import TestClient

        purge_cached_app()  # the auth manager is a process-wide singleton: ours, this config
        try:
            with TestClient(create_app(), base_url="http://127.0.0.1") as test_client:
                yield test_client
        finally:
            purge_cached_app()


@pytest.fixture(scope="module")
def token(client: Any) -> str:
    answer = client.post("/auth/token", json={"username": USER, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json()["access_token"]


def page(client: Any, token: str) -> BeautifulSoup:
    # The UI's own cookie, as the browser sends it to the iframe.
    client.cookies.set("_token", token)
    try:
        answer = client.get("/returnwatch/")
    finally:
        client.cookies.clear()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return BeautifulSoup(answer.text, "html.parser")


def text(node: Any) -> str:
    return " ".join(node.get_text(" ").split())


# ------------------------------------------------------------------------------- content ---


def test_each_source_has_a_row_with_its_state(client: Any, token: str) -> None:
    html = page(client, token)
    rows = {row["data-source"]: row for row in html.select("#sources tbody tr")}
    assert list(rows) == [
        "hhs_uc_daily",
        "hhs_uc_monthly",
        "cbp_encounters_monthly",
        "segob_bulletin_monthly",
    ]
    states = {source: text(row.select_one(".pill")) for source, row in rows.items()}
    assert states == {
        "hhs_uc_daily": "late",
        "cbp_encounters_monthly": "fresh",
        "hhs_uc_monthly": "no data",
        "segob_bulletin_monthly": "no data",
    }
    assert "state-late" in rows["hhs_uc_daily"].select_one(".pill")["class"]

    cells = [text(td) for td in rows["hhs_uc_daily"].find_all("td")]
    # Figures through Tuesday 10 June, received the 11th; 11, 12 and 15 June missed by the 17th.
    assert "3 publishing days missing; due through 2025-06-15" in cells[1]
    assert cells[2:4] == ["2025-06-10", "2025-06-11"]
    assert cells[4] == "2025-06-17 (unchanged)"
    assert cells[5:] == ["1", "0"]
    # A monthly source's period is a month; its new file of 16 June restated 19 figures.
    cbp = [text(td) for td in rows["cbp_encounters_monthly"].find_all("td")]
    assert cbp[2] == "2025-05" and cbp[-1] == "19"
    assert text(html.select_one("#judged-at")) == "2025-06-17 16:00 UTC"


def test_open_incidents_and_recent_revisions_are_listed(client: Any, token: str) -> None:
    html = page(client, token)
    incidents = [
        [text(td) for td in row.find_all("td")] for row in html.select("#incidents tbody tr")
    ]
    [late] = [row for row in incidents if row[2] == "hhs_uc_daily"]
    assert late[:4] == ["2025-06-17", "warning", "hhs_uc_daily", "same_file_again"]
    assert "2025-06-10" in late[4] and late[5] == "ops"

    assert "(19)" in text(html.find("h2", string=lambda s: s and s.startswith("Revisions")))
    revisions = [
        [text(td) for td in row.find_all("td")] for row in html.select("#revisions tbody tr")
    ]
    assert len(revisions) == 19
    # One real restatement: Rio Grande Valley, Mexican children expelled under Title 42 in
    # October 2020, 613 in CBP's file of March 2021 and 616 in its file of October 2024.
    [rgv] = [
        row
        for row in revisions
        if "Rio Grande Valley" in row[2]
        and "MEXICO" in row[2]
        and "Title 42" in row[2]
        and row[3] == "2020-10"
    ]
    assert rgv[1] == "cbp_encounters_monthly" and rgv[2].startswith("encounters · ")
    assert rgv[4:] == ["613 → 616", "+3", "2021-03-02 → 2024-10-15"]


def test_json_has_the_same_status_for_scripts(client: Any, token: str) -> None:
    answer = client.get("/returnwatch/status.json", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert {s["source"]: s["state"] for s in data["sources"]} == {
        "hhs_uc_daily": "late",
        "cbp_encounters_monthly": "fresh",
        "hhs_uc_monthly": "no_data",
        "segob_bulletin_monthly": "no_data",
    }
    assert data["judged_at"] == "2025-06-17T16:00:00+00:00"
    assert data["snapshot_at"] and data["read_from"].endswith("snapshot/warehouse.duckdb")
    assert [
        (i["source"], i["kind"]) for i in data["incidents"] if i["source"] == "hhs_uc_daily"
    ] == [("hhs_uc_daily", "same_file_again")]
    assert data["revisions_total"] == 19
    rgv = [r for r in data["revisions"] if r["period"] == "2020-10" and r["old_value"] == 613]
    assert [(r["new_value"], r["old_vintage"], r["new_vintage"]) for r in rgv] == [
        (616, "2021-03-02", "2024-10-15")
    ]


# -------------------------------------------------------------------------------- access ---


def test_signed_out_requests_get_no_data(client: Any) -> None:
    answer = client.get("/returnwatch/status.json")
    assert answer.status_code == 401 and "hhs_uc_daily" not in answer.text
    # A person opening the page is sent to Airflow's login, which brings them back here.
    answer = client.get("/returnwatch/", follow_redirects=False)
    assert answer.status_code == 303 and "hhs_uc_daily" not in answer.text
    assert answer.headers["location"] == (
        "/auth/login?next=http%3A%2F%2F127.0.0.1%2Freturnwatch%2F"
    )


def test_a_forged_token_gets_no_data(client: Any) -> None:
    import jwt

    forged = jwt.encode(
        {"sub": USER, "role": "admin"}, "not-the-servers-secret-" * 4, algorithm="HS512"
    )
    for path in ("/returnwatch/", "/returnwatch/status.json"):
        answer = client.get(
            path, headers={"Authorization": f"Bearer {forged}"}, follow_redirects=False
        )
        assert answer.status_code == 403 and "hhs_uc_daily" not in answer.text, path


def test_the_nav_entry_opens_this_page(client: Any, token: str) -> None:
    """What the UI's nav bar is built from: the plugin's external view, pointing at the page."""
    answer = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"})
    [plugin] = [p for p in answer.json()["plugins"] if p["name"] == "returnwatch"]
    [view] = plugin["external_views"]
    assert (view["url_route"], view["href"], view["destination"]) == (
        "returnwatch",
        "/returnwatch/",
        "nav",
    )
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/returnwatch"]


# --------------------------------------------------------------------------- empty state ---


def test_before_the_first_snapshot_the_page_says_so(
    client: Any, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(tmp_path))
    html = page(client, token)
    empty = html.select_one("#empty-state")
    assert empty is not None and "No snapshot yet" in text(empty)
    assert "transform" in text(empty) and html.select_one("#sources") is None
    answer = client.get("/returnwatch/status.json", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 404 and "no snapshot" in answer.json()["detail"]


def test_a_snapshot_before_any_monitor_run_says_not_judged(
    client: Any, token: str, data_dir: Path
) -> None:
    with warehouse.session():
        pass  # an empty warehouse, schemas created, as after the first loads
    transform.publish_snapshot()
    html = page(client, token)
    assert text(html.select_one("#judged-at")) == "No monitor run yet"
    states = {
        row["data-source"]: text(row.select_one(".pill"))
        for row in html.select("#sources tbody tr")
    }
    assert set(states.values()) == {"not judged yet"} and len(states) == 4
    assert html.select_one("#no-incidents") and html.select_one("#no-revisions")


def test_an_unchecked_source_says_so_with_its_last_check(
    client: Any, token: str, data_dir: Path
) -> None:
    """The CBP DAG last checked the site on 16 June and was paused since (issue 19)."""
    with warehouse.session() as con:
        MonthlyHistory(con).cbp(D("2025-06-17"), received=at("2025-06-16", 14))
        run_monitors(
            run_at=at("2025-06-25"),
            run_id="test/unchecked",
            con=con,
            sources=["cbp_encounters_monthly"],
            monitors=["freshness"],
        )
    transform.publish_snapshot()
    html = page(client, token)
    row = html.select_one('#sources tbody tr[data-source="cbp_encounters_monthly"]')
    pill = row.select_one(".pill")
    assert text(pill) == "not checked" and "state-unchecked" in pill["class"]
    assert "site not checked since 2025-06-16" in text(row)
    # The monitor judged it so; the watchdog has no incident open: none is pointed to.
    assert "watchdog" not in text(row)


# ------------------------------------------------------------------- the runbook in the UI ---


def test_every_runbook_link_in_a_dag_doc_opens_its_section_in_the_ui(
    client: Any, token: str
) -> None:
    """DAG docs link `docs/runbook.md#<section>`; in the UI that must be a page, and the section
    an element with that id (GitHub's anchors), for every link every DAG's doc has."""
    import re

    from returnwatch_replay.demo import load_dags

    dags = load_dags()
    links = {
        link
        for dag in dags.values()
        for link in re.findall(r"\]\((/returnwatch/docs/[a-z_]+\.md)#([\w-]+)\)", dag.doc_md)
    }
    assert links and not [d for d in dags.values() if "](docs/" in d.doc_md], (
        "DAG docs' links to docs/*.md were not rewritten for the UI"
    )
    client.cookies.set("_token", token)
    try:
        pages = {path: client.get(path) for path in {path for path, _ in links}}
    finally:
        client.cookies.clear()
    for path, answer in pages.items():
        assert answer.status_code == 200, (path, answer.text[:300])
    ids = {
        path: {tag["id"] for tag in BeautifulSoup(answer.text, "html.parser").select("[id]")}
        for path, answer in pages.items()
    }
    missing = sorted((path, anchor) for path, anchor in links if anchor not in ids[path])
    assert missing == [], f"runbook sections the DAG docs link but the page lacks: {missing}"


def test_docs_pages_are_only_the_projects_docs_and_only_for_signed_in_users(
    client: Any, token: str
) -> None:
    answer = client.get("/returnwatch/docs/runbook.md", follow_redirects=False)
    assert answer.status_code == 303 and "runbook" not in answer.text.lower()
    client.cookies.set("_token", token)
    try:
        for name in ("README.md", "..%2Fpyproject.toml", "img"):
            assert client.get(f"/returnwatch/docs/{name}").status_code == 404, name
        html = client.get("/returnwatch/docs/runbook.md").text
    finally:
        client.cookies.clear()
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("article h1").get_text() == "returnwatch runbook"
    assert soup.select_one("h3#freshness_late") is not None
    assert "<script" not in html  # the Markdown's raw HTML is not rendered


def test_policy_rules_are_listed_with_their_caveat_and_source_links(
    client: Any, token: str
) -> None:
    html = page(client, token)
    rows = html.select("#rules tbody tr")
    assert len(rows) == 3
    first = rows[0]
    assert "uc_expelled_after_pjes_order" in text(first)
    assert "recording or reclassification artefacts" in text(first)
    links = [a["href"] for a in first.select("a")]
    assert "https://clearinghouse.net/case/17771/" in links
    assert any("2021-03227" in href for href in links)
