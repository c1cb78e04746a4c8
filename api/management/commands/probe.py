"""manage.py probe ready|beat: a container healthcheck's answer as an exit status."""

from django.core.management.base import BaseCommand, CommandError

from api import probes


class Command(BaseCommand):
    help = (
        "Exit 0 if the part is up, 1 if not. ready: the database and the broker are "
        "reachable. beat: beat ran a schedule within HEALTH_BEAT_MAX_AGE_SECONDS."
    )

    def add_arguments(self, parser):
        parser.add_argument("part", choices=["ready", "beat"])

    def handle(self, *args, part, **options):
        if part == "ready":
            down = [name for name, up in probes.readiness().items() if not up]
            if down:
                raise CommandError(f"not ready: {', '.join(down)} unreachable")
            self.stdout.write("ready")
            return
        age = probes.beat_seconds_since_last_run()
        if not probes.beat_alive():
            raise CommandError(
                "beat has never run"
                if age is None
                else f"beat last ran a schedule {age:.0f} s ago"
            )
        self.stdout.write(f"beat ran a schedule {age:.0f} s ago")
