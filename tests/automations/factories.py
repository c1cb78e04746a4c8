"""Factories for the automations' models."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from automations.models import (
    Appointment,
    Enrollment,
    Invoice,
    NurtureSequence,
    NurtureStep,
)
from crm.models import Channel
from tests.crm.factories import LeadFactory, OrganizationFactory


class AppointmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appointment

    organization = factory.SubFactory(OrganizationFactory)
    lead = factory.SubFactory(
        LeadFactory, organization=factory.SelfAttribute("..organization")
    )
    title = "Consultation"
    location = "Main St 1"
    starts_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=2))


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    organization = factory.SubFactory(OrganizationFactory)
    lead = factory.SubFactory(
        LeadFactory, organization=factory.SelfAttribute("..organization")
    )
    number = factory.Sequence(lambda n: f"INV-{n:05d}")
    amount = Decimal("120.00")
    due_date = factory.LazyFunction(lambda: timezone.localdate())
    payment_link = factory.LazyAttribute(
        lambda invoice: f"https://pay.example.com/{invoice.number}"
    )


class NurtureSequenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NurtureSequence

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Sequence {n}")


class NurtureStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NurtureStep

    sequence = factory.SubFactory(NurtureSequenceFactory)
    position = factory.Sequence(lambda n: n + 1)
    delay_minutes = 60
    channel = Channel.SMS
    template = "Hi {{first_name}}, step message"


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    sequence = factory.SubFactory(NurtureSequenceFactory)
    organization = factory.SelfAttribute("sequence.organization")
    lead = factory.SubFactory(
        LeadFactory, organization=factory.SelfAttribute("..sequence.organization")
    )
    next_run_at = factory.LazyFunction(timezone.now)
