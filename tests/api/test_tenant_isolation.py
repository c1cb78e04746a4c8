"""Another organization's ids answer exactly as ids that do not exist.

Whatever the caller does with an id of another organization's object (filter a
list by it, read it, point a new object at it), the answer is the one a
nonexistent id gets: the API never confirms that another tenant's object exists.
"""

import datetime as dt

import pytest
from django.utils import timezone

from api.models import LeadImport
from automations.models import DailySnapshot
from crm.models import Suppression
from messaging.models import DeliveryReceipt
from tests.automations.factories import (
    AppointmentFactory,
    EnrollmentFactory,
    InvoiceFactory,
    NurtureSequenceFactory,
)
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory
from tests.messaging.factories import CommunicationLogFactory
from tests.vendors.factories import VendorAccountFactory

pytestmark = pytest.mark.django_db

# An id no row has: the tests' sequences stay far below it.
NONEXISTENT = 2_000_000_000


@pytest.fixture
def theirs(other_org) -> dict:
    """One object of each kind in another organization, by API resource."""
    lead = LeadFactory(organization=other_org)
    campaign = CampaignFactory(organization=other_org)
    log = CommunicationLogFactory(lead=lead, dispatch__organization=other_org)
    sequence = NurtureSequenceFactory(organization=other_org)
    return {
        "leads": lead,
        "segments": campaign.segment,
        "campaigns": campaign,
        "logs": log,
        "dispatches": log.dispatch,
        "receipts": DeliveryReceipt.objects.create(
            vendor="simulator", vendor_ref="r-1", status="DELIVERED", log=log
        ),
        "lead-imports": LeadImport.objects.create(organization=other_org),
        "appointments": AppointmentFactory(organization=other_org, lead=lead),
        "invoices": InvoiceFactory(organization=other_org, lead=lead),
        "nurture-sequences": sequence,
        "enrollments": EnrollmentFactory(sequence=sequence, lead=lead),
        "suppressions": Suppression.objects.create(
            organization=other_org,
            channel="sms",
            address="+12125550123",
            reason="manual",
        ),
        "snapshots": DailySnapshot.objects.create(
            organization=other_org,
            date=timezone.localdate(),
            computed_at=timezone.now(),
        ),
        "vendor-accounts": VendorAccountFactory(organization=other_org),
    }


def answer(response, pk: int) -> tuple[int, str]:
    """Status and body, with the id asked for written as <id>."""
    return response.status_code, response.content.decode().replace(str(pk), "<id>")


# (list endpoint, query parameter, resource whose id it takes)
LIST_FILTERS = [
    ("/api/leads", "segment", "segments"),
    ("/api/campaigns", "segment", "segments"),
    ("/api/logs", "campaign", "campaigns"),
    ("/api/logs", "lead", "leads"),
    ("/api/logs", "dispatch", "dispatches"),
    ("/api/receipts", "campaign", "campaigns"),
    ("/api/receipts", "log", "logs"),
    ("/api/appointments", "lead", "leads"),
    ("/api/invoices", "lead", "leads"),
    ("/api/enrollments", "lead", "leads"),
    ("/api/enrollments", "sequence", "nurture-sequences"),
]
READABLE = [
    "leads",
    "segments",
    "campaigns",
    "logs",
    "receipts",
    "lead-imports",
    "appointments",
    "invoices",
    "nurture-sequences",
    "enrollments",
    "snapshots",
    "vendor-accounts",
    "suppressions",
]
# (endpoint, body around the id, field taking the id, resource whose id it takes)
CREATES = [
    (
        "/api/campaigns",
        {"name": "x", "channel": "sms", "template": "Hi"},
        "segment",
        "segments",
    ),
    ("/api/appointments", {"title": "x"}, "lead", "leads"),
    ("/api/invoices", {"amount": "1.00", "due_date": "2030-01-01"}, "lead", "leads"),
    ("/api/enrollments", {}, "lead", "leads"),
    ("/api/enrollments", {}, "sequence", "nurture-sequences"),
]


def requests_by_id(api) -> list[tuple[str, object, str]]:
    """(what, ask(id) -> response, resource whose id it takes) for every way an
    id reaches the API: list filters, reads by id, new objects pointing at one."""
    starts_at = (timezone.now() + dt.timedelta(days=1)).isoformat()
    asks = [
        (
            f"{path}?{parameter}=",
            lambda pk, path=path, parameter=parameter: api.get(
                f"{path}?{parameter}={pk}"
            ),
            resource,
        )
        for path, parameter, resource in LIST_FILTERS
    ]
    asks += [
        (
            f"/api/{resource}/<id>",
            lambda pk, resource=resource: api.get(f"/api/{resource}/{pk}"),
            resource,
        )
        for resource in READABLE
    ]
    asks += [
        (
            f"POST {path} {field}",
            lambda pk, path=path, body=body, field=field: api.post(
                path, {**body, "starts_at": starts_at, field: pk}, format="json"
            ),
            resource,
        )
        for path, body, field, resource in CREATES
    ]
    return asks


def test_another_organizations_id_gets_the_answer_a_nonexistent_id_gets(api, theirs):
    # Given one object of each kind in another organization
    # When each of its ids reaches the API in every way an id can, and so does an
    # id nobody has
    different = [
        what
        for what, ask, resource in requests_by_id(api)
        if answer(ask(theirs[resource].pk), theirs[resource].pk)
        != answer(ask(NONEXISTENT), NONEXISTENT)
    ]

    # Then every answer is the same for both
    assert different == []
