"""Lead import from CSV: stream rows, normalize and validate them, upsert in batches.

The package's interface is lead_import_csv (BATCH_SIZE rows a batch by default), its
ImportReport and ImportFileError.
Its modules, in the order a row meets them:

- reading: the file's delimiter, its header's columns, rows in batches;
- rows: one row parsed and validated into a Row, or the reason it is rejected;
- read_ahead: batches parsed in a forked child while the importer writes;
- prepared: a batch's lookup keys, COPY texts and pickled rows, made in the child;
- leads: a lead as the import writes it, and a row applied to it;
- upsert: a batch's rows matched to their leads, inserted and updated;
- analyze: ANALYZE as the import's new leads grow, so lookups keep their index;
- reading also previews a file and maps its headers (column_target, a column
  map);
- report: what an import did; importer: lead_import_csv, which runs them all.
"""

from crm.services.lead_import.importer import BATCH_SIZE, lead_import_csv
from crm.services.lead_import.reading import (
    ATTRIBUTE_PREFIX,
    COLUMN_ALIASES,
    IGNORE,
    cells_at_lines,
    column_map_error,
    column_target,
    preview,
)
from crm.services.lead_import.report import ImportFileError, ImportReport

__all__ = [
    "ATTRIBUTE_PREFIX",
    "BATCH_SIZE",
    "COLUMN_ALIASES",
    "IGNORE",
    "ImportFileError",
    "ImportReport",
    "cells_at_lines",
    "column_map_error",
    "column_target",
    "lead_import_csv",
    "preview",
]
