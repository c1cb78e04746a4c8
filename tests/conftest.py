"""Fixtures shared by the whole suite."""

import pytest
from django.db import connection


def pytest_report_header(config):
    return f"database: {connection.vendor}"


@pytest.fixture
def organization(db):
    from tests.crm.factories import OrganizationFactory

    return OrganizationFactory()
