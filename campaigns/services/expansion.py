"""Expanding a chunk: its leads into logs (or skipped ones, with the reason)."""

import json
import logging
from dataclasses import dataclass

import structlog
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.bounds import BODY_TOO_LONG, body_limit, fit_subject
from campaigns.models import Campaign, CampaignChunk
from campaigns.personalization import compile_template, renderer
from campaigns.services.chunking import EXPAND_BATCH_CHUNKS
from crm.eligibility import lead_recipient
from crm.models import Channel, Lead
from crm.services.unsubscribe import unsubscribe_footer
from messaging.models import Dispatch
from messaging.services.logs import (
    NewLog,
    logs_create,
    new_send_id,
    send_id_suffix,
)
from messaging.services.outbound import messages_send
from messaging.sql import bulk_cursor, ids_array

logger = logging.getLogger(__name__)
RENDER_FAILED = "render_failed"
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
class ExpandResult:
    pending: int
    skipped: int
    dispatch_id: int | None = None
    claimed: tuple[tuple[int, NewLog], ...] = ()
    channel: str = ""


def chunk_expand_and_send(*, job_id: str) -> dict | None:
    """Expand the chunk's group into logs created claimed, and hand them to
    messaging, which sends them at once and owns them from there."""
    result = chunk_expand(job_id=job_id, batch=EXPAND_BATCH_CHUNKS, claim=True)
    if result is None:
        return None
    outcome = messages_send(
        dispatch_id=result.dispatch_id, channel=result.channel, claimed=result.claimed
    )
    return {"pending": result.pending, "sent": outcome.sent}


def chunk_expand(
    *, job_id: str, batch: int = 1, claim: bool = False
) -> ExpandResult | None:
    """Turn a chunk's leads into pending logs (or skipped ones, with the reason).

    With `batch` > 1 the chunks are grouped by index, `batch` a group, and the
    group's queued chunks from this one on that no other worker holds go in one
    transaction (see batch_leaders). A message of theirs, if any, then finds them
    expanded and does nothing. Returns None when there is nothing to do: the chunk
    is gone, done, cancelled, its campaign paused, or another worker holds it right
    now. Beat's dispatcher sends the new pending logs; with `claim` they are created
    claimed instead, for the caller to send at once (`claimed`; see logs_create).
    """
    with transaction.atomic():
        chunk = (
            CampaignChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("campaign__dispatch")
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
        # A dispatch that paused itself stops expansion too, before its campaign
        # hears of it; the chunk stays queued for the resume.
        if (
            campaign.status != Campaign.Status.RUNNING
            or campaign.dispatch.status != Dispatch.Status.ACTIVE
        ):
            return None
        chunk_ids, lead_ids = _group_take(chunk, batch=batch)
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


def _group_take(chunk: CampaignChunk, *, batch: int) -> tuple[list[int], list[int]]:
    """The chunk and, with `batch` > 1, its group's queued chunks after it that no
    other worker holds, locked: their ids and their leads' ids."""
    chunk_ids, lead_ids = [chunk.pk], list(chunk.lead_ids)
    if batch > 1:
        more = (
            CampaignChunk.objects.select_for_update(skip_locked=True)
            .filter(
                campaign_id=chunk.campaign_id,
                status=CampaignChunk.Status.QUEUED,
                index__gt=chunk.index,
                index__lt=(chunk.index // batch + 1) * batch,
            )
            .values_list("pk", "lead_ids")
        )
        for pk, ids in more:
            chunk_ids.append(pk)
            lead_ids += ids
    return chunk_ids, lead_ids


def _chunk_logs(campaign: Campaign, lead_ids: list[int]) -> list[NewLog]:
    """One log per lead id, in order; leads are read as plain rows, not models.

    Building Lead models (and decoding their JSON fields) costs a third of an
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
        if channel == Channel.EMAIL and recipient and not skip_reason:
            # A campaign is marketing: every email carries its recipient's link.
            text += unsubscribe_footer(
                organization_id=campaign.organization_id, address=recipient
            )
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


def chunk_mark_dead(*, job_id: str, error: str) -> bool:
    """A chunk whose task exhausted its retries: kept, with the error, for a rerun."""
    return bool(
        CampaignChunk.objects.filter(
            job_id=job_id, status=CampaignChunk.Status.QUEUED
        ).update(status=CampaignChunk.Status.DEAD, last_error=error[:2000])
    )
