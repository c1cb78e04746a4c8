"""A marketer builds a two-group segment in rows, in headless Chromium, and
watches the audience count follow every change; a refused rule is marked on its
row; the JSON and the rows follow each other."""

import json

import pytest

from crm.models import Segment
from tests.browser.conftest import log_in_marketer, screenshot
from tests.crm.factories import LeadFactory

pytestmark = [pytest.mark.browser]


def leads(organization) -> None:
    for name, spend, visits, count in [
        ("Casual", 100, 1, 4),
        ("Regular", 100, 20, 3),
        ("Thrifty", 10, 20, 2),
        ("Ada Lovelace", 100, 1, 1),
    ]:
        LeadFactory.create_batch(
            count,
            organization=organization,
            name=name,
            total_spend=spend,
            visits=visits,
        )


def test_a_two_group_segment_is_built_in_rows_and_its_count_follows(
    transactional_db, live_server, browser_page, organization
):
    from playwright.sync_api import expect

    # given ten leads and a marketer on the segment page
    page = browser_page
    leads(organization)
    admin = log_in_marketer(page, live_server, organization)
    page.goto(f"{admin}crm/segment/add/")
    page.fill("#id_name", "Big spenders who come back")
    count = page.locator("#segment-builder .builder-count")
    root = page.locator('#segment-builder [data-path="rules"]').first

    # when a rule is added to the root group: total spend greater than 50
    root.locator(".add-rule").last.click()
    first = page.locator('.builder-rule[data-path="rules.and[0]"]')
    first.locator(".rule-op").select_option("gt")
    first.locator(".rule-value").fill("50")
    # then
    expect(count).to_have_text("8")

    # when a second group, ANY of: visits at least 10, or the name contains "Ada"
    root.locator(".add-group").last.click()
    group = page.locator('.builder-group[data-path="rules.and[1]"]')
    expect(group.locator(".group-connector")).to_have_value("or")
    visits = page.locator('.builder-rule[data-path="rules.and[1].or[0]"]')
    visits.locator(".rule-field").select_option("visits")
    visits.locator(".rule-op").select_option("gte")
    visits.locator(".rule-value").fill("10")
    expect(count).to_have_text("3")

    # and a whole number of visits is typed as 2.5: the row says why it is refused
    visits.locator(".rule-value").fill("2.5")
    expect(visits).to_have_class("builder-rule rule-invalid")
    expect(visits.locator(".rule-error")).to_contain_text("takes a whole number")
    visits.locator(".rule-value").fill("10")
    expect(visits.locator(".rule-error")).to_have_text("")

    group.locator(".add-rule").last.click()
    name = page.locator('.builder-rule[data-path="rules.and[1].or[1]"]')
    name.locator(".rule-field").select_option("name")
    name.locator(".rule-op").select_option("contains")
    name.locator(".rule-value").fill("Ada")
    expect(count).to_have_text("4")
    expect(page.locator("#builder-sample tbody tr")).to_have_count(4)

    # then the JSON below is the rule tree the API takes
    built = {
        "and": [
            {"field": "total_spend", "op": "gt", "value": 50},
            {
                "or": [
                    {"field": "visits", "op": "gte", "value": 10},
                    {"field": "name", "op": "contains", "value": "Ada"},
                ]
            },
        ]
    }
    assert json.loads(page.input_value("#id_rules")) == built
    screenshot(page, "segment-builder.png", docs_of="#segment-builder")

    # when the JSON is edited by hand (spend over 5), the rows follow
    built["and"][0]["value"] = 5
    page.fill("#id_rules", json.dumps(built, indent=2))
    expect(first.locator(".rule-value")).to_have_value("5")
    expect(count).to_have_text("6")

    # and when saved, the segment holds the tree
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    segment = Segment.objects.get(name="Big spenders who come back")
    assert segment.rules == built
    assert segment.audience_size == 6
    assert page.console_errors == []
