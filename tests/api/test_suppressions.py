"""The suppression list over the API: add, list, search, lift with a reason."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.models import Membership, Suppression, SuppressionLift
from crm.services.suppressions import address_suppress
from tests.crm.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def client_of(membership: Membership) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=membership.user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def owner_api(org) -> APIClient:
    return client_of(MembershipFactory(organization=org, role=Membership.Role.OWNER))


@pytest.fixture
def viewer_api(org) -> APIClient:
    return client_of(MembershipFactory(organization=org, role=Membership.Role.VIEWER))


def suppress(org, address: str, channel: str = "sms", reason: str = "manual") -> int:
    address_suppress(
        organization_id=org.pk, channel=channel, address=address, reason=reason
    )
    return Suppression.objects.get(
        organization=org, channel=channel, address=address
    ).pk


def test_adding_an_address_stores_it_normalized_and_answers_201(api, org, member):
    # when a marketer adds a phone as people write it
    response = api.post(
        "/api/suppressions",
        {"channel": "sms", "address": "(212) 555-0123"},
        format="json",
    )

    # then it is stored in E.164, reason manual, the marketer as its source
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["address"] == "+12125550123"
    assert body["reason"] == "manual"
    assert body["source"] == member.user.username
    assert Suppression.objects.get(organization=org).address == "+12125550123"


def test_adding_an_address_suppressed_already_answers_200_with_the_first_one(api, org):
    # given an address suppressed by a STOP
    suppress(org, "+12125550123", reason="stop_keyword")

    # when it is added again by hand, written differently
    response = api.post(
        "/api/suppressions",
        {"channel": "sms", "address": "+1 212 555 0123", "reason": "import"},
        format="json",
    )

    # then the answer is the suppression as it stands, its first reason kept
    assert response.status_code == 200
    assert response.json()["reason"] == "stop_keyword"
    assert Suppression.objects.filter(organization=org).count() == 1


def test_an_email_is_lower_cased_as_stored(api):
    response = api.post(
        "/api/suppressions",
        {"channel": "email", "address": "Ann@Example.COM", "reason": "complaint"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["address"] == "ann@example.com"
    assert response.json()["reason"] == "complaint"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"channel": "sms", "address": "not a phone"}, "address"),
        ({"channel": "email", "address": "nobody-at-example"}, "address"),
        ({"channel": "fax", "address": "+12125550123"}, "channel"),
        ({"channel": "sms", "address": "+12125550123", "reason": "x"}, "reason"),
        ({"channel": "sms"}, "address"),
    ],
)
def test_a_bad_address_channel_or_reason_is_a_400_naming_it(api, body, field):
    response = api.post("/api/suppressions", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Suppression.objects.exists()


def test_a_viewer_cannot_add(viewer_api):
    response = viewer_api.post(
        "/api/suppressions",
        {"channel": "sms", "address": "+12125550123"},
        format="json",
    )

    assert response.status_code == 403
    assert not Suppression.objects.exists()


def test_the_list_filters_by_channel_and_finds_an_address_however_written(
    viewer_api, org
):
    # given a phone and an email suppressed
    suppress(org, "+12125550123")
    suppress(org, "ann@example.com", channel="email")

    # when a member lists by channel and searches as people write addresses
    by_channel = viewer_api.get("/api/suppressions?channel=email").json()
    by_phone = viewer_api.get("/api/suppressions", {"search": "212-555-0123"}).json()
    by_email = viewer_api.get("/api/suppressions", {"search": "ANN@example.com"})
    by_part = viewer_api.get("/api/suppressions", {"search": "555"}).json()

    # then each finds what it names
    assert [row["address"] for row in by_channel["results"]] == ["ann@example.com"]
    assert [row["address"] for row in by_phone["results"]] == ["+12125550123"]
    assert [row["address"] for row in by_email.json()["results"]] == ["ann@example.com"]
    assert [row["address"] for row in by_part["results"]] == ["+12125550123"]


def test_the_list_pages_by_cursor(viewer_api, org):
    for n in range(3):
        suppress(org, f"+1212555012{n}")

    first = viewer_api.get("/api/suppressions?page_size=2").json()
    second = viewer_api.get(first["next"]).json()

    assert len(first["results"]) == 2
    assert len(second["results"]) == 1


def test_an_owner_lifts_with_a_reason_and_the_lift_is_kept_in_history(owner_api, org):
    # given a suppressed address
    pk = suppress(org, "+12125550123", reason="stop_keyword")

    # when an owner lifts it with a reason in the body
    response = owner_api.delete(
        f"/api/suppressions/{pk}", {"reason": "texted START"}, format="json"
    )

    # then it is gone from the list and the history says what it was and why
    assert response.status_code == 200, response.json()
    assert not Suppression.objects.filter(pk=pk).exists()
    history = owner_api.get("/api/suppressions/history").json()["results"]
    assert len(history) == 1
    assert history[0]["address"] == "+12125550123"
    assert history[0]["suppression_reason"] == "stop_keyword"
    assert history[0]["reason"] == "texted START"
    assert history[0]["lifted_by"]


def test_a_lift_reason_may_come_in_the_query(owner_api, org):
    pk = suppress(org, "+12125550123")

    response = owner_api.delete(f"/api/suppressions/{pk}?reason=asked+by+phone")

    assert response.status_code == 200, response.json()
    assert SuppressionLift.objects.get().reason == "asked by phone"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_lifting_without_a_reason_is_a_400_and_keeps_the_suppression(
    owner_api, org, body
):
    pk = suppress(org, "+12125550123")

    response = owner_api.delete(f"/api/suppressions/{pk}", body, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()
    assert Suppression.objects.filter(pk=pk).exists()
    assert not SuppressionLift.objects.exists()


def test_marketers_and_viewers_cannot_lift(api, viewer_api, org):
    pk = suppress(org, "+12125550123")

    for client in (api, viewer_api):
        response = client.delete(
            f"/api/suppressions/{pk}", {"reason": "please"}, format="json"
        )
        assert response.status_code == 403

    assert Suppression.objects.filter(pk=pk).exists()


def test_another_organizations_suppressions_are_never_seen_or_lifted(
    owner_api, org, other_org
):
    # given the same address suppressed in another organization
    theirs = suppress(other_org, "+12125550123")

    # when our owner lists, searches, reads and lifts it
    listed = owner_api.get("/api/suppressions").json()["results"]
    searched = owner_api.get("/api/suppressions?search=%2B12125550123").json()
    read = owner_api.get(f"/api/suppressions/{theirs}")
    lifted = owner_api.delete(
        f"/api/suppressions/{theirs}", {"reason": "x"}, format="json"
    )
    missing = owner_api.delete(
        "/api/suppressions/2000000000", {"reason": "x"}, format="json"
    )

    # then nothing of theirs shows, and their row answers as a missing one
    assert listed == [] and searched["results"] == []
    assert read.status_code == 404
    assert (lifted.status_code, lifted.json()) == (
        missing.status_code,
        missing.json(),
    )
    assert Suppression.objects.filter(pk=theirs).exists()


def test_adding_an_address_another_organization_suppresses_adds_ours(api, org):
    # given the address suppressed in another organization only
    other = MembershipFactory().organization
    suppress(other, "+12125550123")

    # when we add it
    response = api.post(
        "/api/suppressions",
        {"channel": "sms", "address": "+12125550123"},
        format="json",
    )

    # then it is new to us, and theirs is untouched
    assert response.status_code == 201
    assert Suppression.objects.filter(organization=org).count() == 1
    assert Suppression.objects.filter(organization=other).count() == 1


def test_the_history_is_the_organizations_own(owner_api, org, other_org):
    from crm.services.suppressions import address_unsuppress

    suppress(other_org, "+12125550123")
    address_unsuppress(
        organization_id=other_org.pk,
        channel="sms",
        address="+12125550123",
        lifted_by="them",
        reason="theirs",
    )

    assert owner_api.get("/api/suppressions/history").json()["results"] == []
