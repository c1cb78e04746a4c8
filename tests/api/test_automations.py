"""Appointments, invoices, nurture sequences, enrollments and snapshots over the API."""

import datetime as dt

import pytest
from django.utils import timezone

from automations.models import DailySnapshot, Enrollment
from tests.automations.factories import (
    AppointmentFactory,
    EnrollmentFactory,
    InvoiceFactory,
    NurtureSequenceFactory,
    NurtureStepFactory,
)
from tests.crm.factories import LeadFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def test_an_appointment_is_created_listed_changed_and_cancelled(api, org):
    lead = LeadFactory(organization=org)
    starts = (timezone.now() + dt.timedelta(days=1)).isoformat()

    created = api.post(
        "/api/appointments",
        {"lead": lead.pk, "title": "Fitting", "starts_at": starts},
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert [a["id"] for a in api.get("/api/appointments").json()["results"]] == [pk]
    later = (timezone.now() + dt.timedelta(days=3)).isoformat()
    changed = api.patch(
        f"/api/appointments/{pk}", {"title": "Call", "starts_at": later}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["title"] == "Call"
    cancelled = api.post(f"/api/appointments/{pk}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    again = api.post(f"/api/appointments/{pk}/cancel")
    assert again.status_code == 409


def test_an_appointment_for_another_organizations_lead_is_a_400(api, other_org):
    theirs = LeadFactory(organization=other_org)

    response = api.post(
        "/api/appointments",
        {"lead": theirs.pk, "title": "x", "starts_at": timezone.now().isoformat()},
        format="json",
    )

    assert response.status_code == 400
    assert "lead" in response.json()


def test_an_invoice_is_created_and_bad_amounts_refused(api, org):
    lead = LeadFactory(organization=org)
    payload = {"lead": lead.pk, "amount": "99.50", "due_date": "2026-01-31"}

    created = api.post("/api/invoices", payload, format="json")
    refused = api.post("/api/invoices", {**payload, "amount": "-1"}, format="json")

    assert created.status_code == 201, created.json()
    assert refused.status_code == 400
    assert "amount" in refused.json()
    paid = api.post(f"/api/invoices/{created.json()['id']}/mark-paid")
    assert paid.json()["status"] == "paid"
    assert paid.json()["paid_at"] is not None
    assert api.post(f"/api/invoices/{created.json()['id']}/void").status_code == 409


def test_a_sequence_is_created_with_its_steps(api):
    response = api.post(
        "/api/nurture-sequences",
        {
            "name": "Welcome",
            "steps": [
                {"position": 1, "delay_minutes": 0, "channel": "sms", "template": "Hi"},
                {
                    "position": 2,
                    "delay_minutes": 60,
                    "channel": "email",
                    "subject": "News",
                    "template": "Hello {{name}}",
                },
            ],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert [step["position"] for step in response.json()["steps"]] == [1, 2]


def test_an_email_step_without_subject_is_a_400(api):
    response = api.post(
        "/api/nurture-sequences",
        {
            "name": "Bad",
            "steps": [{"position": 1, "channel": "email", "template": "Hi"}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert "steps" in response.json()


def test_a_lead_is_enrolled_once_and_can_exit(api, org):
    sequence = NurtureSequenceFactory(organization=org)
    NurtureStepFactory(sequence=sequence, position=1, delay_minutes=30)
    lead = LeadFactory(organization=org)
    payload = {"lead": lead.pk, "sequence": sequence.pk}

    enrolled = api.post("/api/enrollments", payload, format="json")
    again = api.post("/api/enrollments", payload, format="json")
    exited = api.post(f"/api/enrollments/{enrolled.json()['id']}/exit")

    assert enrolled.status_code == 201, enrolled.json()
    assert enrolled.json()["next_run_at"] is not None
    assert again.status_code == 400
    assert "non_field_errors" in again.json()
    assert exited.json()["status"] == Enrollment.Status.EXITED


def test_a_segment_is_enrolled_in_a_sequence(api, org):
    sequence = NurtureSequenceFactory(organization=org)
    NurtureStepFactory(sequence=sequence, position=1)
    LeadFactory.create_batch(3, organization=org)
    segment = SegmentFactory(organization=org)

    response = api.post(
        f"/api/nurture-sequences/{sequence.pk}/enroll",
        {"segment": segment.pk},
        format="json",
    )

    assert response.status_code == 202, response.json()
    assert response.json() == {"enrolled": 3}


def test_enrolling_with_another_organizations_lead_or_segment_is_a_400(
    api, org, other_org
):
    sequence = NurtureSequenceFactory(organization=org)
    NurtureStepFactory(sequence=sequence, position=1)
    their_lead = LeadFactory(organization=other_org)
    their_segment = SegmentFactory(organization=other_org)

    by_lead = api.post(
        "/api/enrollments",
        {"lead": their_lead.pk, "sequence": sequence.pk},
        format="json",
    )
    by_segment = api.post(
        f"/api/nurture-sequences/{sequence.pk}/enroll",
        {"segment": their_segment.pk},
        format="json",
    )

    assert by_lead.status_code == 400
    assert "lead" in by_lead.json()
    assert by_segment.status_code == 400
    assert "segment" in by_segment.json()


def test_snapshots_are_read_only(api, org):
    DailySnapshot.objects.create(
        organization=org, date=dt.date(2026, 1, 1), leads=5, computed_at=timezone.now()
    )

    listed = api.get("/api/snapshots").json()["results"]
    created = api.post("/api/snapshots", {}, format="json")

    assert [row["leads"] for row in listed] == [5]
    assert created.status_code == 405


def test_another_organizations_automation_objects_are_not_found(api, other_org):
    appointment = AppointmentFactory(organization=other_org)
    invoice = InvoiceFactory(organization=other_org)
    enrollment = EnrollmentFactory(sequence__organization=other_org)
    snapshot = DailySnapshot.objects.create(
        organization=other_org, date=dt.date(2026, 1, 1), computed_at=timezone.now()
    )

    assert api.get(f"/api/appointments/{appointment.pk}").status_code == 404
    assert (
        api.patch(
            f"/api/appointments/{appointment.pk}", {"title": "x"}, format="json"
        ).status_code
        == 404
    )
    assert api.post(f"/api/appointments/{appointment.pk}/cancel").status_code == 404
    assert api.get(f"/api/invoices/{invoice.pk}").status_code == 404
    assert api.post(f"/api/invoices/{invoice.pk}/mark-paid").status_code == 404
    assert (
        api.get(f"/api/nurture-sequences/{enrollment.sequence_id}").status_code == 404
    )
    assert api.post(f"/api/enrollments/{enrollment.pk}/exit").status_code == 404
    assert api.get(f"/api/snapshots/{snapshot.pk}").status_code == 404
    appointment.refresh_from_db()
    invoice.refresh_from_db()
    assert appointment.status == "scheduled"
    assert invoice.status == "open"


def test_a_bad_snapshot_date_filter_is_a_400(api):
    response = api.get("/api/snapshots", {"date__gte": "yesterday"})

    assert response.status_code == 400
    assert "date__gte" in response.json()
