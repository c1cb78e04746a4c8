"""/api/vendor-accounts: owners manage who their organization sends as; secrets
go in and never come out."""

import pytest

from crm.models import Membership
from tests.vendors.factories import AUTH_TOKEN, VendorAccountFactory
from vendors.credentials import credentials_decrypt
from vendors.models import VendorAccount

pytestmark = pytest.mark.django_db
URL = "/api/vendor-accounts"
TOKEN = "c0ffee0123456789abcdef0123456789"
ACCOUNT_SID = "AC" + "1" * 32


@pytest.fixture
def owner(member):
    member.role = Membership.Role.OWNER
    member.save()
    return member


def twilio(**fields) -> dict:
    return {
        "channel": "sms",
        "vendor": "twilio",
        "sender": "+15005550006",
        "account_id": ACCOUNT_SID,
        "rate_per_second": 50,
        "credentials": {"auth_token": TOKEN},
        **fields,
    }


def test_an_owner_creates_a_twilio_account_and_the_token_never_comes_back(api, owner):
    # when an owner creates an account with its auth token
    created = api.post(URL, twilio(), format="json")

    # then the answers say secrets are set, and never show them
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["has_credentials"] is True
    assert "credentials" not in body
    listed = api.get(URL)
    read = api.get(f"{URL}/{body['id']}")
    for response in (created, listed, read):
        assert TOKEN not in response.content.decode()
    account = VendorAccount.objects.get()
    assert account.organization == owner.organization
    assert account.rate_per_second == 50
    assert TOKEN not in account.credentials_encrypted
    assert credentials_decrypt(account.credentials_encrypted) == {"auth_token": TOKEN}


def test_a_messaging_service_sid_is_a_twilio_sender(api, owner):
    created = api.post(URL, twilio(sender="MG" + "a" * 32), format="json")

    assert created.status_code == 201, created.json()


def test_an_email_account_sends_from_an_address(api, owner):
    created = api.post(
        URL,
        {
            "channel": "email",
            "vendor": "sendgrid",
            "sender": "News@Example.com",
            "credentials": {"api_key": "SG.key"},
        },
        format="json",
    )

    assert created.status_code == 201, created.json()
    assert created.json()["sender"] == "news@example.com"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"sender": "5550006"}, "sender", "E.164"),
        ({"sender": "MG123"}, "sender", "messaging service SID"),
        ({"channel": "email", "sender": "+15005550006"}, "vendor", "does not send"),
        ({"account_id": "nope"}, "account_id", "AC followed by 32 hex"),
        ({"rate_per_second": 0}, "rate_per_second", "from 1 to"),
        ({"vendor": "fax"}, "vendor", "not a valid choice"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(api, owner, fields, field, words):
    response = api.post(URL, twilio(**fields), format="json")

    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert not VendorAccount.objects.exists()


@pytest.mark.parametrize(
    ("credentials", "secret", "words"),
    [
        ({}, "auth_token", "needs this secret"),
        ({"auth_token": TOKEN, "api_key": "x"}, "api_key", "no such secret"),
        ({"auth_token": TOKEN, "api_key_sid": "SK1"}, "api_key_secret", "together"),
    ],
)
def test_missing_or_unknown_secrets_are_a_400_without_their_values(
    api, owner, credentials, secret, words
):
    response = api.post(URL, twilio(credentials=credentials), format="json")

    assert response.status_code == 400
    assert words in " ".join(response.json()["credentials"][secret])
    assert TOKEN not in response.content.decode()


def test_a_second_active_account_on_a_channel_is_a_400_not_a_500(api, owner):
    VendorAccountFactory(organization=owner.organization)

    response = api.post(URL, twilio(), format="json")

    assert response.status_code == 400
    assert "already has an active sms account" in response.json()["is_active"][0]


def test_a_sender_another_organization_uses_is_a_400(api, owner, other_org):
    VendorAccountFactory(organization=other_org, sender="+15005550006")

    response = api.post(URL, twilio(), format="json")

    assert response.status_code == 400
    assert "already sends as this sender" in response.json()["sender"][0]


def test_an_update_without_credentials_keeps_them_and_with_them_replaces_them(
    api, owner
):
    account = VendorAccountFactory(organization=owner.organization)

    kept = api.patch(f"{URL}/{account.pk}", {"rate_per_second": 5}, format="json")
    account.refresh_from_db()
    assert kept.status_code == 200
    assert (kept.json()["rate_per_second"], kept.json()["has_credentials"]) == (5, True)
    assert credentials_decrypt(account.credentials_encrypted) == {
        "auth_token": AUTH_TOKEN
    }

    replaced = api.patch(
        f"{URL}/{account.pk}", {"credentials": {"auth_token": TOKEN}}, format="json"
    )
    account.refresh_from_db()
    assert replaced.status_code == 200
    assert TOKEN not in replaced.content.decode()
    assert credentials_decrypt(account.credentials_encrypted) == {"auth_token": TOKEN}


def test_switching_vendor_needs_the_new_vendors_secrets(api, owner):
    account = VendorAccountFactory(
        organization=owner.organization,
        channel="email",
        vendor="simulator",
        sender="a@example.com",
    )

    response = api.patch(f"{URL}/{account.pk}", {"vendor": "smtp"}, format="json")

    assert response.status_code == 400
    assert "smtp needs its secrets" in response.json()["credentials"][0]


def test_an_owner_deletes_an_account(api, owner):
    account = VendorAccountFactory(organization=owner.organization)

    response = api.delete(f"{URL}/{account.pk}")

    assert response.status_code == 204
    assert not VendorAccount.objects.exists()


def test_a_marketer_reads_the_accounts_but_cannot_change_them(api, member):
    account = VendorAccountFactory(organization=member.organization)

    listed = api.get(URL)
    created = api.post(URL, twilio(sender="+15005550007"), format="json")
    changed = api.patch(f"{URL}/{account.pk}", {"is_active": False}, format="json")
    deleted = api.delete(f"{URL}/{account.pk}")

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [account.pk]
    assert AUTH_TOKEN not in listed.content.decode()
    assert {created.status_code, changed.status_code, deleted.status_code} == {403}
    account.refresh_from_db()
    assert account.is_active


def test_another_organizations_accounts_are_not_there(api, owner, other_org):
    theirs = VendorAccountFactory(organization=other_org)

    listed = api.get(URL)
    read = api.get(f"{URL}/{theirs.pk}")
    changed = api.patch(f"{URL}/{theirs.pk}", {"is_active": False}, format="json")

    assert listed.json()["results"] == []
    assert (read.status_code, changed.status_code) == (404, 404)
    theirs.refresh_from_db()
    assert theirs.is_active
