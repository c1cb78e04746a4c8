"""The suppression list holds a STOP for every lead at the address, now or later."""

import io

import pytest
from django.urls import reverse

from crm.models import Channel, Lead, OptOutSource, Suppression, SuppressionLift
from crm.services.consent import lead_opt_in, lead_opt_out
from crm.services.lead_import import lead_import_csv
from crm.services.leads import lead_create, lead_update
from crm.services.suppressions import (
    SuppressionError,
    address_suppress,
    address_unsuppress,
    addresses_suppressed,
)
from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db

PHONE = "+12125550123"


def stop(lead: Lead) -> None:
    """The lead texts STOP (what inbound does to the lead's row)."""
    lead_opt_out(
        lead_id=lead.pk, channel=Channel.SMS, source=OptOutSource.KEYWORD, reason="t"
    )


def import_csv(organization, text: str):
    return lead_import_csv(organization=organization, stream=io.StringIO(text))


def suppressed(organization, *phones: str) -> set[str]:
    return addresses_suppressed(
        organization_id=organization.pk, channel=Channel.SMS, addresses=phones
    )


def test_a_lead_imported_later_with_a_number_that_texted_stop_is_suppressed(
    organization,
):
    # given a lead that texted STOP
    stop(
        LeadFactory(
            organization=organization, external_id="old-1", phones=[PHONE], phone=PHONE
        )
    )

    # when a new lead with the same number, written differently, is imported
    report = import_csv(organization, "external_id,phone\nnew-1,(212) 555-0123\n")

    # then the new lead's number is on the list, though its own flag is not set
    assert report.created == 1
    newcomer = Lead.objects.get(external_id="new-1")
    assert not newcomer.sms_opt_out
    assert suppressed(organization, newcomer.phone) == {PHONE}


def test_a_stop_suppresses_every_number_of_the_lead_with_its_reason(organization):
    lead = LeadFactory(
        organization=organization,
        phones=[PHONE, "+12125550124"],
        phone=PHONE,
        emails=["ann@example.com"],
    )

    stop(lead)

    rows = Suppression.objects.filter(organization=organization)
    assert {(row.channel, row.address, row.reason) for row in rows} == {
        ("sms", PHONE, "stop_keyword"),
        ("sms", "+12125550124", "stop_keyword"),
    }


def test_a_user_opting_a_lead_out_suppresses_it_as_manual(organization):
    lead = LeadFactory(organization=organization, emails=["ann@example.com"])

    lead_update(lead=lead, email_opt_out=True)
    created = lead_create(
        organization=organization, phones=[PHONE], sms_opt_out=True, name="B"
    )

    reasons = dict(
        Suppression.objects.filter(organization=organization).values_list(
            "address", "reason"
        )
    )
    assert reasons == {"ann@example.com": "manual", created.phone: "manual"}


def test_a_stop_in_one_organization_suppresses_nothing_in_another(
    organization, django_user_model
):
    from tests.crm.factories import OrganizationFactory

    other = OrganizationFactory()
    stop(LeadFactory(organization=organization, phones=[PHONE], phone=PHONE))

    assert suppressed(other, PHONE) == set()


def test_an_import_row_saying_opted_out_adds_a_suppression(organization):
    # given one known lead and one new one, both opted out in the file
    LeadFactory(organization=organization, external_id="a1", phones=[PHONE])

    import_csv(
        organization,
        "external_id,phone,email,sms_opt_out,email_opt_out\n"
        "a1,+12125550123,,yes,\n"
        "b2,+12125550124,bo@example.com,no,yes\n",
    )

    rows = Suppression.objects.filter(organization=organization)
    assert {(row.channel, row.address, row.reason) for row in rows} == {
        ("sms", PHONE, "import"),
        ("email", "bo@example.com", "import"),
    }


def test_a_file_of_new_leads_opted_out_is_suppressed_too(organization):
    # (the fast path: no lead is found, the rows are written as they are)
    import_csv(organization, "phone,sms_opt_out\n+12125550123,yes\n+12125550124,\n")

    assert suppressed(organization, PHONE, "+12125550124") == {PHONE}


def test_an_import_row_saying_not_opted_out_clears_neither_flag_nor_suppression(
    organization,
):
    # given a lead that texted STOP
    lead = LeadFactory(
        organization=organization, external_id="a1", phones=[PHONE], phone=PHONE
    )
    stop(lead)

    # when a row for it says sms_opt_out=no
    report = import_csv(organization, "external_id,phone,sms_opt_out\na1,,no\n")

    # then it is still opted out and still suppressed, with the STOP as reason
    assert report.updated == 1
    lead.refresh_from_db()
    assert lead.sms_opt_out
    assert Suppression.objects.get(address=PHONE).reason == "stop_keyword"


def test_the_admin_form_saved_from_a_stale_copy_keeps_flag_and_suppression(
    admin_client, organization
):
    # given a marketer who opened the lead's page, then the lead texts STOP
    lead = LeadFactory(organization=organization, phones=[PHONE], phone=PHONE)
    admin_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))
    stop(lead)

    # when the marketer saves the form as it was shown
    response = admin_client.post(
        reverse("admin:crm_lead_change", args=[lead.pk]),
        {
            "organization": organization.pk,
            "name": "Renamed",
            "external_id": "",
            "phones_text": PHONE,
            "emails_text": "; ".join(lead.emails),
            "total_spend": "0",
            "visits": "0",
            "timezone": "",
            "tags": "[]",
            "attributes": "{}",
            "logs-TOTAL_FORMS": "0",
            "logs-INITIAL_FORMS": "0",
        },
    )

    # then the edit is saved, and the opt-out and the suppression stand
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.name == "Renamed" and lead.sms_opt_out
    assert suppressed(organization, PHONE) == {PHONE}


def test_lifting_needs_a_reason_and_leaves_history(organization):
    address_suppress(
        organization_id=organization.pk,
        channel="sms",
        address=PHONE,
        reason="stop_keyword",
        source="SM123",
    )

    for blank in ("", "   "):
        with pytest.raises(SuppressionError):
            address_unsuppress(
                organization_id=organization.pk,
                channel="sms",
                address=PHONE,
                lifted_by="ann",
                reason=blank,
            )
    assert suppressed(organization, PHONE) == {PHONE}

    lift = address_unsuppress(
        organization_id=organization.pk,
        channel="sms",
        address="(212) 555-0123",
        lifted_by="ann",
        reason="asked to be texted again, by email of 3 May",
    )

    assert suppressed(organization, PHONE) == set()
    stored = SuppressionLift.objects.get()
    assert stored == lift
    assert (stored.address, stored.suppression_reason, stored.suppression_source) == (
        PHONE,
        "stop_keyword",
        "SM123",
    )
    assert stored.lifted_by == "ann"
    assert stored.reason == "asked to be texted again, by email of 3 May"


def test_lifting_what_is_not_suppressed_records_nothing(organization):
    lift = address_unsuppress(
        organization_id=organization.pk,
        channel="sms",
        address=PHONE,
        lifted_by="ann",
        reason="why not",
    )

    assert lift is None
    assert not SuppressionLift.objects.exists()


def test_lifting_by_id_within_an_organization_never_lifts_anothers(organization):
    from tests.crm.factories import OrganizationFactory

    other = OrganizationFactory()
    address_suppress(
        organization_id=other.pk, channel="sms", address=PHONE, reason="manual"
    )
    theirs = Suppression.objects.get(organization=other)

    lift = address_unsuppress(
        suppression_id=theirs.pk,
        organization_id=organization.pk,
        lifted_by="ann",
        reason="x",
    )

    assert lift is None
    assert Suppression.objects.filter(pk=theirs.pk).exists()


def test_lifting_a_leads_opt_out_lifts_its_suppressions_with_the_reason(
    organization,
):
    # given a lead that texted STOP
    lead = LeadFactory(organization=organization, phones=[PHONE], phone=PHONE)
    stop(lead)

    # when a user lifts the opt-out with a reason
    assert lead_opt_in(
        lead_id=lead.pk, channel="sms", reason="asked in the shop", lifted_by="ann"
    )

    # then flag and suppression are gone, and the lift is recorded
    lead.refresh_from_db()
    assert not lead.sms_opt_out
    assert suppressed(organization, PHONE) == set()
    lift = SuppressionLift.objects.get()
    assert (lift.address, lift.reason, lift.lifted_by) == (
        PHONE,
        "asked in the shop",
        "ann",
    )
