"""How the process that runs the loop shares its study: alone, or as one of several writers.

:func:`lstmsearch.run.loop.run_loop` is the same for ``lstmsearch run`` and for each worker
of ``lstmsearch run --workers`` / ``lstmsearch worker``; what differs is behind this small
object. :class:`Coordinator` is a study run by this process alone (it holds the study's
lock); :class:`lstmsearch.run.workers.Worker` is one writer among several (its slot's lease,
heartbeats, the other workers' batches in flight).
"""

from __future__ import annotations

import signal
from typing import Dict, List, Optional


class Coordinator:
    """A study run by this process alone: it holds the lock, so it may tidy and resume.

    :meth:`request_stop` is a signal handler: the loop finishes the batch in progress (writes
    its rows, tells the strategy), then stops cleanly; :attr:`stopped_by` names the signal.
    """

    def __init__(self, repair: bool = False):
        self.stopped_by: Optional[str] = None
        self.repair = repair  # ``run --repair``: the strategy may rebuild its state from the rows

    def request_stop(self, signum, frame=None) -> None:
        self.stopped_by = signal.Signals(signum).name

    def strategy_options(self) -> Dict:
        """Options for the strategy (heartbeats and grace periods of a shared storage); alone, this
        process may repair the strategy's storage (cut a journal's partial record, ``--repair``)."""
        return {"sole_writer": True, "repair": self.repair}

    def prepare(self, store, messages: List[str]) -> None:
        """Before the strategy starts: remove a killed run's temporary part files; check that every
        part the manifest records is there with its row count (the cheap part of ``lstmsearch check``)."""
        n_tmp = store.clean_temporaries()
        if n_tmp:
            messages.append(f"removed {n_tmp} unfinished temporary part file(s) of a killed run")
        messages.extend(store.verify_counts())

    def start(self, strategy, messages: List[str]) -> None:
        """The strategy reconciles its state with the stored rows."""
        msg = strategy.resume()
        if msg:
            messages.extend(msg.splitlines())

    def run_entry(self) -> Dict:
        """Extra entries of this run's record in the manifest."""
        return {}

    def record(self, store, manifest: Dict, register) -> None:
        """Add this run to the manifest (``register`` edits a manifest dict)."""
        store.write_manifest(register(manifest))

    def finish(self, store, manifest: Dict, entry: Dict) -> None:
        """Write the finished run's record."""
        store.write_manifest(manifest)

    def room(self, remaining: int, target: Optional[int]) -> Optional[int]:
        """Settings this process may ask for now (None: wait, others are finishing the budget)."""
        return remaining

    def stop_requested(self) -> bool:
        return self.stopped_by is not None

    def in_flight(self, batch) -> None:
        """The batch being evaluated (None once written and told)."""

    def stop(self) -> None:
        """The loop has ended."""
