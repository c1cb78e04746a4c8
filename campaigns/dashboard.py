"""Reads behind the campaign admin pages: a campaign's dashboard, its message as a
lead gets it, chunk sizes and the dead letters.

The admin renders these; every query they need is here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Func, IntegerField, Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, CampaignChunk
from campaigns.personalization import TemplateError, compile_template
from campaigns.personalization import render as render_template
from campaigns.selectors import campaign_stats
from crm.models import OPT_OUT_FIELDS, Channel, Lead, Organization, Segment
from crm.selectors import segment_leads
from messaging import reporting
from messaging.models import CommunicationLog
from vendors.sms import is_gsm7, sms_segments

# A campaign's messages per hour, as reporting.hourly_rows gives them.
HourlySeries = Callable[[Campaign], list[dict]]


def message_size(text: str) -> dict:
    """Characters and SMS segments of a text (vendors.sms counts the segments)."""
    return {
        "characters": len(text),
        "segments": sms_segments(text),
        "encoding": "GSM-7" if is_gsm7(text) else "Unicode (UCS-2)",
    }


def campaign_hourly_from_logs(campaign: Campaign) -> list[dict]:
    """A campaign's messages per hour, counted from its logs."""
    return reporting.dispatch_hourly(dispatch_id=campaign.dispatch_id)


def campaign_dashboard(
    *, campaign: Campaign, hourly_series: HourlySeries = campaign_hourly_from_logs
) -> dict | None:
    """Progress, counters, funnel steps, hourly rows, top failure codes and what
    the sending rules hold back, once launched; None before."""
    if campaign.dispatch_id is None:
        return None
    stats = campaign_stats(campaign=campaign)
    return {
        "stats": stats,
        "percent": round(100 * stats["progress"], 1),
        "expected": stats["expected_audience"],
        "funnel": [
            (step, stats[step])
            for step in ("audience", "skipped", "sent", "delivered", "failed")
        ],
        "hourly": hourly_series(campaign),
        "failure_codes": reporting.failure_codes(dispatch_id=campaign.dispatch_id),
        "held_back": reporting.dispatch_held_back(
            dispatch_id=campaign.dispatch_id, now=timezone.now()
        ),
    }


def campaign_sample(*, campaign: Campaign) -> dict | None:
    """The template as the segment's first lead would receive it, with its size."""
    try:
        compiled = compile_template(campaign.template)
    except TemplateError:
        return None
    lead: Lead | None = segment_leads(segment=campaign.segment).order_by("pk").first()
    if lead is None:
        return None
    text = render_template(compiled, lead)
    return {"lead": lead, "text": text, **message_size(text)}


# Leads rendered to measure an audience's SMS segments: up to this many the
# estimate is exact, past it the sample's average per message is scaled up.
ESTIMATE_SAMPLE = 200


def message_preview(*, template: str, lead: Lead) -> dict:
    """The template as `lead` would get it, with its size; TemplateError if the
    template cannot be rendered."""
    text = render_template(compile_template(template), lead)
    return {"lead": str(lead), "text": text, **message_size(text)}


def _reachable(channel: str) -> Q:
    contact = "phone" if channel == Channel.SMS else "email"
    return ~Q(**{contact: ""}) & Q(**{OPT_OUT_FIELDS[channel]: False})


def campaign_estimate(*, segment: Segment, channel: str, template: str) -> dict:
    """What sending the template to the segment would take, before launch: its
    audience, the messages (leads with a contact on the channel, not opted out),
    SMS segments and cost at `price`, settings.SMS_PRICE_PER_SEGMENT or
    EMAIL_PRICE_PER_MESSAGE.

    Two queries: a count, and up to ESTIMATE_SAMPLE leads rendered for their
    segments (exact up to that many messages, scaled from their average past it).
    Suppressed addresses and frequency caps are not known until sending, so the
    messages are an upper bound. TemplateError if the template cannot be rendered.
    """
    compiled = compile_template(template)
    leads = segment_leads(segment=segment)
    counts = leads.aggregate(
        audience=Count("pk"), messages=Count("pk", filter=_reachable(channel))
    )
    messages = counts["messages"]
    if channel != Channel.SMS:
        price = settings.EMAIL_PRICE_PER_MESSAGE
        cost = (price * messages).quantize(Decimal("0.01"))
        return {**counts, "segments": None, "cost": cost, "price": price}
    sample = list(leads.filter(_reachable(channel)).order_by("pk")[:ESTIMATE_SAMPLE])
    measured = sum(sms_segments(render_template(compiled, lead)) for lead in sample)
    if not sample or len(sample) >= messages:
        segments = measured
    else:
        segments = round(measured * messages / len(sample))
    price = settings.SMS_PRICE_PER_SEGMENT
    cost = (price * segments).quantize(Decimal("0.01"))
    return {**counts, "segments": segments, "cost": cost, "price": price}


class JSONArrayLength(Func):
    function = "JSONB_ARRAY_LENGTH"
    output_field = IntegerField()


def chunks_with_lead_total(chunks: QuerySet[CampaignChunk]) -> QuerySet:
    """The chunks with `lead_total`, counted in SQL: a row holds up to 200 ids."""
    return chunks.annotate(lead_total=JSONArrayLength(F("lead_ids")))


@dataclass(frozen=True)
class DeadLetters:
    """What exhausted its retries: dead chunks, their campaigns, failed logs."""

    chunks: QuerySet[CampaignChunk]
    campaigns: QuerySet[Campaign]
    logs: QuerySet[CommunicationLog]


def dead_letters(
    *,
    chunks: QuerySet[CampaignChunk],
    organization: Organization | None,
    every_organization: bool = False,
) -> DeadLetters:
    """Among `chunks`, the dead ones, newest first; the messages failed for good of
    `organization` (of every one with `every_organization`), newest first."""
    dead = (
        chunks.filter(status=CampaignChunk.Status.DEAD)
        .defer("lead_ids")
        .order_by("-created_at")
    )
    logs = reporting.logs_exhausted().select_related("dispatch", "lead")
    if not every_organization:
        logs = logs.filter(dispatch__organization=organization)
    campaigns = Campaign.objects.filter(pk__in=dead.values("campaign_id"))
    return DeadLetters(
        chunks=dead,
        campaigns=campaigns.order_by("pk"),
        logs=logs.order_by("-failed_at"),
    )
