"""Segment services and selectors: create, update, refresh, preview."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.rules import RuleError
from crm.selectors import (
    audience_lead_ids_after,
    leads_matching,
    segment_leads,
    segment_preview,
)
from crm.services.segments import (
    segment_create,
    segment_refresh_audience,
    segment_update,
)
from tests.crm.factories import LeadFactory, OrganizationFactory, SegmentFactory

pytestmark = pytest.mark.django_db

BIG_SPENDERS = {"field": "total_spend", "op": "gt", "value": 1000}


def spenders(organization, *amounts):
    return [
        LeadFactory(organization=organization, total_spend=Decimal(amount))
        for amount in amounts
    ]


def test_create_stores_the_segment_with_its_audience_counted(organization):
    # given two big spenders, one small one, and a big spender elsewhere
    spenders(organization, "1500", "2000", "10")
    spenders(OrganizationFactory(), "5000")

    # when
    segment = segment_create(
        organization=organization,
        name="Big spenders",
        rules=BIG_SPENDERS,
        description="Over 1000",
    )

    # then
    segment.refresh_from_db()
    assert segment.rules == BIG_SPENDERS
    assert segment.description == "Over 1000"
    assert segment.audience_size == 2
    assert segment.audience_counted_at is not None


def test_create_rejects_invalid_rules_naming_the_node(organization):
    # given rules with a string where a number belongs
    rules = {"and": [BIG_SPENDERS, {"field": "visits", "op": "gt", "value": "x"}]}

    # when
    with pytest.raises(ValidationError) as caught:
        segment_create(organization=organization, name="Broken", rules=rules)

    # then
    assert caught.value.message_dict["rules"] == [
        'rules.and[1].value: visits takes a whole number, got "x"'
    ]
    assert isinstance(caught.value.__cause__, RuleError)
    assert not organization.segments.exists()


def test_create_rejects_a_name_taken_in_the_organization(organization):
    # given
    SegmentFactory(organization=organization, name="VIP")

    # when / then
    with pytest.raises(ValidationError):
        segment_create(organization=organization, name="VIP", rules=BIG_SPENDERS)
    assert organization.segments.count() == 1


def test_update_with_new_rules_recounts_the_audience(organization):
    # given a segment of big spenders and a lead that is not one
    spenders(organization, "1500", "10")
    segment = segment_create(organization=organization, name="S", rules=BIG_SPENDERS)
    rules = {"field": "total_spend", "op": "gte", "value": 0}

    # when
    segment_update(segment=segment, rules=rules, name="Everyone")

    # then
    segment.refresh_from_db()
    assert (segment.name, segment.rules, segment.audience_size) == (
        "Everyone",
        rules,
        2,
    )


def test_update_with_invalid_rules_changes_nothing(organization):
    # given
    segment = segment_create(organization=organization, name="S", rules=BIG_SPENDERS)

    # when
    with pytest.raises(ValidationError) as caught:
        segment_update(segment=segment, rules={"or": []})

    # then
    assert "rules.or:" in caught.value.message_dict["rules"][0]
    segment.refresh_from_db()
    assert segment.rules == BIG_SPENDERS


def test_update_refuses_fields_it_does_not_manage(organization):
    # given
    segment = SegmentFactory(organization=organization)

    # when / then
    with pytest.raises(TypeError, match="audience_size"):
        segment_update(segment=segment, audience_size=5)


def test_refresh_audience_counts_leads_added_since(organization):
    # given a segment counted when it had one lead
    spenders(organization, "1500")
    segment = segment_create(organization=organization, name="S", rules=BIG_SPENDERS)
    counted_at = segment.audience_counted_at
    spenders(organization, "3000", "4000")

    # when
    size = segment_refresh_audience(segment=segment)

    # then
    segment.refresh_from_db()
    assert size == segment.audience_size == 3
    assert segment.audience_counted_at > counted_at


def test_segment_leads_are_its_organizations_leads_matching_its_rules(organization):
    # given
    big, _small = spenders(organization, "1500", "10")
    spenders(OrganizationFactory(), "1500")
    segment = SegmentFactory(organization=organization, rules=BIG_SPENDERS)

    # when
    leads = list(segment_leads(segment=segment))

    # then
    assert leads == [big]


def test_leads_matching_rejects_invalid_rules(organization):
    # given / when / then
    with pytest.raises(RuleError, match="unknown field"):
        leads_matching(
            organization=organization,
            rules={"field": "x", "op": "eq", "value": 1},
        )


def test_preview_counts_in_one_query_and_samples_the_first_leads_by_pk(
    organization,
):
    # given five big spenders and a small one
    big = spenders(organization, "1100", "1200", "1300", "1400", "1500")
    spenders(organization, "10")

    # when
    with CaptureQueriesContext(connection) as queries:
        preview = segment_preview(
            organization=organization, rules=BIG_SPENDERS, sample_size=3
        )

    # then
    assert preview.count == 5
    assert preview.sample == sorted(big, key=lambda lead: lead.pk)[:3]
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1
    assert len(queries.captured_queries) == 2


def test_preview_sample_size_defaults_to_the_setting(organization, settings):
    # given
    settings.CRM_SEGMENT_PREVIEW_SAMPLE = 2
    spenders(organization, "1100", "1200", "1300")

    # when
    preview = segment_preview(organization=organization, rules=BIG_SPENDERS)

    # then
    assert (preview.count, len(preview.sample)) == (3, 2)


def test_preview_of_an_empty_audience_makes_only_the_count_query(organization):
    # given no leads at all

    # when
    with CaptureQueriesContext(connection) as queries:
        preview = segment_preview(organization=organization, rules=BIG_SPENDERS)

    # then
    assert (preview.count, preview.sample) == (0, [])
    assert len(queries.captured_queries) == 1


def test_segment_pages_hold_its_leads_in_id_order_and_no_other_organizations(
    organization,
):
    other = OrganizationFactory()
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 5}
    )
    expected = []
    for index in range(12):
        # Interleaved with another organization's leads, some before and after.
        LeadFactory(organization=other, visits=9)
        lead = LeadFactory(organization=organization, visits=index)
        if index >= 5:
            expected.append(lead.pk)
    LeadFactory.create_batch(3, organization=other, visits=9)

    pages, after = [], 0
    while True:
        page = audience_lead_ids_after(
            organization_id=organization.pk,
            rules=segment.rules,
            after_id=after,
            limit=3,
        )
        pages.append(page)
        if len(page) < 3:
            break
        after = page[-1]

    assert [pk for page in pages for pk in page] == expected
    assert [len(page) for page in pages] == [3, 3, 1]
