"""Cutting a running campaign's audience into chunks; expanding a chunk into logs."""

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import structlog
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.bounds import BODY_TOO_LONG, body_limit, fit_subject
from campaigns.chunking import new_job_id
from campaigns.models import Campaign, CampaignChunk
from campaigns.personalization import compile_template, renderer
from crm.models import Channel, Lead
from crm.selectors import audience_lead_ids_after
from messaging.services.dispatches import dispatch_expect
from messaging.services.logs import (
    NewLog,
    logs_create,
    new_send_id,
    send_id_suffix,
)
from messaging.sql import bulk_cursor, ids_array

logger = logging.getLogger(__name__)
RENDER_FAILED = "render_failed"
# Chunks one expand task takes together (one transaction, and the vendor's calls
# for up to 4,000 logs). Chunks are grouped by index (0-19, 20-39, ...); the broker
# carries one message per group (batch_leaders), whose task takes the group's
# queued chunks from its own on. Measured on 100,000 leads: 5 chunks a task instead
# of 1 took 887 tasks down to 412; 10 instead of 5, with receipts applied 2,000 at a
# time, took 10% off the workers' CPU; 20 instead of 10, in runs taken in turns,
# 5.7-6.3 s instead of 6.6-7.4 s (tasks' CPU 3.7-4.3 s instead of 4.4-5.0 s, peak
# RSS the same). 40 was no faster, and 6 MB larger.
EXPAND_BATCH_CHUNKS = 20
# Chunks written per transaction while cutting the audience: 60 chunks of 200 ids
# is one keyset page of 12,000 ids, a few milliseconds to read, and whole groups.
CHUNKS_PER_PAGE = 3 * EXPAND_BATCH_CHUNKS
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LEAD_FIELDS = (
    "id",
    "name",
    "phone",
    "phones",
    "email",
    "emails",
    "total_spend",
    "visits",
    "attributes",
    "sms_opt_out",
    "email_opt_out",
)


@dataclass(frozen=True)
class ChunkingResult:
    chunks_created: int
    total_leads: int
    done: bool


def campaign_chunk_audience(*, campaign_id: int) -> ChunkingResult:
    """Cut the audience into chunk rows, page by page, enqueueing each after commit.

    The audience is the one launched: the rules and the moment launch kept.

    Resumable and safe to run twice: each page starts after the last lead already
    chunked, under the campaign's row lock, so two runs never chunk a lead twice.
    """
    from campaigns.tasks import expand_chunk

    created = 0
    while True:
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
            structlog.contextvars.bind_contextvars(dispatch_id=campaign.dispatch_id)
            if campaign.chunking_done or campaign.status not in (
                Campaign.Status.RUNNING,
                Campaign.Status.PAUSED,
            ):
                return ChunkingResult(created, campaign.total_leads or 0, True)
            last = (
                campaign.chunks.order_by("-index").values("index", "lead_ids").first()
            )
            next_index = last["index"] + 1 if last else 0
            after_id = last["lead_ids"][-1] if last else 0
            size = campaign.effective_chunk_size
            lead_ids = audience_lead_ids_after(
                organization_id=campaign.organization_id,
                rules=campaign.audience_rules,
                now=campaign.launched_at,
                after_id=after_id,
                limit=size * CHUNKS_PER_PAGE,
            )
            now = timezone.now()
            chunks = [
                CampaignChunk(
                    campaign=campaign,
                    index=next_index + offset,
                    job_id=new_job_id(
                        campaign_id=campaign.pk, index=next_index + offset
                    ),
                    lead_ids=lead_ids[start : start + size],
                    created_at=now,
                    enqueued_at=now,
                )
                for offset, start in enumerate(range(0, len(lead_ids), size))
            ]
            CampaignChunk.objects.bulk_create(chunks)
            created += len(chunks)
            if campaign.status == Campaign.Status.RUNNING:
                messages = [m.as_message() for m in batch_leaders(chunks)]
                transaction.on_commit(
                    lambda messages=messages: [expand_chunk.delay(m) for m in messages]
                )
            if len(lead_ids) < size * CHUNKS_PER_PAGE:
                total = CampaignChunk.objects.filter(campaign=campaign).count()
                total_leads = _chunked_leads(campaign)
                Campaign.objects.filter(pk=campaign.pk).update(
                    chunking_done=True, total_chunks=total, total_leads=total_leads
                )
                dispatch_expect(dispatch_id=campaign.dispatch_id, audience=total_leads)
                return ChunkingResult(created, total_leads, True)


def batch_leaders(chunks: Iterable[CampaignChunk]) -> Iterator[CampaignChunk]:
    """Of chunks in index order, those whose message the broker carries: the first
    of each group (see EXPAND_BATCH_CHUNKS) among them.

    A message per chunk made four of every five expand tasks find their chunk
    already taken by the batch before it (400 empty tasks in 500 for 100,000 leads).
    Taking only its own group, no task can take another leader's chunk and leave
    that leader's followers without a message. A follower whose leader's message is
    lost stays queued; the sweeper sends it on its own after the stuck delay, as it
    would a lost leader.
    """
    group = None
    for chunk in chunks:
        if chunk.index // EXPAND_BATCH_CHUNKS != group:
            group = chunk.index // EXPAND_BATCH_CHUNKS
            yield chunk


def _chunked_leads(campaign: Campaign) -> int:
    """Leads in all chunks; the final audience, which may differ from launch's count."""
    sizes = campaign.chunks.values_list("lead_ids", flat=True)
    return sum(len(ids) for ids in sizes.iterator(chunk_size=2000))


@dataclass(frozen=True)
class ExpandResult:
    pending: int
    skipped: int
    dispatch_id: int | None = None
    claimed: tuple[tuple[int, NewLog], ...] = ()
    channel: str = ""


def chunk_expand(
    *, job_id: str, batch: int = 1, claim: bool = False
) -> ExpandResult | None:
    """Turn a chunk's leads into pending logs (or skipped ones, with the reason).

    With `batch` > 1 the chunks are grouped by index, `batch` a group, and the
    group's queued chunks from this one on that no other worker holds go in one
    transaction (see batch_leaders). A message of theirs, if any, then finds them
    expanded and does nothing. Returns None when there is nothing to do: the chunk
    is gone, done, cancelled, its campaign paused, or another worker holds it right
    now. Beat's send_due sends the new pending logs; with `claim` they are created
    claimed instead, for the caller to send at once (`claimed`; see logs_create).
    """
    with transaction.atomic():
        chunk = (
            CampaignChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("campaign")
            .filter(job_id=job_id, status=CampaignChunk.Status.QUEUED)
            .first()
        )
        if chunk is None:
            return None
        campaign = chunk.campaign
        structlog.contextvars.bind_contextvars(
            campaign_id=campaign.pk, dispatch_id=campaign.dispatch_id, job_id=job_id
        )
        if campaign.status == Campaign.Status.CANCELLED:
            chunk.status = CampaignChunk.Status.CANCELLED
            chunk.save(update_fields=["status"])
            return None
        if campaign.status != Campaign.Status.RUNNING:
            return None
        chunk_ids, lead_ids = [chunk.pk], list(chunk.lead_ids)
        if batch > 1:
            more = (
                CampaignChunk.objects.select_for_update(skip_locked=True)
                .filter(
                    campaign_id=campaign.pk,
                    status=CampaignChunk.Status.QUEUED,
                    index__gt=chunk.index,
                    index__lt=(chunk.index // batch + 1) * batch,
                )
                .values_list("pk", "lead_ids")
            )
            for pk, ids in more:
                chunk_ids.append(pk)
                lead_ids += ids
        CampaignChunk.objects.filter(pk__in=chunk_ids).update(
            status=CampaignChunk.Status.EXPANDED,
            expanded_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
        # Last in the transaction: logs_create moves the dispatch's counters, and the
        # dispatch row stays locked from then until commit.
        created = logs_create(
            dispatch_id=campaign.dispatch_id,
            channel=campaign.channel,
            logs=_chunk_logs(campaign, lead_ids),
            claim=claim,
        )
    return ExpandResult(
        pending=created.pending,
        skipped=created.skipped,
        dispatch_id=campaign.dispatch_id,
        claimed=created.claimed,
        channel=campaign.channel,
    )


def _chunk_logs(campaign: Campaign, lead_ids: list[int]) -> list[NewLog]:
    """One log per lead id, in order; leads are read as plain rows, not models.

    Building Lead models (and decoding their JSON fields) took a third of an
    expansion; rows with the same attributes are all rendering needs.
    """
    templates = [compile_template(campaign.template)]
    if campaign.subject:
        templates.append(compile_template(campaign.subject))
    body, subject = renderer(templates[0]), None
    if campaign.subject:
        subject = renderer(templates[1])
    uses_attributes = any(
        part.startswith("attributes.")
        for template in templates
        for part in template.placeholders
    )
    leads = _lead_rows(lead_ids, attributes=uses_attributes)
    # One suffix per chunk: the lead id already tells its send ids apart.
    suffix = send_id_suffix()
    channel = campaign.channel
    limit = body_limit(channel)
    logs = []
    for lead_id in lead_ids:
        lead = leads.get(lead_id)
        send_id = new_send_id(scope=campaign.pk, key=lead_id, suffix=suffix)
        if lead is None:
            logs.append(
                NewLog(None, str(lead_id), send_id, "", "", skip_reason="lead_deleted")
            )
            continue
        recipient, skip_reason = lead_recipient(lead, channel)
        try:
            text = body(lead)
            title = fit_subject(subject(lead)) if subject else ""
        except Exception as error:
            # One lead's data must not stop its chunk: its message is skipped.
            logger.warning(
                "campaign %s: lead %s not rendered (%s)",
                campaign.pk,
                lead_id,
                type(error).__name__,
            )
            text, title, skip_reason = "", "", RENDER_FAILED
        if limit is not None and len(text) > limit and not skip_reason:
            skip_reason = BODY_TOO_LONG
        logs.append(
            NewLog(
                lead_id=lead_id,
                dedupe_key=str(lead_id),
                send_id=send_id,
                recipient=recipient,
                body=text,
                subject=title,
                skip_reason=skip_reason,
            )
        )
    return logs


class _LeadRow:
    """A lead as rendering and lead_recipient read it: Lead's attribute names.

    Of the contact lists only the first entry is read (the fallback for an empty
    primary column), so only that one is fetched, as text, not the JSON lists.
    """

    __slots__ = _LEAD_FIELDS

    def __init__(self, row: tuple) -> None:
        (
            self.id,
            self.name,
            self.phone,
            first_phone,
            self.email,
            first_email,
            self.total_spend,
            self.visits,
            self.attributes,
            self.sms_opt_out,
            self.email_opt_out,
        ) = row
        self.phones = [first_phone] if first_phone is not None else []
        self.emails = [first_email] if first_email is not None else []


def _lead_rows(lead_ids: list[int], *, attributes: bool) -> dict[int, _LeadRow]:
    """The leads by id; their attributes only if a template reads them."""
    if connection.vendor != "postgresql":
        leads = Lead.objects.filter(pk__in=lead_ids).values_list(*_LEAD_FIELDS)
        return {
            row[0]: _LeadRow(
                (*row[:3], row[3][0] if row[3] else None, row[4])
                + (row[5][0] if row[5] else None, *row[6:])
            )
            for row in leads
        }
    with bulk_cursor() as cursor:
        cursor.execute(
            "SELECT id, name, phone, phones ->> 0, email, emails ->> 0, total_spend,"
            f" visits, {'attributes' if attributes else 'NULL'}, sms_opt_out,"
            f" email_opt_out FROM {Lead._meta.db_table} WHERE id = ANY(%b::bigint[])",
            [ids_array(lead_ids)],
        )
        rows = cursor.fetchall()
    if attributes:
        # Django's connection reads jsonb as its text (its fields decode it).
        return {
            row[0]: _LeadRow((*row[:8], json.loads(row[8]), *row[9:])) for row in rows
        }
    return {row[0]: _LeadRow(row) for row in rows}


def lead_recipient(lead, channel: str) -> tuple[str, str]:
    """The address to send to, or why the lead cannot be sent on this channel.

    Shared by every sender (campaigns, automations) so all skip for the same reasons.
    `lead` is a Lead or a row with its fields.
    """
    if channel == Channel.SMS:
        address, valid, missing = lead.phone, _E164, "no_phone"
        opted_out = lead.sms_opt_out
    else:
        address, valid, missing = lead.email, _EMAIL, "no_email"
        opted_out = lead.email_opt_out
    if opted_out:
        return address, "opted_out"
    if not address:
        return "", missing
    if not valid.match(address):
        return address, f"invalid_{'phone' if channel == Channel.SMS else 'email'}"
    return address, ""


def chunk_mark_dead(*, job_id: str, error: str) -> bool:
    """A chunk whose task exhausted its retries: kept, with the error, for a rerun."""
    return bool(
        CampaignChunk.objects.filter(
            job_id=job_id, status=CampaignChunk.Status.QUEUED
        ).update(status=CampaignChunk.Status.DEAD, last_error=error[:2000])
    )


def chunks_stuck(*, older_than) -> list[dict]:
    """Running campaigns' chunks queued too long ago: their message is lost."""
    cutoff = timezone.now() - older_than
    chunks = CampaignChunk.objects.filter(
        status=CampaignChunk.Status.QUEUED,
        enqueued_at__lt=cutoff,
        campaign__status=Campaign.Status.RUNNING,
    ).select_related("campaign")
    messages = [chunk.as_message() for chunk in chunks[:1000]]
    CampaignChunk.objects.filter(job_id__in=[m["job_id"] for m in messages]).update(
        enqueued_at=timezone.now()
    )
    return messages
