"""Fixtures shared by the whole suite."""

import pytest
from django.conf import settings
from django.db import connection


def pytest_report_header(config):
    broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
    return [f"database: {connection.vendor}", f"broker: {broker}"]


@pytest.fixture
def organization(db):
    from tests.crm.factories import OrganizationFactory

    return OrganizationFactory()
