"""Thin Celery tasks over the API's services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from api.services.lead_imports import lead_import_run, lead_import_sweep


@shared_task(
    name="api.import_leads",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_jitter=True,
    max_retries=5,
    ignore_result=True,
)
def import_leads(import_id: int) -> str | None:
    upload = lead_import_run(import_id=import_id)
    return None if upload is None else upload.status


@shared_task(
    name="api.sweep_lead_imports",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_jitter=True,
    max_retries=3,
    ignore_result=True,
)
def sweep_lead_imports() -> None:
    lead_import_sweep()
