"""Headless Chromium for the UI tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

What this module owns:

- ``chromium_missing()``: why a browser test cannot run here (None when it can). Playwright's
  own browser downloads are never used: the tests drive the distribution's Chromium, which
  ``make system-deps`` installs.
- ``open_page()``: one browser with one 1280×800 page, closed (with Playwright's driver) when
  the ``with`` block ends, also when a test fails in it. Every wait has a bound.
- ``sign_in()``: signs in through Airflow's real login form, as a person does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a headless run in a container or CI box: no sandbox (tests may run as root), no
# GPU, and nothing that phones home (updates, sync, background networking).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
# Bounds (milliseconds): Airflow's UI is a large React bundle and the first load on a busy
# 2-core machine takes seconds; anything slower than these is a failure worth seeing.
ACTION_TIMEOUT_MS = 30_000
NAVIGATION_TIMEOUT_MS = 60_000


def chromium_missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"Chromium is not installed at {CHROMIUM} (`make system-deps` installs Debian's)"
    return None


@contextlib.contextmanager
def open_page() -> Iterator[Any]:
    """A fresh page (its own cookies) in headless Chromium; everything closed on exit."""
    from playwright.sync_api import expect, sync_playwright

    # expect() waits 5 s by default: too short for a first load of the UI on a busy machine.
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            timeout=NAVIGATION_TIMEOUT_MS,
        )
        try:
            context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
            page = context.new_page()
            page.set_default_timeout(ACTION_TIMEOUT_MS)
            page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    """Open ``url`` signed out, get sent to Airflow's login form, sign in there; return when
    the login sent the browser back (to ``url``)."""
    from playwright.sync_api import expect

    page.goto(url)
    page.wait_for_url("**/auth/login**")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    sign_in_button = page.locator("button[type=submit]")
    expect(sign_in_button).to_be_enabled()
    sign_in_button.click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def screenshot(page: Any, path: Path) -> Path:
    """Save what the viewport shows (not the whole scrolled page: README images stay 1280×800)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path
