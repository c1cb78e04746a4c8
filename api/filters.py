"""Query filters for the list endpoints (django-filter), validated like any input."""

from django import forms
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from django_filters.filters import QuerySetRequestMixin
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import get_model_field
from rest_framework.filters import SearchFilter

from api.permissions import membership_of
from crm.contacts import ContactError
from crm.models import Channel, Lead, Segment, Suppression, SuppressionLift
from crm.rules import RuleError
from crm.selectors import segment_leads
from crm.services.suppressions import address_normalize
from messaging.models import CommunicationLog, DeliveryReceipt, LogStatus

MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """An object id: a whole number in the id columns' range, else a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class OrganizationFilterSet(filters.FilterSet):
    """Filters by a foreign id choose among the caller's organization's rows only.

    Another organization's id is then "not one of the available choices", a 400
    word for word as for an id that does not exist: a filter never confirms that
    another tenant's object exists.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        membership = membership_of(self.request) if self.request else None
        organization = membership.organization if membership else None
        for model_filter in self.filters.values():
            if isinstance(model_filter, QuerySetRequestMixin):
                model_filter.queryset = _organization_rows(
                    model_filter.field_name, self.queryset.model, organization
                )


def _organization_rows(field_name: str, model, organization) -> QuerySet:
    """The related model's rows of the organization; none without a caller's
    organization, or of a model that has none (nothing of it may be chosen by id)."""
    related = get_model_field(model, field_name).related_model
    rows = related._default_manager.all()
    if organization is None or not any(
        field.name == "organization" for field in related._meta.fields
    ):
        return rows.none()
    return rows.filter(organization=organization)


class OrganizationFilterBackend(DjangoFilterBackend):
    """List filters built from a view's `filterset_fields` on OrganizationFilterSet."""

    filterset_base = OrganizationFilterSet


class SafeSearchFilter(SearchFilter):
    """Search terms without NUL, which Postgres refuses in a query."""

    def get_search_terms(self, request):
        return [term.replace("\x00", "") for term in super().get_search_terms(request)]


class LeadFilter(OrganizationFilterSet):
    external_id = filters.CharFilter(max_length=128)
    timezone = filters.CharFilter(max_length=64)
    tag = filters.CharFilter(
        max_length=64, method="filter_tag", help_text="Leads carrying this tag."
    )
    min_spend = filters.NumberFilter(
        field_name="total_spend",
        lookup_expr="gte",
        max_digits=14,
        decimal_places=2,
    )
    max_spend = filters.NumberFilter(
        field_name="total_spend",
        lookup_expr="lte",
        max_digits=14,
        decimal_places=2,
    )
    min_visits = filters.NumberFilter(
        field_name="visits", lookup_expr="gte", max_digits=12, decimal_places=0
    )
    max_visits = filters.NumberFilter(
        field_name="visits", lookup_expr="lte", max_digits=12, decimal_places=0
    )
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte"
    )
    created_before = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt"
    )
    segment = IdFilter(
        method="filter_segment", help_text="Leads matching this segment's rules."
    )

    class Meta:
        model = Lead
        fields = ["sms_opt_out", "email_opt_out"]

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])

    def filter_segment(self, queryset, name, value):
        segment = Segment.objects.filter(
            pk=value, organization_id=self.request.user.membership.organization_id
        ).first()
        if segment is None:
            return queryset.none()
        try:
            matching = segment_leads(segment=segment).values("pk")
        except RuleError:
            return queryset.none()
        return queryset.filter(pk__in=matching)


class CommunicationLogFilter(OrganizationFilterSet):
    campaign = IdFilter(field_name="dispatch__campaign")
    dispatch = IdFilter(field_name="dispatch")
    lead = IdFilter(field_name="lead")
    status = filters.ChoiceFilter(choices=LogStatus.choices)
    error_code = filters.CharFilter(max_length=64)
    channel = filters.CharFilter(max_length=8)

    class Meta:
        model = CommunicationLog
        fields = ["campaign", "dispatch", "lead", "status", "error_code", "channel"]


class DeliveryReceiptFilter(OrganizationFilterSet):
    status = filters.ChoiceFilter(choices=DeliveryReceipt.Status.choices)
    vendor_ref = filters.CharFilter(max_length=120)
    log = IdFilter(field_name="log")
    campaign = IdFilter(field_name="log__dispatch__campaign")

    class Meta:
        model = DeliveryReceipt
        fields = ["status", "vendor_ref", "log", "campaign"]


class SuppressionFilter(OrganizationFilterSet):
    search = filters.CharFilter(
        max_length=254,
        method="filter_search",
        help_text="An address, normalized as stored (a phone to E.164, an email "
        "lower-cased) and matched exactly; part of one that is no address "
        "matches anywhere in it.",
    )

    class Meta:
        model = Suppression
        fields = ["channel", "reason"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return _address_search(queryset, value)


class SuppressionLiftFilter(OrganizationFilterSet):
    search = filters.CharFilter(
        max_length=254,
        method="filter_search",
        help_text="As on /api/suppressions.",
    )

    class Meta:
        model = SuppressionLift
        fields = ["channel"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return _address_search(queryset, value)


def _address_search(queryset: QuerySet, term: str) -> QuerySet:
    """Rows at the address `term` names once normalized, else containing `term`."""
    term = term.replace("\x00", "").strip()
    if not term:
        return queryset
    channel = Channel.EMAIL if "@" in term else Channel.SMS
    try:
        address = address_normalize(channel=channel, address=term)
    except ContactError:
        return queryset.filter(address__icontains=term.lower())
    return queryset.filter(channel=channel, address=address)
