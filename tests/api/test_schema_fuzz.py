"""Schemathesis over every operation of the OpenAPI schema, signed in as a member.

Any 5xx, or a documented response that does not match its schema, fails. Runs
in-process against the WSGI app. The default suite takes a few examples per
operation so it stays within a few minutes; `make fuzz` sets SCHEMA_FUZZ_EXAMPLES
to take many more.
"""

import os
import time

import pytest
import redis
import schemathesis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api import monitoring
from config.wsgi import application
from crm.models import Membership
from tests.campaigns.factories import CampaignFactory
from tests.crm.factories import LeadFactory, MembershipFactory, SegmentFactory
from tests.support.operations import beat_ran

# 15 examples of each of ~60 operations: about 2.5 minutes, of which ~50 s is the
# database flush after each operation (the app must commit, as in production).
MAX_EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def token(transactional_db, settings_override):
    """A marketer (and operator, for /api/stats) with some data of their own;
    committed, as the app reads it."""
    member = MembershipFactory(role=Membership.Role.MARKETER, user__is_staff=True)
    LeadFactory.create_batch(3, organization=member.organization)
    SegmentFactory(organization=member.organization)
    CampaignFactory(organization=member.organization)
    return Token.objects.create(user=member.user).key


@pytest.fixture
def settings_override(settings, monkeypatch):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(
            ("user", "anon", "webhook", "token_username", "token_address"),
            "1000000/min",
        ),
    }
    # /health is part of the schema: with a worker and beat alive it answers 200.
    store = monitoring._MemoryStore()
    monkeypatch.setattr(monitoring, "store", lambda: store)
    monitoring.heartbeat(hostname="fuzz@test", started_at=time.time())
    beat_ran(1)
    yield
    # Whatever the fuzzed calls enqueued (launches, imports) goes with the test.
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_errors_or_breaks_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
