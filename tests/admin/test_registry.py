"""Every model of the product's apps has an admin page."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from crm.models import Organization
from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db

PRODUCT_APPS = ["crm", "campaigns", "messaging", "automations", "vendors"]


@pytest.mark.parametrize("app_label", PRODUCT_APPS)
def test_every_model_is_registered(app_label):
    models = apps.get_app_config(app_label).get_models()

    assert [m for m in models if not admin.site.is_registered(m)] == []


def test_an_operator_previews_a_segment_of_the_organization_they_choose(
    operator_client, organization, other_organization
):
    LeadFactory.create_batch(2, organization=organization)
    LeadFactory(organization=other_organization)

    response = operator_client.post(
        reverse("admin:crm_segment_add"),
        {
            "organization": organization.pk,
            "name": "All",
            "description": "",
            "rules": '{"field": "visits", "op": "gte", "value": 0}',
            "_preview": "Preview",
        },
    )

    assert response.context["adminform"].form.preview.count == 2
    assert Organization.objects.count() == 2
