"""The organization's settings over the API: read by members, changed by owners."""

import datetime as dt

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.models import Membership, Organization
from tests.crm.factories import MembershipFactory
from vendors.models import VendorAccount

pytestmark = pytest.mark.django_db

RULES = (
    "quiet_hours_enabled",
    "quiet_hours_start",
    "quiet_hours_end",
    "transactional_night_start",
    "transactional_night_end",
)


@pytest.fixture(autouse=True)
def default_rules(org):
    """The organization with the model's default sending rules: the suite's
    factory switches quiet hours and the night off so that tests run at any hour."""
    Organization.objects.filter(pk=org.pk).update(
        **{name: Organization._meta.get_field(name).default for name in RULES}
    )
    org.refresh_from_db()


@pytest.fixture
def owner_api(org) -> APIClient:
    # The model's defaults (the factory switches quiet hours and the night off).
    org.quiet_hours_enabled = True
    org.transactional_night_start = dt.time(22, 0)
    org.transactional_night_end = dt.time(7, 0)
    org.save()
    owner = MembershipFactory(organization=org, role=Membership.Role.OWNER)
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner.user).key}"
    )
    return client


def test_a_member_reads_the_sending_rules_and_sender_identities_without_secrets(
    api, org, other_org
):
    org.quiet_hours_enabled = True
    org.save()
    # given an active and a retired SMS account, and another organization's one
    VendorAccount.objects.create(
        organization=org,
        channel="sms",
        vendor="twilio",
        sender="+12125550100",
        account_id="AC123",
        credentials_encrypted="secret-token",
    )
    VendorAccount.objects.create(
        organization=org,
        channel="sms",
        vendor="simulator",
        sender="+12125550199",
        is_active=False,
    )
    VendorAccount.objects.create(
        organization=other_org, channel="sms", vendor="twilio", sender="+12125550101"
    )

    # when a marketer reads their organization
    response = api.get("/api/organization")

    # then they see its rules and only its active sender, never credentials
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == org.name
    assert body["time_zone"] == "UTC"
    assert body["quiet_hours_enabled"] is True
    assert body["quiet_hours_start"] == "08:00"
    assert body["quiet_hours_end"] == "21:00"
    assert body["frequency_cap_count"] is None
    assert body["frequency_cap_days"] == 7
    assert body["sender_identities"] == [
        {"channel": "sms", "vendor": "twilio", "sender": "+12125550100"}
    ]
    assert "secret-token" not in response.content.decode()
    assert "AC123" not in response.content.decode()


def test_an_owner_changes_the_sending_rules(owner_api, org):
    # when an owner sets a time zone, quiet hours and a cap
    response = owner_api.patch(
        "/api/organization",
        {
            "time_zone": "America/Chicago",
            "quiet_hours_start": "09:00",
            "quiet_hours_end": "20:00",
            "frequency_cap_count": 3,
            "frequency_cap_days": 7,
            "help_text": "Acme Dental, 555-0100",
        },
        format="json",
    )

    # then they are stored, and the rest is as it was
    assert response.status_code == 200, response.json()
    org.refresh_from_db()
    assert org.time_zone == "America/Chicago"
    assert org.quiet_hours_start == dt.time(9, 0)
    assert org.quiet_hours_end == dt.time(20, 0)
    assert org.frequency_cap_count == 3
    assert org.help_text == "Acme Dental, 555-0100"
    assert org.transactional_night_start == dt.time(22, 0)
    assert response.json()["frequency_cap_count"] == 3


def test_an_owner_switches_the_cap_off_with_null(owner_api, org):
    org.frequency_cap_count = 3
    org.save()

    response = owner_api.patch(
        "/api/organization", {"frequency_cap_count": None}, format="json"
    )

    assert response.status_code == 200
    org.refresh_from_db()
    assert org.frequency_cap_count is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"frequency_cap_days": 0}, "frequency_cap_days"),
        ({"frequency_cap_days": None}, "frequency_cap_days"),
        ({"frequency_cap_count": 0}, "frequency_cap_count"),
        ({"frequency_cap_count": -1}, "frequency_cap_count"),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start"),
        ({"quiet_hours_end": "08:00"}, "quiet_hours_end"),
        ({"name": "  "}, "name"),
        ({"help_text": "x" * 301}, "help_text"),
        ({"quiet_hours_enabled": "perhaps"}, "quiet_hours_enabled"),
    ],
)
def test_a_bad_setting_is_a_400_naming_it_and_changes_nothing(
    owner_api, org, body, field
):
    before = org.__dict__.copy()

    response = owner_api.patch("/api/organization", body, format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    org.refresh_from_db()
    assert org.time_zone == before["time_zone"]
    assert org.frequency_cap_days == before["frequency_cap_days"]
    assert org.name == before["name"]


def test_only_owners_change_the_settings(api, org):
    response = api.patch("/api/organization", {"time_zone": "Europe/Paris"})

    assert response.status_code == 403
    org.refresh_from_db()
    assert org.time_zone == "UTC"


def test_the_organization_cannot_be_replaced_or_deleted(owner_api):
    assert owner_api.put("/api/organization", {}, format="json").status_code == 405
    assert owner_api.delete("/api/organization").status_code == 405


def test_an_owner_changes_only_their_own_organization(owner_api, org, other_org):
    response = owner_api.patch(
        "/api/organization",
        {"name": "Renamed", "id": other_org.pk},
        format="json",
    )

    assert response.status_code == 200
    other_org.refresh_from_db()
    org.refresh_from_db()
    assert org.name == "Renamed"
    assert other_org.name != "Renamed"
