"""Reading ahead: batches parsed and prepared in a forked child while the caller writes.

Parsing is Python through and through (2 s per 100,000 rows); in a thread it would
hold the GIL against the writes, and every answer from Postgres would wait for the
parse thread's switch interval. A forked child parses on another core instead, and
prepares each batch (crm.services.lead_import.prepared) so that the importing
process, which waits on Postgres in turn, has as little Python left as can be. The
pipe's buffer holds the child a batch ahead at most, so memory stays flat. A bare
os.fork, not multiprocessing, which refuses to start children from a daemonic
process such as a Celery worker's.
"""

import contextlib
import gc
import mmap
import os
import signal
import sys
import traceback
from collections.abc import Callable, Generator, Iterator
from multiprocessing.connection import Connection

from django.db import connection

from crm.services.lead_import.leads import lead_text
from crm.services.lead_import.prepared import Prepared, prepared
from crm.services.lead_import.reading import Batch
from crm.services.lead_import.rows import timezones

# Off Linux (no fork, or a fork that macOS's system libraries may not survive)
# batches are prepared in line.
_FORK = sys.platform == "linux"


def read_ahead(batches: Iterator[Batch]) -> Generator[Prepared, None, None]:
    """The batches, parsed and prepared in a child process while the caller writes.

    An exception parsing (reading.Unreadable) arrives after the batches before it,
    its cause kept; the child is killed and reaped however the consumer ends.
    """
    text = lead_text if connection.vendor == "postgresql" else None
    if not _FORK:
        for batch in batches:
            yield prepared(batch, text)
        return
    timezones()  # cached in this process, so not rebuilt by every child
    # Texts are made while the last batch written made new leads: a file imported
    # again (every row an update) would spend a fifth of the child's time on them.
    wants_texts = mmap.mmap(-1, 1)  # shared with the child
    wants_texts[0] = 1
    pid, receiver = _fork_parser(batches, text, wants_texts)
    try:
        yield from _received(receiver, wants_texts)
    finally:
        receiver.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # it holds nothing to clean up
        os.waitpid(pid, 0)


def _fork_parser(
    batches: Iterator[Batch],
    text: Callable[[tuple], str] | None,
    wants_texts: mmap.mmap,
) -> tuple[int, Connection]:
    """Fork the child that prepares the batches; its pid, and the pipe's read end."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        status = 1
        try:
            os.close(read)
            sender = Connection(write, readable=False)
            _prepare_in_child(batches, sender, text, wants_texts)
            status = 0
        except BaseException:
            traceback.print_exc()  # what the importer reports as the child's end
        finally:
            os._exit(status)
    os.close(write)
    return pid, Connection(read, writable=False)


def _received(
    receiver: Connection, wants_texts: mmap.mmap
) -> Generator[Prepared, None, None]:
    """The batches the child sends, until its end; its error raised here."""
    while True:
        try:
            kind, value = receiver.recv()
        except EOFError:
            raise RuntimeError(
                "the lead import's parse process ended before the file did"
            ) from None
        if kind == "batch":
            yield value
            wants_texts[0] = value.created > 0
        elif kind == "error":
            error, cause = value
            raise error from cause
        else:
            return


def _prepare_in_child(
    batches: Iterator[Batch],
    sender: Connection,
    text: Callable[[tuple], str] | None,
    wants_texts: mmap.mmap,
) -> None:
    """The child's side of read_ahead: send each batch, then the end or the error."""
    # Ctrl-C reaches the whole process group; the importer stops the child itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The collector would otherwise walk (and so copy, page by page) every object
    # inherited from the parent, half as much again of the child's CPU.
    gc.freeze()
    try:
        try:
            for batch in batches:
                prepared_batch = prepared(batch, text if wants_texts[0] else None)
                sender.send(("batch", prepared_batch))
        except Exception as error:  # noqa: BLE001 (re-raised in the importer)
            sender.send(("error", (error, error.__cause__)))
        else:
            sender.send(("end", None))
    except BrokenPipeError:
        pass  # the importer stopped reading: it failed or was interrupted
