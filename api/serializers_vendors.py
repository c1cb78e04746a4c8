"""Serializers for the organization's vendor accounts; secrets go in, never out."""

from rest_framework import serializers

from vendors.credentials import MAX_SECRET_LENGTH, SECRET_FIELDS
from vendors.models import VendorAccount

_TAKES = "; ".join(
    f"{vendor}: {', '.join(fields) or 'none'}"
    for vendor, fields in SECRET_FIELDS.items()
)


class VendorAccountSerializer(serializers.ModelSerializer):
    credentials = serializers.DictField(
        child=serializers.CharField(max_length=MAX_SECRET_LENGTH),
        write_only=True,
        required=False,
        help_text=(
            "The vendor's secrets, write-only: never shown back. On update, given "
            f"ones replace every stored secret. Each vendor takes: {_TAKES}."
        ),
    )
    has_credentials = serializers.SerializerMethodField()

    class Meta:
        model = VendorAccount
        fields = [
            "id",
            "channel",
            "vendor",
            "sender",
            "account_id",
            "rate_per_second",
            "is_active",
            "credentials",
            "has_credentials",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "sender": {
                "help_text": "What recipients see: an E.164 number or a Twilio "
                "messaging service SID (MG...) for SMS, a from-address for email."
            },
            "account_id": {
                "help_text": "The vendor's account id: the Twilio account SID "
                "(AC...), an SMTP user."
            },
        }
        # The vendors services check uniqueness, with messages that say what to do.
        validators: list = []

    def get_has_credentials(self, account: VendorAccount) -> bool:
        return bool(account.credentials_encrypted)
