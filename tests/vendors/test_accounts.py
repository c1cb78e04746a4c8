"""Adapters built from organizations' vendor accounts, and which one a dispatch uses."""

import pytest
from cryptography.fernet import Fernet

from messaging.adapters import dispatch_adapter, dispatch_adapters_forget
from tests.crm.factories import OrganizationFactory
from tests.messaging.factories import DispatchFactory
from tests.vendors.factories import AUTH_TOKEN, VendorAccountFactory
from vendors.base import OutboundMessage, VendorUnavailable
from vendors.models import VendorAccount
from vendors.registry import (
    ADAPTERS,
    adapter_for_account,
    get_adapter,
    reset_adapters,
)
from vendors.services import vendor_account_update
from vendors.simulator import SimulatorAdapter
from vendors.twilio import TwilioAdapter

pytestmark = pytest.mark.django_db
SERVICE_SID = "MG" + "ab" * 16


@pytest.fixture(autouse=True)
def fresh_registry(settings):
    settings.VENDOR_DEFAULT = "simulator"
    reset_adapters()
    dispatch_adapters_forget()
    yield
    reset_adapters()
    dispatch_adapters_forget()


def test_an_accounts_adapter_sends_as_the_account_with_its_rate():
    account = VendorAccountFactory(sender="+15005550006", rate_per_second=25)

    adapter = adapter_for_account(account)

    assert isinstance(adapter, TwilioAdapter)
    assert (adapter.account_sid, adapter.auth_token) == (
        account.account_id,
        AUTH_TOKEN,
    )
    assert (adapter.from_number, adapter.messaging_service_sid) == ("+15005550006", "")
    assert adapter.rate_per_second == 25
    assert adapter.rate_key == f"account:{account.pk}"


def test_a_messaging_service_sender_sends_by_service_never_the_settings_number(
    settings,
):
    settings.TWILIO_FROM_NUMBER = "+15005550001"
    account = VendorAccountFactory(sender=SERVICE_SID)

    adapter = adapter_for_account(account)

    assert (adapter.from_number, adapter.messaging_service_sid) == ("", SERVICE_SID)


def test_an_account_keeps_its_adapter_until_it_is_edited():
    account = VendorAccountFactory()
    first = adapter_for_account(account)

    assert adapter_for_account(account) is first

    vendor_account_update(account=account, secrets={"auth_token": "9" * 32})

    edited = adapter_for_account(account)
    assert edited is not first
    assert edited.auth_token == "9" * 32


def test_an_account_whose_secrets_no_key_opens_holds_its_messages_back(settings):
    account = VendorAccountFactory()
    settings.VENDOR_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]

    adapter = adapter_for_account(account)

    with pytest.raises(VendorUnavailable, match=f"account {account.pk} cannot send"):
        adapter.send_batch([OutboundMessage("s-1", "sms", "+12025550100", "Hi")])
    assert not adapter.verify_request(path="/", body=b"", headers={})


def test_a_dispatch_of_an_organization_with_an_account_sends_through_it():
    account = VendorAccountFactory()
    dispatch = DispatchFactory(organization=account.organization, channel="sms")

    assert dispatch_adapter(dispatch.pk) is adapter_for_account(account)


def test_a_dispatch_without_an_account_for_its_channel_sends_through_the_default():
    account = VendorAccountFactory(channel="sms")
    DispatchFactory(organization=account.organization, channel="sms")
    email = DispatchFactory(organization=account.organization, channel="email")
    elsewhere = DispatchFactory(channel="sms")

    assert dispatch_adapter(email.pk) is get_adapter()
    assert dispatch_adapter(elsewhere.pk) is get_adapter()
    assert isinstance(get_adapter(), SimulatorAdapter)


def test_an_inactive_account_does_not_send():
    account = VendorAccountFactory(is_active=False)
    dispatch = DispatchFactory(organization=account.organization)

    assert dispatch_adapter(dispatch.pk) is get_adapter()


def test_a_dispatchs_account_is_read_once_for_many_batches(
    django_assert_num_queries,
):
    account = VendorAccountFactory()
    dispatch = DispatchFactory(organization=account.organization)

    with django_assert_num_queries(1):
        adapters = {id(dispatch_adapter(dispatch.pk)) for _ in range(50)}

    assert len(adapters) == 1


def test_an_account_switched_off_stops_sending_once_the_choice_is_read_again(
    monkeypatch,
):
    account = VendorAccountFactory()
    dispatch = DispatchFactory(organization=account.organization)
    assert isinstance(dispatch_adapter(dispatch.pk), TwilioAdapter)

    vendor_account_update(account=account, is_active=False)
    monkeypatch.setattr("messaging.adapters.DISPATCH_ADAPTER_SECONDS", 0)

    assert dispatch_adapter(dispatch.pk) is get_adapter()


def test_a_simulator_account_sends_through_the_simulator_at_its_own_rate():
    account = VendorAccountFactory(vendor="simulator", rate_per_second=3)

    adapter = adapter_for_account(account)

    assert isinstance(adapter, SimulatorAdapter)
    assert (adapter.rate_per_second, adapter.rate_key) == (3, f"account:{account.pk}")


def test_an_account_of_a_vendor_that_cannot_send_for_it_never_falls_back(
    monkeypatch,
):
    # given an adapter that does not say how to send as an account
    monkeypatch.setitem(ADAPTERS, "twilio", "tests.vendors.test_registry.NullVendor")
    account = VendorAccountFactory()

    # when the account's messages are sent
    adapter = adapter_for_account(account)

    # then they wait, never going out as the settings' sender
    with pytest.raises(VendorUnavailable, match="does not send as a vendor account"):
        adapter.send_batch([OutboundMessage("s-1", "sms", "+12025550100", "Hi")])


def test_an_account_saved_without_its_secrets_holds_its_messages_back():
    account = VendorAccount.objects.create(
        organization=OrganizationFactory(), channel="sms", vendor="twilio", sender="+1"
    )

    adapter = adapter_for_account(account)

    with pytest.raises(VendorUnavailable, match="secrets incomplete: auth_token"):
        adapter.send_batch([OutboundMessage("s-1", "sms", "+12025550100", "Hi")])


def test_a_twilio_account_without_its_sid_never_sends_as_the_settings_account(
    settings,
):
    settings.TWILIO_ACCOUNT_SID = "AC" + "9" * 32
    account = VendorAccountFactory(account_id="")

    adapter = adapter_for_account(account)

    with pytest.raises(VendorUnavailable, match="needs its account SID"):
        adapter.send_batch([OutboundMessage("s-1", "sms", "+12025550100", "Hi")])
