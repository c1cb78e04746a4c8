"""The browser tests run a real worker, as the integration tests do, and share a
Chromium page and a marketer's login."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from crm.models import Membership
from tests.crm.factories import MembershipFactory, UserFactory
from tests.support.workers import clean_broker, start_workers  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
OUTPUT_DIR = Path(settings.BASE_DIR) / "test-output"
# The committed screenshots of docs/admin.md.
DOCS_IMAGES = Path(settings.BASE_DIR) / "docs" / "img"
# The factories' password (tests/crm/factories.py).
PASSWORD = "correct-horse-battery"
TIMEOUT_MS = 20_000


@pytest.fixture
def browser_page(monkeypatch):
    """A Chromium page whose console errors and page errors are collected."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes in between are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.console_errors = []
        page.on(
            "console",
            lambda message: (
                page.console_errors.append(f"{page.url}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on(
            "pageerror",
            lambda error: page.console_errors.append(f"{page.url}: {error}"),
        )
        yield page
        browser.close()
        # Under Playwright's sync API the test ran in a greenlet with a context of its
        # own, hence database connections of its own: close them here, or the test
        # database cannot be dropped at the end of the session.
        connections.close_all()


def log_in_marketer(page, live_server, organization) -> str:
    """Log a marketer of the organization in; the admin's URL."""
    marketer = MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True, username="marketer"),
        role=Membership.Role.MARKETER,
    ).user
    admin = f"{live_server.url}/admin/"
    page.goto(admin)
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")
    return admin


def screenshot(page, name: str, *, docs_of: str | None = None) -> None:
    """Save a full-page screenshot under test-output/; with `docs_of`, a selector,
    that element's alone under docs/img/ too, small enough to commit."""
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / name), full_page=True)
    if docs_of:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        page.locator(docs_of).screenshot(path=str(DOCS_IMAGES / name))
