"""Give a campaign's failed messages and dead chunks another go."""

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.services.lifecycle import CampaignStateError, campaign_rerun


class Command(BaseCommand):
    help = (
        "Rerun a campaign's failed messages (--failed) and dead chunks (--dead-chunks)."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("--failed", action="store_true")
        parser.add_argument("--dead-chunks", action="store_true")

    def handle(self, *args, campaign_id, failed, dead_chunks, **options):
        if not (failed or dead_chunks):
            failed = dead_chunks = True
        try:
            result = campaign_rerun(
                campaign_id=campaign_id, failed=failed, dead_chunks=dead_chunks
            )
        except Campaign.DoesNotExist:
            raise CommandError(f"no campaign {campaign_id}") from None
        except CampaignStateError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"campaign {campaign_id}: {result.chunks_requeued} dead chunks requeued, "
            f"{result.logs_retried} failed messages queued again"
        )
