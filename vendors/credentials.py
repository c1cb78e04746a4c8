"""Vendor account secrets, encrypted at rest with Fernet keys from the settings.

An account's secrets (a Twilio auth token, a SendGrid API key, an SMTP password) are
one JSON object encrypted as a Fernet token in VendorAccount.credentials_encrypted.
VENDOR_CREDENTIALS_KEYS lists the keys: the first encrypts, every one decrypts, so a
new key goes first, `manage.py rotate_vendor_credentials` re-encrypts with it, and
the old keys can then be dropped. Nothing here logs or returns a secret in an error.
"""

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# The secrets each vendor takes, required or optional. Twilio signs its callbacks
# with the auth token, so it is needed even where an API key pair sends.
SECRET_FIELDS: dict[str, dict[str, bool]] = {
    "simulator": {},
    "twilio": {"auth_token": True, "api_key_sid": False, "api_key_secret": False},
    "sendgrid": {"api_key": True},
    "smtp": {"password": True},
}
# Fields that go together: one without the other is refused.
PAIRED_FIELDS: dict[str, tuple[str, str]] = {
    "twilio": ("api_key_sid", "api_key_secret")
}
MAX_SECRET_LENGTH = 500


class CredentialsError(Exception):
    """Stored credentials cannot be read: a key that encrypted them is missing from
    VENDOR_CREDENTIALS_KEYS, or the stored text was altered."""


def valid_key(key: str) -> bool:
    """Whether `key` is a Fernet key: 32 bytes, url-safe base64."""
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True


_fernets: dict[tuple[str, ...], MultiFernet] = {}


def _fernet() -> MultiFernet:
    keys = tuple(settings.VENDOR_CREDENTIALS_KEYS)
    if not keys:
        raise ImproperlyConfigured(
            "VENDOR_CREDENTIALS_KEYS is not set: vendor credentials cannot be "
            "stored or read (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())' makes a key)."
        )
    if keys not in _fernets:
        for position, key in enumerate(keys, start=1):
            if not valid_key(key):
                raise ImproperlyConfigured(
                    f"VENDOR_CREDENTIALS_KEYS: key {position} is not a Fernet key "
                    "(32 bytes, url-safe base64)."
                )
        _fernets[keys] = MultiFernet([Fernet(key) for key in keys])
    return _fernets[keys]


def credentials_encrypt(secrets: Mapping[str, str]) -> str:
    """The secrets as a token under the first key; no secrets, no token."""
    if not secrets:
        return ""
    payload = json.dumps(dict(secrets), sort_keys=True).encode()
    return _fernet().encrypt(payload).decode()


def credentials_decrypt(token: str) -> dict[str, str]:
    """The secrets a token holds; CredentialsError if no key opens it."""
    if not token:
        return {}
    try:
        payload = _fernet().decrypt(token.encode())
    except InvalidToken:
        raise CredentialsError(
            "stored vendor credentials cannot be decrypted with any key of "
            "VENDOR_CREDENTIALS_KEYS (a key is missing, or the text was altered)"
        ) from None
    return json.loads(payload)


def credentials_rotate(token: str) -> str:
    """The same secrets encrypted under the first key; CredentialsError if no key
    opens the token."""
    if not token:
        return ""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialsError(
            "stored vendor credentials cannot be decrypted with any key of "
            "VENDOR_CREDENTIALS_KEYS"
        ) from None


def credentials_problems(vendor: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with a vendor's secrets, by field name; empty when they do.

    The messages name fields, never values.
    """
    fields = SECRET_FIELDS.get(vendor, {})
    problems: dict[str, str] = {}
    for name in secrets:
        if name not in fields:
            known = ", ".join(fields) or "none"
            problems[name] = f"{vendor} takes no such secret (it takes: {known})."
    for name, value in secrets.items():
        if name in fields and (not isinstance(value, str) or not value.strip()):
            problems[name] = "Must be a non-empty string."
        elif name in fields and len(value) > MAX_SECRET_LENGTH:
            problems[name] = f"Longer than {MAX_SECRET_LENGTH} characters."
    for name, required in fields.items():
        if required and name not in secrets and name not in problems:
            problems[name] = f"{vendor} needs this secret."
    pair = PAIRED_FIELDS.get(vendor)
    if pair and (pair[0] in secrets) != (pair[1] in secrets):
        missing = pair[1] if pair[0] in secrets else pair[0]
        problems.setdefault(missing, f"Required with {pair[0]}/{pair[1]} together.")
    return problems
