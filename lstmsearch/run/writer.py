"""The writer thread of a run: parts, generation state and strategy state off the critical path.

The run loop hands each evaluated batch to :class:`Writer` and goes on to the next batch while
one thread, in submission order, builds the batch's rows, writes its generation state
(:mod:`lstmsearch.store.generations`), its part file and the manifest entry, and then the
strategy's own state file (queued by :meth:`~lstmsearch.search.base.Strategy.persist` when the
strategy was told). One thread and first-in, first-out order keep the order on disk that makes
a killed run safe: a batch's state before its rows, its rows before the strategy state that was
told about them. Each write is atomic as before (temporary file, fsync, link or rename).

The queue holds one job (:data:`DEPTH`): the loop hands over batch g's rows only once batch
g-1's are written, so besides the batch being evaluated a SIGKILL loses at most one evaluated
batch (the one being written), and nothing else. A write that fails
(a full disk, say) stops the thread; the loop's next :meth:`submit` or :meth:`close` raises the
error in the main thread as one line.
"""

from __future__ import annotations

import queue
import threading
import time

from ..errors import LstmsearchError

DEPTH = 1  # jobs waiting behind the one being written


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
