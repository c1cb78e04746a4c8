"""A PATCH writes only the fields it names; what changed meanwhile stands.

Each test changes the row in the database just after the view has read it, as a
request running at the same moment would (a payment, a STOP, an admin's edit).
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from api.views import automations as automation_views
from api.views import leads as lead_views
from automations.models import Invoice, NurtureSequence
from crm.models import Lead
from crm.services.consent import lead_opt_out
from tests.automations.factories import InvoiceFactory, NurtureSequenceFactory
from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def meanwhile(monkeypatch):
    """meanwhile(ViewSet, change): change(obj) runs just after the view reads obj."""

    def arrange(viewset, change) -> None:
        read = viewset.get_object

        def read_then_change(self):
            obj = read(self)
            change(obj)
            return obj

        monkeypatch.setattr(viewset, "get_object", read_then_change)

    return arrange


def test_a_patch_of_an_invoice_paid_meanwhile_is_a_409_and_it_stays_paid(
    api, org, meanwhile
):
    # given an open invoice that is paid just after the PATCH reads it
    invoice = InvoiceFactory(organization=org, amount=Decimal("120.00"))
    paid_at = timezone.now()
    meanwhile(
        automation_views.InvoiceViewSet,
        lambda obj: Invoice.objects.filter(pk=obj.pk).update(
            status=Invoice.Status.PAID, paid_at=paid_at
        ),
    )

    # when
    response = api.patch(
        f"/api/invoices/{invoice.pk}", {"amount": "99.00"}, format="json"
    )

    # then
    assert response.status_code == 409
    assert "paid" in response.json()["detail"]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_at == paid_at
    assert invoice.amount == Decimal("120.00")


def test_a_patch_of_an_invoice_keeps_a_field_changed_meanwhile(api, org, meanwhile):
    # given an open invoice whose due date is moved just after the PATCH reads it
    invoice = InvoiceFactory(organization=org, number="INV-1")
    later = timezone.localdate() + dt.timedelta(days=30)
    meanwhile(
        automation_views.InvoiceViewSet,
        lambda obj: Invoice.objects.filter(pk=obj.pk).update(due_date=later),
    )

    # when
    response = api.patch(
        f"/api/invoices/{invoice.pk}", {"number": "INV-2"}, format="json"
    )

    # then
    assert response.status_code == 200, response.json()
    invoice.refresh_from_db()
    assert invoice.number == "INV-2"
    assert invoice.due_date == later


def test_a_patch_of_a_lead_keeps_an_opt_out_received_meanwhile(api, org, meanwhile):
    # given a lead who texts STOP just after the PATCH reads it
    lead = LeadFactory(organization=org, phones=["+12025550147"], name="Ann")
    meanwhile(
        lead_views.LeadViewSet,
        lambda obj: lead_opt_out(
            lead_id=obj.pk, channel="sms", source="keyword", reason="STOP"
        ),
    )

    # when
    response = api.patch(f"/api/leads/{lead.pk}", {"name": "Ann B"}, format="json")

    # then
    assert response.status_code == 200, response.json()
    lead.refresh_from_db()
    assert lead.name == "Ann B"
    assert lead.sms_opt_out


def test_a_patch_cannot_clear_an_opt_out(api, org):
    # given an opted-out lead
    lead = LeadFactory(organization=org, sms_opt_out=True)

    # when a PATCH asks to clear the opt-out
    response = api.patch(f"/api/leads/{lead.pk}", {"sms_opt_out": False}, format="json")

    # then it is refused with the field's reason, and the lead stays opted out
    assert response.status_code == 400
    assert "sms_opt_out" in response.json()
    lead.refresh_from_db()
    assert lead.sms_opt_out


def test_a_patch_of_a_sequence_keeps_its_activity_set_meanwhile(api, org, meanwhile):
    # given a sequence switched off just after the PATCH reads it
    sequence = NurtureSequenceFactory(organization=org, is_active=True)
    meanwhile(
        automation_views.NurtureSequenceViewSet,
        lambda obj: NurtureSequence.objects.filter(pk=obj.pk).update(is_active=False),
    )

    # when
    response = api.patch(
        f"/api/nurture-sequences/{sequence.pk}",
        {"description": "Welcome series"},
        format="json",
    )

    # then
    assert response.status_code == 200, response.json()
    sequence.refresh_from_db()
    assert sequence.description == "Welcome series"
    assert not sequence.is_active


def test_a_lead_patch_writes_nothing_but_its_fields(api, org, meanwhile):
    # given a lead whose spend is recorded just after the PATCH reads it
    lead = LeadFactory(organization=org, total_spend=Decimal("10.00"))
    meanwhile(
        lead_views.LeadViewSet,
        lambda obj: Lead.objects.filter(pk=obj.pk).update(total_spend=Decimal("75")),
    )

    # when
    response = api.patch(f"/api/leads/{lead.pk}", {"tags": ["vip"]}, format="json")

    # then
    assert response.status_code == 200, response.json()
    lead.refresh_from_db()
    assert lead.tags == ["vip"]
    assert lead.total_spend == Decimal("75.00")


def test_a_patch_of_a_lead_deleted_meanwhile_is_a_404_and_it_stays_deleted(
    api, org, meanwhile
):
    # given a lead deleted just after the PATCH reads it
    lead = LeadFactory(organization=org)
    meanwhile(
        lead_views.LeadViewSet,
        lambda obj: Lead.objects.filter(pk=obj.pk).delete(),
    )

    # when
    response = api.patch(f"/api/leads/{lead.pk}", {"name": "Ann"}, format="json")

    # then
    assert response.status_code == 404
    assert not Lead.objects.filter(pk=lead.pk).exists()
