"""A marketer composes a campaign in headless Chromium: picks a segment by its
audience, previews the message for a lead found by name, reads the estimate,
launches, follows the campaign to completed, reads the message on the lead's
timeline, then duplicates the campaign."""

import re

import pytest

from campaigns.models import Campaign
from crm.models import Lead
from crm.services.segments import segment_create
from tests.browser.conftest import log_in_marketer, screenshot
from tests.crm.factories import LeadFactory
from tests.support.campaigns import EVERYONE
from tests.support.workers import beat_duties, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

LEADS = 12


def test_a_campaign_is_composed_previewed_estimated_launched_and_completed(
    transactional_db, live_server, start_workers, browser_page, organization
):
    from playwright.sync_api import expect

    # given twelve leads, one of them Grace, in a segment, and a worker
    page = browser_page
    LeadFactory.create_batch(LEADS - 1, organization=organization)
    LeadFactory(organization=organization, name="Grace Hopper")
    segment_create(organization=organization, name="Everyone", rules=EVERYONE)
    start_workers(1, MESSAGING_RETRY_BASE_SECONDS="0.3")
    admin = log_in_marketer(page, live_server, organization)

    # when the marketer writes a campaign for the segment, chosen by its audience
    page.goto(f"{admin}campaigns/campaign/add/")
    page.fill("#id_name", "Spring sale")
    page.select_option("#id_channel", "sms")
    page.select_option("#id_segment", label=f"Everyone ({LEADS} leads)")
    page.fill("#id_template", "Hi {{first_name}}, spring sale: 10% off!")

    # then the estimate covers the whole audience: one GSM-7 segment each
    estimate = page.locator("#composer-estimate")
    expect(estimate.locator("[data-estimate=messages]")).to_have_text(str(LEADS))
    expect(estimate.locator("[data-estimate=segments]")).to_have_text(str(LEADS))
    expect(estimate.locator("[data-estimate=cost]")).to_have_text("0.09")

    # when a lead is searched by name and chosen
    page.fill("#preview-search", "grace")
    page.click(".preview-lead")

    # then the message is previewed as she gets it
    preview = page.locator("#composer-preview")
    expect(preview.locator(".composer-preview-text")).to_have_text(
        "Hi Grace, spring sale: 10% off!"
    )
    expect(preview.locator(".composer-preview-to")).to_contain_text("Grace Hopper")
    screenshot(page, "campaign-composer.png", docs_of="#message-tools")

    # when saved and launched
    page.click("input[name=_continue]")
    page.wait_for_selector("button[name=launch]")
    page.click("button[name=launch]")
    assert re.search(rf"launched: {LEADS} leads", page.inner_text(".messagelist"))

    # then the page follows the campaign to completed
    wait_for(
        lambda: "Completed" in page.inner_text("#campaign-status"),
        timeout=120,
        every=1,
        tick=beat_duties,
    )
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.status == Campaign.Status.COMPLETED
    screenshot(page, "campaign-completed.png")

    # and Grace's page tells her story: the message, its receipt, newest first
    grace = Lead.objects.get(name="Grace Hopper")
    page.goto(f"{admin}crm/lead/{grace.pk}/change/")
    timeline = page.locator("#lead-timeline")
    expect(timeline.locator(".timeline-message")).to_contain_text("Spring sale")
    screenshot(page, "lead-timeline.png", docs_of="#lead-timeline")

    # and "Duplicate" opens a new draft of it
    page.goto(f"{admin}campaigns/campaign/{campaign.pk}/change/")
    page.click("button[name=duplicate]")
    page.wait_for_selector(".messagelist .success")
    assert page.input_value("#id_name") == "Spring sale (copy)"
    copy = Campaign.objects.get(name="Spring sale (copy)")
    assert copy.status == Campaign.Status.DRAFT
    assert page.console_errors == []
