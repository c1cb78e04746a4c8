"""Reads over the CRM: the leads a segment or a rule tree selects, and previews."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from crm.models import Lead, Organization, Segment
from crm.rules import compile_rules


@dataclass(frozen=True)
class SegmentPreview:
    """How many leads a rule tree selects, and the first few of them by pk."""

    count: int
    sample: list[Lead]


def leads_matching(*, organization: Organization, rules: Any) -> QuerySet[Lead]:
    """The organization's leads matching a rule tree; raises RuleError if invalid.

    within_last_days counts back from the moment this is called, not from when the
    queryset is evaluated.
    """
    return Lead.objects.filter(organization=organization).filter(compile_rules(rules))


def segment_leads(*, segment: Segment) -> QuerySet[Lead]:
    """The leads of the segment's organization that match its rules."""
    return audience_leads(organization_id=segment.organization_id, rules=segment.rules)


def audience_leads(
    *, organization_id: int, rules: Any, now: datetime | None = None
) -> QuerySet[Lead]:
    """An organization's leads matching a rule tree, within_last_days counted back
    from `now` (the current time if not given)."""
    return Lead.objects.filter(organization_id=organization_id).filter(
        compile_rules(rules, now=now)
    )


def audience_lead_ids_after(
    *,
    organization_id: int,
    rules: Any,
    now: datetime | None = None,
    after_id: int,
    limit: int,
) -> list[int]:
    """The next `limit` ids of an audience's leads after `after_id`, in id order.

    A keyset page, read along the (organization, id) index: said as the row
    comparison `(organization_id, id) > (org, after)`, which only that index can
    serve. Said as `id > after`, Postgres walks the primary key and filters by
    organization, and a page that comes up short reads every later lead of every
    other organization (0.5-0.7 s past 1,000,000 of them).
    """
    table = Lead._meta.db_table
    after = RawSQL(
        f'("{table}"."organization_id", "{table}"."id") > (%s, %s)',
        (organization_id, after_id),
        output_field=BooleanField(),
    )
    return list(
        audience_leads(organization_id=organization_id, rules=rules, now=now)
        .filter(after)
        .order_by("organization_id", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def segment_preview(
    *, organization: Organization, rules: Any, sample_size: int | None = None
) -> SegmentPreview:
    """One COUNT query and one query for a sample of the leads a rule tree selects.

    sample_size defaults to settings.CRM_SEGMENT_PREVIEW_SAMPLE, read at call time.
    """
    if sample_size is None:
        sample_size = settings.CRM_SEGMENT_PREVIEW_SAMPLE
    leads = leads_matching(organization=organization, rules=rules)
    count = leads.count()
    sample = list(leads.order_by("pk")[:sample_size]) if count and sample_size else []
    return SegmentPreview(count=count, sample=sample)


def leads_search(*, organization_id: int, query: str, limit: int = 10) -> list[Lead]:
    """Up to `limit` of an organization's leads whose name, phone or email holds the
    query (a phone typed with spaces or dashes still matches its digits)."""
    query = query.strip()
    if not query:
        return []
    matches = Q(name__icontains=query) | Q(email__icontains=query)
    digits = "".join(char for char in query if char.isdigit())
    if digits:
        matches |= Q(phone__contains=digits)
    return list(
        Lead.objects.filter(organization_id=organization_id)
        .filter(matches)
        .order_by("name", "pk")[:limit]
    )
