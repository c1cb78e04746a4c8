"""A campaign from CSV upload to COMPLETED through the API alone, with real workers."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.models import Membership
from tests.crm.factories import MembershipFactory, UserFactory
from tests.support.workers import beat_duties, wait_for

pytestmark = pytest.mark.integration
LEADS = 60


@pytest.fixture
def client(transactional_db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(
            ("user", "anon", "webhook"), "100000/min"
        ),
    }
    member = MembershipFactory(role=Membership.Role.MARKETER, user__is_staff=True)
    client = APIClient()
    token = Token.objects.create(user=member.user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_a_campaign_runs_to_completed_through_the_api(client, start_workers):
    start_workers(2, MESSAGING_RETRY_BASE_SECONDS="0.3", SIMULATOR_SUCCESS_RATE="0.9")
    rows = [f"Lead {n},+1202555{n:04d},{n}" for n in range(LEADS)]
    csv = ("name,phone,visits\n" + "\n".join(rows) + "\nBroken,12,1\n").encode()

    # given: leads imported by a worker from an uploaded CSV
    upload = client.post(
        "/api/leads/import",
        {"file": SimpleUploadedFile("leads.csv", csv, "text/csv")},
        format="multipart",
    )
    assert upload.status_code == 202, upload.json()
    import_url = f"/api/lead-imports/{upload.json()['id']}"
    wait_for(lambda: client.get(import_url).json()["status"] == "done", timeout=60)
    report = client.get(import_url).json()
    assert report["created"] == LEADS
    assert [row["line"] for row in report["rejected"]] == [LEADS + 2]

    # and a segment and a campaign
    segment = client.post(
        "/api/segments",
        {"name": "All", "rules": {"field": "visits", "op": "gte", "value": 0}},
        format="json",
    ).json()
    assert segment["audience_size"] == LEADS
    created = client.post(
        "/api/campaigns",
        {
            "name": "Spring",
            "channel": "sms",
            "template": "Hi {{name}}, you visited {{visits}} times.",
            "segment": segment["id"],
            "chunk_size": 25,
        },
        format="json",
    ).json()
    assert created["chunking"] == {
        "total_leads": LEADS,
        "total_chunks": 3,
        "chunk_size": 25,
    }
    campaign_url = f"/api/campaigns/{created['id']}"

    # when: launched
    launched = client.post(f"{campaign_url}/launch")
    assert launched.status_code == 202
    wait_for(
        lambda: client.get(campaign_url).json()["status"] == "completed",
        timeout=120,
        tick=beat_duties,
    )

    # then: every lead got one message, and the counters add up
    campaign = client.get(campaign_url).json()
    stats = client.get(f"{campaign_url}/stats").json()
    assert stats["progress"] == 1.0
    assert stats["audience"] == LEADS
    assert campaign["stats"]["audience"] == LEADS
    assert (
        stats["delivered"] + stats["failed"] + stats["skipped"] + stats["cancelled"]
        == LEADS
    )
    logs, url = [], f"/api/logs?campaign={created['id']}&page_size=500"
    while url:
        page = client.get(url).json()
        logs += page["results"]
        url = page["next"]
    assert len(logs) == LEADS
    assert len({log["lead"] for log in logs}) == LEADS
    assert {log["status"] for log in logs} <= {"delivered", "failed", "skipped"}

    # and the member's backlog is empty; the workers' counts and heartbeats reach
    # the operator's /api/stats and /health
    assert client.get("/api/stats").json()["queues"] == {"expand": 0, "send": 0}
    operator = APIClient()
    operator.force_authenticate(UserFactory(is_staff=True, is_superuser=True))
    tasks = operator.get("/api/stats").json()["tasks"]
    # one expand message a batch of chunks: all three chunks went in one
    assert tasks["campaigns.expand_chunk"]["processed"] >= 1
    assert tasks["api.import_leads"]["processed"] == 1
    health = client.get("/health").json()
    assert health["checks"]["worker"]["status"] == "ok"
    assert health["checks"]["database"]["status"] == "ok"
