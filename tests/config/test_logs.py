"""Log lines: JSON with the request's id, and no personal data in any of them."""

import io
import json
import logging
import re

import pytest
import structlog

from config.logs import logging_config

PHONE_FORMS = ["+12025550143", "(202) 555-0143", "202-555-0143", "202.555.0143"]


@pytest.fixture
def json_lines():
    """A logger writing through the project's JSON formatter; its lines, parsed."""
    formatter = logging_config(json=True, level="INFO")["formatters"]["structured"]
    factory = formatter.pop("()")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(factory(**formatter))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.propagate = True


def test_phone_numbers_and_emails_are_masked_wherever_they_appear(json_lines):
    # Given personal data in a structlog field, a nested value, a standard-library
    # message's arguments and an exception's text
    log = structlog.get_logger("tests.logs")
    stdlib = logging.getLogger("tests.logs")

    # When each is logged
    log.info("lookup", note=f"{PHONE_FORMS[0]} or ann.lee@example.com")
    log.info("nested", found={"contacts": PHONE_FORMS[1:] + ["bo@example.org"]})
    stdlib.warning("Not Found: /api/leads/%s", PHONE_FORMS[0])
    stdlib.info('"GET /api/leads?search=%s HTTP/1.1" 200', "%2B12025550143")
    try:
        raise ValueError("duplicate key (email)=(ann.lee@example.com)")
    except ValueError:
        stdlib.exception("import failed")

    # Then every line is JSON, and none holds a number or an address, only masks
    lines = json_lines()
    text = json.dumps(lines)
    assert len(lines) == 5
    for personal in [*PHONE_FORMS, "2025550143", "ann.lee@", "bo@example", "%2B"]:
        assert personal not in text
    assert lines[0]["note"] == "+1202***0143 or a***@example.com"
    assert lines[1]["found"]["contacts"][0] == "202***0143"
    assert lines[2]["event"] == "Not Found: /api/leads/+1202***0143"
    assert lines[3]["event"] == '"GET /api/leads?search=+1202***0143 HTTP/1.1" 200'
    assert "a***@example.com" in lines[4]["exception"]


def test_message_text_fields_are_never_written(json_lines):
    # Given a message's text, subject and recipient among a line's fields
    log = structlog.get_logger("tests.logs")

    # When it is logged
    log.info("queued", body="Hi Ann, pay here", subject="Overdue", recipient="x", n=2)

    # Then their values are gone, the count is kept
    [line] = json_lines()
    assert (line["body"], line["subject"], line["recipient"]) == ("[redacted]",) * 3
    assert line["n"] == 2
    assert "pay here" not in json.dumps(line)


def test_dates_ids_and_durations_are_not_taken_for_phone_numbers(json_lines):
    # Given text with a date and time, a UUID, a send id and a long epoch number
    log = structlog.get_logger("tests.logs")
    text = (
        "2026-03-01 12:00:00 3a8f801c-072b-4805-8f38-e1337f363ed4 "
        "send-12-345-1772366400123-a1b2c3 took 1772366400123 ms, 200 12345"
    )

    # When it is logged
    log.info("noise", text=text)

    # Then it is written as it was
    [line] = json_lines()
    assert line["text"] == text


@pytest.mark.django_db
def test_a_request_gets_an_id_echoed_in_its_response_and_on_its_log_line(
    client, caplog
):
    # Given one request with a caller's id, one without, one with a forged line
    caplog.set_level(logging.INFO, logger="crm.request")

    # When each is answered
    given = client.get("/api/leads", HTTP_X_REQUEST_ID="lb-7f3a.42")
    made = client.get("/api/leads")
    forged = client.get("/api/leads", HTTP_X_REQUEST_ID='x" injected {"a":1}')

    # Then the caller's id comes back, the others get a new one, and the request's
    # log line carries it
    assert given["X-Request-ID"] == "lb-7f3a.42"
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", forged["X-Request-ID"])
    logged = [
        record.msg
        for record in caplog.records
        if record.name == "crm.request" and isinstance(record.msg, dict)
    ]
    assert [line["request_id"] for line in logged] == [
        "lb-7f3a.42",
        made["X-Request-ID"],
        forged["X-Request-ID"],
    ]
    assert {line["status"] for line in logged} == {403}
