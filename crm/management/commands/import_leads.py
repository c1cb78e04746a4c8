"""manage.py import_leads: import a CSV of leads into an organization."""

import codecs
import io
import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify
from tqdm import tqdm

from crm.models import Organization
from crm.services.lead_import import (
    BATCH_SIZE,
    ImportFileError,
    ImportReport,
    lead_import_csv,
)


class Command(BaseCommand):
    help = (
        "Import leads from a CSV file into an organization (created if missing). "
        "Rows upsert by external id, else phone, else email; bad rows are reported "
        "by line number and the rest imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file; its first line is the header")
        parser.add_argument("--org", required=True, help="the organization's slug")
        parser.add_argument(
            "--region",
            help="region of numbers written without +country code "
            "(default: the CRM_DEFAULT_PHONE_REGION setting)",
        )
        parser.add_argument(
            "--encoding",
            default="utf-8-sig",
            help="the file's text encoding (default UTF-8, with or without a BOM)",
        )
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args, **options):
        path, slug = options["file"], options["org"]
        if slugify(slug) != slug:
            raise CommandError(f'--org "{slug}" is not a slug (try "{slugify(slug)}")')
        try:
            codecs.lookup(options["encoding"])
        except LookupError as error:
            raise CommandError(f'unknown encoding "{options["encoding"]}"') from error
        try:
            raw = open(path, "rb")  # noqa: SIM115 (closed below, after the import)
        except FileNotFoundError as error:
            raise CommandError(f"{path}: no such file") from error
        except OSError as error:
            raise CommandError(f"{path}: cannot open it ({error.strerror})") from error
        with (
            raw,
            tqdm(
                total=os.fstat(raw.fileno()).st_size,
                unit="B",
                unit_scale=True,
                desc="importing",
                disable=not self.stdout.isatty(),
                file=sys.stderr,
            ) as bar,
        ):
            organization = _organization(slug)
            stream = io.TextIOWrapper(raw, encoding=options["encoding"], newline="")

            def progress(report: ImportReport) -> None:
                # The decoder's read-ahead makes this approximate by a chunk at most.
                bar.update(raw.tell() - bar.n)

            started = time.perf_counter()
            try:
                report = lead_import_csv(
                    organization=organization,
                    stream=stream,
                    batch_size=options["batch_size"],
                    region=options["region"],
                    progress=progress,
                )
            except ImportFileError as error:
                bar.close()
                self._print_report(error.report, seconds=time.perf_counter() - started)
                hint = (
                    " (save it as UTF-8, or pass --encoding, e.g. cp1252)"
                    if isinstance(error.__cause__, UnicodeDecodeError)
                    else ""
                )
                raise CommandError(f"{path}: {error}{hint}") from error
        self._print_report(report, seconds=time.perf_counter() - started)

    def _print_report(self, report: ImportReport, *, seconds: float) -> None:
        for line, reason in report.rejected:
            self.stderr.write(f"line {line}: {reason}")
        if report.rejected_count > len(report.rejected):
            more = report.rejected_count - len(report.rejected)
            self.stderr.write(f"... and {more} more rejected lines")
        # The import's own time, without Django's start-up: what a faster import,
        # or a busier database, changes.
        rate = report.rows_read / seconds if seconds else 0
        self.stdout.write(f"{report.summary()} in {seconds:.1f} s ({rate:,.0f} rows/s)")


def _organization(slug: str) -> Organization:
    name = slug.replace("-", " ").replace("_", " ").title()
    organization, _ = Organization.objects.get_or_create(
        slug=slug, defaults={"name": name}
    )
    return organization
