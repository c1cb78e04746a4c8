"""No admin page shows a member another organization's names.

Organization B's rows carry MARK in every name, number and text the admin could
show; a member of organization A opens every registered ModelAdmin's pages (the
changelist plain, searched and filtered, the add form, and the change, delete and
history pages of A's own rows), the index and the admin's own views, and MARK must
appear on none of them.
"""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from api.models import LeadImport
from automations.models import AutomationDispatch, CampaignHourlyStat, DailySnapshot
from campaigns.models import CampaignChunk
from crm.models import Membership, Suppression, SuppressionLift
from messaging.models import DeliveryReceipt, InboundReply, LogStatus
from tests.automations.factories import (
    AppointmentFactory,
    EnrollmentFactory,
    InvoiceFactory,
    NurtureSequenceFactory,
    NurtureStepFactory,
)
from tests.crm.factories import (
    LeadFactory,
    MembershipFactory,
    OrganizationFactory,
    SegmentFactory,
    UserFactory,
)
from tests.messaging.factories import CommunicationLogFactory, DispatchFactory
from tests.support.campaigns import launched_campaign
from tests.vendors.factories import VendorAccountFactory

pytestmark = pytest.mark.django_db

# Has a hyphen, so no random token on a page (CSRF, a hash) can contain it. The
# changelists are searched for "orgb": found in B's rows, the echoed term is no MARK.
MARK = "zz-orgb"
MARK_PHONE = "+447700900123"


def seed(organization, *, prefix: str, phone: str) -> dict:
    """One row of every model for the organization, named with `prefix`; returns
    them by model."""
    now = timezone.now()
    email = f"{prefix}-lead@example.com"
    lead = LeadFactory(
        organization=organization,
        name=f"{prefix} Lead",
        external_id=f"{prefix}-ext",
        phones=[phone],
        emails=[email],
        phone=phone,
        email=email,
        tags=[f"{prefix}-tag"],
    )
    user = UserFactory(username=f"{prefix}-user", is_staff=True)
    membership = MembershipFactory(
        organization=organization, user=user, role=Membership.Role.OWNER
    )
    segment = SegmentFactory(organization=organization, name=f"{prefix} Segment")
    campaign = launched_campaign(
        organization, name=f"{prefix} Campaign", segment=segment
    )
    campaign.dispatch.label = f"{prefix} Campaign"
    campaign.dispatch.save()
    chunk = CampaignChunk.objects.create(
        campaign=campaign,
        index=0,
        job_id=f"{prefix}-chunk",
        lead_ids=[lead.pk],
        status=CampaignChunk.Status.DEAD,
        last_error=f"{prefix} error",
        created_at=now,
    )
    log = CommunicationLogFactory(
        dispatch=campaign.dispatch,
        lead=lead,
        recipient=phone,
        body=f"{prefix} body",
        status=LogStatus.FAILED,
        error_code=f"{prefix}-code",
        vendor_ref=f"{prefix}-ref",
        attempts=9,
        failed_at=now,
        next_attempt_at=None,
    )
    receipt = DeliveryReceipt.objects.create(
        vendor="simulator",
        vendor_ref=f"{prefix}-ref",
        status=DeliveryReceipt.Status.UNDELIVERED,
        error_code=f"{prefix}-code",
        log=log,
    )
    reply = InboundReply.objects.create(
        organization=organization,
        channel="sms",
        sender=phone,
        body=f"{prefix} reply",
        action=InboundReply.Action.IGNORED,
        received_at=now,
    )
    sequence = NurtureSequenceFactory(
        organization=organization, name=f"{prefix} Sequence"
    )
    step = NurtureStepFactory(sequence=sequence, template=f"Hi {prefix} step")
    enrollment = EnrollmentFactory(sequence=sequence, lead=lead)
    appointment = AppointmentFactory(
        organization=organization, lead=lead, title=f"{prefix} Appointment"
    )
    invoice = InvoiceFactory(
        organization=organization, lead=lead, number=f"{prefix}-inv"
    )
    automation = AutomationDispatch.objects.create(
        organization=organization,
        kind=AutomationDispatch.Kind.REMINDERS,
        dispatch=DispatchFactory(
            organization=organization, label=f"{prefix} Reminders"
        ),
    )
    snapshot = DailySnapshot.objects.create(
        organization=organization,
        date=timezone.localdate(),
        leads=1,
        revenue_collected=Decimal("1"),
        computed_at=now,
    )
    hourly = CampaignHourlyStat.objects.create(
        campaign=campaign, hour=now.replace(minute=0, second=0, microsecond=0)
    )
    LeadImport.objects.create(organization=organization, filename=f"{prefix}.csv")
    suppression = Suppression.objects.create(
        organization=organization,
        channel="sms",
        address=phone,
        reason="manual",
        source=f"{prefix} user",
    )
    lift = SuppressionLift.objects.create(
        organization=organization,
        channel="email",
        address=email,
        suppression_reason="manual",
        suppressed_at=now,
        lifted_by=f"{prefix} owner",
        reason=f"{prefix} asked",
    )
    account = VendorAccountFactory(organization=organization, sender=phone)
    rows = [
        suppression,
        lift,
        organization,
        membership,
        lead,
        segment,
        campaign,
        chunk,
        campaign.dispatch,
        log,
        receipt,
        reply,
        sequence,
        step,
        enrollment,
        appointment,
        invoice,
        automation,
        snapshot,
        hourly,
        account,
    ]
    return {type(row): row for row in rows}


@pytest.fixture
def their_rows(db):
    organization = OrganizationFactory(name=f"{MARK} Organization", slug=MARK)
    return seed(organization, prefix=MARK, phone=MARK_PHONE)


@pytest.fixture
def own_rows(organization, their_rows):
    organization.name = "Own Organization"
    organization.save()
    return seed(organization, prefix="own", phone="+12025550100")


@pytest.fixture
def owner_client(client, own_rows):
    """An owner of organization A: every right a member can have, every page."""
    client.force_login(own_rows[Membership].user)
    return client


def admin_url(name: str, *args) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


def pages(own_rows: dict, their_rows: dict) -> list[str]:
    """Every admin page a member may open, each list filter applied with their
    organization's rows and the other's, each foreign key's autocomplete, and the
    other's rows asked for by id."""
    urls = [
        reverse("admin:index"),
        reverse("admin:campaigns_dead_letter"),
        reverse("admin:crm_lead_import"),
        reverse("admin:crm_lead_export"),
        reverse("admin:crm_suppression_import"),
        reverse("admin:crm_suppression_export"),
    ]
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        changelist = admin_url(f"{info}_changelist")
        urls += [changelist, f"{changelist}?q=orgb", admin_url(f"{info}_add")]
        for list_filter in model_admin.list_filter:
            if isinstance(list_filter, str) and "__" not in list_filter:
                field = model._meta.get_field(list_filter)
                if field.is_relation:
                    urls += [
                        f"{changelist}?{list_filter}__id__exact={rows[related].pk}"
                        for rows in (own_rows, their_rows)
                        if (related := field.related_model) in rows
                    ]
        urls += [
            reverse("admin:autocomplete")
            + f"?app_label={model._meta.app_label}&model_name={model._meta.model_name}"
            + f"&field_name={field.name}&term=orgb"
            for field in model._meta.fields
            if field.many_to_one or field.one_to_one
        ]
        for rows in (own_rows, their_rows):
            if model in rows:
                urls += [
                    admin_url(f"{info}_{view}", rows[model].pk)
                    for view in ("change", "delete", "history")
                ]
    return [url for url in urls if url]


def page_text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_no_admin_page_shows_a_member_another_organizations_names(
    owner_client, own_rows, their_rows
):
    # Given organization B's rows of every model, named with MARK, and A's own
    # When an owner of A opens every admin page
    leaks = []
    for url in pages(own_rows, their_rows):
        response = owner_client.get(url)
        assert response.status_code in (200, 302, 403, 404), url
        text = page_text(response)
        if MARK in text.lower() or MARK_PHONE[3:] in text:
            leaks.append(url)

    # Then none shows any of B's names
    assert leaks == []
