"""Writes to segments: create and update with validated rules, refresh audience size."""

from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import Organization, Segment
from crm.rules import RuleError, validate_rules
from crm.selectors import segment_leads

UPDATABLE_FIELDS = frozenset({"name", "description", "rules"})


def _validated(rules: Any) -> Any:
    try:
        validate_rules(rules)
    except RuleError as error:
        raise ValidationError({"rules": [str(error)]}, code="invalid_rules") from error
    return rules


def _count_audience(segment: Segment) -> None:
    segment.audience_size = segment_leads(segment=segment).count()
    segment.audience_counted_at = timezone.now()


def segment_create(
    *,
    organization: Organization,
    name: str,
    rules: Any,
    description: str = "",
) -> Segment:
    """Create a segment, its audience counted; ValidationError says what is wrong.

    An invalid rule tree is reported under "rules" with the path of the node at fault
    (the RuleError is the exception's __cause__); a taken name under "name".
    """
    segment = Segment(
        organization=organization,
        name=name,
        description=description,
        rules=_validated(rules),
    )
    segment.full_clean()
    _count_audience(segment)
    segment.save()
    return segment


def segment_update(*, segment: Segment, **fields: Any) -> Segment:
    """Change a segment's name, description or rules; new rules recount its audience."""
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"segment_update cannot change {', '.join(sorted(unknown))}")
    if "rules" in fields:
        _validated(fields["rules"])
    for field, value in fields.items():
        setattr(segment, field, value)
    segment.full_clean()
    changed = [*fields, "updated_at"]
    if "rules" in fields:
        _count_audience(segment)
        changed += ["audience_size", "audience_counted_at"]
    segment.save(update_fields=changed)
    return segment


def segment_refresh_audience(*, segment: Segment) -> int:
    """Recount the segment's audience and store it without touching other fields."""
    _count_audience(segment)
    Segment.objects.filter(pk=segment.pk).update(
        audience_size=segment.audience_size,
        audience_counted_at=segment.audience_counted_at,
    )
    return segment.audience_size
