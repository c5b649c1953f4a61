"""The Airflow UI in a real browser: sign in, the DAG list, the returnwatch page.

Runs against the production stack on the loopback (``tests/deploy/conftest.py``: PostgreSQL,
Redis, Celery, the api-server) after the whole pipeline ran once (``pipeline_ran``), in
Debian's headless Chromium (``tests/support/browser.py``). Opening the returnwatch page signed
out leads to Airflow's login form; signing in there leads back to the page. Then the DAG list
must show the seven DAGs, and the returnwatch page, opened from the nav bar inside Airflow's own
frame, must show for every source the state the monitors left in the analysts' snapshot. Both
views are saved as screenshots (1280×800) in the test's temporary folder, or, to refresh the
README's ``docs/img/stack_dags.png`` and ``docs/img/stack_returnwatch.png``, in the folder named
by ``RETURNWATCH_SCREENSHOTS`` (``RETURNWATCH_SCREENSHOTS=docs/img .venv/bin/pytest
tests/deploy``), so that ``make test`` leaves the working tree as it found it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from returnwatch import settings, status
from returnwatch.sources import SOURCE_MODULES
from tests.support import browser

pytestmark = pytest.mark.e2e

DAG_IDS = (
    "hhs_uc_daily",
    "hhs_uc_monthly",
    "cbp_encounters_monthly",
    "segob_bulletin_monthly",
    "transform",
    "monitor",
    "dispatch_alerts",
)


def test_signed_in_user_sees_the_dags_and_every_sources_state(
    production_stack, pipeline_ran, tmp_path: Path
) -> None:
    missing = browser.chromium_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import expect

    snapshot = Path(production_stack.data_dir) / "snapshot" / "warehouse.duckdb"
    expected = status.read_snapshot(snapshot)
    assert expected is not None, f"the pipeline ran, so transform published {snapshot}"
    assert expected.judged_at is not None, "the pipeline ran, so the monitors judged the sources"
    assert [s.source for s in expected.sources][: len(SOURCE_MODULES)] == list(SOURCE_MODULES)
    api = production_stack.api_url.rstrip("/")
    screenshots = settings.PROJECT_DIR / os.environ.get("RETURNWATCH_SCREENSHOTS", tmp_path)

    with browser.open_page() as page:
        # Signed out, the page sends the browser to Airflow's login, which brings it back.
        browser.sign_in(
            page, f"{api}/returnwatch/", production_stack.username, production_stack.password
        )
        page.wait_for_url(f"{api}/returnwatch/")
        expect(page.locator("#sources")).to_contain_text(expected.sources[0].source)

        # The DAG list, as a table: all seven fit in one screen.
        page.goto(f"{api}/dags")
        page.get_by_role("button", name="Show table view").click()
        for dag_id in DAG_IDS:  # each DAG's own link (its tags link to filtered lists)
            expect(page.locator(f'a[href$="/dags/{dag_id}"]')).to_have_text(dag_id)
        expect(page.get_by_text(f"{len(DAG_IDS)} Dags", exact=True)).to_be_visible()
        browser.screenshot(page, screenshots / "stack_dags.png")

        # The returnwatch page, from its entry in the nav bar, inside Airflow's own frame.
        page.get_by_role("link", name="returnwatch", exact=True).click()
        page.wait_for_url("**/plugin/returnwatch**")
        frame = page.frame_locator('iframe[title="returnwatch"]')
        expect(frame.locator("h1")).to_have_text("returnwatch · source status")
        expect(frame.locator("#judged-at")).to_have_text(
            f"{expected.judged_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        )
        for source in expected.sources:
            row = frame.locator(f'#sources tr[data-source="{source.source}"]')
            expect(row.locator(".pill")).to_have_text(source.label)
            expect(row).to_contain_text(source.period_text(source.newest_period))
        if expected.incidents:
            for incident in expected.incidents:
                expect(frame.locator("#incidents")).to_contain_text(incident.kind)
        else:
            expect(frame.locator("#no-incidents")).to_be_visible()
        expect(frame.get_by_role("heading", name="Revisions in the last")).to_contain_text(
            f"({expected.revisions_total})"
        )
        browser.screenshot(page, screenshots / "stack_returnwatch.png")
