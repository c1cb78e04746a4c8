"""Single-lead writes: normalized contacts, errors by field."""

import pytest
from django.core.exceptions import ValidationError

from crm.services.leads import lead_create, lead_update

pytestmark = pytest.mark.django_db


def test_contacts_are_normalized_and_the_first_is_primary(organization):
    lead = lead_create(
        organization=organization,
        phones=["202 555 0147; 202-555-0148"],
        emails=[" Ada@Example.com "],
    )

    assert lead.phones == ["+12025550147", "+12025550148"]
    assert lead.phone == "+12025550147"
    assert lead.email == "ada@example.com"


def test_every_bad_field_is_named(organization):
    with pytest.raises(ValidationError) as caught:
        lead_create(
            organization=organization,
            phones=["12"],
            emails=["nope"],
            timezone="Mars/Base",
        )

    assert {"phones", "emails", "timezone"} <= caught.value.message_dict.keys()


def test_an_update_keeps_what_it_does_not_name(organization):
    lead = lead_create(organization=organization, emails=["a@example.com"], name="A")

    lead_update(lead=lead, name="B")

    lead.refresh_from_db()
    assert (lead.name, lead.email) == ("B", "a@example.com")
