"""lead_import_csv: read ahead, upsert each batch, keep statistics fresh, report."""

import gc
from collections.abc import Callable
from typing import TextIO

from django.conf import settings

from crm.models import Organization
from crm.services.lead_import.analyze import StatisticsRefresher
from crm.services.lead_import.read_ahead import read_ahead
from crm.services.lead_import.reading import Unreadable, batches
from crm.services.lead_import.report import ImportFileError, ImportReport
from crm.services.lead_import.upsert import upsert_batch

# A batch is one lookup query, one read of the leads it matched and one COPY. On
# 100,000 rows, batches of 250, 1,000 and 5,000 take 15.0, 14.7 and 14.3 s: the
# size hardly matters, so it is small; memory holds one batch (see tests).
BATCH_SIZE = 1000


def lead_import_csv(
    *,
    organization: Organization,
    stream: TextIO,
    batch_size: int = BATCH_SIZE,
    region: str | None = None,
    progress: Callable[[ImportReport], None] | None = None,
    column_map: dict[str, str] | None = None,
) -> ImportReport:
    """Import the CSV in `stream` into the organization's leads; return the report.

    The stream is read row by row and written a batch at a time (each batch in its
    own transaction), so memory is that of one batch whatever the file's size, and
    an interrupted import can simply be run again: rows upsert. On Linux a forked
    child process reads and parses the stream (see read_ahead), which nothing else
    may read meanwhile; it is gone when this returns or raises.

    A row finds its lead by external id; failing that, by primary phone, then by
    primary email (a row with an external id only claims a lead that has none, so
    two customers of a source system sharing a phone stay two leads). Later rows win
    field by field: a non-empty cell replaces the value, an empty one leaves it;
    phones, emails and tags add to the lists (the row's phone becomes the primary);
    attributes merge; an opt-out is set but never cleared by an import.

    A row is rejected whole, and recorded as (line, reason) with the header as line
    1, when a phone, email, spend, visits, timezone or opt-out is present but
    invalid, or it has no external id, phone or email. ImportFileError is raised when
    the file has no header, no identifier column, or cannot be read from some line
    on; the batches before it are imported. `progress` is called after each batch.

    `column_map` translates the file's headers (exactly as written) to what they
    hold: a field ("phones", "external_id", ...: the keys of COLUMN_ALIASES),
    "attr:<name>", or "ignore"; a header it does not name is read by its own name.
    """
    report = ImportReport()
    region = region or settings.CRM_DEFAULT_PHONE_REGION
    prepared = read_ahead(
        batches(stream, batch_size=batch_size, region=region, column_map=column_map)
    )
    statistics = StatisticsRefresher()
    # The collector would walk every object of the process (Django's, some 80,000)
    # again and again as batches come and go; the import's own are still collected.
    # A process that froze its objects itself (a pre-forking server) keeps them so.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        for batch in prepared:
            report.rows_read += batch.rows_read
            report.add_rejected(batch.rejected)
            upsert_batch(organization, batch, report)
            statistics.after_batch(created=report.created)
            if progress:
                progress(report)
    except Unreadable as error:
        raise ImportFileError(str(error), report=report) from error.__cause__
    finally:
        prepared.close()  # stops the parse process, even on a database error
        if freezing:
            gc.unfreeze()
    return report
