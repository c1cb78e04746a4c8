"""The suppression list and the sending rules in the admin."""

import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from crm.models import Membership, Suppression, SuppressionLift
from crm.services.suppressions import address_suppress
from tests.crm.factories import LeadFactory, MembershipFactory, UserFactory
from vendors.models import VendorAccount

pytestmark = pytest.mark.django_db

PHONE = "+12125550123"


@pytest.fixture
def owner_client(client, organization):
    owner = MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True),
        role=Membership.Role.OWNER,
    ).user
    client.force_login(owner)
    return client


def suppress(organization, address=PHONE, channel="sms", reason="stop_keyword"):
    address_suppress(
        organization_id=organization.pk,
        channel=channel,
        address=address,
        reason=reason,
        source="SM1",
    )
    return Suppression.objects.get(organization=organization, address=address)


def test_a_marketer_adds_an_address_normalized_as_manual(
    member_client, member, organization
):
    response = member_client.post(
        reverse("admin:crm_suppression_add"),
        {"channel": "sms", "address": "(212) 555-0123"},
    )

    assert response.status_code == 302
    row = Suppression.objects.get(organization=organization)
    assert (row.address, row.reason, row.source) == (PHONE, "manual", member.username)


def test_adding_an_address_suppressed_already_keeps_its_first_reason(
    member_client, organization
):
    suppress(organization)

    response = member_client.post(
        reverse("admin:crm_suppression_add"),
        {"channel": "sms", "address": "212 555 0123"},
        follow=True,
    )

    assert response.status_code == 200
    assert "suppressed already" in response.content.decode()
    assert Suppression.objects.get(organization=organization).reason == "stop_keyword"


def test_a_bad_address_is_refused_on_the_form(member_client):
    response = member_client.post(
        reverse("admin:crm_suppression_add"),
        {"channel": "email", "address": "not-an-email"},
    )

    assert response.status_code == 200
    assert "address" in response.context["adminform"].form.errors
    assert not Suppression.objects.exists()


def test_a_search_finds_an_address_however_written(member_client, organization):
    suppress(organization)
    suppress(organization, address="+12125550199")

    response = member_client.get(
        reverse("admin:crm_suppression_changelist"), {"q": "(212) 555-0123"}
    )

    assert [row.address for row in response.context["cl"].result_list] == [PHONE]


def test_the_import_adds_good_rows_and_reports_bad_ones_by_line(
    member_client, organization
):
    # given an address suppressed already, and a file with good and bad rows
    suppress(organization)
    upload = io.BytesIO(
        b"channel,address,reason\n"
        b"sms,(212) 555-0123,\n"
        b"email,Bo@Example.com,complaint\n"
        b"sms,not a phone,\n"
        b"fax,+12125550124,\n"
        b"sms,+12125550125,whim\n"
        b"sms,+1 212 555 0126\n"
    )
    upload.name = "list.csv"

    response = member_client.post(
        reverse("admin:crm_suppression_import"), {"file": upload}
    )

    # then the good ones are added, the known one kept, the bad ones listed
    report = response.context["report"]
    assert (report.rows_read, report.added, report.present) == (6, 2, 1)
    assert [line for line, _ in report.rejected] == [4, 5, 6]
    rows = dict(
        Suppression.objects.filter(organization=organization).values_list(
            "address", "reason"
        )
    )
    assert rows == {
        PHONE: "stop_keyword",
        "bo@example.com": "complaint",
        "+12125550126": "import",
    }


def test_a_file_without_the_columns_is_refused_whole(member_client):
    upload = io.BytesIO(b"phone\n+12125550123\n")
    upload.name = "x.csv"

    response = member_client.post(
        reverse("admin:crm_suppression_import"), {"file": upload}
    )

    assert "channel,address" in response.context["file_error"]
    assert not Suppression.objects.exists()


def test_the_export_is_the_filtered_list_of_the_organization_only(
    member_client, organization, other_organization
):
    suppress(organization)
    suppress(organization, address="ann@example.com", channel="email")
    suppress(other_organization, address="+12125550199")

    response = member_client.get(
        reverse("admin:crm_suppression_export"), {"channel__exact": "sms"}
    )

    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "channel,address,reason,source,created_at"
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["sms", PHONE, "stop_keyword"]
    ]


def test_a_marketer_cannot_lift(member_client, organization):
    row = suppress(organization)
    url = reverse("admin:crm_suppression_changelist")

    response = member_client.post(
        url, {"action": "lift", ACTION_CHECKBOX_NAME: [row.pk], "reason": "please"}
    )

    assert Suppression.objects.filter(pk=row.pk).exists()
    assert response.status_code in (200, 302, 403)
    assert not SuppressionLift.objects.exists()


def test_an_owner_lifts_only_with_a_reason_and_it_is_recorded(
    owner_client, organization
):
    # given a suppressed address
    row = suppress(organization)
    url = reverse("admin:crm_suppression_changelist")
    chosen = {"action": "lift", ACTION_CHECKBOX_NAME: [row.pk]}

    # when the owner asks without a reason, then with one
    asked = owner_client.post(url, {**chosen, "reason": ""})
    still = Suppression.objects.filter(pk=row.pk).exists()
    owner_client.post(url, {**chosen, "reason": "asked by phone"})

    # then the first shows the page asking why, the second lifts and records it
    assert asked.status_code == 200 and "reason" in asked.content.decode()
    assert still
    assert not Suppression.objects.filter(pk=row.pk).exists()
    lift = SuppressionLift.objects.get()
    assert (lift.address, lift.suppression_reason, lift.reason) == (
        PHONE,
        "stop_keyword",
        "asked by phone",
    )


def test_the_lead_page_shows_its_suppressed_addresses(member_client, organization):
    # given a lead imported after its number was suppressed
    suppress(organization)
    lead = LeadFactory(organization=organization, phones=[PHONE], phone=PHONE)

    response = member_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))

    text = response.content.decode()
    assert "Suppressed addresses" in text
    assert PHONE in text and "Replied STOP" in text


def test_an_owner_sets_the_sending_rules_and_sees_sender_identities(
    owner_client, organization
):
    VendorAccount.objects.create(
        organization=organization,
        channel="sms",
        vendor="twilio",
        sender="+12125550100",
        credentials_encrypted="very-secret",
    )
    url = reverse("admin:crm_organization_change", args=[organization.pk])

    page = owner_client.get(url).content.decode()
    response = owner_client.post(
        url,
        {
            "name": organization.name,
            "slug": organization.slug,
            "time_zone": "America/Denver",
            "quiet_hours_enabled": "on",
            "quiet_hours_start": "09:00",
            "quiet_hours_end": "20:00",
            "transactional_night_start": "22:00",
            "transactional_night_end": "07:00",
            "frequency_cap_count": "3",
            "frequency_cap_days": "7",
            "help_text": "Call 555-0100",
        },
    )

    assert "+12125550100" in page and "very-secret" not in page
    assert response.status_code == 302, response.context["adminform"].form.errors
    organization.refresh_from_db()
    assert organization.time_zone == "America/Denver"
    assert organization.frequency_cap_count == 3


def test_a_bad_time_zone_or_empty_window_is_refused(owner_client, organization):
    url = reverse("admin:crm_organization_change", args=[organization.pk])

    response = owner_client.post(
        url,
        {
            "name": organization.name,
            "slug": organization.slug,
            "time_zone": "Mars/Olympus",
            "quiet_hours_start": "09:00",
            "quiet_hours_end": "09:00",
            "transactional_night_start": "22:00",
            "transactional_night_end": "07:00",
            "frequency_cap_days": "0",
        },
    )

    errors = response.context["adminform"].form.errors
    assert {"time_zone", "quiet_hours_end", "frequency_cap_days"} <= set(errors)
    organization.refresh_from_db()
    assert organization.time_zone == "UTC"


def test_a_marketer_sees_but_cannot_change_the_sending_rules(
    member_client, organization
):
    url = reverse("admin:crm_organization_change", args=[organization.pk])

    response = member_client.post(
        url,
        {"name": "X", "slug": organization.slug, "time_zone": "Europe/Paris"},
    )

    assert response.status_code == 403
    organization.refresh_from_db()
    assert organization.time_zone == "UTC"
