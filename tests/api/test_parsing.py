"""Request bodies that are JSON but not text, or nest without end: a 400, not a 500."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_lone_surrogate_in_a_body_is_a_400_naming_where(api):
    # given JSON whose escape spells half a UTF-16 pair, which is not text
    body = '{"name": "Ann", "tags": ["vip", "\\ud800"]}'

    # when
    response = api.generic("POST", "/api/leads", body, "application/json")

    # then
    assert response.status_code == 400
    assert "body.tags[1] holds a lone surrogate" in response.json()["detail"]


def test_a_body_nested_thousands_deep_is_a_400(api):
    # given / when
    body = "[" * 5000 + "]" * 5000
    response = api.generic("POST", "/api/segments/preview", body, "application/json")

    # then
    assert response.status_code == 400
    assert "nests deeper than" in response.json()["detail"]
