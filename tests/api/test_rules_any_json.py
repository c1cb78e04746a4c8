"""Any JSON as segment rules: a valid audience, or a 400 naming the node at fault.

Through the API's preview and segment create, never another error. Rule-shaped
trees (known fields and ops, awkward values) are drawn beside arbitrary JSON, so
the examples reach the compiler and the database rather than stopping at the
first check.
"""

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Segment
from crm.rules import ATTRIBUTE_FIELD, FIELDS
from tests.crm.factories import LeadFactory

pytestmark = pytest.mark.django_db

EXAMPLES = 150
OPS = sorted({op for spec in FIELDS.values() for op in spec.ops} | {"and", "x"})
# Values at the edges of every type a rule takes.
AWKWARD = [
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "2024-05-01",
    "2024-05-01T09:30:00+02:00",
    "\x00",
    "\ud800",
    "a\udfffb",
    "",
    "%",
    "_",
    10**20,
    -(10**20),
    2**63,
    1e308,
    -1e308,
    5e-324,
    0,
    1,
    36_500,
    True,
    None,
]

scalars = st.one_of(
    st.sampled_from(AWKWARD),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8", exclude_categories=[]), max_size=12),
    st.text(st.characters(), max_size=12),
)
any_json = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
field_names = st.one_of(
    st.sampled_from([*FIELDS, "attributes.plan", "attributes.a-b", "attributes."]),
    st.text(max_size=8).map(lambda key: f"attributes.{key}"),
    st.text(max_size=8),
)
values = st.one_of(scalars, st.lists(scalars, min_size=1, max_size=3), any_json)
# A known field with one of its own ops, so the value is what is put to the test.
fitting_leaves = st.sampled_from(
    [(name, op) for name, spec in FIELDS.items() for op in spec.ops]
    + [("attributes.plan", op) for op in ATTRIBUTE_FIELD.ops]
).flatmap(
    lambda field_op: values.map(
        lambda value: {"field": field_op[0], "op": field_op[1], "value": value}
    )
)
leaves = st.fixed_dictionaries(
    {"field": field_names, "op": st.sampled_from(OPS), "value": values}
)
rule_trees = st.recursive(
    st.one_of(fitting_leaves, fitting_leaves, leaves, any_json),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda rules: {"and": rules}),
        st.lists(children, max_size=3).map(lambda rules: {"or": rules}),
        children.map(lambda rule: {"not": rule}),
    ),
    max_leaves=6,
)
names = itertools.count()


def post_json(api, url: str, payload: dict):
    # json.dumps writes lone surrogates as \\udxxx escapes, as a client may.
    return api.generic("POST", url, json.dumps(payload), "application/json")


def assert_rules_refused_with_a_path(response) -> None:
    """A 400 under "rules" (a rule error's message starts with its node's path,
    "rules.and[0].value: ..."), or a body the parser refuses at a path in rules."""
    assert response.status_code == 400, response.content
    body = response.json()
    if "detail" in body:
        assert body["detail"].startswith("JSON parse error - body.rules"), body
        return
    messages = body.get("rules")
    assert messages, body
    assert all(isinstance(message, str) and message for message in messages), body


@pytest.fixture
def leads(org):
    LeadFactory(organization=org, attributes={"plan": "pro", "score": 3})
    LeadFactory(organization=org, tags=["vip"])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rules=rule_trees)
def test_any_json_previewed_as_rules_is_an_audience_or_a_400_with_a_path(
    api, leads, rules
):
    # given any JSON as the rules of a preview

    # when
    response = post_json(api, "/api/segments/preview", {"rules": rules})

    # then
    if response.status_code == 200:
        assert response.json()["count"] >= 0
    else:
        assert_rules_refused_with_a_path(response)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rules=rule_trees)
def test_any_json_saved_as_a_segments_rules_is_kept_or_a_400_with_a_path(
    api, leads, rules
):
    # given any JSON as the rules of a new segment
    name = f"segment {next(names)}"

    # when
    response = post_json(api, "/api/segments", {"name": name, "rules": rules})

    # then
    if response.status_code == 201:
        segment = Segment.objects.get(pk=response.json()["id"])
        assert segment.audience_size >= 0
        preview = api.get(f"/api/segments/{segment.pk}/preview")
        assert preview.status_code == 200
        assert preview.json()["count"] == segment.audience_size
    else:
        assert_rules_refused_with_a_path(response)
        assert not Segment.objects.filter(name=name).exists()
