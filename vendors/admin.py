"""Vendor accounts in the admin: an organization's senders, and their secrets.

Owners manage their organization's accounts; other members only look. Secrets are
write-only: password inputs that never render a value, blank to keep the stored
one; the pages say only whether secrets are stored.
"""

from django import forms
from django.contrib import admin

from crm.admin_scoping import OrganizationScopedAdmin, request_membership, take_over
from crm.models import Membership
from vendors.credentials import (
    SECRET_FIELDS,
    CredentialsError,
    credentials_decrypt,
)
from vendors.models import VendorAccount
from vendors.services import (
    normalized_sender,
    vendor_account_create,
    vendor_account_problems,
    vendor_account_update,
)

# Every vendor's secret names, each a form field of its own.
SECRET_NAMES = sorted({name for fields in SECRET_FIELDS.values() for name in fields})
KEEP = "Leave blank to keep the stored value."


def _secret_field(name: str) -> forms.CharField:
    vendors = [vendor for vendor, fields in SECRET_FIELDS.items() if name in fields]
    return forms.CharField(
        required=False,
        strip=True,
        label=name.replace("_", " ").capitalize(),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=f"For {', '.join(vendors)}. {KEEP}",
    )


class VendorAccountForm(forms.ModelForm):
    """The account's fields and a write-only input per secret; `secrets` after
    validation is what to store: None to keep the stored secrets."""

    # One write-only input per secret of any vendor (SECRET_NAMES).
    api_key = _secret_field("api_key")
    api_key_secret = _secret_field("api_key_secret")
    api_key_sid = _secret_field("api_key_sid")
    auth_token = _secret_field("auth_token")
    password = _secret_field("password")

    class Meta:
        model = VendorAccount
        fields = [
            "organization",
            "channel",
            "vendor",
            "sender",
            "account_id",
            "rate_per_second",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.secrets: dict[str, str] | None = None

    def clean(self):
        cleaned = super().clean()
        vendor = cleaned.get("vendor")
        if vendor is None or self.errors:
            return cleaned
        given = {
            name: cleaned[name]
            for name in SECRET_FIELDS.get(vendor, {})
            if cleaned.get(name)
        }
        # Sent only for another vendor's fields: never stored, never kept.
        for name in SECRET_NAMES:
            cleaned.pop(name, None)
        stored_vendor = self.instance.vendor if self.instance.pk else None
        if vendor != stored_vendor:
            self.secrets = given
        elif given:
            self.secrets = {**self._stored_secrets(), **given}
        account = self._account_as_asked(cleaned)
        for field, message in vendor_account_problems(
            account=account, secrets=self.secrets
        ).items():
            name = field.removeprefix("credentials.")
            self.add_error(name if name in self.fields else None, message)
        return cleaned

    def _stored_secrets(self) -> dict[str, str]:
        try:
            return credentials_decrypt(self.instance.credentials_encrypted)
        except CredentialsError:
            # Unreadable: only what is entered now is stored.
            return {}

    def _account_as_asked(self, cleaned) -> VendorAccount:
        account = VendorAccount(
            pk=self.instance.pk,
            credentials_encrypted=self.instance.credentials_encrypted,
        )
        for name in self.Meta.fields:
            if name in cleaned:
                setattr(account, name, cleaned[name])
        account.sender = normalized_sender(account.channel, account.sender or "")
        return account


@admin.register(VendorAccount)
class VendorAccountAdmin(OrganizationScopedAdmin):
    form = VendorAccountForm
    list_display = [
        "sender",
        "channel",
        "vendor",
        "organization",
        "account_id",
        "rate_per_second",
        "is_active",
        "secrets_stored",
        "updated_at",
    ]
    list_filter = ["channel", "vendor", "is_active"]
    search_fields = ["sender", "account_id"]
    ordering = ["organization", "channel", "-is_active", "sender"]
    readonly_fields = ["secrets_stored", "created_at", "updated_at"]

    def get_fieldsets(self, request, obj=None):
        account = [*VendorAccountForm.Meta.fields]
        secrets = [*SECRET_NAMES, *(["secrets_stored"] if obj else [])]
        stamps = ["created_at", "updated_at"] if obj else []
        return [
            (None, {"fields": account}),
            ("Secrets (write-only)", {"fields": secrets, "description": KEEP}),
            *([("History", {"fields": stamps})] if stamps else []),
        ]

    @admin.display(boolean=True, description="Secrets stored")
    def secrets_stored(self, obj: VendorAccount) -> bool:
        return bool(obj.credentials_encrypted)

    def save_model(self, request, obj, form, change):
        if change:
            vendor_account_update(account=obj, secrets=form.secrets)
            return
        saved = vendor_account_create(
            organization=obj.organization,
            channel=obj.channel,
            vendor=obj.vendor,
            sender=obj.sender,
            account_id=obj.account_id,
            secrets=form.secrets,
            rate_per_second=obj.rate_per_second,
            is_active=obj.is_active,
        )
        take_over(obj, saved)

    # Owners manage the accounts their organization sends through.

    def _owner(self, request) -> bool:
        membership = request_membership(request)
        return (
            request.user.is_staff
            and membership is not None
            and membership.role == Membership.Role.OWNER
        )

    def has_add_permission(self, request):
        return self._owner(request) or admin.ModelAdmin.has_add_permission(
            self, request
        )

    def has_change_permission(self, request, obj=None):
        return self._owner(request) or admin.ModelAdmin.has_change_permission(
            self, request, obj
        )

    def has_delete_permission(self, request, obj=None):
        return self._owner(request) or admin.ModelAdmin.has_delete_permission(
            self, request, obj
        )
