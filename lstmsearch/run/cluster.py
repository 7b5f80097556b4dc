"""Batches on a Dask cluster: ``lstmsearch run STUDY.toml --dask SCHEDULER_ADDRESS``.

The run loop stays in the ``run`` process: it asks the strategy for a batch, and
:class:`DaskEvaluator` splits the batch's evaluation over the cluster's workers, gathers the
pieces in order, and hands back the same table a local :func:`lstmsearch.evaluate` call
gives -- every setting is scored on its own, on sequences drawn from the study's seed, so
the rows are identical to a single-process run (the tests check this bit for bit). The
parts, the manifest and the strategy's state are written by the ``run`` process alone,
so crash safety is that of a single run.

What is shipped: for a **sweep**, an index range per task (a few numbers: each worker
regenerates the settings from (seed, index) itself); for **CMA-ES** (a generation's
population) and **Optuna** (a batch of trials) the settings themselves. Make batches big
enough to feed the cluster: ``[strategy] batch`` for sweeps, ``popsize`` for CMA-ES.

Each piece is at least ``min_chunk`` settings; a batch is cut into at most one piece per
worker thread (``chunks_per_worker`` more with ``chunks_per_worker > 1``, which evens out
uneven workers).
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from ..errors import LstmsearchError, import_optional
from ..evaluate import evaluate

_LOCK = threading.Lock()  # one kernel call at a time per worker process (each uses every core)


def _evaluate_params(cell, task, ev, params):
    with _LOCK:
        return evaluate(cell, params, task, n_sequences=ev.sequences, seed=ev.seed, backend=ev.backend,
                        readout=ev.readout, n_heldout=ev.heldout, ridge=ev.ridge, readout_fit=ev.readout_fit)


def _evaluate_sweep_range(cell, task, ev, make, start, stop):
    """Evaluate the settings ``make(start, stop)`` rebuilds on this machine (a key range, not settings)."""
    return _evaluate_params(cell, task, ev, make(start, stop))


class DaskEvaluator:
    """Evaluates batches on a Dask distributed cluster (a scheduler address or a ``Client``)."""

    def __init__(self, dask, cfg, echo=None, min_chunk: int = 16, chunks_per_worker: int = 1):
        Client = import_optional("distributed", "dask", "--dask").Client
        self.cfg = cfg
        self.echo = echo or (lambda s: None)
        self.min_chunk = int(min_chunk)
        self.chunks_per_worker = int(chunks_per_worker)
        if isinstance(dask, Client):
            self.client, self.own = dask, False
        else:
            try:
                self.client = Client(str(dask), timeout="5s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise LstmsearchError(f"cannot reach the Dask scheduler at {dask!r}: {exc}; start one with "
                                      "dask scheduler (and dask worker ADDRESS on each machine)") from exc
            self.own = True
        self.strategy = None

    def threads(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def describe(self) -> str:
        info = self.client.scheduler_info()
        return (f"Dask cluster {info.get('address', '?')}: {len(info.get('workers', {}))} worker(s), "
                f"{self.threads()} thread(s)")

    def bind(self, strategy):
        self.strategy = strategy

    def _ranges(self, n: int):
        k = max(1, min(self.threads() * self.chunks_per_worker, -(-n // self.min_chunk)))
        edges = np.linspace(0, n, k + 1).round().astype(int)
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def evaluate(self, batch) -> pa.Table:
        cfg = self.cfg
        cell, task, ev = cfg.cell, cfg.task, cfg.eval
        n = len(batch)
        ranges = self._ranges(n)
        make = self.strategy.range_maker(batch) if self.strategy is not None else None
        c = self.client
        if make is not None:  # each machine rebuilds its share from the batch's key
            futures = [c.submit(_evaluate_sweep_range, cell, task, ev, make, a, b, pure=False) for a, b in ranges]
        else:
            futures = [c.submit(_evaluate_params, cell, task, ev, batch.params[a:b], pure=False) for a, b in ranges]
        try:
            parts = c.gather(futures)
        except LstmsearchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a worker lost, the scheduler gone: nothing was written
            raise LstmsearchError(f"the Dask cluster failed to evaluate a batch ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}); the rows written so far are "
                                  "safe: run again to continue") from exc
        table = pa.concat_tables(parts)
        if "setting" in table.column_names:
            i = table.column_names.index("setting")
            table = table.set_column(i, "setting", pa.array(np.arange(n, dtype=table.schema.field(i).type.to_pandas_dtype())))
        return table

    def close(self):
        if self.own:
            self.client.close()
