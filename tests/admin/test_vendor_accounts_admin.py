"""Vendor accounts in the admin: owners manage them, secrets are never shown back."""

import pytest
from django.urls import reverse

from crm.models import Membership
from tests.crm.factories import MembershipFactory, UserFactory
from tests.vendors.factories import AUTH_TOKEN, VendorAccountFactory
from vendors.admin import SECRET_NAMES, VendorAccountForm
from vendors.credentials import credentials_decrypt
from vendors.models import VendorAccount

pytestmark = pytest.mark.django_db
TOKEN = "c0ffee0123456789abcdef0123456789"
ACCOUNT_SID = "AC" + "1" * 32
ADD = reverse("admin:vendors_vendoraccount_add")
CHANGELIST = reverse("admin:vendors_vendoraccount_changelist")


def change_url(account) -> str:
    return reverse("admin:vendors_vendoraccount_change", args=[account.pk])


@pytest.fixture
def owner_client(client, organization):
    owner = MembershipFactory(
        organization=organization,
        user=UserFactory(is_staff=True),
        role=Membership.Role.OWNER,
    ).user
    client.force_login(owner)
    return client


def form(**fields) -> dict:
    return {
        "channel": "sms",
        "vendor": "twilio",
        "sender": "+15005550006",
        "account_id": ACCOUNT_SID,
        "rate_per_second": "20",
        "is_active": "on",
        "auth_token": "",
        "api_key_sid": "",
        "api_key_secret": "",
        "api_key": "",
        "password": "",
        **fields,
    }


def test_an_owner_adds_a_twilio_account_whose_token_is_stored_encrypted(
    owner_client, organization
):
    # when an owner adds a Twilio account with its auth token
    response = owner_client.post(ADD, form(auth_token=TOKEN))

    # then it belongs to their organization, the token stored encrypted
    assert response.status_code == 302, response.context["adminform"].form.errors
    account = VendorAccount.objects.get()
    assert account.organization == organization
    assert TOKEN not in account.credentials_encrypted
    assert credentials_decrypt(account.credentials_encrypted) == {"auth_token": TOKEN}


def test_no_page_shows_the_token_only_that_secrets_are_stored(
    owner_client, organization
):
    account = VendorAccountFactory(
        organization=organization, secrets={"auth_token": TOKEN}
    )

    pages = [owner_client.get(url) for url in (CHANGELIST, change_url(account))]

    for page in pages:
        text = page.content.decode()
        assert page.status_code == 200
        assert TOKEN not in text
        assert account.credentials_encrypted not in text
    assert 'alt="True"' in pages[1].content.decode()


def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(
    owner_client, organization
):
    account = VendorAccountFactory(
        organization=organization, secrets={"auth_token": TOKEN}
    )

    kept = owner_client.post(change_url(account), form(rate_per_second="30"))
    account.refresh_from_db()
    assert kept.status_code == 302
    assert account.rate_per_second == 30
    assert credentials_decrypt(account.credentials_encrypted) == {"auth_token": TOKEN}

    owner_client.post(change_url(account), form(auth_token="9" * 32))
    account.refresh_from_db()
    assert credentials_decrypt(account.credentials_encrypted) == {
        "auth_token": "9" * 32
    }


def test_a_twilio_account_without_its_token_is_refused(owner_client):
    response = owner_client.post(ADD, form())

    assert response.status_code == 200
    assert "twilio needs this secret" in response.content.decode()
    assert not VendorAccount.objects.exists()


def test_a_sender_of_the_wrong_form_is_refused_with_the_rule(owner_client):
    response = owner_client.post(ADD, form(sender="hello", auth_token=TOKEN))

    assert "E.164" in response.content.decode()
    assert not VendorAccount.objects.exists()


def test_a_second_active_account_on_a_channel_is_refused(owner_client, organization):
    VendorAccountFactory(organization=organization)

    response = owner_client.post(ADD, form(auth_token=TOKEN))

    assert response.status_code == 200
    assert "already has an active sms account" in response.content.decode()
    assert VendorAccount.objects.count() == 1


def test_a_marketer_sees_the_accounts_but_cannot_change_them(
    member_client, organization
):
    account = VendorAccountFactory(organization=organization)

    listed = member_client.get(CHANGELIST)
    added = member_client.post(ADD, form(auth_token=TOKEN))
    changed = member_client.post(change_url(account), form(auth_token=TOKEN))

    assert listed.status_code == 200
    assert account.sender in listed.content.decode()
    assert added.status_code == 403
    assert changed.status_code == 403
    account.refresh_from_db()
    assert credentials_decrypt(account.credentials_encrypted) == {
        "auth_token": AUTH_TOKEN
    }


def test_a_member_never_sees_another_organizations_account(
    owner_client, other_organization
):
    theirs = VendorAccountFactory(organization=other_organization)

    listed = owner_client.get(CHANGELIST)
    opened = owner_client.get(change_url(theirs))

    assert theirs.sender not in listed.content.decode()
    assert opened.status_code == 302


def test_every_vendors_secret_has_a_write_only_input():
    fields = VendorAccountForm.base_fields

    assert {name for name in SECRET_NAMES if name in fields} == set(SECRET_NAMES)
    assert all(not fields[name].widget.render_value for name in SECRET_NAMES)
