"""Organizations send through their own Twilio accounts, and each account's
callbacks are verified with its own auth token."""

import io
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from messaging.adapters import dispatch_adapters_forget
from messaging.models import CommunicationLog, LogStatus
from messaging.services.receipts import receipts_process
from messaging.services.sending import logs_send_due
from tests.api.test_twilio_webhooks import post
from tests.crm.factories import LeadFactory
from tests.support.campaigns import expand_all, launched_and_chunked
from tests.support.messaging import assert_counters_match_logs
from tests.support.twilio import PUBLIC_URL
from tests.vendors.factories import VendorAccountFactory
from vendors.registry import reset_adapters
from vendors.twilio import twilio_signature
from vendors.twilio_fake import TwilioFake

pytestmark = pytest.mark.django_db
ACCOUNT_SID = "AC" + "5" * 32
ACCOUNT_TOKEN = "5e" * 16
OTHER_SID = "AC" + "6" * 32
OTHER_TOKEN = "6f" * 16
SENDER = "+15005550006"


@pytest.fixture
def fake(settings) -> Iterator[TwilioFake]:
    """Twilio, serving one organization's account; the settings name no account."""
    fake = TwilioFake(account_sid=ACCOUNT_SID, auth_token=ACCOUNT_TOKEN).start()
    settings.VENDOR_DEFAULT = "simulator"
    settings.TWILIO_API_BASE = fake.base_url
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    settings.TWILIO_STATUS_CALLBACK_URL = PUBLIC_URL
    reset_adapters()
    dispatch_adapters_forget()
    yield fake
    reset_adapters()
    dispatch_adapters_forget()
    fake.stop()


def campaign_of_an_organization_with_an_account(leads: int):
    campaign = launched_and_chunked(leads)
    expand_all(campaign)
    VendorAccountFactory(
        organization=campaign.organization,
        account_id=ACCOUNT_SID,
        sender=SENDER,
        secrets={"auth_token": ACCOUNT_TOKEN},
    )
    return campaign


def test_each_organization_sends_through_its_own_account_or_the_simulator(fake):
    # given a campaign of an organization with a Twilio account, and one without
    with_account = campaign_of_an_organization_with_an_account(3)
    without = launched_and_chunked(2)
    expand_all(without)

    # when both send their due messages
    sent_with = logs_send_due(dispatch_id=with_account.dispatch_id)
    sent_without = logs_send_due(dispatch_id=without.dispatch_id)

    # then the first went to Twilio as its account (the fake checks SID and
    # token), from its number; the second went to the simulator
    logs = CommunicationLog.objects.filter(dispatch=with_account.dispatch_id)
    assert sent_with.sent == 3
    assert fake.requests_by_send_id == {log.send_id: 1 for log in logs}
    assert {message.sender for message in fake.sent} == {SENDER}
    assert {log.vendor for log in logs} == {"twilio"}
    assert {log.vendor_ref for log in logs} == {m.sid for m in fake.sent}
    others = CommunicationLog.objects.filter(dispatch=without.dispatch_id)
    assert sent_without.claimed == 2
    assert {log.vendor for log in others if log.status == LogStatus.SENT} == {
        "simulator"
    }
    assert not set(fake.requests_by_send_id) & {log.send_id for log in others}


def test_a_callback_signed_with_the_accounts_token_is_applied(fake):
    campaign = campaign_of_an_organization_with_an_account(2)
    logs_send_due(dispatch_id=campaign.dispatch_id)

    answers = [
        post(*fake.status_callback(message, "delivered")) for message in fake.sent
    ]
    receipts_process()

    assert [answer.status_code for answer in answers] == [202, 202]
    logs = CommunicationLog.objects.filter(dispatch=campaign.dispatch_id)
    assert {log.status for log in logs} == {LogStatus.DELIVERED}
    assert_counters_match_logs(campaign.dispatch)


def test_a_callback_signed_with_another_accounts_token_is_a_403(fake):
    # given a message sent through the account, and another organization's account
    campaign = campaign_of_an_organization_with_an_account(1)
    logs_send_due(dispatch_id=campaign.dispatch_id)
    VendorAccountFactory(account_id=OTHER_SID, secrets={"auth_token": OTHER_TOKEN})
    [message] = fake.sent

    # when its callback comes signed with the other account's token, whichever
    # account it names
    forged = TwilioFake(account_sid=ACCOUNT_SID, auth_token=OTHER_TOKEN)
    answer = post(*forged.status_callback(message, "delivered"))

    # then it is refused and changes nothing
    assert answer.status_code == 403
    receipts_process()
    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id)
    assert log.status == LogStatus.SENT


def test_a_callback_naming_an_account_nobody_configured_is_a_403(fake):
    campaign = campaign_of_an_organization_with_an_account(1)
    logs_send_due(dispatch_id=campaign.dispatch_id)
    [message] = fake.sent
    stranger = TwilioFake(account_sid="AC" + "7" * 32, auth_token="7a" * 16)

    answer = post(*stranger.status_callback(message, "delivered"))

    assert answer.status_code == 403
    log = CommunicationLog.objects.get(dispatch=campaign.dispatch_id)
    assert log.status == LogStatus.SENT


def test_an_accounts_callbacks_verify_after_its_credentials_are_rotated(fake, settings):
    # given a message sent, then the account's secrets rotated to a new key and
    # the old key dropped
    campaign = campaign_of_an_organization_with_an_account(1)
    logs_send_due(dispatch_id=campaign.dispatch_id)
    settings.VENDOR_CREDENTIALS_KEYS = [
        Fernet.generate_key().decode(),
        *settings.VENDOR_CREDENTIALS_KEYS,
    ]
    call_command("rotate_vendor_credentials", stdout=io.StringIO())
    settings.VENDOR_CREDENTIALS_KEYS = settings.VENDOR_CREDENTIALS_KEYS[:1]
    [message] = fake.sent

    # when its callback comes
    answer = post(*fake.status_callback(message, "delivered"))

    # then the account's token, read under the new key, verifies it
    assert answer.status_code == 202


def inbound_stop(token: str, account_sid: str):
    params = {
        "MessageSid": "SM" + "2" * 32,
        "AccountSid": account_sid,
        "From": "+12025550147",
        "To": SENDER,
        "Body": "STOP",
    }
    url = f"{PUBLIC_URL}/api/webhooks/twilio/inbound"
    headers = {"X-Twilio-Signature": twilio_signature(token, url, params)}
    return post(url, params, headers)


def test_a_reply_to_an_accounts_number_is_verified_with_the_accounts_token(fake):
    # given an organization sending from its own Twilio account
    campaign = campaign_of_an_organization_with_an_account(1)
    lead = LeadFactory(organization=campaign.organization, phones=["+12025550147"])

    # when a STOP comes forged with another token, then signed with the account's
    forged = inbound_stop(OTHER_TOKEN, ACCOUNT_SID)
    signed = inbound_stop(ACCOUNT_TOKEN, ACCOUNT_SID)

    # then only the signed one is taken, and it opts the lead out
    assert forged.status_code == 403
    assert signed.status_code == 200, signed.content
    assert signed.json()["opted_out"] == 1
    lead.refresh_from_db()
    assert lead.sms_opt_out
