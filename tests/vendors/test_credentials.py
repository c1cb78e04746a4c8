"""Vendor secrets at rest: encrypted under the settings' keys, rotated by a command."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from config.secret_policy import development_credentials_key
from tests.vendors.factories import VendorAccountFactory
from vendors.credentials import (
    CredentialsError,
    credentials_decrypt,
    credentials_encrypt,
)
from vendors.services import vendor_accounts_rotate_credentials

TOKEN = "f3c9a1d2b4e5f60718293a4b5c6d7e8f"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def rotate() -> str:
    out = io.StringIO()
    call_command("rotate_vendor_credentials", stdout=out)
    return out.getvalue()


def test_secrets_round_trip_and_are_not_readable_at_rest(settings):
    settings.VENDOR_CREDENTIALS_KEYS = [OLD_KEY]

    stored = credentials_encrypt({"auth_token": TOKEN})

    assert TOKEN not in stored
    assert credentials_decrypt(stored) == {"auth_token": TOKEN}


def test_secrets_under_a_key_no_longer_configured_fail_clearly(settings):
    settings.VENDOR_CREDENTIALS_KEYS = [OLD_KEY]
    stored = credentials_encrypt({"auth_token": TOKEN})
    settings.VENDOR_CREDENTIALS_KEYS = [NEW_KEY]

    with pytest.raises(CredentialsError, match="VENDOR_CREDENTIALS_KEYS") as caught:
        credentials_decrypt(stored)

    assert TOKEN not in str(caught.value)


def test_a_malformed_key_is_named_by_position_not_shown(settings):
    settings.VENDOR_CREDENTIALS_KEYS = [NEW_KEY, "not-a-key"]

    with pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"):
        credentials_encrypt({"auth_token": TOKEN})


def test_without_keys_nothing_is_stored(settings):
    settings.VENDOR_CREDENTIALS_KEYS = []

    with pytest.raises(ImproperlyConfigured, match="VENDOR_CREDENTIALS_KEYS"):
        credentials_encrypt({"auth_token": TOKEN})


def test_development_derives_a_working_key_from_the_secret_key():
    key = development_credentials_key("some secret key")

    assert Fernet(key)
    assert key == development_credentials_key("some secret key")
    assert key != development_credentials_key("another secret key")


@pytest.mark.django_db
def test_rotation_re_encrypts_so_the_old_key_can_be_dropped(settings):
    # given accounts encrypted under the old key, and a new key put first
    settings.VENDOR_CREDENTIALS_KEYS = [OLD_KEY]
    accounts = [VendorAccountFactory(secrets={"auth_token": TOKEN}) for _ in range(2)]
    VendorAccountFactory(vendor="simulator")
    settings.VENDOR_CREDENTIALS_KEYS = [NEW_KEY, OLD_KEY]

    # when the command runs, twice
    first = rotate()
    second = rotate()

    # then it says how many, and the new key alone reads every account
    assert first.split() == ["rotated=2", "without_credentials=1", "unreadable=0"]
    assert second == first
    assert TOKEN not in first
    settings.VENDOR_CREDENTIALS_KEYS = [NEW_KEY]
    for account in accounts:
        account.refresh_from_db()
        assert credentials_decrypt(account.credentials_encrypted) == {
            "auth_token": TOKEN
        }


@pytest.mark.django_db
def test_rotation_leaves_an_account_no_key_opens_and_fails(settings):
    settings.VENDOR_CREDENTIALS_KEYS = [OLD_KEY]
    lost = VendorAccountFactory(secrets={"auth_token": TOKEN})
    before = lost.credentials_encrypted
    settings.VENDOR_CREDENTIALS_KEYS = [NEW_KEY]

    with pytest.raises(CommandError, match="1 account"):
        rotate()

    lost.refresh_from_db()
    assert lost.credentials_encrypted == before
    assert vendor_accounts_rotate_credentials().unreadable == 1
