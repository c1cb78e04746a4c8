"""Launch a draft or scheduled campaign now."""

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.services.lifecycle import CampaignStateError, campaign_launch


class Command(BaseCommand):
    help = "Launch a campaign: cut its audience into chunks and start sending."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)

    def handle(self, *args, campaign_id, **options):
        try:
            result = campaign_launch(campaign_id=campaign_id)
        except Campaign.DoesNotExist:
            raise CommandError(f"no campaign {campaign_id}") from None
        except CampaignStateError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"launched campaign {campaign_id}: {result.total_leads} leads in "
            f"{result.total_chunks} chunks of {result.chunk_size}"
        )
