"""Factories for the vendors models."""

import factory

from tests.crm.factories import OrganizationFactory
from vendors.credentials import credentials_encrypt
from vendors.models import VendorAccount

AUTH_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


class VendorAccountFactory(factory.django.DjangoModelFactory):
    """A Twilio SMS account; `secrets` (a dict, or None for none) is stored
    encrypted under the settings' first key."""

    class Meta:
        model = VendorAccount

    organization = factory.SubFactory(OrganizationFactory)
    channel = "sms"
    vendor = "twilio"
    sender = factory.Sequence(lambda n: f"+1500555{n:04d}")
    account_id = factory.Sequence(lambda n: f"AC{n:032x}")
    rate_per_second = 10

    @classmethod
    def _create(cls, model_class, *args, secrets=None, **kwargs):
        if secrets is None and kwargs.get("vendor", "twilio") == "twilio":
            secrets = {"auth_token": AUTH_TOKEN}
        kwargs["credentials_encrypted"] = credentials_encrypt(secrets or {})
        return super()._create(model_class, *args, **kwargs)
