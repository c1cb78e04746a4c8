"""Who gets in: token or session, members only, viewers read only, throttled."""

import pytest
from rest_framework.test import APIClient

from crm.models import Membership
from tests.crm.factories import LeadFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_anonymous_callers_are_refused():
    response = APIClient().get("/api/leads")

    assert response.status_code in (401, 403)


def test_a_token_is_issued_for_a_username_and_password(member):
    response = APIClient().post(
        "/api/auth/token",
        {"username": member.user.username, "password": "correct-horse-battery"},
    )

    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/leads").status_code == 200


def test_a_wrong_password_gets_no_token(member):
    response = APIClient().post(
        "/api/auth/token", {"username": member.user.username, "password": "guess"}
    )

    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_a_session_signs_in_too(member):
    client = APIClient()
    client.force_login(member.user)

    assert client.get("/api/leads").status_code == 200


def test_a_user_without_an_organization_is_forbidden():
    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.get("/api/leads")

    assert response.status_code == 403
    assert "organization" in response.json()["detail"]


def test_a_viewer_reads_but_cannot_write():
    viewer = MembershipFactory(role=Membership.Role.VIEWER)
    LeadFactory(organization=viewer.organization)
    client = APIClient()
    client.force_authenticate(viewer.user)

    assert client.get("/api/leads").status_code == 200
    response = client.post("/api/leads", {"name": "X"}, format="json")
    assert response.status_code == 403


def test_callers_over_the_rate_are_throttled(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": "3/min",
        },
    }

    codes = [api.get("/api/leads").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]


def ask_token(username: str, password: str, address: str = "203.0.113.7"):
    return APIClient().post(
        "/api/auth/token",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def throttle(username: str) -> None:
    """Ask with wrong passwords until the username is throttled."""
    codes = [ask_token(username, "guess").status_code for _ in range(80)]
    assert 429 in codes


def test_wrong_passwords_for_one_username_are_throttled_with_retry_after(member):
    # given / when 80 wrong passwords in a row for one username
    responses = [ask_token(member.user.username, f"guess{n}") for n in range(80)]

    # then the first few are answered, the rest refused until a stated time
    codes = [response.status_code for response in responses]
    assert codes[0] == 400
    assert codes[-1] == 429
    throttled = codes.index(429)
    assert 1 <= throttled <= 10
    assert set(codes[throttled:]) == {429}
    assert int(responses[-1]["Retry-After"]) > 0


def test_a_throttled_username_is_throttled_from_every_address_and_in_any_case(
    member,
):
    # given a username throttled from one address
    username = member.user.username
    throttle(username)

    # when the same username is tried from elsewhere, in capitals
    elsewhere = ask_token(username.upper(), "guess", address="198.51.100.9")

    # then
    assert elsewhere.status_code == 429


def test_one_address_trying_many_usernames_is_throttled_whatever_it_forwards():
    # given / when one address trying a new username each time, and naming a new
    # address of its own in X-Forwarded-For each time
    codes = [
        APIClient()
        .post(
            "/api/auth/token",
            {"username": f"nobody{n}", "password": "guess"},
            REMOTE_ADDR="192.0.2.1",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
        .status_code
        for n in range(80)
    ]

    # then
    assert codes[0] == 400
    assert codes[-1] == 429


def test_another_user_still_gets_a_token_while_one_username_is_throttled(member):
    # given a username throttled from one address
    throttle("victim")

    # when another user signs in from another address
    response = ask_token(
        member.user.username, "correct-horse-battery", address="198.51.100.9"
    )

    # then
    assert response.status_code == 200
    assert response.json()["token"]
