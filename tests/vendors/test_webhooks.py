"""The simulator's signed callbacks: signature checks and receipt parsing."""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from vendors.base import InvalidPayload, Receipt
from vendors.simulator import SimulatorAdapter
from vendors.simulator_callbacks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_TOLERANCE_SECONDS,
)
from vendors.simulator_store import MemoryStore

NOW = 1_700_000_000


@pytest.fixture
def simulator() -> SimulatorAdapter:
    return SimulatorAdapter(
        store=MemoryStore(), webhook_secret="test-secret", clock=lambda: NOW
    )


def receipts() -> list[Receipt]:
    return [
        Receipt(
            vendor_ref="SIM1",
            status="DELIVERED",
            error_code=None,
            occurred_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        ),
        Receipt(
            vendor_ref="SIM2",
            status="UNDELIVERED",
            error_code="carrier_rejected",
            occurred_at=datetime(2024, 5, 1, 12, 1, tzinfo=UTC),
        ),
    ]


def test_signature_is_hmac_sha256_of_timestamp_dot_body(simulator):
    # given
    body = b'{"receipts": []}'

    # when
    signature = simulator.sign(body, NOW)

    # then
    expected = hmac.new(b"test-secret", f"{NOW}.".encode() + body, hashlib.sha256)
    assert signature == expected.hexdigest()


def test_a_signed_callback_verifies(simulator):
    # given
    body, headers = simulator.webhook_callback(receipts())

    # when / then
    assert simulator.verify_signature(body=body, headers=headers)


def test_header_names_are_matched_whatever_their_case(simulator):
    # given
    body, headers = simulator.webhook_callback(receipts())
    lowered = {name.lower(): value for name, value in headers.items()}

    # when / then
    assert simulator.verify_signature(body=body, headers=lowered)


def test_a_tampered_body_is_refused(simulator):
    # given
    body, headers = simulator.webhook_callback(receipts())

    # when / then
    assert not simulator.verify_signature(
        body=body.replace(b"DELIVERED", b"UNDELIVERED"), headers=headers
    )


def test_a_signature_under_another_secret_is_refused(simulator):
    # given
    forger = SimulatorAdapter(store=MemoryStore(), webhook_secret="guess")
    body, headers = forger.webhook_callback(receipts(), timestamp=NOW)

    # when / then
    assert not simulator.verify_signature(body=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TIMESTAMP_HEADER: str(NOW)},
        {TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "00"},
        {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: ""},
    ],
)
def test_missing_or_malformed_headers_are_refused(simulator, headers):
    assert not simulator.verify_signature(body=b"{}", headers=headers)


@pytest.mark.parametrize(
    "age", [WEBHOOK_TOLERANCE_SECONDS + 1, -(WEBHOOK_TOLERANCE_SECONDS + 1)]
)
def test_a_callback_outside_the_tolerance_window_is_refused(simulator, age):
    # given: well signed, but from too long ago (a replay) or the future
    body, headers = simulator.webhook_callback(receipts(), timestamp=NOW - age)

    # when / then
    assert not simulator.verify_signature(body=body, headers=headers)
    assert simulator.verify_signature(body=body, headers=headers, now=NOW - age)


def test_a_callback_just_inside_the_window_verifies(simulator):
    # given
    then = NOW - WEBHOOK_TOLERANCE_SECONDS
    body, headers = simulator.webhook_callback(receipts(), timestamp=then)

    # when / then
    assert simulator.verify_signature(body=body, headers=headers, now=NOW)


def test_a_callback_body_parses_into_its_receipts(simulator):
    # given
    body, headers = simulator.webhook_callback(receipts())

    # when
    parsed = simulator.parse_receipts(body=body, headers=headers)

    # then
    assert [(r.vendor_ref, r.status, r.error_code, r.occurred_at) for r in parsed] == [
        (r.vendor_ref, r.status, r.error_code, r.occurred_at) for r in receipts()
    ]
    assert parsed[1].raw["error_code"] == "carrier_rejected"


def test_a_naive_timestamp_is_read_as_utc(simulator):
    # given
    body = json.dumps(
        {
            "receipts": [
                {
                    "vendor_ref": "SIM1",
                    "status": "DELIVERED",
                    "error_code": None,
                    "occurred_at": "2024-05-01T12:00:00",
                }
            ]
        }
    ).encode()

    # when
    [receipt] = simulator.parse_receipts(body=body, headers={})

    # then
    assert receipt.occurred_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"receipts": {}}',
        b'{"receipts": ["SIM1"]}',
        b'{"receipts": [{"status": "DELIVERED", "occurred_at": "2024-05-01"}]}',
        b'{"receipts": [{"vendor_ref": "SIM1", "status": "LOST",'
        b' "occurred_at": "2024-05-01"}]}',
        b'{"receipts": [{"vendor_ref": "SIM1", "status": "DELIVERED",'
        b' "occurred_at": "soon"}]}',
        b'{"receipts": [{"vendor_ref": "SIM1", "status": "DELIVERED",'
        b' "error_code": 7, "occurred_at": "2024-05-01"}]}',
    ],
)
def test_a_malformed_callback_body_is_invalid(simulator, body):
    with pytest.raises(InvalidPayload):
        simulator.parse_receipts(body=body, headers={})
