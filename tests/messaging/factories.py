"""Factories for messaging's rows: dispatches and the communication logs they own."""

import factory
from django.utils import timezone

from crm.models import Channel
from messaging.models import CommunicationLog, Dispatch, LogStatus
from messaging.services.logs import new_send_id
from tests.crm.factories import LeadFactory, OrganizationFactory


class DispatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dispatch

    organization = factory.SubFactory(OrganizationFactory)
    label = factory.Sequence(lambda n: f"Dispatch {n}")
    channel = Channel.SMS


class CommunicationLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommunicationLog

    dispatch = factory.SubFactory(DispatchFactory)
    lead = factory.SubFactory(
        LeadFactory, organization=factory.SelfAttribute("..dispatch.organization")
    )
    dedupe_key = factory.LazyAttribute(lambda log: str(log.lead.pk))
    send_id = factory.LazyAttribute(
        lambda log: new_send_id(scope=log.dispatch.pk, key=log.lead.pk)
    )
    channel = Channel.SMS
    recipient = factory.LazyAttribute(lambda log: log.lead.phone)
    body = "Hello"
    status = LogStatus.PENDING
    # Set only while pending, as the pipeline keeps it.
    next_attempt_at = factory.LazyAttribute(
        lambda log: timezone.now() if log.status == LogStatus.PENDING else None
    )
