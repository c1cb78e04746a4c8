"""The CRM models' own behaviour."""

import pytest
from django.db import IntegrityError

from tests.crm.factories import LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_external_id_is_unique_within_an_organization_only():
    first, second = OrganizationFactory(), OrganizationFactory()
    LeadFactory(organization=first, external_id="A-1")
    LeadFactory(organization=second, external_id="A-1")

    with pytest.raises(IntegrityError):
        LeadFactory(organization=first, external_id="A-1")


def test_leads_without_external_id_do_not_collide():
    organization = OrganizationFactory()
    LeadFactory(organization=organization, external_id="")
    LeadFactory(organization=organization, external_id="")

    assert organization.leads.count() == 2


def test_setting_contacts_makes_the_first_of_each_the_primary_column():
    lead = LeadFactory.build()
    lead.set_contacts(phones=["+12025550100", "+12025550101"], emails=[])

    assert (lead.phone, lead.email) == ("+12025550100", "")
