"""A marketer's day in the admin, in headless Chromium against a live server and a
real worker: segment with preview, campaign with a template error then fixed,
launch, and the campaign page followed to COMPLETED with the right counters.

Chromium is Debian's (/usr/bin/chromium, installed by .ci/run); Playwright drives
it without downloading a browser of its own. A missing chromium fails the test:
CI installs it, so a skip would hide a broken setup.
"""

import re

import pytest

from campaigns.models import Campaign
from crm.models import Membership
from messaging.services.dispatches import dispatch_count_logs
from tests.browser.conftest import OUTPUT_DIR, PASSWORD
from tests.crm.factories import LeadFactory, MembershipFactory, UserFactory
from tests.support.workers import beat_duties, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

LEADS = 30


def test_a_marketer_segments_writes_launches_and_watches_a_campaign(
    transactional_db, live_server, start_workers, browser_page, organization
):
    # transactional_db first: the session's test database is then set up before the
    # (session) live server and torn down after it has closed its connections.
    page = browser_page
    LeadFactory.create_batch(LEADS, organization=organization)
    marketer = MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True, username="marketer"),
        role=Membership.Role.MARKETER,
    ).user
    start_workers(1, MESSAGING_RETRY_BASE_SECONDS="0.3")
    admin = f"{live_server.url}/admin/"

    # Log in.
    page.goto(admin)
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")

    # A segment, previewed before it is saved.
    page.goto(f"{admin}crm/segment/add/")
    page.fill("#id_name", "Everyone")
    page.fill("#id_rules", '{"field": "visits", "op": "gte", "value": 0}')
    page.click("#preview-button")
    assert page.inner_text(".preview-count") == str(LEADS)
    assert page.locator("#preview-sample tbody tr").count() == 10
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    # A campaign with a misspelt placeholder: the error names it.
    page.goto(f"{admin}campaigns/campaign/add/")
    page.fill("#id_name", "Spring sale")
    page.select_option("#id_channel", "sms")
    page.select_option("#id_segment", label=f"Everyone ({LEADS} leads)")
    bad = "Hi {{nmae}}, spring sale: 10% off!"
    page.fill("#id_template", bad)
    assert page.inner_text(".counter-characters") == str(len(bad))
    assert page.inner_text(".counter-segments") == "1"
    page.click("input[name=_continue]")
    error = page.inner_text(".field-template .errorlist")
    assert "unknown placeholder {{nmae}}" in error

    # Fixed, saved, launched.
    page.fill("#id_template", "Hi {{name}}, spring sale: 10% off!")
    page.click("input[name=_continue]")
    page.wait_for_selector("button[name=launch]")
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.status == Campaign.Status.DRAFT
    page.click("button[name=launch]")
    assert re.search(
        rf"launched: {LEADS} leads in 1 chunk", page.inner_text(".messagelist")
    )

    # The page refreshes itself while the campaign runs; beat's duties are ticked.
    wait_for(
        lambda: "Completed" in page.inner_text("#campaign-status"),
        timeout=120,
        every=1,
        tick=beat_duties,
    )
    page.reload()
    page.wait_for_selector("#campaign-counters")
    shown = {
        cell.get_attribute("data-counter"): cell.inner_text()
        for cell in page.locator("#campaign-counters td").all()
    }
    campaign.refresh_from_db()
    truth = dispatch_count_logs(dispatch_id=campaign.dispatch_id)
    assert shown["audience"] == str(LEADS) == str(truth["audience"])
    for counter in ("skipped", "sent", "delivered", "failed", "pending"):
        assert shown[counter] == str(truth[counter]), counter
    assert truth["pending"] == 0
    assert truth["delivered"] + truth["failed"] + truth["skipped"] == LEADS
    assert page.locator("#hourly-chart svg rect.bar-sent").count() >= 1

    OUTPUT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "admin-campaign.png"), full_page=True)
    page.goto(admin)
    page.wait_for_selector("#kpis")
    assert page.inner_text("[data-kpi=sent] .kpi-value") == str(truth["sent"])
    page.screenshot(path=str(OUTPUT_DIR / "admin-index.png"), full_page=True)

    assert page.console_errors == []
