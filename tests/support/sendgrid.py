"""The SendGrid fake on loopback and a SendGridAdapter pointed at it, for tests."""

from vendors.sendgrid import SendGridAdapter
from vendors.sendgrid_fake import SendGridFake

FROM_EMAIL = "news@crm.example.com"


def adapter_for(fake: SendGridFake, **options) -> SendGridAdapter:
    """A real SendGridAdapter sending to the fake and trusting its webhook key."""
    defaults = {
        "api_key": fake.api_key,
        "api_url": fake.api_url,
        "from_email": FROM_EMAIL,
        "verification_key": fake.public_key,
        "tolerance_seconds": 300,
        "timeout": 5.0,
    }
    return SendGridAdapter(**{**defaults, **options})
