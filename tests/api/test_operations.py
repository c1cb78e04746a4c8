"""/health and /api/stats: what operators and load balancers look at."""

import time

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from api import monitoring
from campaigns.models import CampaignChunk
from messaging.models import Dispatch
from tests.crm.factories import UserFactory
from tests.support.campaigns import launched_campaign
from tests.support.operations import beat_ran

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitor_store(monkeypatch):
    """An empty in-memory store in place of Redis."""
    store = monitoring._MemoryStore()
    monkeypatch.setattr(monitoring, "store", lambda: store)
    return store


def test_health_is_200_when_every_part_is_up(monitor_store):
    PeriodicTask.objects.update(last_run_at=None)
    beat_ran(5)
    monitoring.heartbeat(hostname="w1@test", started_at=time.time() - 30)

    response = APIClient().get("/health")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "healthy"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
        "worker": "ok",
        "beat": "ok",
    }


def test_health_is_503_without_a_worker_heartbeat(monitor_store):
    beat_ran(5)

    response = APIClient().get("/health")

    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["worker"]["status"] == "error"


def test_health_is_503_when_beat_stopped(monitor_store, settings):
    PeriodicTask.objects.update(last_run_at=None)
    beat_ran(settings.HEALTH_BEAT_MAX_AGE_SECONDS + 60)
    monitoring.heartbeat(hostname="w1@test", started_at=time.time())

    response = APIClient().get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["beat"]["status"] == "error"


@pytest.fixture
def broker_down(monkeypatch):
    def down():
        raise ConnectionError("connection refused by redis://:s3cret@10.1.2.3:6379/0")

    monkeypatch.setattr(monitoring, "_broker", down)


def test_health_is_503_when_the_broker_is_down(monitor_store, broker_down):
    # given a staff member signed in
    client = APIClient()
    client.force_login(UserFactory(is_staff=True))

    # when
    response = client.get("/health")

    # then the reason is shown
    assert response.status_code == 503
    assert "refused" in response.json()["checks"]["broker"]["detail"]


@pytest.fixture
def operator_api(db) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_anonymous_health_shows_each_status_and_no_error_text(
    monitor_store, broker_down
):
    # given a worker alive under its host name, and the broker down
    monitoring.heartbeat(hostname="w1@db-host-7", started_at=time.time())

    # when anyone asks
    response = APIClient().get("/health")

    # then only the statuses are shown: no exception text, hosts or addresses
    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "checks": {
            "database": {"status": "ok"},
            "broker": {"status": "error"},
            "worker": {"status": "ok"},
            "beat": {"status": "error"},
        },
    }
    assert b"s3cret" not in response.content
    assert b"db-host-7" not in response.content


def test_a_member_who_is_not_staff_sees_no_error_text(monitor_store, broker_down, api):
    # given / when
    response = api.get("/health")

    # then
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"status": "error"}


def test_stats_count_tasks_by_type_and_outcome(operator_api, monitor_store):
    monitoring.count_task(task_name="messaging.send_batch", succeeded=True)
    monitoring.count_task(task_name="messaging.send_batch", succeeded=True)
    monitoring.count_task(task_name="messaging.send_batch", succeeded=False)

    body = operator_api.get("/api/stats").json()

    assert body["tasks"]["messaging.send_batch"] == {"processed": 2, "failed": 1}
    assert set(body["queues"]) >= {"send", "expand", "receipts", "default"}
    assert body["uptime_seconds"] >= 0


def backlog(organization, *, chunks: int, pending: int) -> None:
    """A running campaign with `chunks` chunks waiting and `pending` messages."""
    campaign = launched_campaign(organization)
    Dispatch.objects.filter(pk=campaign.dispatch_id).update(pending=pending)
    CampaignChunk.objects.bulk_create(
        CampaignChunk(
            campaign=campaign,
            index=index,
            job_id=f"{campaign.pk}-{index}",
            lead_ids=[],
            created_at=timezone.now(),
        )
        for index in range(chunks)
    )


def test_a_member_sees_their_organizations_backlog_and_an_operator_every_queue(
    api, member, other_org, operator_api, monitor_store, monkeypatch
):
    # Given work waiting in two organizations, and every tenant's tasks counted
    member.user.is_staff = True
    member.user.save()
    backlog(member.organization, chunks=2, pending=3)
    backlog(other_org, chunks=5, pending=7)
    monitoring.count_task(task_name="messaging.send_batch", succeeded=True)
    monkeypatch.setattr(monitoring, "queue_depths", lambda: {"send": 40})

    # When a staff member and an operator ask for the stats
    mine = api.get("/api/stats").json()
    everyone = operator_api.get("/api/stats").json()

    # Then the member sees only their organization's work, the operator the queues
    assert mine == {
        "scope": "organization",
        "queues": {"expand": 2, "send": 3},
        "dead_chunks": 0,
    }
    assert everyone["scope"] == "global"
    assert everyone["queues"] == {"send": 40}
    assert everyone["tasks"]["messaging.send_batch"]["processed"] == 1


def test_staff_of_no_organization_get_no_stats(monitor_store):
    # Given a staff user who is neither a member nor a superuser
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))

    # When they ask for the stats
    response = client.get("/api/stats")

    # Then they are refused
    assert response.status_code == 403


def test_the_worker_signals_count_into_the_store(monitor_store):
    class Task:
        name = "campaigns.expand_chunk"

    monitoring._on_success(sender=Task())
    monitoring._on_failure(sender=Task())

    assert monitoring.task_counts() == {
        "campaigns.expand_chunk": {"processed": 1, "failed": 1}
    }


def test_stats_are_for_staff_only(api):
    assert APIClient().get("/api/stats").status_code in (401, 403)
    assert api.get("/api/stats").status_code == 403


def test_the_schema_and_docs_are_served_without_a_cdn(api):
    schema = api.get("/api/schema/")
    docs = api.get("/api/docs/")

    assert schema.status_code == 200
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page
