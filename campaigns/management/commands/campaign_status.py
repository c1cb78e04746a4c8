"""Show a campaign's progress and counters."""

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.selectors import campaign_stats


class Command(BaseCommand):
    help = "Print a campaign's status, progress and counters."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)

    def handle(self, *args, campaign_id, **options):
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise CommandError(f"no campaign {campaign_id}")
        stats = campaign_stats(campaign=campaign)
        self.stdout.write(f"{campaign.name} [{campaign.status}]")
        for name, value in stats.items():
            self.stdout.write(f"  {name:>16}: {value}")
