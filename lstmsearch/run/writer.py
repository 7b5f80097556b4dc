"""The writer thread of a run: parts, generation state and strategy state off the critical path.

The run loop hands each evaluated batch to :class:`Writer` and goes on to the next batch while
one thread, in submission order, builds the batch's rows, writes its generation state
(:mod:`lstmsearch.store.generations`), its part file and the manifest entry, and then the
strategy's own state file (queued by :meth:`~lstmsearch.search.base.Strategy.persist` when the
strategy was told). One thread and first-in, first-out order keep the order on disk that makes
a killed run safe: a batch's state before its rows, its rows before the strategy state that was
told about them. Each write is atomic as before (temporary file, fsync, link or rename).

Small batches are first gathered (:class:`PartGatherer`) into parts of at least
:data:`MIN_PART_ROWS` rows or :data:`MAX_GATHER_S` seconds of results, one job each. The queue
holds one job (:data:`DEPTH`): the loop hands over a part only once the one before is written,
so besides the batch being evaluated a SIGKILL loses at most the part being gathered and the one
being written (about a second of results, evaluated again, the same, when the study continues),
and nothing else. A write that fails
(a full disk, say) stops the thread; the loop's next :meth:`submit` or :meth:`close` raises the
error in the main thread as one line.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Optional

from ..errors import LstmsearchError

DEPTH = 1  # jobs waiting behind the one being written
#: Small batches are gathered into one part (and one generation-state file) of at least this many
#: rows ...
MIN_PART_ROWS = 2048
#: ... or of what was evaluated in this many seconds, whichever comes first.
MAX_GATHER_S = 1.0


class Writer:
    """A single writer thread with a bounded first-in, first-out queue of jobs ``fn(*args)``."""

    def __init__(self, depth: int = DEPTH):
        self.queue: "queue.Queue" = queue.Queue(maxsize=depth)
        self.error = None
        self.busy_s = 0.0  # seconds the thread spent writing
        self.wait_s = 0.0  # seconds the caller waited for room in the queue or for the last writes
        self.thread = threading.Thread(target=self._work, name="lstmsearch-writer", daemon=True)
        self.thread.start()

    def submit(self, fn, *args) -> None:
        """Queue ``fn(*args)`` behind the jobs already queued; waits while the queue is full."""
        self.check()
        t0 = time.perf_counter()
        self.queue.put((fn, args))
        self.wait_s += time.perf_counter() - t0

    def flush(self) -> None:
        """Wait until every queued job is done; raises a failed job's error."""
        t0 = time.perf_counter()
        self.queue.join()
        self.wait_s += time.perf_counter() - t0
        self.check()

    def close(self) -> None:
        """Finish the queued jobs and stop the thread; raises a failed job's error."""
        if self.thread.is_alive():
            self.queue.put(None)
            t0 = time.perf_counter()
            self.thread.join()
            self.wait_s += time.perf_counter() - t0
        self.check()

    def check(self) -> None:
        """Raise the error of a failed job (once), as one line."""
        exc, self.error = self.error, None
        if exc is None:
            return
        if isinstance(exc, LstmsearchError):
            raise exc
        text = str(exc).strip().splitlines()
        what = type(exc).__name__ + (f": {text[0]}" if text else "")
        raise LstmsearchError(f"writing the study's files failed ({what}); every part written before is "
                              "intact: run the study again to continue") from exc

    def _work(self) -> None:
        failed = False
        while True:
            job = self.queue.get()
            try:
                if job is None:
                    return
                if not failed:  # after a failure, nothing more is written (the order on disk matters)
                    t0 = time.perf_counter()
                    try:
                        job[0](*job[1])
                    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                        self.error, failed = exc, True
                    self.busy_s += time.perf_counter() - t0
            finally:
                self.queue.task_done()


class PartGatherer:
    """Gathers the batches of a run into parts of at least :data:`MIN_PART_ROWS` rows (or
    :data:`MAX_GATHER_S` seconds of results, or at most ``max_rows``) before they go to the
    :class:`Writer`: a Parquet part or generation-state file costs about 10 KB of footer and page
    headers whatever its rows, which at a population of 17 is 500 bytes a row. ``write(jobs)``
    writes the gathered batches (their state first, then their rows, in one part each).

    The strategy's own state files (:meth:`persist`) are held behind the gathered rows they were
    told about, so the order on disk that makes a killed run safe is kept. A SIGKILL loses the
    batches gathered and not yet handed over (at most :data:`MAX_GATHER_S` of results); the
    strategy's state on disk is older than them, so the continued run asks and evaluates them
    again, the same settings bit for bit.
    """

    def __init__(self, writer: Writer, write, max_rows: int, min_rows: Optional[int] = None,
                 max_wait_s: Optional[float] = None):
        self.writer, self.write = writer, write
        self.min_rows = min(MIN_PART_ROWS if min_rows is None else min_rows, max_rows)
        self.max_rows = max_rows
        self.max_wait_s = MAX_GATHER_S if max_wait_s is None else max_wait_s
        self.jobs, self.held, self.rows, self.since = [], [], 0, None

    def add(self, job: tuple, n_rows: int) -> None:
        """Gather one batch's write (the argument tuple of ``write``'s jobs) of ``n_rows`` rows."""
        if self.jobs and self.rows + n_rows > self.max_rows:
            self.flush()
        self.jobs.append(job)
        self.rows += n_rows
        self.since = self.since or time.perf_counter()
        if self.rows >= self.min_rows or time.perf_counter() - self.since >= self.max_wait_s:
            self.flush()

    def persist(self, fn, *args) -> None:
        """A strategy's state file: written after the gathered rows (at once when none are waiting)."""
        if self.jobs:
            self.held.append((fn, args))
        else:
            self.writer.submit(fn, *args)

    def flush(self) -> None:
        """Hand the gathered batches, then the strategy state held behind them, to the writer, as
        one job (the loop does not wait for the writer to take a second one)."""
        if self.jobs or self.held:
            self.writer.submit(self._write_all, self.jobs, self.held)
        self.jobs, self.held, self.rows, self.since = [], [], 0, None

    def _write_all(self, jobs, held) -> None:
        if jobs:
            self.write(jobs)
        for fn, args in held:
            fn(*args)
