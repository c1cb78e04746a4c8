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
from messaging.models import DeliveryReceipt
from tests.automations.factories import (
    AppointmentFactory,
    EnrollmentFactory,
    InvoiceFactory,
    NurtureSequenceFactory,
)
from tests.campaigns.factories import CampaignFactory, CommunicationLogFactory
from tests.crm.factories import LeadFactory

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
        "snapshots": DailySnapshot.objects.create(
            organization=other_org,
            date=timezone.localdate(),
            computed_at=timezone.now(),
        ),
    }


def answer(response, pk: int) -> tuple[int, str]:
    """Status and body, with the id asked for written as <id>."""
    return response.status_code, response.content.decode().replace(str(pk), "<id>")


def assert_same_answer(ask, pk: int) -> None:
    assert answer(ask(pk), pk) == answer(ask(NONEXISTENT), NONEXISTENT)


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


@pytest.mark.parametrize(("path", "parameter", "resource"), LIST_FILTERS)
def test_a_list_filtered_by_another_organizations_id_answers_as_a_nonexistent_one(
    api, theirs, path, parameter, resource
):
    # Given another organization's object
    pk = theirs[resource].pk

    # When a list is filtered by its id, and by an id nobody has
    # Then both answers are the same
    assert_same_answer(lambda value: api.get(f"{path}?{parameter}={value}"), pk)


@pytest.mark.parametrize(
    "resource",
    [
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
    ],
)
def test_another_organizations_object_is_read_as_a_nonexistent_one(
    api, theirs, resource
):
    # Given another organization's object
    pk = theirs[resource].pk

    # When it is read by id, and an id nobody has is read
    # Then both answers are the same
    assert_same_answer(lambda value: api.get(f"/api/{resource}/{value}"), pk)


def starts_at() -> str:
    return (timezone.now() + dt.timedelta(days=1)).isoformat()


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
]


@pytest.mark.parametrize(("path", "body", "field", "resource"), CREATES)
def test_pointing_a_new_object_at_another_organizations_id_answers_as_a_nonexistent(
    api, theirs, path, body, field, resource
):
    # Given another organization's object
    pk = theirs[resource].pk
    body = {**body, "starts_at": starts_at()}

    # When a new object names it, and names an id nobody has
    # Then both answers are the same
    assert_same_answer(
        lambda value: api.post(path, {**body, field: value}, format="json"), pk
    )
