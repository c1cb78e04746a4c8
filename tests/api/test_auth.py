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
