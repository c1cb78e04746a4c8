"""Segment rules: validation names the node at fault; every op filters real rows."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from crm.models import Lead
from crm.rules import FIELDS, RuleError, compile_rules, rule_catalog, validate_rules
from tests.crm.factories import LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def leaf(field, op, value):
    return {"field": field, "op": op, "value": value}


def error_of(rules) -> str:
    with pytest.raises(RuleError) as caught:
        validate_rules(rules)
    return str(caught.value)


# --- Validation -----------------------------------------------------------------


def test_wrong_value_type_names_the_leaf_by_path():
    # given a number field compared with a string inside an "and"
    rules = {
        "and": [
            leaf("visits", "gt", 1),
            leaf("tags", "contains", "vip"),
            leaf("total_spend", "gt", "abc"),
        ]
    }

    # when / then
    assert error_of(rules) == (
        'rules.and[2].value: total_spend takes a number, got "abc"'
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "rules: a rule must be an object, got []"),
        ({"and": []}, 'rules.and: "and" takes a non-empty list of rules, got []'),
        ({"or": {}}, 'rules.or: "or" takes a non-empty list of rules, got {}'),
        ({"not": "x"}, 'rules.not: a rule must be an object, got "x"'),
        (
            {"and": [leaf("visits", "gt", 1)], "or": []},
            'rules: a "and" rule has no other keys, got "or"',
        ),
        (
            {"field": "visits", "op": "gt", "value": 1, "extra": 2},
            'rules: unexpected key "extra"',
        ),
        ({"field": "visits", "op": "gt"}, 'rules: missing "value"'),
        (
            {"not": leaf("shoe_size", "eq", 9)},
            'rules.not.field: unknown field "shoe_size"',
        ),
        (
            {"or": [leaf("visits", "eq", 1), leaf("visits", "contains", "1")]},
            'rules.or[1].op: visits does not support "contains"; it supports eq, ne, '
            "gt, gte, lt, lte, in, between",
        ),
        (leaf("visits", "gt", 1.5), "rules.value: visits takes a whole number"),
        (leaf("visits", "gt", True), "rules.value: visits takes a whole number"),
        (leaf("total_spend", "in", []), "rules.value: total_spend in takes a non-"),
        (
            leaf("total_spend", "in", [1, "2"]),
            'rules.value[1]: total_spend takes a number, got "2"',
        ),
        (
            leaf("total_spend", "between", [10, 1]),
            "rules.value: total_spend between takes [low, high], two numbers with "
            "low <= high, got [10, 1]",
        ),
        (leaf("total_spend", "between", [1]), "rules.value: total_spend between"),
        (leaf("name", "contains", ""), "name takes a non-empty string, got"),
        (leaf("name", "eq", "x" * 1001), "(longer than 1000 characters)"),
        (leaf("created_at", "gt", "yesterday"), "created_at takes an ISO date"),
        (leaf("created_at", "gt", "2024-02-30"), "created_at takes an ISO date"),
        (leaf("created_at", "eq", "9999-12-31"), "(out of range: dates run from"),
        (
            leaf("created_at", "lt", "9999-12-31T23:59:59-05:00"),
            "rules.value: created_at takes an ISO date",
        ),
        (
            leaf("created_at", "between", ["0001-01-01T00:00:00+05:00", "2024-01-01"]),
            "rules.value[0]: created_at takes an ISO date",
        ),
        (
            leaf("created_at", "within_last_days", 0),
            "rules.value: created_at takes a whole number of days from 1 to 36500, "
            "got 0 (not between 1 and 36500)",
        ),
        (leaf("name", "eq", "a\x00b"), "(holds a NUL character)"),
        (leaf("attributes.plan", "in", ["\ud800"]), "(holds a lone surrogate"),
        (leaf("opted_out", "eq", "yes"), "opted_out takes true or false"),
        (leaf("tags", "exists", 1), "tags takes true or false, got 1"),
        (leaf("attributes.a__b", "eq", 1), 'rules.field: attribute key "a__b"'),
        (leaf("attributes.0", "eq", 1), 'rules.field: attribute key "0"'),
        (leaf("attributes.plan", "gt", "b"), 'attributes.plan takes a number, got "b"'),
        (leaf("attributes.plan", "eq", None), "takes a string, number or boolean"),
        (leaf("attributes.plan", "eq", [1]), "takes a string, number or boolean"),
    ],
)
def test_invalid_rules_are_rejected_with_the_path_and_reason(rules, message):
    # given / when / then
    assert message in error_of(rules)


@pytest.mark.parametrize(
    "rules",
    [
        leaf("\ud800", "eq", 1),
        leaf("visits", "\udfff", 1),
        {"and": [leaf("visits", "eq", 1)], "\ud800": 1},
    ],
)
def test_an_error_naming_a_lone_surrogate_can_be_sent_as_utf8(rules):
    # given / when
    message = error_of(rules)

    # then it shows the character escaped
    assert "\\ud8" in message or "\\udf" in message
    message.encode("utf-8")


def test_rules_deeper_than_the_setting_are_rejected_at_the_first_node_too_deep():
    # given a chain of "not" three levels deep around a leaf: depth 4
    rules = {"not": {"not": {"not": leaf("visits", "gt", 1)}}}

    # when / then
    with override_settings(CRM_SEGMENT_MAX_DEPTH=4):
        validate_rules(rules)
    with override_settings(CRM_SEGMENT_MAX_DEPTH=3):
        assert error_of(rules) == ("rules.not.not.not: rules nest deeper than 3 levels")


def test_rules_with_too_many_nodes_are_rejected():
    # given an "or" of 300 leaves
    rules = {"or": [leaf("visits", "eq", n) for n in range(300)]}

    # when / then
    assert "rules have more than 200 nodes" in error_of(rules)


def test_rule_error_is_a_value_error_that_keeps_path_and_reason():
    # given / when
    with pytest.raises(ValueError) as caught:
        compile_rules({"not": leaf("nope", "eq", 1)})

    # then
    assert caught.value.path == "rules.not.field"
    assert caught.value.reason.startswith('unknown field "nope"')


def test_catalog_lists_every_field_with_its_ops_and_value_descriptions():
    # given / when
    catalog = {entry["field"]: entry for entry in rule_catalog()}

    # then
    assert set(catalog) == {*FIELDS, "attributes.<key>"}
    assert catalog["total_spend"]["ops"]["gt"] == "a number"
    assert catalog["tags"]["ops"]["in"] == "a non-empty list of strings"
    assert set(catalog["created_at"]["ops"]) >= {"between", "within_last_days"}


# --- Compiling and filtering ----------------------------------------------------


@pytest.fixture
def leads():
    """Four leads with distinct names, enough to tell every op's result apart."""
    organization = OrganizationFactory()
    created = [
        LeadFactory(
            organization=organization,
            name="Ada Lovelace",
            phones=["+12025550101"],
            emails=["ada@example.com"],
            external_id="A-1",
            total_spend=Decimal("1000.56"),
            visits=12,
            timezone="Europe/London",
            tags=["vip", "newsletter"],
            attributes={"plan": "Gold", "score": 7.5, "trial": True},
            sms_opt_out=True,
        ),
        LeadFactory(
            organization=organization,
            name="Grace Hopper",
            phones=["+12025550102"],
            emails=["grace@navy.example"],
            total_spend=Decimal("250.00"),
            visits=3,
            tags=["newsletter"],
            attributes={"plan": "silver", "score": 10, "note": None},
            email_opt_out=True,
        ),
        LeadFactory(
            organization=organization,
            name="Alan 100%_real",
            phones=[],
            emails=[],
            total_spend=Decimal("0"),
            visits=0,
            timezone="",
            attributes={"score": "10"},
        ),
        LeadFactory(
            organization=organization,
            name="Edsger",
            phones=["+12025550104"],
            emails=["edsger@example.com"],
            total_spend=Decimal("1000.00"),
            visits=50,
            tags=["VIP"],
            attributes={"plan": ["gold"], "trial": 1},
        ),
    ]
    # created_at is auto_now_add, so it is set after the insert.
    for lead, created_at in zip(
        created,
        [
            datetime(2025, 6, 14, 23, 59, 59, tzinfo=UTC),
            datetime(2025, 6, 1, 0, 0, tzinfo=UTC),
            datetime(2025, 5, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
        ],
        strict=True,
    ):
        Lead.objects.filter(pk=lead.pk).update(created_at=created_at)
    # A lead of another organization must never show up.
    LeadFactory(name="Ada Lovelace", total_spend=Decimal("5000"))
    return organization


def names(organization, rules) -> set[str]:
    query = Lead.objects.filter(organization=organization).filter(
        compile_rules(rules, now=NOW)
    )
    return {first_word(name) for name in query.values_list("name", flat=True)}


def first_word(name: str) -> str:
    return name.split()[0]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (leaf("total_spend", "eq", 1000), {"Edsger"}),
        (leaf("total_spend", "ne", 1000), {"Ada", "Grace", "Alan"}),
        (leaf("total_spend", "gt", 1000.555), {"Ada"}),
        (leaf("total_spend", "gte", 1000), {"Ada", "Edsger"}),
        (leaf("total_spend", "lt", 250), {"Alan"}),
        (leaf("total_spend", "lte", 250), {"Alan", "Grace"}),
        (leaf("total_spend", "in", [0, 250.0]), {"Alan", "Grace"}),
        (leaf("total_spend", "between", [250, 1000]), {"Grace", "Edsger"}),
        (leaf("visits", "gt", 3), {"Ada", "Edsger"}),
        (leaf("visits", "eq", 3.0), {"Grace"}),
        (leaf("visits", "between", [0, 3]), {"Alan", "Grace"}),
        (leaf("name", "eq", "Edsger"), {"Edsger"}),
        (leaf("name", "eq", "edsger"), set()),
        (leaf("name", "ne", "Edsger"), {"Ada", "Grace", "Alan"}),
        (leaf("name", "contains", "LOVE"), {"Ada"}),
        # LIKE wildcards in the value are matched literally.
        (leaf("name", "contains", "0%_"), {"Alan"}),
        (leaf("name", "contains", "%"), {"Alan"}),
        (leaf("name", "in", ["Edsger", "Grace Hopper", "x"]), {"Edsger", "Grace"}),
        (leaf("email", "contains", "@EXAMPLE.com"), {"Ada", "Edsger"}),
        (leaf("email", "exists", False), {"Alan"}),
        (leaf("phone", "eq", "+12025550102"), {"Grace"}),
        (leaf("phone", "exists", True), {"Ada", "Grace", "Edsger"}),
        (leaf("external_id", "eq", "A-1"), {"Ada"}),
        (leaf("timezone", "in", ["Europe/London", ""]), {"Ada", "Alan"}),
        (leaf("tags", "contains", "vip"), {"Ada"}),
        (leaf("tags", "contains", "VIP"), {"Edsger"}),
        (leaf("tags", "in", ["VIP", "newsletter"]), {"Ada", "Grace", "Edsger"}),
        (leaf("tags", "exists", True), {"Ada", "Grace", "Edsger"}),
        (leaf("tags", "exists", False), {"Alan"}),
        (leaf("opted_out", "eq", True), {"Ada", "Grace"}),
        (leaf("opted_out", "eq", False), {"Alan", "Edsger"}),
        (leaf("opted_out", "ne", True), {"Alan", "Edsger"}),
        (leaf("sms_opt_out", "eq", True), {"Ada"}),
        (leaf("email_opt_out", "ne", False), {"Grace"}),
        # A bare date is that whole day in TIME_ZONE (UTC in the tests).
        (leaf("created_at", "eq", "2025-06-01"), {"Grace"}),
        (leaf("created_at", "ne", "2025-06-01"), {"Ada", "Alan", "Edsger"}),
        (leaf("created_at", "gt", "2025-05-31"), {"Ada", "Grace"}),
        (leaf("created_at", "gte", "2025-05-31"), {"Ada", "Grace", "Alan"}),
        (leaf("created_at", "lt", "2025-06-01"), {"Alan", "Edsger"}),
        (leaf("created_at", "lte", "2025-06-01"), {"Alan", "Edsger", "Grace"}),
        (leaf("created_at", "eq", "2025-06-01T00:00:00Z"), {"Grace"}),
        (leaf("created_at", "gt", "2025-06-01T00:00:00"), {"Ada"}),
        (
            leaf("created_at", "lte", "2025-06-01T02:00:00+02:00"),
            {"Alan", "Edsger", "Grace"},
        ),
        (
            leaf("created_at", "between", ["2025-05-31", "2025-06-01"]),
            {"Alan", "Grace"},
        ),
        # Bounds at Grace's exact instant: each side of every comparison.
        (leaf("created_at", "lte", "2025-05-31"), {"Alan", "Edsger"}),
        (leaf("created_at", "gte", "2025-06-01T00:00:00Z"), {"Ada", "Grace"}),
        (leaf("created_at", "lt", "2025-06-01T00:00:00Z"), {"Alan", "Edsger"}),
        (
            leaf("created_at", "between", ["2025-06-01T00:00:00Z", "2025-06-14"]),
            {"Ada", "Grace"},
        ),
        (leaf("created_at", "within_last_days", 14), {"Ada"}),
        (leaf("created_at", "within_last_days", 15), {"Ada", "Grace", "Alan"}),
        # Attributes: comparisons only match values of the operand's JSON type.
        (leaf("attributes.plan", "eq", "Gold"), {"Ada"}),
        (leaf("attributes.plan", "ne", "Gold"), {"Grace", "Alan", "Edsger"}),
        (leaf("attributes.plan", "in", ["silver", "gold"]), {"Grace"}),
        (leaf("attributes.plan", "contains", "gol"), {"Ada"}),
        (leaf("attributes.plan", "exists", True), {"Ada", "Grace", "Edsger"}),
        (leaf("attributes.plan", "exists", False), {"Alan"}),
        (leaf("attributes.note", "exists", True), {"Grace"}),
        (leaf("attributes.score", "eq", 10), {"Grace"}),
        (leaf("attributes.score", "eq", "10"), {"Alan"}),
        (leaf("attributes.score", "gt", 7.5), {"Grace"}),
        (leaf("attributes.score", "gte", 7.5), {"Ada", "Grace"}),
        (leaf("attributes.score", "lt", 100), {"Ada", "Grace"}),
        (leaf("attributes.score", "lte", 7.5), {"Ada"}),
        (leaf("attributes.score", "between", [7, 8]), {"Ada"}),
        (leaf("attributes.trial", "eq", True), {"Ada"}),
        (leaf("attributes.trial", "eq", 1), {"Edsger"}),
        (leaf("attributes.trial", "ne", True), {"Grace", "Alan", "Edsger"}),
    ],
)
def test_each_op_selects_exactly_the_matching_leads(leads, rules, expected):
    # given four leads of one organization and a lead of another

    # when
    selected = names(leads, rules)

    # then
    assert selected == expected


def test_groups_combine_and_negate_their_children(leads):
    # given
    rules = {
        "or": [
            {
                "and": [
                    leaf("tags", "contains", "newsletter"),
                    {"not": leaf("opted_out", "eq", True)},
                ]
            },
            {
                "and": [
                    leaf("visits", "gte", 50),
                    leaf("attributes.trial", "exists", True),
                ]
            },
            {
                "not": {
                    "or": [leaf("total_spend", "gt", 0), leaf("name", "exists", False)]
                }
            },
        ]
    }

    # when
    selected = names(leads, rules)

    # then
    assert selected == {"Edsger", "Alan"}


def test_not_of_a_leaf_is_its_exact_complement_even_for_missing_attributes(leads):
    # given a comparison that is false, not unknown, for leads without the attribute
    rules = leaf("attributes.score", "gt", 8)

    # when
    selected, rejected = names(leads, rules), names(leads, {"not": rules})

    # then
    assert selected == {"Grace"}
    assert rejected == {"Ada", "Alan", "Edsger"}


@override_settings(TIME_ZONE="America/New_York")
def test_a_bare_date_is_a_day_in_the_project_time_zone(leads):
    # given Grace, created 2025-06-01 00:00 UTC, which is May 31 in New York

    # when
    selected = names(leads, leaf("created_at", "eq", "2025-05-31"))

    # then
    assert selected == {"Grace", "Alan"}


def test_within_last_days_includes_a_lead_created_exactly_at_the_cut_off(leads):
    # given Grace, created exactly 14 days before now
    now = datetime(2025, 6, 15, 0, 0, tzinfo=UTC)
    rules = leaf("created_at", "within_last_days", 14)

    # when
    selected = Lead.objects.filter(organization=leads).filter(
        compile_rules(rules, now=now)
    )

    # then
    assert {first_word(lead.name) for lead in selected} == {"Ada", "Grace"}
