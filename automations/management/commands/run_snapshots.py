"""Compute the daily KPI snapshots now: one day, or the last N days (a backfill)."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from automations.services.retention import retention_cutoff
from automations.services.snapshots import snapshot_compute
from crm.models import Organization


class Command(BaseCommand):
    help = (
        "Compute daily snapshots for every organization (or --org); a day computed "
        "again replaces its snapshot. Default: yesterday."
    )

    def add_arguments(self, parser):
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--date", help="the day, YYYY-MM-DD")
        when.add_argument(
            "--backfill",
            type=int,
            metavar="DAYS",
            help="the last DAYS complete days, up to yesterday",
        )
        parser.add_argument("--org", help="only this organization (slug)")

    def handle(self, *args, **options):
        yesterday = timezone.localdate() - dt.timedelta(days=1)
        if options["date"]:
            try:
                days = [dt.date.fromisoformat(options["date"])]
            except ValueError as error:
                raise CommandError(f"--date must be YYYY-MM-DD: {error}") from error
        elif options["backfill"] is not None:
            if options["backfill"] < 1:
                raise CommandError("--backfill takes a number of days, 1 or more")
            days = [
                yesterday - dt.timedelta(days=back)
                for back in range(options["backfill"] - 1, -1, -1)
            ]
        else:
            days = [yesterday]
        cutoff = retention_cutoff(now=timezone.now())
        if cutoff is not None:
            kept = [day for day in days if day < timezone.localtime(cutoff).date()]
            if options["date"] and kept:
                raise CommandError(
                    f"the messages of {kept[0]} are past retention "
                    "(MESSAGING_RETENTION_DAYS): its snapshot stays as it was counted"
                )
            for day in kept:
                self.stderr.write(f"{day}: past retention, its snapshot is kept")
            days = [day for day in days if day not in kept]
        organizations = Organization.objects.order_by("pk")
        if options["org"]:
            organizations = organizations.filter(slug=options["org"])
            if not organizations.exists():
                raise CommandError(f"no organization with slug {options['org']!r}")
        for organization in organizations:
            for day in days:
                row = snapshot_compute(organization_id=organization.pk, day=day)
                self.stdout.write(
                    f"{organization.slug} {day}: leads {row.leads} "
                    f"(+{row.new_leads}), sent {row.messages_sent}, delivered "
                    f"{row.messages_delivered}, failed {row.messages_failed}, "
                    f"revenue {row.revenue_collected}, overdue {row.overdue_amount}"
                )
