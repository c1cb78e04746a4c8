"""Each organization's accounts with messaging vendors: who it sends as, and how."""

from django.db import models

from crm.models import Channel, Organization


class VendorAccount(models.Model):
    """An organization's sender identity on one channel, and the vendor that sends.

    `sender` is what recipients see and answer to: an E.164 number or a Twilio
    messaging service SID for SMS, a from-address for email. Inbound replies are
    routed to the organization by it. Credentials are stored encrypted, never shown.
    """

    class Vendor(models.TextChoices):
        SIMULATOR = "simulator", "Simulator"
        TWILIO = "twilio", "Twilio"
        SENDGRID = "sendgrid", "SendGrid"
        SMTP = "smtp", "SMTP relay"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="vendor_accounts"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    vendor = models.CharField(max_length=16, choices=Vendor.choices)
    sender = models.CharField(max_length=254)
    # The vendor's account id (a Twilio account SID, an SMTP user): not secret.
    account_id = models.CharField(max_length=120, blank=True, default="")
    # The secrets (auth token, API key, password), Fernet-encrypted.
    credentials_encrypted = models.TextField(blank=True, default="")
    # The vendor's limit for this account, in messages per second, for the whole fleet.
    rate_per_second = models.PositiveIntegerField(default=10)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # One account sends an organization's messages on each channel.
            models.UniqueConstraint(
                fields=["organization", "channel"],
                condition=models.Q(is_active=True),
                name="vendor_account_one_active_per_channel",
            ),
            # A sender identity routes replies to exactly one organization.
            models.UniqueConstraint(
                fields=["channel", "sender"], name="vendor_account_unique_sender"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_vendor_display()} {self.channel} ({self.sender})"
