"""The campaign admin's actions: one function per lifecycle service, each saying
what it did, offered as buttons on a campaign's page and as changelist actions."""

from django.contrib import admin, messages

from campaigns.models import Campaign
from campaigns.services import lifecycle


def _launch(campaign_id: int) -> str:
    result = lifecycle.campaign_launch(campaign_id=campaign_id)
    return (
        f"launched: {result.total_leads} leads in {result.total_chunks} chunk(s) "
        f"of up to {result.chunk_size}"
    )


def _pause(campaign_id: int) -> str:
    lifecycle.campaign_pause(campaign_id=campaign_id)
    return "paused: no new messages are claimed; those already sending finish"


def _resume(campaign_id: int) -> str:
    lifecycle.campaign_resume(campaign_id=campaign_id)
    return "resumed: sending goes on"


def _cancel(campaign_id: int) -> str:
    cancelled = lifecycle.campaign_cancel(campaign_id=campaign_id)
    return f"cancelled: {cancelled} message(s) not yet sent will not be"


def _retry_failed(campaign_id: int) -> str:
    result = lifecycle.campaign_rerun(
        campaign_id=campaign_id, failed=True, dead_chunks=False
    )
    return f"{result.logs_retried} failed message(s) queued again"


def _rerun_dead(campaign_id: int) -> str:
    result = lifecycle.campaign_rerun(
        campaign_id=campaign_id, failed=False, dead_chunks=True
    )
    return f"{result.chunks_requeued} dead chunk(s) queued again"


# name: (label, action, the statuses it is offered in)
CAMPAIGN_ACTIONS = {
    "launch": ("Launch", _launch, lifecycle.LAUNCHABLE),
    "pause": ("Pause", _pause, (Campaign.Status.RUNNING,)),
    "resume": ("Resume", _resume, (Campaign.Status.PAUSED,)),
    "cancel": ("Cancel", _cancel, lifecycle.CANCELLABLE),
    "retry_failed": (
        "Retry failed messages",
        _retry_failed,
        (Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED),
    ),
    "rerun_dead": (
        "Rerun dead chunks",
        _rerun_dead,
        (Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.COMPLETED),
    ),
}


def run_action(modeladmin, request, name: str, campaigns) -> None:
    """Run the named action on each campaign, telling the user what each did."""
    _, act, _ = CAMPAIGN_ACTIONS[name]
    for campaign in campaigns:
        try:
            outcome = act(campaign.pk)
        except lifecycle.CampaignStateError as error:
            modeladmin.message_user(request, f"“{campaign}”: {error}", messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"“{campaign}” {outcome}.", messages.SUCCESS
            )


def changelist_action(name: str):
    """The named action as an admin action over the selected campaigns."""
    label = CAMPAIGN_ACTIONS[name][0]

    def action(modeladmin, request, queryset):
        run_action(modeladmin, request, name, queryset.order_by("pk"))

    action.__name__ = f"action_{name}"
    return admin.action(
        description=f"{label} selected campaigns", permissions=["change"]
    )(action)
