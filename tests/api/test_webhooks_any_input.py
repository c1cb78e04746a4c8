"""Any bytes and headers to each webhook: a 2xx or a 4xx, never a server error.

Half the examples are signed with the server's secret, so the body is read past
the signature check: any JSON, or callbacks of the vendor's shape with awkward
values (too long, NUL, lone surrogates, dates past year 9999).
"""

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from vendors.simulator import SimulatorAdapter
from vendors.simulator_callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from vendors.simulator_store import MemoryStore

pytestmark = pytest.mark.django_db

EXAMPLES = 150
URLS = [
    "/api/webhooks/simulator/receipts",
    "/api/webhooks/simulator/inbound",
    "/api/webhooks/nope/receipts",
]
# WSGI carries header values as latin-1 text.
header_text = st.text(st.characters(max_codepoint=255), max_size=40)
timestamps = st.one_of(
    header_text,
    st.integers(min_value=0, max_value=10**20).map(str),
    st.just("9" * 5000),
    st.sampled_from(["\xb2", "\xb9\xb2", "1\xbd", " 12", "-1", "+1", "1e3"]),
)
awkward_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x" * 300, "STOP", "START"]),
    st.text(min_size=121, max_size=200),
)
moments = st.one_of(
    st.sampled_from(
        [
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00+02:00",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31",
            "not a date",
        ]
    ),
    awkward_text,
    st.integers(),
)
any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), awkward_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=8,
)
receipt = st.fixed_dictionaries(
    {
        "vendor_ref": st.one_of(awkward_text, any_json),
        "status": st.sampled_from(["DELIVERED", "UNDELIVERED", "x", None]),
        "occurred_at": moments,
    },
    optional={
        "error_code": st.one_of(st.none(), awkward_text, any_json),
        "extra": any_json,
    },
)
message = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["sms", "email", "fax"]),
        "from": st.one_of(
            st.sampled_from(["+12025550100", "ann@example.com"]), awkward_text
        ),
        "body": st.one_of(awkward_text, any_json),
        "received_at": moments,
    }
)
callbacks = st.one_of(
    st.builds(lambda items: {"receipts": items}, st.lists(receipt, max_size=3)),
    st.builds(lambda items: {"messages": items}, st.lists(message, max_size=3)),
    any_json,
)
bodies = st.one_of(
    st.binary(max_size=200),
    callbacks.map(lambda payload: json.dumps(payload).encode()),
)


@pytest.fixture
def vendor(settings) -> SimulatorAdapter:
    return SimulatorAdapter(
        store=MemoryStore(), webhook_secret=settings.SIMULATOR_WEBHOOK_SECRET
    )


def environ(headers: dict[str, str]) -> dict[str, str]:
    return {f"HTTP_{name.upper().replace('-', '_')}": v for name, v in headers.items()}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    url=st.sampled_from(URLS),
    body=bodies,
    signed=st.booleans(),
    timestamp=timestamps,
    signature=header_text,
    content_type=st.sampled_from(["application/json", "text/plain", "", "x/y"]),
    extra=st.dictionaries(
        st.sampled_from(["X-Forwarded-For", "X-Other", "Content-Encoding"]),
        header_text,
        max_size=2,
    ),
)
def test_any_body_and_headers_to_a_webhook_get_a_2xx_or_a_4xx(
    vendor, url, body, signed, timestamp, signature, content_type, extra
):
    # given a body signed as the vendor would, or headers of any text
    if signed:
        now = int(time.time())
        headers = {
            TIMESTAMP_HEADER: str(now),
            SIGNATURE_HEADER: vendor.sign(body, now),
        }
    else:
        headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}

    # when
    response = APIClient().generic(
        "POST", url, body, content_type, **environ({**extra, **headers})
    )

    # then
    assert 200 <= response.status_code < 500, response.content
