"""A campaign run by real worker processes and answered by a real web process, with
LOG_FORMAT=json: what they log, and what /metrics then says."""

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from campaigns.services.lifecycle import campaign_launch
from crm.models import Membership
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import (
    LeadFactory,
    MembershipFactory,
    OrganizationFactory,
    SegmentFactory,
)
from tests.support.operations import samples
from tests.support.workers import OUTPUT_DIR, beat_duties, wait_for

pytestmark = pytest.mark.integration

METRICS_TOKEN = "integration-scrape-token"
LAUNCH_REQUEST_ID = "it-launch-0001"
# Lines that belong to one campaign's pipeline, and the id each must carry.
CAMPAIGN_TASKS = {"campaigns.chunk", "campaigns.expand_chunk"}
DISPATCH_TASKS = {"messaging.send_batch", "messaging.finish_dispatch"}


def database_url() -> str:
    database = connection.settings_dict
    return (
        f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(url: str, *, method: str = "GET", headers=None, body: bytes | None = None):
    """(status, headers, body) of a request to the web process."""
    request = urllib.request.Request(
        url, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def answers(url: str) -> bool:
    try:
        http(url)
    except OSError:
        return False
    return True


@contextmanager
def web_process(log: Path, **env: str):
    """`runserver` on this test's database; what it logs (stderr) goes to `log`."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **env,
    }
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: answers(f"{base}/api/schema/"), timeout=60)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def worker_log_from_here() -> tuple[Path, int]:
    """The workers' log file and its size now: this test's lines come after."""
    path = OUTPUT_DIR / "integration-workers.log"
    return path, path.stat().st_size if path.exists() else 0


def personal_forms(lead) -> list[str]:
    """A lead's phone number as stored and as people type it, and its email."""
    national = lead.phone.removeprefix("+1")
    area, exchange, line = national[:3], national[3:6], national[6:]
    return [
        lead.phone,
        national,
        f"({area}) {exchange}-{line}",
        f"{area}-{exchange}-{line}",
        lead.email,
    ]


def campaign_of(leads: int):
    organization = OrganizationFactory()
    people = LeadFactory.create_batch(leads, organization=organization)
    segment = SegmentFactory(
        organization=organization, rules={"field": "visits", "op": "gte", "value": 0}
    )
    return CampaignFactory(organization=organization, segment=segment), people


def completed(campaign) -> bool:
    return Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED


def test_a_campaign_logs_json_lines_with_their_ids_and_no_personal_data(
    start_workers, tmp_path
):
    # Given a member's API token, 40 leads and a campaign to them, workers and a web
    # process logging JSON
    campaign, leads = campaign_of(40)
    member = MembershipFactory(
        organization=campaign.organization, role=Membership.Role.MARKETER
    )
    token = Token.objects.create(user=member.user).key
    worker_log, offset = worker_log_from_here()
    json_env = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    start_workers(2, MESSAGING_RETRY_BASE_SECONDS="0.3", **json_env)
    web_log = tmp_path / "web.log"

    with web_process(web_log, **json_env) as web:
        # When the campaign is launched through the API, a lead is looked up by
        # phone number, and a forged receipt callback arrives
        auth = {"Authorization": f"Token {token}"}
        status, headers, _ = http(
            f"{web}/api/campaigns/{campaign.pk}/launch",
            method="POST",
            headers={**auth, "X-Request-ID": LAUNCH_REQUEST_ID},
        )
        assert (status, headers["X-Request-ID"]) == (202, LAUNCH_REQUEST_ID)
        lookup = urllib.request.quote(leads[0].phone)
        assert http(f"{web}/api/leads?search={lookup}", headers=auth)[0] == 200
        forged = http(
            f"{web}/api/webhooks/simulator/receipts",
            method="POST",
            headers={"X-Simulator-Signature": "forged"},
            body=json.dumps([{"to": leads[1].phone}]).encode(),
        )
        assert forged[0] == 403
        wait_for(lambda: completed(campaign), timeout=180, tick=beat_duties)
    campaign.refresh_from_db()

    # Then every line either process wrote is one JSON object
    with open(worker_log, "rb") as log:
        log.seek(offset)
        worker_text = log.read().decode()
    web_text = web_log.read_text()
    worker_lines = [json.loads(line) for line in worker_text.splitlines()]
    web_lines = [json.loads(line) for line in web_text.splitlines()]
    # ... with the request id on every request's line
    requests = [line for line in web_lines if line["event"] == "request"]
    assert {line["path"] for line in requests} >= {
        f"/api/campaigns/{campaign.pk}/launch",
        "/api/leads",
        "/api/webhooks/simulator/receipts",
    }
    assert all(line.get("request_id") for line in requests)
    [rejected] = [line for line in web_lines if line["event"] == "webhook_rejected"]
    assert rejected["reason"] == "bad_signature"
    # ... task id and name on every line a task logged, counts and duration at its end
    task_lines = [line for line in worker_lines if "task_name" in line]
    assert all(line.get("task_id") for line in task_lines)
    ran = {line["task_name"] for line in task_lines}
    assert ran >= CAMPAIGN_TASKS | {"campaigns.mark_completed"}
    finished = [line for line in task_lines if line["event"] == "task_finished"]
    assert all("duration_ms" in line for line in finished)
    assert any(line.get("counts", {}).get("sent") for line in finished)
    # ... the campaign's id on its chunking and expansion, the dispatch's on sends
    for line in task_lines:
        if line["task_name"] in CAMPAIGN_TASKS:
            assert line["campaign_id"] == campaign.pk
        if line["task_name"] in DISPATCH_TASKS:
            assert "dispatch_id" in line
    vendor_calls = [line for line in worker_lines if line["event"] == "vendor_call"]
    assert vendor_calls
    assert all(line["dispatch_id"] == campaign.dispatch_id for line in vendor_calls)
    assert sum(line["ok"] for line in vendor_calls) >= 1
    # ... the launch request's id followed its tasks onto the workers
    chunking = [line for line in task_lines if line["task_name"] == "campaigns.chunk"]
    assert chunking[0]["request_id"] == LAUNCH_REQUEST_ID
    # ... and no lead's phone number or email address anywhere, in any format
    everything = worker_text + web_text
    for lead in leads:
        for form in personal_forms(lead):
            assert form not in everything
    # (the number looked up reached the log, masked)
    [search] = [line for line in requests if line["path"] == "/api/leads"]
    assert search["query"] == f"search={leads[0].phone[:5]}***{leads[0].phone[-4:]}"


def test_metrics_after_a_campaign_count_its_messages_and_observe_the_workers(
    start_workers, tmp_path, client, settings, monkeypatch
):
    # Given workers writing their metrics to a shared directory
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    campaign, _ = campaign_of(60)
    start_workers(
        2,
        MESSAGING_RETRY_BASE_SECONDS="0.3",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )

    # When a campaign runs to completion and Prometheus scrapes, reading the same
    # directory
    campaign_launch(campaign_id=campaign.pk)
    wait_for(lambda: completed(campaign), timeout=180, tick=beat_duties)
    settings.METRICS_TOKEN = METRICS_TOKEN
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    anonymous = client.get("/metrics")
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")

    # Then without the token nothing is shown; with it, the messages by status
    # equal the campaign's counters, and the workers' observations are there
    assert anonymous.status_code == 401
    assert response.status_code == 200
    values = samples(response.content.decode())
    campaign.refresh_from_db()
    stats = campaign_stats(campaign=campaign)
    for status in ("sent", "delivered", "failed", "skipped", "pending", "cancelled"):
        labels = frozenset({"status": status, "channel": campaign.channel}.items())
        assert values[("crm_messages", labels)] == stats[status], status
    assert stats["sent"] > 0

    def observed(name: str, **labels: str) -> float:
        return values.get((name, frozenset(labels.items())), 0)

    assert observed(
        "crm_vendor_request_seconds_count", vendor="simulator", outcome="ok"
    )
    assert observed(
        "crm_task_runtime_seconds_count", task="campaigns.expand_chunk", state="SUCCESS"
    )
    assert observed("crm_campaigns", status="completed") == 1
