"""Lead CSV uploads over the API: bounded as they arrive, never left unfinished."""

import logging
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.db import OperationalError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from hypothesis import HealthCheck, given, settings

from api.models import LeadImport, LeadImportChunk
from api.services import lead_imports
from api.services.lead_imports import lead_import_run, lead_import_sweep
from crm.models import Lead
from tests.support.csv_strategies import any_csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The import ids handed to the broker (the tests run the worker's part)."""
    ids: list[int] = []
    monkeypatch.setattr("api.tasks.import_leads.delay", ids.append)
    return ids


def upload(api, content: bytes, django_capture_on_commit_callbacks, name="l.csv"):
    with django_capture_on_commit_callbacks(execute=True):
        return api.post(
            "/api/leads/import",
            {"file": SimpleUploadedFile(name, content, "text/csv")},
            format="multipart",
        )


def imported(api, content: bytes, django_capture_on_commit_callbacks, enqueued):
    """Upload the file, import it as a worker does; the import as the API shows it."""
    response = upload(api, content, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.json()
    lead_import_run(import_id=enqueued[-1])
    return api.get(f"/api/lead-imports/{enqueued[-1]}").json()


def test_an_upload_past_the_limit_is_refused_as_it_arrives(
    api, settings, monkeypatch, django_capture_on_commit_callbacks, enqueued
):
    # given a limit of 100 KiB and a file ten times that
    settings.API_LEAD_IMPORT_MAX_BYTES = 100 * 1024
    kept = []
    receive = MemoryFileUploadHandler.receive_data_chunk
    monkeypatch.setattr(
        MemoryFileUploadHandler,
        "receive_data_chunk",
        lambda self, data, start: kept.append(len(data)) or receive(self, data, start),
    )
    content = b"email\n" + b"a@example.com\n" * (1024 * 1024 // 14)

    # when it is uploaded
    response = upload(api, content, django_capture_on_commit_callbacks)

    # then it is refused with a 413 naming the limit, reading no more than that
    assert response.status_code == 413
    assert "larger than 102400 bytes" in response.json()["file"][0]
    assert sum(kept) <= 100 * 1024
    assert not LeadImport.objects.exists() and enqueued == []


def test_the_issues_cells_are_rejected_by_line_and_the_import_is_done(
    api, org, django_capture_on_commit_callbacks, enqueued
):
    # given a file with a 5,000-digit visits cell and a NUL in a name
    content = (
        b"email,name,visits\n"
        b"ann@example.com,Ann,1\n"
        b"bob@example.com,Bob," + b"9" * 5000 + b"\n"
        b"cy@example.com,C\x00y,2\n"
        b"di@example.com,Di,3\n"
    )

    # when it is uploaded and imported
    report = imported(api, content, django_capture_on_commit_callbacks, enqueued)

    # then the import is done, those two lines rejected, the others imported
    assert report["status"] == "done"
    assert [row["line"] for row in report["rejected"]] == [3, 4]
    # with their cells as uploaded, to fix (a NUL shown as U+FFFD)
    assert report["rejected"][1]["cells"] == ["cy@example.com", "C\ufffdy", "2"]
    assert (report["created"], report["rejected_count"]) == (2, 2)
    assert Lead.objects.filter(organization=org).count() == 2
    assert not LeadImportChunk.objects.exists()


def test_an_import_keeps_1000_rejected_rows_and_counts_them_all(
    api, django_capture_on_commit_callbacks, enqueued
):
    # given a file of 1,500 rows without an identifier
    content = b"email,name\n" + b",Nobody\n" * 1500

    # when it is uploaded and imported
    report = imported(api, content, django_capture_on_commit_callbacks, enqueued)

    # then the first 1,000 are listed and all 1,500 counted
    assert len(report["rejected"]) == 1000
    assert report["rejected_count"] == 1500


def test_an_import_that_crashes_is_failed_with_the_class_not_the_data(
    api, monkeypatch, caplog, django_capture_on_commit_callbacks, enqueued
):
    # given an importer that fails on something unforeseen, quoting a cell
    cell = "+12025550147"

    def crash(**kwargs):
        raise ValueError(f"bad cell {cell}")

    monkeypatch.setattr(lead_imports, "lead_import_csv", crash)

    # when a file is uploaded and imported
    with caplog.at_level(logging.INFO):
        report = imported(
            api, b"phone\n202 555 0147\n", django_capture_on_commit_callbacks, enqueued
        )

    # then the import is failed with the exception's class, never the cell
    assert report["status"] == "failed"
    assert "ValueError" in report["error"]
    assert "2025550147" not in report["error"] + caplog.text
    assert not LeadImportChunk.objects.exists()


def test_a_transient_database_error_queues_the_import_for_the_retry(
    api, org, monkeypatch, django_capture_on_commit_callbacks, enqueued
):
    # given a database connection lost during the first run
    original = lead_imports.lead_import_csv
    monkeypatch.setattr(
        lead_imports,
        "lead_import_csv",
        lambda **kwargs: (_ for _ in ()).throw(OperationalError("server closed")),
    )
    response = upload(api, b"phone\n202 555 0147\n", django_capture_on_commit_callbacks)
    import_id = response.json()["id"]
    with pytest.raises(OperationalError):
        lead_import_run(import_id=import_id)

    # when the task's retry runs it with the database back
    assert LeadImport.objects.get(pk=import_id).status == "queued"
    monkeypatch.setattr(lead_imports, "lead_import_csv", original)
    lead_import_run(import_id=import_id)

    # then it is imported in full
    assert LeadImport.objects.get(pk=import_id).status == "done"
    assert Lead.objects.get(organization=org).phone == "+12025550147"


def test_an_import_the_database_always_fails_is_failed_after_10_attempts(
    api, monkeypatch, django_capture_on_commit_callbacks, enqueued
):
    # given an import whose every run meets a statement timeout
    monkeypatch.setattr(
        lead_imports,
        "lead_import_csv",
        lambda **kwargs: (_ for _ in ()).throw(OperationalError("statement timeout")),
    )
    response = upload(api, b"phone\n202 555 0147\n", django_capture_on_commit_callbacks)
    import_id = response.json()["id"]

    # when the task and its retries run it 11 times
    for _ in range(10):
        with pytest.raises(OperationalError):
            lead_import_run(import_id=import_id)
    lead_import_run(import_id=import_id)

    # then it is failed, saying why, instead of queued again for ever
    failed = LeadImport.objects.get(pk=import_id)
    assert failed.status == "failed" and "after 10 attempts" in failed.error
    assert not LeadImportChunk.objects.exists()


def test_an_import_running_elsewhere_is_not_run_again(
    api, org, django_capture_on_commit_callbacks, enqueued
):
    # given an import that a worker has claimed (its task delivered a second time)
    response = upload(api, b"phone\n202 555 0147\n", django_capture_on_commit_callbacks)
    LeadImport.objects.filter(pk=response.json()["id"]).update(status="running")

    # when the second delivery runs
    lead_import_run(import_id=response.json()["id"])

    # then it leaves the import to the first: nothing is imported twice at once
    assert not Lead.objects.filter(organization=org).exists()
    assert LeadImport.objects.get().status == "running"


def test_a_running_import_beats_its_heart_with_its_progress(
    api, monkeypatch, django_capture_on_commit_callbacks, enqueued
):
    # given heartbeats on every batch, of 2 rows, and a file of 6 rows
    monkeypatch.setattr(lead_imports, "HEARTBEAT_EVERY", timedelta(0))
    original = lead_imports.lead_import_csv
    seen = []

    def in_batches_of_two(*, progress, **kwargs):
        def watched(report):
            progress(report)
            seen.append(LeadImport.objects.values_list("rows_read", flat=True).get())

        return original(progress=watched, batch_size=2, **kwargs)

    monkeypatch.setattr(lead_imports, "lead_import_csv", in_batches_of_two)
    content = b"phone\n" + b"".join(b"202 555 01%02d\n" % i for i in range(6))

    # when it is imported
    report = imported(api, content, django_capture_on_commit_callbacks, enqueued)

    # then its row shows the rows read as it goes
    assert report["status"] == "done"
    assert seen[:3] == [2, 4, 6]


def test_the_sweeper_fails_a_running_import_whose_heartbeat_stopped(org, settings):
    # given an import whose worker died 11 minutes ago, and one alive
    settings.API_LEAD_IMPORT_STALL_SECONDS = 600
    now = timezone.now()
    dead = LeadImport.objects.create(
        organization=org, status="running", heartbeat_at=now - timedelta(minutes=11)
    )
    LeadImportChunk.objects.create(lead_import=dead, index=0, data=b"phone\n")
    alive = LeadImport.objects.create(
        organization=org, status="running", heartbeat_at=now - timedelta(minutes=1)
    )

    # when the sweeper runs
    result = lead_import_sweep(now=now)

    # then the dead one is failed, saying why, and its file dropped; the other runs
    dead.refresh_from_db()
    assert result == (1, 0)
    assert dead.status == "failed" and "stopped making progress" in dead.error
    assert dead.finished_at == now
    assert not LeadImportChunk.objects.exists()
    alive.refresh_from_db()
    assert alive.status == "running"


def test_the_sweeper_enqueues_again_an_import_whose_message_was_lost(
    api, org, settings, django_capture_on_commit_callbacks, enqueued
):
    # given an import queued 11 minutes ago whose broker message was lost
    settings.API_LEAD_IMPORT_STALL_SECONDS = 600
    upload(api, b"phone\n202 555 0147\n", django_capture_on_commit_callbacks)
    enqueued.clear()
    later = timezone.now() + timedelta(minutes=11)

    # when the sweeper runs, twice
    with django_capture_on_commit_callbacks(execute=True):
        result = lead_import_sweep(now=later)
    with django_capture_on_commit_callbacks(execute=True):
        lead_import_sweep(now=later + timedelta(seconds=60))

    # then it is enqueued once more (not on every sweep) and imports when run
    assert result == (0, 1) and len(enqueued) == 1
    lead_import_run(import_id=enqueued[0])
    assert Lead.objects.get(organization=org).phone == "+12025550147"


def test_the_sweeper_is_scheduled_every_minute():
    task = PeriodicTask.objects.select_related("interval").get(
        task="api.sweep_lead_imports"
    )

    assert (task.enabled, task.interval.every, task.interval.period) == (
        True,
        60,
        "seconds",
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=any_csv_bytes)
def test_any_uploaded_bytes_end_done_or_failed_never_a_500(
    api, django_capture_on_commit_callbacks, enqueued, data
):
    # given any bytes as an uploaded file
    # when they are uploaded, and imported if they are accepted
    response = upload(api, data, django_capture_on_commit_callbacks)
    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert response.json()["file"]
        return
    lead_import_run(import_id=enqueued[-1])
    report = api.get(f"/api/lead-imports/{enqueued[-1]}").json()

    # then the import is final: done with every row read imported or rejected by
    # line, or failed with the reason
    assert report["status"] in ("done", "failed")
    accounted = report["created"] + report["updated"] + report["rejected_count"]
    assert accounted == report["rows_read"]
    assert report["status"] == "done" or report["error"]
