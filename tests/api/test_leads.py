"""Leads over the API: CRUD, filters, search, CSV upload, and other orgs' leads."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from api.models import LeadImport
from api.services.lead_imports import lead_import_run
from crm.models import Lead
from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_a_lead_is_created_with_normalized_contacts(api, org):
    response = api.post(
        "/api/leads",
        {
            "name": "Ada",
            "phones": ["(202) 555-0147"],
            "emails": ["Ada@Example.COM"],
            "tags": ["vip"],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["phone"] == "+12025550147"
    assert body["email"] == "ada@example.com"
    assert Lead.objects.get(pk=body["id"]).organization == org


def test_bad_lead_input_is_a_400_naming_the_fields(api):
    response = api.post(
        "/api/leads",
        {"phones": ["not a phone"], "visits": -1, "total_spend": "abc"},
        format="json",
    )

    assert response.status_code == 400
    assert {"visits", "total_spend"} <= response.json().keys()


def test_an_invalid_phone_is_named(api):
    response = api.post("/api/leads", {"phones": ["12"]}, format="json")

    assert response.status_code == 400
    assert "phones" in response.json()


def test_a_lead_without_any_identifier_is_refused(api):
    response = api.post("/api/leads", {"name": "Nobody"}, format="json")

    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_a_duplicate_external_id_is_a_400(api, org):
    LeadFactory(organization=org, external_id="c-1")

    response = api.post("/api/leads", {"external_id": "c-1"}, format="json")

    assert response.status_code == 400
    assert "external_id" in response.json()


def test_a_lead_is_read_updated_and_deleted(api, org):
    lead = LeadFactory(organization=org)

    assert api.get(f"/api/leads/{lead.pk}").json()["name"] == lead.name
    response = api.patch(
        f"/api/leads/{lead.pk}", {"emails": ["new@example.com"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["email"] == "new@example.com"
    assert api.delete(f"/api/leads/{lead.pk}").status_code == 204
    assert not Lead.objects.filter(pk=lead.pk).exists()


def test_leads_are_filtered_and_searched(api, org):
    LeadFactory(organization=org, name="Grace Hopper", visits=10, tags=["vip"])
    LeadFactory(organization=org, name="Alan Turing", visits=1)

    by_visits = api.get("/api/leads", {"min_visits": 5}).json()["results"]
    by_tag = api.get("/api/leads", {"tag": "vip"}).json()["results"]
    by_search = api.get("/api/leads", {"search": "turing"}).json()["results"]

    assert [lead["name"] for lead in by_visits] == ["Grace Hopper"]
    assert [lead["name"] for lead in by_tag] == ["Grace Hopper"]
    assert [lead["name"] for lead in by_search] == ["Alan Turing"]


def test_lead_lists_page_by_cursor_without_repeating_a_lead(api, org):
    LeadFactory.create_batch(5, organization=org)

    first = api.get("/api/leads", {"page_size": 2}).json()
    second = api.get(first["next"]).json()

    assert len(first["results"]) == 2
    assert not {lead["id"] for lead in first["results"]} & {
        lead["id"] for lead in second["results"]
    }


def test_a_bad_filter_is_a_400(api):
    response = api.get("/api/leads", {"min_visits": "many"})

    assert response.status_code == 400
    assert "min_visits" in response.json()


def test_another_organizations_lead_is_not_found(api, other_org):
    theirs = LeadFactory(organization=other_org)

    assert api.get(f"/api/leads/{theirs.pk}").status_code == 404
    assert (
        api.patch(f"/api/leads/{theirs.pk}", {"name": "x"}, format="json").status_code
        == 404
    )
    assert api.delete(f"/api/leads/{theirs.pk}").status_code == 404
    assert api.get("/api/leads").json()["results"] == []
    assert Lead.objects.get(pk=theirs.pk).name == theirs.name


def test_an_uploaded_csv_is_imported_and_bad_rows_reported_by_line(
    api, org, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(
        "api.tasks.import_leads.delay", lambda import_id: enqueued.append(import_id)
    )
    csv = (
        b"name,phone,email\n"
        b"Ada,202-555-0147,ada@example.com\n"
        b"Bad,12,\n"
        b"Grace,,grace@example.com\n"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/leads/import",
            {"file": SimpleUploadedFile("leads.csv", csv, "text/csv")},
            format="multipart",
        )
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued"
    lead_import_run(import_id=enqueued[0])  # what the worker does
    report = api.get(f"/api/lead-imports/{enqueued[0]}").json()

    assert report["status"] == "done"
    assert report["created"] == 2
    assert [row["line"] for row in report["rejected"]] == [3]
    assert "phone" in report["rejected"][0]["reason"]
    assert Lead.objects.filter(organization=org).count() == 2


def test_an_upload_without_a_file_is_a_400(api):
    response = api.post("/api/leads/import", {}, format="multipart")

    assert response.status_code == 400
    assert "file" in response.json()


def test_an_upload_that_is_not_utf8_is_a_400(api):
    response = api.post(
        "/api/leads/import",
        {"file": SimpleUploadedFile("x.csv", b"name\n\xff\xfe\n", "text/csv")},
        format="multipart",
    )

    assert response.status_code == 400
    assert "file" in response.json()


def test_another_organizations_import_is_not_found(api, other_org):
    theirs = LeadImport.objects.create(organization=other_org)

    assert api.get(f"/api/lead-imports/{theirs.pk}").status_code == 404
