"""The secrets production refuses: development defaults, placeholders, short values.

Anyone who has read this repository knows the development defaults and the examples
in its docs; a deployment that kept one lets them sign webhooks (an inbound `START`
that re-subscribes a number) or forge sessions.
"""

import base64
import hashlib
from collections.abc import Iterable, Mapping

from django.core.exceptions import ImproperlyConfigured

# The defaults of config.settings.base: what runs when nothing is set.
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production"
DEVELOPMENT_WEBHOOK_SECRET = "simulator-dev-secret"

# Placeholders that examples and compose files use, compared lower-cased.
KNOWN_PLACEHOLDERS = frozenset(
    {
        DEVELOPMENT_SECRET_KEY.lower(),
        DEVELOPMENT_WEBHOOK_SECRET,
        "change-me-in-production",
        "change-me",
        "changeme",
        "secret",
        "password",
        "your-secret-key",
    }
)
# A value containing one of these is a placeholder someone forgot to replace.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "insecure", "dev-secret")

# Django's own deploy check (security.W009) wants 50 characters of at least 5 kinds.
SECRET_KEY_MIN_LENGTH = 50
# 32 characters: a Twilio auth token's length, 128 bits of hex.
WEBHOOK_SECRET_MIN_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 5

# Secrets of an optional vendor: unset is allowed (the vendor then refuses every
# callback), but a set one must be real.
OPTIONAL_SECRETS = frozenset({"TWILIO_AUTH_TOKEN"})

HOW_TO_MAKE_ONE = (
    "python -c 'import secrets; print(secrets.token_urlsafe(50))' makes one"
)


def development_credentials_key(secret_key: str) -> str:
    """A Fernet key for vendor credentials derived from SECRET_KEY: the development
    default of VENDOR_CREDENTIALS_KEYS, which production never derives."""
    digest = hashlib.sha256(b"vendor-credentials:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def refuse_bad_credentials_keys(keys: Iterable[str]) -> None:
    """Raise ImproperlyConfigured if a VENDOR_CREDENTIALS_KEYS key is not a Fernet
    key (32 bytes, url-safe base64) or is the development key of a known secret.

    Unset is allowed: vendor accounts then cannot store or read credentials.
    """
    known = {development_credentials_key(value) for value in KNOWN_PLACEHOLDERS}
    known.add(development_credentials_key(DEVELOPMENT_SECRET_KEY))
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured(
                f"VENDOR_CREDENTIALS_KEYS: key {position} is not a Fernet key "
                "(32 bytes, url-safe base64): python -c 'from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())' makes one."
            )
        if key in known:
            raise ImproperlyConfigured(
                f"VENDOR_CREDENTIALS_KEYS: key {position} is a development default."
            )


def secret_setting_names(names: Iterable[str]) -> list[str]:
    """SECRET_KEY, every webhook secret and vendor auth token among these names."""
    return [
        name
        for name in names
        if name == "SECRET_KEY"
        or name.endswith("_WEBHOOK_SECRET")
        or name in OPTIONAL_SECRETS
    ]


def refuse_development_secrets(secrets: Mapping[str, str]) -> None:
    """Raise ImproperlyConfigured naming the first secret production must not run with.

    `secrets` maps setting names to their values. The message never shows a value.
    """
    for name, value in secrets.items():
        if name in OPTIONAL_SECRETS and not value:
            continue
        problem = _problem(name, value or "")
        if problem:
            raise ImproperlyConfigured(
                f"{name} {problem}: production needs a secret of its own "
                f"({HOW_TO_MAKE_ONE})."
            )


def _problem(name: str, value: str) -> str:
    if not value.strip():
        return "is not set"
    folded = value.strip().lower()
    if folded in KNOWN_PLACEHOLDERS or folded.startswith("django-insecure-"):
        return "is a development default or a documented example"
    if any(marker in folded for marker in PLACEHOLDER_MARKERS):
        return "is a placeholder"
    least = SECRET_KEY_MIN_LENGTH if name == "SECRET_KEY" else WEBHOOK_SECRET_MIN_LENGTH
    if len(value) < least:
        return f"is shorter than {least} characters"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return ""
