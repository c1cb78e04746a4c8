"""Thin Celery tasks over the API's services."""

from celery import shared_task

from api.services.lead_imports import lead_import_run, lead_import_sweep
from config.task_options import task_options


@shared_task(name="api.import_leads", **task_options(max_retries=5))
def import_leads(import_id: int) -> str | None:
    upload = lead_import_run(import_id=import_id)
    return None if upload is None else upload.status


@shared_task(name="api.sweep_lead_imports", **task_options(max_retries=3))
def sweep_lead_imports() -> None:
    lead_import_sweep()
