"""Factories for campaigns."""

import factory

from campaigns.models import Campaign
from crm.models import Channel
from tests.crm.factories import OrganizationFactory, SegmentFactory

EXAMPLE_TEMPLATE = (
    "Hi {{name}}, you have spent ${{total_spend}} and visited {{visits}} times. "
    "Get 10% off!"
)


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = Channel.SMS
    template = EXAMPLE_TEMPLATE
    segment = factory.SubFactory(
        SegmentFactory, organization=factory.SelfAttribute("..organization")
    )
