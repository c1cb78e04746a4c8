"""`manage.py bench --leads N --workers K`: the pipeline's figures against the floor."""

import json

from django.core.management.base import BaseCommand, CommandError

from bench.benchmark import BenchmarkError, bench_run
from bench.rules import RunRules
from bench.table import bench_table


class Command(BaseCommand):
    help = (
        "Send one SMS campaign to N seeded leads through K real workers (Postgres and "
        "Redis) and report its figures, with the database floor measured alongside; "
        "time segment previews over those leads and a CSV import too."
    )

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=100_000)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument(
            "--concurrency",
            type=int,
            default=1,
            help="pool processes per worker (celery worker --concurrency); one by "
            "default, so K workers are K processes sending, as many as the 2-core "
            "box has cores (two each run no faster and use 8%% more CPU)",
        )
        parser.add_argument("--timeout", type=float, default=3600)
        parser.add_argument(
            "--keep",
            action="store_true",
            help="keep the campaign's logs and receipts (deleted by default)",
        )
        parser.add_argument(
            "--import-rows",
            type=int,
            default=100_000,
            help="CSV rows to time an import of, after the campaign (0: none)",
        )
        parser.add_argument(
            "--quiet-hours",
            action="store_true",
            help="switch quiet hours on, placed so that the leads' time zones put "
            "about a quarter of them outside the window: deferred, counted, not "
            "waited for (off by default)",
        )
        parser.add_argument(
            "--frequency-cap",
            type=int,
            default=None,
            help="cap marketing messages at N per lead in 7 days, one lead in ten "
            "having had N already (off by default)",
        )
        parser.add_argument(
            "--profile-dir",
            default="",
            help="run cProfile in each worker child and write its stats here",
        )

    def handle(
        self,
        *args,
        leads,
        workers,
        concurrency,
        timeout,
        keep,
        import_rows,
        profile_dir,
        quiet_hours,
        frequency_cap,
        **options,
    ):
        if leads < 1 or workers < 1:
            raise CommandError("--leads and --workers must be at least 1")
        if import_rows < 0:
            raise CommandError("--import-rows cannot be negative")
        if frequency_cap is not None and frequency_cap < 1:
            raise CommandError("--frequency-cap must be at least 1")
        try:
            figures = bench_run(
                leads=leads,
                workers=workers,
                concurrency=concurrency,
                timeout=timeout,
                keep=keep,
                import_rows=import_rows,
                profile_dir=profile_dir,
                rules=RunRules(quiet_hours=quiet_hours, frequency_cap=frequency_cap),
                say=self.stdout.write,
            )
        except BenchmarkError as error:
            raise CommandError(str(error)) from error
        self.stdout.write("")
        for line in bench_table(figures):
            self.stdout.write(line)
        self.stdout.write(json.dumps(figures, sort_keys=True))
