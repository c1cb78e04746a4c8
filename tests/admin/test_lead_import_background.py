"""The admin's lead import: upload, map the columns, a worker imports, fix rejects."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from api.models import LeadImport
from api.services.lead_imports import lead_import_run, lead_import_start
from crm.models import Lead

pytestmark = pytest.mark.django_db

# A shop's own export: none of its headers is a name the importer knows by itself.
SHOP_CSV = (
    "Kundennummer,Handy,Mail,Lieblingstee,Notiz\n"
    "k1,+1 202 555 0101,ann@example.com,green,call after 5\n"
    "k2,12,bob@example.com,black,\n"
    "k3,+1 202 555 0103,=HYPERLINK(1),mint,\n"
)
SHOP_MAP = {
    "Kundennummer": "external_id",
    "Handy": "phones",
    "Mail": "emails",
    "Lieblingstee": "attr:favourite_tea",
    "Notiz": "ignore",
}


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The import ids handed to the broker (the tests run the worker's part)."""
    ids: list[int] = []
    monkeypatch.setattr("api.tasks.import_leads.delay", ids.append)
    return ids


def uploaded(client, text: str = SHOP_CSV, name: str = "shop.csv"):
    return client.post(
        reverse("admin:api_leadimport_add"),
        {"file": SimpleUploadedFile(name, text.encode(), "text/csv")},
    )


def mapped(client, upload_id: int, targets: list[str], capture):
    with capture(execute=True):
        return client.post(
            reverse("admin:api_leadimport_mapping", args=[upload_id]),
            {f"column_{i}": target for i, target in enumerate(targets)},
        )


def test_an_upload_shows_its_header_and_rows_with_a_target_per_column(
    member_client, enqueued
):
    # When a marketer uploads a file
    response = uploaded(member_client)

    # Then they land on its mapping page, nothing imported yet
    upload = LeadImport.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:api_leadimport_mapping", args=[upload.pk])
    assert upload.status == LeadImport.Status.MAPPING and enqueued == []
    page = member_client.get(response.url)
    columns = page.context["columns"]
    assert [c["title"] for c in columns] == list(SHOP_MAP)
    assert columns[1]["samples"][:2] == ["+1 202 555 0101", "12"]
    # prefilled from the names alone: unknown ones become attributes
    assert columns[0]["chosen"] == "attr:kundennummer"
    assert 'name="column_1"' in page.content.decode()


def test_a_mapped_import_runs_in_a_worker_and_lists_its_rejects(
    member_client, organization, enqueued, django_capture_on_commit_callbacks
):
    # Given an uploaded file mapped column by column
    uploaded(member_client)
    upload = LeadImport.objects.get()
    response = mapped(
        member_client,
        upload.pk,
        list(SHOP_MAP.values()),
        django_capture_on_commit_callbacks,
    )
    assert response.url == reverse("admin:api_leadimport_result", args=[upload.pk])
    assert enqueued == [upload.pk]
    waiting = member_client.get(response.url)
    assert waiting.context["final"] is False and b"import-progress" in waiting.content

    # When the worker runs it
    lead_import_run(import_id=upload.pk)

    # Then the leads are imported through the map, the bad phone's row rejected
    ann = Lead.objects.get(external_id="k1")
    assert ann.phones == ["+12025550101"] and ann.emails == ["ann@example.com"]
    assert ann.attributes == {"favourite_tea": "green"}
    assert ann.organization == organization
    progress = member_client.get(
        reverse("admin:api_leadimport_progress", args=[upload.pk])
    ).json()
    assert progress["final"] and progress["created"] == 1
    assert progress["rejected_count"] == 2
    page = member_client.get(response.url)
    assert page.context["final"] is True
    text = page.content.decode()
    assert "<td>3</td><td>invalid phone" in text
    assert "Download rejected rows as CSV" in text


def test_the_rejected_rows_download_as_a_csv_ready_to_fix(
    member_client, enqueued, django_capture_on_commit_callbacks
):
    # Given a mapped import with two rejected rows
    uploaded(member_client)
    upload = LeadImport.objects.get()
    mapped(
        member_client,
        upload.pk,
        list(SHOP_MAP.values()),
        django_capture_on_commit_callbacks,
    )
    lead_import_run(import_id=upload.pk)

    # When the marketer downloads the rejected rows
    response = member_client.get(
        reverse("admin:api_leadimport_rejected", args=[upload.pk])
    )

    # Then they are the original cells (a formula kept inert) plus a reason
    assert response["Content-Type"] == "text/csv"
    assert 'filename="shop-rejected.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [*SHOP_MAP, "rejected_reason"]
    assert rows[1][:5] == ["k2", "12", "bob@example.com", "black", ""]
    assert rows[1][5].startswith("invalid phone")
    assert rows[2][2] == "'=HYPERLINK(1)" and "email" in rows[2][5]


def test_the_next_upload_is_prefilled_with_the_last_mapping(
    member_client, enqueued, django_capture_on_commit_callbacks
):
    # Given a file mapped once
    uploaded(member_client)
    first = LeadImport.objects.get()
    mapped(
        member_client,
        first.pk,
        list(SHOP_MAP.values()),
        django_capture_on_commit_callbacks,
    )

    # When the next file with those headers is uploaded
    response = uploaded(member_client, name="again.csv")

    # Then its mapping page offers the same choices
    page = member_client.get(response.url)
    assert [c["chosen"] for c in page.context["columns"]] == list(SHOP_MAP.values())


def test_an_unknown_target_is_refused_with_a_message(
    member_client, enqueued, django_capture_on_commit_callbacks
):
    uploaded(member_client)
    upload = LeadImport.objects.get()

    response = mapped(
        member_client,
        upload.pk,
        ["external_id", "phones", "salary", "ignore", "ignore"],
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 200
    assert "unknown target" in response.context["problem"]
    assert enqueued == []
    upload.refresh_from_db()
    assert upload.status == LeadImport.Status.MAPPING


def test_api_imports_are_listed_in_the_admin_with_their_counts(
    member_client, organization, enqueued, django_capture_on_commit_callbacks
):
    # Given an import made through the API, and one from another organization
    with django_capture_on_commit_callbacks(execute=True):
        api_made = lead_import_start(
            organization=organization,
            filename="from-api.csv",
            file=io.BytesIO(b"email\nann@example.com\nnot-an-email\n"),
        )
    lead_import_run(import_id=api_made.pk)

    # When the marketer opens the list of imports
    page = member_client.get(reverse("admin:api_leadimport_changelist"))

    # Then it is there, done, with its counts; and only their organization's
    assert page.status_code == 200
    listed = list(page.context["cl"].result_list)
    assert listed == [api_made]
    text = page.content.decode()
    assert "from-api.csv" in text and "Done" in text
    assert reverse("admin:api_leadimport_result", args=[api_made.pk]) in text


def test_another_organizations_import_is_not_found(member_client, other_organization):
    theirs = LeadImport.objects.create(organization=other_organization)

    for name in ("result", "progress", "rejected", "mapping"):
        response = member_client.get(
            reverse(f"admin:api_leadimport_{name}", args=[theirs.pk])
        )
        assert response.status_code == 404, name
