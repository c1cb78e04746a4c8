"""The lead pages: CSV in (the importer's rules) and out, opt-outs, message history."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Lead
from messaging.admin import LEAD_HISTORY_SHOWN
from tests.crm.factories import LeadFactory, UserFactory
from tests.support.campaigns import launched_campaign, logs_for

pytestmark = pytest.mark.django_db

CSV = (
    "external_id,name,phone,email,total_spend,visits,sms_opt_out,favourite\n"
    'a1,Ann Lee,+1 202 555 0101,ann@example.com,"$1,200.50",3,no,tea\n'
    "a2,Bad Phone,12,bob@example.com,10,1,no,\n"
    "a3,Cy,+1 202 555 0103,,0,0,yes,coffee\n"
)


def upload(client, text=CSV):
    return client.post(
        reverse("admin:crm_lead_import"),
        {"file": SimpleUploadedFile("leads.csv", text.encode(), "text/csv")},
    )


def test_an_import_reports_what_it_created_and_rejected_by_line(
    member_client, organization
):
    response = upload(member_client)

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.created, report.updated) == (2, 0)
    assert report.rejected == [(3, 'invalid phone "12": too short')]
    page = response.content.decode()
    assert "<td>3</td><td>invalid phone" in page
    assert set(Lead.objects.values_list("organization", flat=True)) == {organization.pk}
    cy = Lead.objects.get(external_id="a3")
    assert cy.sms_opt_out and cy.attributes == {"favourite": "coffee"}


def test_importing_again_updates_instead_of_duplicating(member_client):
    upload(member_client)

    response = upload(member_client)

    assert (response.context["report"].created, response.context["report"].updated) == (
        0,
        2,
    )
    assert Lead.objects.count() == 2


def test_staff_of_no_organization_can_neither_see_nor_import_into_any(
    client, other_organization
):
    # Given a staff user allowed to add leads but a member of no organization
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="add_lead"))
    client.force_login(staff)

    # When they open the import page, and post a file into another organization
    page = client.get(reverse("admin:crm_lead_import"))
    posted = client.post(
        reverse("admin:crm_lead_import"),
        {
            "file": SimpleUploadedFile("leads.csv", CSV.encode(), "text/csv"),
            "organization": other_organization.pk,
        },
    )

    # Then both are refused, no organization is named, and nothing is imported
    assert (page.status_code, posted.status_code) == (403, 403)
    assert other_organization.name not in page.content.decode()
    assert not Lead.objects.exists()


def test_export_writes_what_the_importer_reads_back(member_client, organization):
    LeadFactory(
        organization=organization,
        external_id="x1",
        name="Dee",
        phones=["+12025550111", "+12025550112"],
        phone="+12025550111",
        tags=["vip", "spring"],
        attributes={"tier": "gold"},
        email_opt_out=True,
    )
    LeadFactory(name="Someone else's")

    response = member_client.get(reverse("admin:crm_lead_export"))

    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    assert [row["name"] for row in rows] == ["Dee"]
    assert rows[0]["phones"] == "+12025550111; +12025550112"
    assert rows[0]["tags"] == "vip; spring"
    assert rows[0]["tier"] == "gold"
    assert (rows[0]["sms_opt_out"], rows[0]["email_opt_out"]) == ("no", "yes")


def test_export_follows_the_changelist_filter(member_client, organization):
    LeadFactory(organization=organization, name="In", sms_opt_out=True)
    LeadFactory(organization=organization, name="Out", sms_opt_out=False)

    response = member_client.get(
        reverse("admin:crm_lead_export") + "?sms_opt_out__exact=1"
    )

    body = b"".join(response.streaming_content).decode()
    assert "In" in body and "Out" not in body


def test_the_lead_page_shows_opt_outs_and_the_latest_messages(
    member_client, organization
):
    lead = LeadFactory(organization=organization, sms_opt_out=True)
    campaign = launched_campaign(organization)
    for index, log in enumerate(
        logs_for(campaign, statuses={"delivered": LEAD_HISTORY_SHOWN + 5})
    ):
        log.lead, log.dedupe_key, log.body = lead, f"k{index}", f"Message {index}"
        log.save()

    response = member_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))

    page = response.content.decode()
    assert "SMS: <strong>opted out</strong>" in page
    assert "Email: <strong>yes</strong>" in page
    formset = response.context["inline_admin_formsets"][0].formset
    assert len(formset.forms) == LEAD_HISTORY_SHOWN


def test_contacts_typed_in_the_form_are_normalized(member_client, organization):
    lead = LeadFactory(organization=organization)

    response = member_client.post(
        reverse("admin:crm_lead_change", args=[lead.pk]),
        {
            "name": "New Name",
            "external_id": "",
            "phones_text": "(202) 555-0199; +1 202 555 0198",
            "emails_text": "New@Example.com",
            "total_spend": "1",
            "visits": "1",
            "timezone": "",
            "tags": "[]",
            "attributes": "{}",
            "logs-TOTAL_FORMS": "0",
            "logs-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    lead.refresh_from_db()
    assert lead.phones == ["+12025550199", "+12025550198"]
    assert lead.phone == "+12025550199"
    assert lead.email == "new@example.com"
