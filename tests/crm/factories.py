"""Factories for the CRM models."""

import datetime

import factory
from django.contrib.auth import get_user_model

from crm.models import Lead, Membership, Organization, Segment


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Faker("company")
    slug = factory.Sequence(lambda n: f"org-{n}")
    # Sending at any hour, so a test's outcome does not depend on when it runs;
    # the sending rules' tests switch quiet hours and the night on.
    quiet_hours_enabled = False
    transactional_night_start = datetime.time(0, 0)
    transactional_night_end = datetime.time(0, 0)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.MARKETER


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Faker("name")
    phones = factory.Sequence(lambda n: [f"+1202555{n % 10000:04d}"])
    emails = factory.Sequence(lambda n: [f"lead{n}@example.com"])
    phone = factory.LazyAttribute(lambda lead: lead.phones[0] if lead.phones else "")
    email = factory.LazyAttribute(lambda lead: lead.emails[0] if lead.emails else "")
    total_spend = factory.Faker(
        "pydecimal", left_digits=4, right_digits=2, positive=True, max_value=9999
    )
    visits = factory.Faker("pyint", min_value=0, max_value=50)
    timezone = "America/New_York"
    attributes = factory.LazyFunction(dict)
    tags = factory.LazyFunction(list)


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")
    rules = factory.LazyFunction(
        lambda: {"field": "total_spend", "op": "gte", "value": 0}
    )
