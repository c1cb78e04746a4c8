"""What a lead import did, and the error that stops one part way through the file."""

from dataclasses import dataclass, field

# Rejected rows kept in a report, with their line and reason; the rest are counted.
REJECTED_KEPT = 1000


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (from `line` on); `report` is so far."""

    def __init__(self, message: str, *, report: "ImportReport") -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ImportReport:
    """What an import did: each accepted row created a lead or updated one.

    `rejected` holds the first REJECTED_KEPT rejected rows as (line, reason);
    `rejected_count` counts them all.
    """

    rows_read: int = 0
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_count: int = 0
    # The rejected rows' cells by line, when the caller reads them back (the
    # background import does, to hand them back for fixing).
    rejected_cells: dict[int, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, "
            f"rejected {self.rejected_count}"
        )

    def add_rejected(self, rejected: list[tuple[int, str]]) -> None:
        room = REJECTED_KEPT - len(self.rejected)
        if room > 0:
            self.rejected.extend(rejected[:room])
        self.rejected_count += len(rejected)
