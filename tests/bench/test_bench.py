"""The benchmark runs end to end at a small size and prints well-formed figures."""

import json
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from bench.crm_figures import IMPORT_ORGANIZATION_SLUG, PREVIEW_RULES
from crm.models import Lead

pytestmark = pytest.mark.integration

REQUIRED_KEYS = {
    "leads": int,
    "seconds": float,
    "leads_per_s": int,
    "floor_seconds": float,
    "ratio_to_floor": float,
    "max_worker_rss_mb": float,
    "tasks": int,
    "sql_per_1000_leads": float,
    "stages": dict,
    "worker_peak_rss_mb": list,
}


@pytest.fixture
def clean_broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield
    client.flushdb()


def test_bench_prints_a_consistent_json_line(transactional_db, clean_broker):
    # given / when: the benchmark at a small size with one worker
    out = StringIO()
    call_command(
        "bench", leads=300, workers=1, timeout=180, import_rows=200, stdout=out
    )

    # then: its last line is the JSON figures, and they agree with each other
    lines = out.getvalue().strip().splitlines()
    figures = json.loads(lines[-1])
    for key, kind in REQUIRED_KEYS.items():
        assert isinstance(figures[key], kind), key
    assert figures["leads"] == 300
    assert figures["audience"] == 300
    assert figures["reconciled"] is True
    assert figures["delivered"] + figures["failed"] + figures["skipped"] == 300
    assert figures["leads_per_s"] == round(300 / figures["seconds"])
    assert figures["ratio_to_floor"] == pytest.approx(
        figures["seconds"] / figures["floor_seconds"], rel=0.02
    )
    assert figures["tasks"] >= 1 + 2  # the chunking, an expansion, a send at least
    assert figures["tasks"] == sum(figures["tasks_by_name"].values())
    assert figures["task_cpu_seconds_by_name"].keys() == figures["tasks_by_name"].keys()
    assert figures["sql_per_1000_leads"] > 0
    assert len(figures["worker_peak_rss_mb"]) == 1
    assert 0 < figures["max_worker_rss_mb"] == max(figures["worker_peak_rss_mb"])
    stages = figures["stages"]
    assert stages["launched"] <= stages["final"] <= stages["reconciled"]
    assert stages["reconciled"] == figures["seconds"]
    assert any("ratio to floor" in line for line in lines)
    # the previews over the same leads, and the import of new leads then updates
    assert set(figures["preview_seconds"]) == set(PREVIEW_RULES)
    assert figures["max_preview_seconds"] == max(figures["preview_seconds"].values())
    assert all(seconds > 0 for seconds in figures["preview_seconds"].values())
    imported = figures["import"]
    assert imported["rows"] == 200
    assert imported["new_rows_per_s"] == pytest.approx(
        200 / imported["new_seconds"], rel=0.05
    )
    assert imported["update_rows_per_s"] > 0
    assert not Lead.objects.filter(organization__slug=IMPORT_ORGANIZATION_SLUG).exists()


def test_bench_refuses_without_redis(settings):
    # given: the in-memory broker
    settings.CELERY_BROKER_URL = "memory://"

    # when / then
    with pytest.raises(CommandError, match="Redis"):
        call_command("bench", leads=10, workers=1, stdout=StringIO())


def test_bench_with_sending_rules_counts_the_deferred_and_capped(
    transactional_db, clean_broker
):
    # given / when: the benchmark with quiet hours and a cap of 2 switched on
    out = StringIO()
    call_command(
        "bench",
        leads=300,
        workers=1,
        timeout=180,
        import_rows=0,
        quiet_hours=True,
        frequency_cap=2,
        stdout=out,
    )

    # then: a share is deferred (left pending, not waited for), a share capped,
    # and the rest final and reconciled
    figures = json.loads(out.getvalue().strip().splitlines()[-1])
    assert figures["quiet_hours"] is True and figures["frequency_cap"] == 2
    assert 0 < figures["deferred"] < 300
    assert 0 < figures["capped"] <= 30
    assert figures["reconciled"] is True
    final = figures["delivered"] + figures["failed"] + figures["skipped"]
    assert final + figures["deferred"] == 300
    assert figures["rules_setup"]["history_messages"] == 2 * 30
