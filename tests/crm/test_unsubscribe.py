"""Email unsubscribe: the signed link, its page, and the one-click POST (RFC 8058)."""

import json

import pytest
from django.core import signing
from django.test import Client

from crm.models import Channel, Suppression
from crm.services.unsubscribe import (
    UnsubscribeTokenError,
    unsubscribe_apply,
    unsubscribe_footer,
    unsubscribe_headers,
    unsubscribe_token,
    unsubscribe_url,
)
from tests.crm.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(organization, settings):
    settings.PUBLIC_BASE_URL = "https://crm.example.com/"
    url = unsubscribe_url(organization_id=organization.pk, address="Jane@Example.com")
    return url.removeprefix("https://crm.example.com")


def test_the_link_is_under_the_public_base_url_and_names_no_address(link, settings):
    url = "https://crm.example.com" + link

    assert url.startswith("https://crm.example.com/u/")
    assert "jane" not in url.lower()


def test_the_footer_and_the_headers_carry_the_recipients_link(organization):
    url = unsubscribe_url(organization_id=organization.pk, address="jane@example.com")

    footer = unsubscribe_footer(organization_id=organization.pk, address="jane@x.io")
    headers = unsubscribe_headers(
        organization_id=organization.pk, address="jane@example.com"
    )

    assert footer.startswith("\n\n--\nTo stop these emails: http://")
    assert dict(headers) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_get_shows_a_confirmation_with_the_address_masked_and_changes_nothing(
    organization, link
):
    page = Client().get(link)

    assert page.status_code == 200
    text = page.content.decode()
    assert organization.name in text
    assert "jane@example.com" not in text and "***@example.com" in text
    assert '<form method="post">' in text
    assert not Suppression.objects.exists()


def test_post_suppresses_the_address_for_email_in_that_organization(organization, link):
    # Given another organization, where the same address must stay subscribed
    OrganizationFactory()

    # When the mail client posts RFC 8058's one click, with no CSRF token
    page = Client(enforce_csrf_checks=True).post(
        link, "List-Unsubscribe=One-Click", content_type="text/plain"
    )

    # Then the address is suppressed for this organization's email only
    assert page.status_code == 200
    assert "You are unsubscribed" in page.content.decode()
    suppression = Suppression.objects.get()
    assert (
        suppression.organization_id,
        suppression.channel,
        suppression.address,
        suppression.reason,
    ) == (organization.pk, Channel.EMAIL, "jane@example.com", "unsubscribe_link")


def test_a_second_click_is_harmless(link):
    Client().post(link)

    page = Client().post(link)

    assert page.status_code == 200
    assert Suppression.objects.count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_is_a_404_page_and_changes_nothing(link, method):
    # Another address put in the payload, the signature kept
    payload, signature = link.removeprefix("/u/").rsplit(":", 1)
    other = signing.b64_encode(
        json.dumps(json.loads(signing.b64_decode(payload.encode()))[:2] + ["x@y.io"])
        .replace(" ", "")
        .encode()
    ).decode()
    tampered = f"/u/{other}:{signature}"

    page = getattr(Client(), method)(tampered)
    garbage = getattr(Client(), method)("/u/not-a-token")

    assert page.status_code == garbage.status_code == 404
    assert "This link is not valid" in page.content.decode()
    assert not Suppression.objects.exists()


def test_a_token_signed_for_another_purpose_is_refused(organization):
    forged = signing.Signer(salt="other").sign_object(
        [organization.pk, "email", "jane@example.com"]
    )

    with pytest.raises(UnsubscribeTokenError):
        unsubscribe_apply(token=forged)


def test_a_link_of_a_deleted_organization_is_a_404(organization):
    token = unsubscribe_token(organization_id=organization.pk, address="a@b.co")
    organization.delete()

    assert Client().post(f"/u/{token}").status_code == 404
