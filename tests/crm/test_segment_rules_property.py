"""Compiled segment rules select exactly the leads a plain-Python evaluator selects."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Lead
from crm.rules import compile_rules
from tests.crm.factories import LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

# Small shared pools make rule values hit lead values often; the open-ended
# strategies beside them keep the rest of the space reachable.
TEXT_ALPHABET = "abAB %_"
NAMES = ["", "Ann", "ann b", "BOB", "a%b", "a_b"]
EMAILS = ["", "ann@x.io", "Bob@x.io", "a_b@y.io"]
PHONES = ["", "+12025550100", "+12025550101"]
TIMEZONES = ["", "UTC", "America/New_York"]
TAGS = ["vip", "VIP", "new", "a_b", "%"]
ATTRIBUTE_KEYS = ["plan", "score", "flag"]
SPENDS = [0, 10, 10.5, 99.99, 100, 1000]


def _midnight(days_ago: int) -> datetime:
    # The tests run with TIME_ZONE=UTC unless the environment says otherwise.
    tz = ZoneInfo(django_settings.TIME_ZONE)
    day = NOW.astimezone(tz).date() - timedelta(days=days_ago)
    return datetime.combine(day, time.min, tzinfo=tz)


# Day boundaries and within_last_days cut-offs, with their neighbours either side.
EDGE_INSTANTS = [
    instant + timedelta(microseconds=shift)
    for instant in [_midnight(n) for n in range(3)]
    + [NOW - timedelta(days=n) for n in range(1, 3)]
    for shift in (0, -1)
]

texts = st.text(alphabet=TEXT_ALPHABET, max_size=4)
instants = st.one_of(
    st.sampled_from(EDGE_INSTANTS),
    st.integers(0, 5 * 86_400_000_000).map(lambda us: NOW - timedelta(microseconds=us)),
)
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.5]),
    st.text(alphabet=TEXT_ALPHABET, max_size=3),
    st.lists(st.integers(0, 2), max_size=2),
)

lead_data = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(NAMES), texts),
        "email": st.sampled_from(EMAILS),
        "phone": st.sampled_from(PHONES),
        "timezone": st.sampled_from(TIMEZONES),
        "total_spend": st.one_of(
            st.sampled_from(SPENDS).map(lambda n: Decimal(str(n))),
            st.decimals(min_value=0, max_value=2000, places=2),
        ),
        "visits": st.integers(0, 12),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=3),
        "attributes": st.dictionaries(
            st.sampled_from(ATTRIBUTE_KEYS), json_values, max_size=3
        ),
        "sms_opt_out": st.booleans(),
        "email_opt_out": st.booleans(),
        "created_at": instants,
    }
)


# --- Rule trees -----------------------------------------------------------------


def _leaf(field: str, op: str, values: st.SearchStrategy) -> st.SearchStrategy:
    return values.map(lambda value: {"field": field, "op": op, "value": value})


def _lists(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(values, min_size=1, max_size=3)


def _ordered(values: st.SearchStrategy, key=lambda value: value):
    return st.tuples(values, values).map(lambda pair: sorted(pair, key=key))


def _moment_text(instant: datetime, form: int) -> str:
    local = instant.astimezone(ZoneInfo(django_settings.TIME_ZONE))
    if form == 0:
        return local.date().isoformat()
    if form == 1:
        return instant.isoformat()
    return local.replace(tzinfo=None).isoformat()


COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
attribute_numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.0, 2.5]))
non_empty_texts = st.text(alphabet=TEXT_ALPHABET, min_size=1, max_size=2)


def _scalars(values) -> list:
    return [value for value in values if isinstance(value, str | int | float)]


def rule_trees_for(leads: list[dict]) -> st.SearchStrategy:
    """Random valid rule trees whose operands are often the leads' own values.

    Drawing operands from the leads makes equality and boundary cases (a lead created
    exactly at midnight, a spend equal to the bound) common rather than lucky, and
    drawing (field, op) from one flat list gives every op of every field a fair share.
    """
    attribute_values = [v for lead in leads for v in lead["attributes"].values()]
    # A lead's instant and the one just before it: as bare dates, the latter names the
    # day that ends exactly at a lead created at midnight.
    instants_of_leads = [
        lead["created_at"] - timedelta(microseconds=shift)
        for lead in leads
        for shift in (0, 1)
    ]
    moments = st.builds(
        _moment_text,
        st.sampled_from(instants_of_leads + EDGE_INSTANTS),
        st.integers(0, 2),
    )
    spend_values = st.one_of(
        st.sampled_from(SPENDS + [float(lead["total_spend"]) for lead in leads]),
        st.integers(0, 2000),
        st.floats(0, 2000).map(lambda x: round(x, 3)),
    )
    attribute_scalars = st.one_of(
        st.sampled_from([True, False, 0, 1, 0.5, 1.0, 2.5, "", "a"]),
        st.sampled_from(_scalars(attribute_values) or [0]),
        st.text(alphabet=TEXT_ALPHABET, max_size=3),
    )

    def comparisons(field: str, values: st.SearchStrategy) -> list:
        return [
            *[_leaf(field, op, values) for op in COMPARISONS],
            _leaf(field, "in", _lists(values)),
            _leaf(field, "between", _ordered(values)),
        ]

    def text(field: str, pool: list[str]) -> list:
        values = st.one_of(
            st.sampled_from(pool + [lead[field] for lead in leads]), texts
        )
        return [
            _leaf(field, "eq", values),
            _leaf(field, "ne", values),
            _leaf(field, "in", _lists(values)),
            _leaf(field, "contains", non_empty_texts),
            _leaf(field, "exists", st.booleans()),
        ]

    def attribute(op: str, values: st.SearchStrategy) -> st.SearchStrategy:
        return st.sampled_from(ATTRIBUTE_KEYS).flatmap(
            lambda key: _leaf(f"attributes.{key}", op, values)
        )

    tags = st.sampled_from(TAGS)
    leaves = st.sampled_from(
        [
            *comparisons("total_spend", spend_values),
            *comparisons("visits", st.integers(0, 12)),
            *text("name", NAMES),
            *text("email", EMAILS),
            *text("phone", PHONES),
            *text("timezone", TIMEZONES),
            _leaf("tags", "contains", tags),
            _leaf("tags", "in", _lists(tags)),
            _leaf("tags", "exists", st.booleans()),
            *[_leaf("created_at", op, moments) for op in COMPARISONS],
            _leaf(
                "created_at",
                "between",
                _ordered(moments, key=lambda text: moment(text)[0]),
            ),
            _leaf("created_at", "within_last_days", st.integers(1, 3)),
            *[
                _leaf(field, op, st.booleans())
                for field in ("opted_out", "sms_opt_out", "email_opt_out")
                for op in ("eq", "ne")
            ],
            attribute("eq", attribute_scalars),
            attribute("ne", attribute_scalars),
            attribute("in", _lists(attribute_scalars)),
            *[attribute(op, attribute_numbers) for op in COMPARISONS[2:]],
            attribute("between", _ordered(attribute_numbers)),
            attribute("contains", non_empty_texts),
            attribute("exists", st.booleans()),
        ]
    ).flatmap(lambda leaf: leaf)

    return st.recursive(
        leaves,
        lambda children: st.one_of(
            _lists(children).map(lambda rules: {"and": rules}),
            _lists(children).map(lambda rules: {"or": rules}),
            children.map(lambda rule: {"not": rule}),
        ),
        max_leaves=5,
    ).filter(lambda rule: depth(rule) <= django_settings.CRM_SEGMENT_MAX_DEPTH)


def depth(rule: dict) -> int:
    if "not" in rule:
        return 1 + depth(rule["not"])
    children = rule.get("and") or rule.get("or")
    return 1 + max(map(depth, children)) if children else 1


# --- The reference evaluator ----------------------------------------------------


def moment(text: str) -> tuple[datetime, datetime | None]:
    """(start, end) of a bare date's day, or (instant, None) for a date-time."""
    tz = ZoneInfo(django_settings.TIME_ZONE)
    if len(text) == 10:
        start = datetime.combine(date.fromisoformat(text), time.min, tzinfo=tz)
        return start, start + timedelta(days=1)
    instant = datetime.fromisoformat(text)
    return (instant if instant.tzinfo else instant.replace(tzinfo=tz)), None


def json_kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def compare(actual, op: str, value) -> bool:
    if op == "eq":
        return actual == value
    if op == "ne":
        return actual != value
    if op == "gt":
        return actual > value
    if op == "gte":
        return actual >= value
    if op == "lt":
        return actual < value
    if op == "lte":
        return actual <= value
    if op == "in":
        return actual in value
    if op == "between":
        return value[0] <= actual <= value[1]
    raise AssertionError(op)


def created_at_matches(created: datetime, op: str, value) -> bool:
    if op == "within_last_days":
        return created >= NOW - timedelta(days=value)
    if op == "between":
        low, (high, high_end) = moment(value[0])[0], moment(value[1])
        return low <= created and (created < high_end if high_end else created <= high)
    start, end = moment(value)
    if end is None:
        return compare(created, op, start)
    on_day = start <= created < end
    return {
        "eq": on_day,
        "ne": not on_day,
        "gt": created >= end,
        "gte": created >= start,
        "lt": created < start,
        "lte": created < end,
    }[op]


def attribute_matches(attributes: dict, key: str, op: str, value) -> bool:
    present = key in attributes
    actual = attributes.get(key)
    kind = json_kind(actual) if present else "missing"

    def equals(operand) -> bool:
        return kind == json_kind(operand) and actual == operand

    if op == "exists":
        return present == value
    if op == "eq":
        return equals(value)
    if op == "ne":
        return not equals(value)
    if op == "in":
        return any(equals(item) for item in value)
    if op == "contains":
        return kind == "string" and value.upper() in actual.upper()
    return kind == "number" and compare(actual, op, value)


def as_decimal(value):
    if isinstance(value, list):
        return [as_decimal(item) for item in value]
    return Decimal(str(value))


def evaluate(rule: dict, lead: Lead) -> bool:
    """The meaning of a rule tree for one lead, written from the spec, not the code."""
    if "and" in rule:
        return all(evaluate(child, lead) for child in rule["and"])
    if "or" in rule:
        return any(evaluate(child, lead) for child in rule["or"])
    if "not" in rule:
        return not evaluate(rule["not"], lead)
    field, op, value = rule["field"], rule["op"], rule["value"]
    if field.startswith("attributes."):
        return attribute_matches(lead.attributes, field.split(".", 1)[1], op, value)
    if field == "created_at":
        return created_at_matches(lead.created_at, op, value)
    if field == "tags":
        if op == "exists":
            return bool(lead.tags) == value
        wanted = [value] if op == "contains" else value
        return any(tag in lead.tags for tag in wanted)
    if field == "opted_out":
        actual = lead.sms_opt_out or lead.email_opt_out
    else:
        actual = getattr(lead, field)
    if field == "total_spend":
        value = as_decimal(value)
    if op == "exists":
        return (actual != "") == value
    if op == "contains":
        return value.upper() in actual.upper()
    return compare(actual, op, value)


# --- The property ---------------------------------------------------------------


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(leads=st.lists(lead_data, min_size=3, max_size=8), data=st.data())
def test_compiled_rules_select_what_the_reference_evaluator_selects(leads, data):
    rules = data.draw(st.lists(rule_trees_for(leads), min_size=5, max_size=12))
    # Each example runs in a savepoint rolled back at the end, so rows never pile up.
    with transaction.atomic():
        # given random leads of one organization
        organization = OrganizationFactory()
        built = [
            LeadFactory.build(organization=organization, phones=[], emails=[], **data)
            for data in leads
        ]
        created = Lead.objects.bulk_create(built)
        # bulk_create stamps created_at with now (auto_now_add); put ours back.
        for lead, data in zip(created, leads, strict=True):
            lead.created_at = data["created_at"]
        Lead.objects.bulk_update(created, ["created_at"])
        stored = list(Lead.objects.filter(organization=organization))

        for rule in rules:
            # when
            selected = set(
                Lead.objects.filter(organization=organization)
                .filter(compile_rules(rule, now=NOW))
                .values_list("pk", flat=True)
            )

            # then
            expected = {lead.pk for lead in stored if evaluate(rule, lead)}
            assert selected == expected, rule
        transaction.set_rollback(True)
