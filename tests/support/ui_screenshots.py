"""The README's screenshots of ``make ui`` after ``make demo``: ``docs/img/ui_dags.png`` and
``docs/img/ui_returnwatch.png``.

``python -m tests.support.ui_screenshots [folder]`` (``make ui-screenshots``) starts
``returnwatch ui`` on a free loopback port with the demo's data (this checkout's ``data/`` and
``.airflow/``, or ``RETURNWATCH_DATA_DIR`` / ``AIRFLOW_HOME``), opens it in Debian's headless
Chromium (``tests/support/browser.py``) and saves, at 1280×800, the DAG list as a table and
the returnwatch page opened from the nav bar, then stops the UI. The local UI makes every
visitor an admin (it listens on 127.0.0.1 only), so there is no sign-in step. Every wait has a
bound.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from returnwatch import settings
from tests.support import browser

START_TIMEOUT_SECONDS = 300
DAG_IDS = (
    "cbp_encounters_monthly",
    "dispatch_alerts",
    "hhs_uc_daily",
    "hhs_uc_monthly",
    "monitor",
    "segob_bulletin_monthly",
    "transform",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"returnwatch ui exited ({process.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)  # polling a server we started, bounded by the deadline above
    raise SystemExit(f"{url} did not answer within {START_TIMEOUT_SECONDS} s")


def take(folder: Path) -> list[Path]:
    from playwright.sync_api import expect

    missing = browser.chromium_missing()
    if missing:
        raise SystemExit(missing)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    returnwatch = Path(sys.executable).with_name("returnwatch")
    ui = subprocess.Popen(
        [str(returnwatch), "ui", "--port", str(port)],
        cwd=settings.PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    saved = []
    try:
        wait_until_up(f"{base}/api/v2/monitor/health", ui)
        with browser.open_page() as page:
            page.goto(f"{base}/dags")
            page.get_by_role("button", name="Show table view").click()
            for dag_id in DAG_IDS:
                expect(page.locator(f'a[href$="/dags/{dag_id}"]')).to_have_text(dag_id)
            saved.append(browser.screenshot(page, folder / "ui_dags.png"))

            page.get_by_role("link", name="returnwatch", exact=True).click()
            page.wait_for_url("**/plugin/returnwatch**")
            frame = page.frame_locator('iframe[title="returnwatch"]')
            expect(frame.locator("h1")).to_have_text("returnwatch · source status")
            expect(frame.locator("#sources")).to_contain_text("hhs_uc_daily")
            saved.append(browser.screenshot(page, folder / "ui_returnwatch.png"))
    finally:
        ui.send_signal(signal.SIGTERM)  # returnwatch ui stops its four Airflow processes
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            ui.kill()
    return saved


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else settings.PROJECT_DIR / "docs" / "img"
    os.environ.setdefault("RETURNWATCH_DATA_DIR", str(settings.PROJECT_DIR / "data"))
    for path in take(target):
        print(path)
