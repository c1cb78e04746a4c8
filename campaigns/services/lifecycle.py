"""A campaign's life: create, launch, pause, resume, cancel, complete, rerun."""

from dataclasses import dataclass
from datetime import datetime

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.bounds import content_errors
from campaigns.chunking import (
    ChunkSizeError,
    saved_chunk_size_for,
    validate_chunk_size,
)
from campaigns.models import Campaign, CampaignChunk
from campaigns.personalization import TemplateError, compile_template
from campaigns.services.chunking import (
    campaign_chunking_continue,
    chunks_enqueue_queued_soon,
)
from crm.models import Channel, Organization, Segment
from crm.selectors import audience_leads
from messaging.models import Dispatch
from messaging.services import dispatches, outbound, receipt_timeout, recovery

LAUNCHABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)
EDITABLE = LAUNCHABLE
CANCELLABLE = (
    Campaign.Status.DRAFT,
    Campaign.Status.SCHEDULED,
    Campaign.Status.RUNNING,
    Campaign.Status.PAUSED,
)
FINISH_TASK = "campaigns.mark_completed"
PAUSE_TASK = "campaigns.mark_paused"

logger = structlog.get_logger(__name__)


class CampaignStateError(Exception):
    """The campaign's status does not allow what was asked."""


@dataclass(frozen=True)
class LaunchResult:
    campaign: Campaign
    total_leads: int
    total_chunks: int
    chunk_size: int

    @property
    def chunking(self) -> dict:
        return {
            "total_leads": self.total_leads,
            "total_chunks": self.total_chunks,
            "chunk_size": self.chunk_size,
        }


def campaign_validate(
    *,
    organization: Organization,
    channel: str,
    segment: Segment,
    template: str,
    subject: str = "",
    chunk_size: int | None = None,
) -> None:
    """Every reason the campaign cannot be saved, by field, in one ValidationError."""
    errors: dict[str, list[str]] = {}
    if channel not in Channel.values:
        errors.setdefault("channel", []).append(f"unknown channel {channel!r}")
    if segment.organization_id != organization.pk:
        errors.setdefault("segment", []).append(
            "segment belongs to another organization"
        )
    try:
        compile_template(template)
    except TemplateError as error:
        errors.setdefault("template", []).append(str(error))
    if channel == Channel.EMAIL:
        if not subject.strip():
            errors.setdefault("subject", []).append("an email campaign needs a subject")
        else:
            try:
                compile_template(subject)
            except TemplateError as error:
                errors.setdefault("subject", []).append(str(error))
    for field, problem in content_errors(
        channel=channel, template=template, subject=subject
    ).items():
        errors.setdefault(field, []).append(problem)
    if chunk_size is not None:
        try:
            validate_chunk_size(chunk_size)
        except ChunkSizeError as error:
            errors.setdefault("chunk_size", []).append(str(error))
    if errors:
        raise ValidationError(errors)


def campaign_create(
    *,
    organization: Organization,
    name: str,
    channel: str,
    segment: Segment,
    template: str,
    subject: str = "",
    created_by=None,
    chunk_size: int | None = None,
    scheduled_at: datetime | None = None,
) -> Campaign:
    campaign_validate(
        organization=organization,
        channel=channel,
        segment=segment,
        template=template,
        subject=subject,
        chunk_size=chunk_size,
    )
    return Campaign.objects.create(
        organization=organization,
        name=name,
        channel=channel,
        segment=segment,
        template=template,
        subject=subject,
        created_by=created_by,
        chunk_size=chunk_size,
        scheduled_at=scheduled_at,
        status=Campaign.Status.SCHEDULED if scheduled_at else Campaign.Status.DRAFT,
    )


def campaign_duplicate(*, campaign_id: int, created_by=None) -> Campaign:
    """A new draft with another campaign's message, segment and channel, in any
    status: the way to send again, or to start from what worked. Not scheduled;
    the copy's name says whose copy it is."""
    original = Campaign.objects.get(pk=campaign_id)
    name = f"{original.name} (copy)"[: Campaign._meta.get_field("name").max_length]
    return Campaign.objects.create(
        organization_id=original.organization_id,
        name=name,
        channel=original.channel,
        segment_id=original.segment_id,
        template=original.template,
        subject=original.subject,
        chunk_size=original.chunk_size,
        created_by=created_by,
        status=Campaign.Status.DRAFT,
    )


def campaign_update(
    *,
    campaign_id: int,
    name: str,
    channel: str,
    segment: Segment,
    template: str,
    subject: str = "",
    chunk_size: int | None = None,
    scheduled_at: datetime | None = None,
) -> Campaign:
    """Change a draft or scheduled campaign: with a time it is scheduled, without
    one a draft. A launched campaign is its run's record and is never changed."""
    with transaction.atomic():
        campaign = _locked(campaign_id, EDITABLE, "edit")
        campaign_validate(
            organization=campaign.organization,
            channel=channel,
            segment=segment,
            template=template,
            subject=subject,
            chunk_size=chunk_size,
        )
        campaign.name, campaign.channel, campaign.segment = name, channel, segment
        campaign.template, campaign.subject = template, subject
        campaign.chunk_size, campaign.scheduled_at = chunk_size, scheduled_at
        campaign.status = (
            Campaign.Status.SCHEDULED if scheduled_at else Campaign.Status.DRAFT
        )
        campaign.save()
    return campaign


def campaign_launch(*, campaign_id: int) -> LaunchResult:
    """Start sending: the campaign runs, its dispatch opens, chunking is enqueued.

    Launch answers at once whatever the audience size: it counts the audience only
    as far as choosing the chunk size needs (the size tiers end at a few thousand
    leads). A larger audience's total_leads and total_chunks are then estimates,
    from the segment's cached audience size, until the chunking task, which cuts
    the whole audience, stores the exact figures on the campaign. (Counting 1,000,000
    leads takes 0.2-0.5 s; the bounded count takes milliseconds.)
    """
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update()
            .select_related("segment", "organization")
            .get(pk=campaign_id)
        )
        if campaign.status not in LAUNCHABLE:
            raise CampaignStateError(
                f"campaign {campaign.pk} is {campaign.status}; only a draft or "
                "scheduled campaign can be launched"
            )
        campaign.launched_at = timezone.now()
        campaign.audience_rules = campaign.segment.rules
        total_leads = _audience_at_launch(campaign)
        chunk_size = saved_chunk_size_for(
            audience=total_leads, saved=campaign.chunk_size
        )
        campaign.dispatch = dispatches.dispatch_create(
            organization=campaign.organization,
            label=f"Campaign {campaign.pk}: {campaign.name}",
            channel=campaign.channel,
            on_finish_task=FINISH_TASK,
            on_pause_task=PAUSE_TASK,
        )
        campaign.status = Campaign.Status.RUNNING
        campaign.total_leads = total_leads
        campaign.effective_chunk_size = chunk_size
        campaign.total_chunks = -(-total_leads // chunk_size)
        campaign.save()
        campaign_chunking_continue(campaign_id=campaign.pk)
    structlog.contextvars.bind_contextvars(
        campaign_id=campaign.pk, dispatch_id=campaign.dispatch_id
    )
    logger.info(
        "campaign_launched",
        total_leads=total_leads,
        total_chunks=campaign.total_chunks,
        chunk_size=chunk_size,
    )
    return LaunchResult(
        campaign=campaign,
        total_leads=total_leads,
        total_chunks=campaign.total_chunks,
        chunk_size=chunk_size,
    )


def _audience_at_launch(campaign: Campaign) -> int:
    """The audience exactly if small, else at least the count that sets chunk size."""
    limit = max(bound for bound, _ in settings.CAMPAIGN_CHUNK_SIZE_TIERS) + 1
    leads = audience_leads(
        organization_id=campaign.organization_id,
        rules=campaign.audience_rules,
        now=campaign.launched_at,
    )
    counted = leads.order_by()[:limit].count()
    if counted < limit:
        return counted
    return max(counted, campaign.segment.audience_size or 0)


def campaign_launch_due(*, now: datetime) -> list[int]:
    """Launch every scheduled campaign whose time has come; return their ids."""
    launched = []
    due = Campaign.objects.filter(
        status=Campaign.Status.SCHEDULED, scheduled_at__lte=now
    ).values_list("pk", flat=True)
    for campaign_id in due:
        try:
            campaign_launch(campaign_id=campaign_id)
        except CampaignStateError:
            continue  # launched by hand, or by an overlapping run, meanwhile
        launched.append(campaign_id)
    return launched


def _locked(campaign_id: int, allowed: tuple, action: str) -> Campaign:
    campaign = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("dispatch")
        .get(pk=campaign_id)
    )
    if campaign.status not in allowed:
        raise CampaignStateError(
            f"campaign {campaign.pk} is {campaign.status}; cannot {action} it"
        )
    return campaign


def campaign_pause(*, campaign_id: int) -> Campaign:
    """Stop new claims; messages already with a worker still finish."""
    with transaction.atomic():
        campaign = _locked(campaign_id, (Campaign.Status.RUNNING,), "pause")
        # A dispatch that paused itself a moment ago (its campaign not told yet)
        # is paused already.
        if campaign.dispatch.status != Dispatch.Status.PAUSED:
            dispatches.dispatch_pause(dispatch=campaign.dispatch)
        campaign.status = Campaign.Status.PAUSED
        campaign.save(update_fields=["status", "updated_at"])
    return campaign


def campaign_resume(*, campaign_id: int) -> Campaign:
    with transaction.atomic():
        campaign = _locked(campaign_id, (Campaign.Status.PAUSED,), "resume")
        dispatches.dispatch_resume(dispatch=campaign.dispatch)
        campaign.status = Campaign.Status.RUNNING
        campaign.save(update_fields=["status", "updated_at"])
        campaign_chunking_continue(campaign_id=campaign.pk)
        chunks_enqueue_queued_soon(campaign_id=campaign.pk)
        outbound.sends_due_soon()
        # Receipts applied while paused may have left nothing to do.
        outbound.dispatch_finish_soon(dispatch_id=campaign.dispatch_id)
    return campaign


def campaign_cancel(*, campaign_id: int) -> int:
    """Cancel the campaign and every message not yet sent; return how many."""
    with transaction.atomic():
        campaign = _locked(campaign_id, CANCELLABLE, "cancel")
        campaign.chunks.filter(status=CampaignChunk.Status.QUEUED).update(
            status=CampaignChunk.Status.CANCELLED
        )
        cancelled = 0
        if campaign.dispatch is not None:
            cancelled = dispatches.dispatch_cancel(dispatch=campaign.dispatch)
        campaign.status = Campaign.Status.CANCELLED
        campaign.completed_at = timezone.now()
        campaign.save(update_fields=["status", "completed_at", "updated_at"])
    return cancelled


def campaign_mark_paused(*, dispatch_id: int) -> bool:
    """Called once the dispatch paused itself (too many failures): the campaign
    shows paused, with its dispatch's reason, until a marketer resumes it."""
    return bool(_campaigns_follow_pause(now=timezone.now(), dispatch_id=dispatch_id))


def _campaigns_follow_pause(*, now: datetime, **match) -> int:
    """Pause the running campaigns that match whose dispatch is paused."""
    return Campaign.objects.filter(
        status=Campaign.Status.RUNNING, dispatch__status=Dispatch.Status.PAUSED, **match
    ).update(status=Campaign.Status.PAUSED, updated_at=now)


def campaign_mark_completed(*, dispatch_id: int) -> bool:
    """Called once the dispatch has nothing left non-final."""
    return bool(_campaigns_complete(now=timezone.now(), dispatch_id=dispatch_id))


def _campaigns_complete(*, now: datetime, **match) -> int:
    """Complete the running or paused campaigns that match: where any completes."""
    return Campaign.objects.filter(
        status__in=(Campaign.Status.RUNNING, Campaign.Status.PAUSED), **match
    ).update(status=Campaign.Status.COMPLETED, completed_at=now)


@dataclass(frozen=True)
class CompletionSweep:
    no_receipt: int
    cancelled: int
    dispatches_finished: int
    campaigns_completed: int


def campaigns_sweep_completion(*, now: datetime) -> CompletionSweep:
    """Move on whatever a lost or never-sent message left unfinished; idempotent.

    In order: sent messages past the receipt timeout become no_receipt; pending
    messages a cancelled dispatch still holds are cancelled; active dispatches with
    nothing left non-final are finished; campaigns whose dispatch is completed
    are completed, and running ones whose dispatch paused itself are paused (their
    own finish or pause task may be lost). Each step is one set-wise
    statement or a loop over the few dispatches the counters name, each change
    conditional on the state it moves from, so it runs beside the pipeline and
    beside itself.
    """
    no_receipt = receipt_timeout.receipts_time_out(now=now)
    cancelled = dispatches.dispatches_cancel_leftovers()
    finished = dispatches.dispatches_finish_done()
    completed = _campaigns_complete(now=now, dispatch__status=Dispatch.Status.COMPLETED)
    _campaigns_follow_pause(now=now)
    return CompletionSweep(
        no_receipt=no_receipt,
        cancelled=cancelled,
        dispatches_finished=len(finished),
        campaigns_completed=completed,
    )


@dataclass(frozen=True)
class RerunResult:
    chunks_requeued: int
    logs_retried: int


def campaign_rerun(*, campaign_id: int, failed: bool, dead_chunks: bool) -> RerunResult:
    """Give dead chunks and failed messages another go; the campaign runs again."""
    with transaction.atomic():
        campaign = _locked(
            campaign_id,
            (
                Campaign.Status.RUNNING,
                Campaign.Status.PAUSED,
                Campaign.Status.COMPLETED,
            ),
            "rerun",
        )
        requeued = 0
        if dead_chunks:
            requeued = campaign.chunks.filter(status=CampaignChunk.Status.DEAD).update(
                status=CampaignChunk.Status.QUEUED, attempts=0, last_error=""
            )
        retried = 0
        if failed:
            retried = recovery.logs_retry_failed(dispatch_ids=[campaign.dispatch_id])
        if (requeued or retried) and campaign.status == Campaign.Status.COMPLETED:
            campaign.status = Campaign.Status.RUNNING
            campaign.completed_at = None
            campaign.save(update_fields=["status", "completed_at", "updated_at"])
        chunks_enqueue_queued_soon(campaign_id=campaign.pk)
        outbound.sends_due_soon()
    return RerunResult(chunks_requeued=requeued, logs_retried=retried)
