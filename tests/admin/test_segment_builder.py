"""The segment builder's live check: the audience of the rules as they change, or
the node the server refuses and why."""

import json

import pytest
from django.urls import reverse

from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db


def check(client, rules, **extra):
    return client.post(
        reverse("admin:crm_segment_audience"),
        json.dumps({"rules": rules, **extra}),
        content_type="application/json",
    )


def test_the_audience_of_unsaved_rules_is_counted_with_a_sample(
    member_client, organization, other_organization
):
    # given three big spenders of the member's organization, one of another
    LeadFactory.create_batch(3, organization=organization, total_spend=500)
    LeadFactory(organization=organization, total_spend=5)
    LeadFactory(organization=other_organization, total_spend=500)

    # when
    response = check(
        member_client, {"and": [{"field": "total_spend", "op": "gt", "value": 100}]}
    )

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert len(body["sample"]) == 3
    assert body["sample"][0]["url"].startswith("/admin/crm/lead/")


def test_a_refused_rule_answers_its_path_and_reason(member_client):
    # given / when the second rule of an OR group has a value of the wrong type
    response = check(
        member_client,
        {
            "or": [
                {"field": "visits", "op": "gt", "value": 1},
                {"field": "visits", "op": "gt", "value": "many"},
            ]
        },
    )

    # then the answer names the node and why, for the builder to mark
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["path"] == "rules.or[1].value"
    assert "takes a whole number" in error["reason"]


def test_a_superuser_must_choose_an_organization_first(operator_client, organization):
    # given / when no organization is chosen
    refused = check(operator_client, {"field": "visits", "op": "gte", "value": 0})
    LeadFactory(organization=organization)
    chosen = check(
        operator_client,
        {"field": "visits", "op": "gte", "value": 0},
        organization=str(organization.pk),
    )

    # then
    assert refused.status_code == 400
    assert refused.json()["error"]["path"] == "organization"
    assert chosen.json()["count"] == 1


def test_a_body_that_is_not_json_is_a_clear_400(member_client):
    response = member_client.post(
        reverse("admin:crm_segment_audience"), "{", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["reason"] == "the request is not JSON"


def test_the_catalog_names_the_value_input_of_each_op(member_client):
    # given / when the add page is opened
    response = member_client.get(reverse("admin:crm_segment_add"))

    # then the builder's catalog says which input each op's value takes
    catalog = {entry["field"]: entry for entry in response.context["rule_catalog"]}
    assert catalog["total_spend"]["inputs"]["gt"] == "number"
    assert catalog["created_at"]["inputs"]["lt"] == "date"
    assert catalog["sms_opt_out"]["inputs"]["eq"] == "boolean"
    assert catalog["attributes.<key>"]["inputs"]["eq"] == "scalar"
    assert b'id="segment-builder"' in response.content
