"""The segment page: rules checked inline, and a preview before anything is saved."""

import json

import pytest
from django.urls import reverse

from crm.models import Segment
from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db


def post(client, rules, **extra):
    return client.post(
        reverse("admin:crm_segment_add"),
        {
            "name": "Big spenders",
            "description": "",
            "rules": json.dumps(rules) if not isinstance(rules, str) else rules,
            **extra,
        },
    )


def test_a_rule_error_is_shown_at_the_rules_with_its_path(member_client):
    response = post(
        member_client,
        {"and": [{"field": "visits", "op": "gt", "value": 1}, {"field": "nope"}]},
    )

    error = response.context["adminform"].form.errors["rules"][0]
    assert "(at rules.and[1])" in error
    assert 'missing "op"' in error
    assert not Segment.objects.exists()


def test_a_date_out_of_range_is_shown_at_the_rules_not_a_crash(member_client):
    # given / when a preview of a day that ends past year 9999
    response = post(
        member_client,
        {"field": "created_at", "op": "lt", "value": "9999-12-31"},
        _preview="Preview",
    )

    # then
    assert response.status_code == 200
    error = response.context["adminform"].form.errors["rules"][0]
    assert "out of range" in error
    assert not Segment.objects.exists()


def test_a_nul_in_a_rule_value_is_shown_at_the_rules_not_a_crash(member_client):
    # given / when a preview of a name with a NUL character in it
    response = post(
        member_client,
        '{"field": "name", "op": "eq", "value": "a\\u0000b"}',
        _preview="Preview",
    )

    # then
    assert response.status_code == 200
    assert "NUL" in response.context["adminform"].form.errors["rules"][0]


def test_an_unknown_field_names_the_known_ones(member_client):
    response = post(member_client, {"field": "age", "op": "gt", "value": 1})

    error = response.context["adminform"].form.errors["rules"][0]
    assert 'unknown field "age"' in error
    assert "rules.field" in error


def test_json_that_does_not_parse_is_an_error_not_a_crash(member_client):
    response = post(member_client, '{"field": ')

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["rules"]


def test_preview_counts_and_samples_without_saving(member_client, organization):
    LeadFactory.create_batch(3, organization=organization, total_spend=500)
    LeadFactory.create_batch(2, organization=organization, total_spend=5)
    LeadFactory(total_spend=900)  # another organization's

    response = post(
        member_client,
        {"field": "total_spend", "op": "gte", "value": 100},
        _preview="Preview",
    )

    assert response.status_code == 200
    preview = response.context["adminform"].form.preview
    assert preview.count == 3
    assert len(preview.sample) == 3
    page = response.content.decode()
    assert '<strong class="preview-count">3</strong>' in page
    assert "errornote" not in page
    assert not Segment.objects.exists()


def test_saving_counts_the_audience(member_client, organization):
    LeadFactory.create_batch(2, organization=organization, visits=4)

    response = post(member_client, {"field": "visits", "op": "eq", "value": 4})

    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.audience_size == 2
    assert segment.organization == organization


def test_the_page_lists_the_fields_rules_may_use(member_client):
    response = member_client.get(reverse("admin:crm_segment_add"))

    assert 'id="rule-catalog"' in response.content.decode()
    assert "<code>total_spend</code>" in response.content.decode()
