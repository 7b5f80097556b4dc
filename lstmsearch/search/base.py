"""What every strategy implements, and the batch it hands to the run loop.

The run loop (:mod:`lstmsearch.run.loop`) repeats: ``ask`` a batch -> evaluate its settings in
one call -> write the rows (one atomic part file, on the writer thread) -> ``tell`` the
strategy. The strategy's own state files go through :attr:`Strategy.persist`, which queues them
behind the rows, so they never say a batch was told before its rows are durable (a strategy
with :attr:`Strategy.shared_storage` is told only once its rows are written); a run killed at
any point loses no written row; on the next run :meth:`Strategy.resume` reconciles the strategy's own state (Optuna
storage, CMA-ES state file) with the rows, telling it about rows it never heard of instead
of evaluating them again, so no row is duplicated either.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from ..errors import require


@dataclass
class Batch:
    """Settings to evaluate in one kernel call, with the columns that identify each row."""

    params: np.ndarray  # (P, D) float32; readout tail zero when the readout is fitted
    batch: np.ndarray  # (P,) int64: trial number / generation / chunk
    index: np.ndarray  # (P,) int64
    z: Optional[np.ndarray] = None  # (P, d) float32 search vectors
    scale: Optional[np.ndarray] = None  # (P,) float32 region jitter scale
    key_seed: Optional[np.ndarray] = None
    key_index: Optional[np.ndarray] = None
    stored: Optional[pa.Table] = None  # rows already in the store (replayed to the strategy)
    state: Optional[pa.Table] = None  # generation/trial state to store before the rows (store.generations)
    info: Any = None

    def __len__(self):
        return int(self.params.shape[0] if self.stored is None else self.stored.num_rows)


def round_z(z) -> np.ndarray:
    """Search vectors rounded to float32 (what the store keeps), as float64 for the space."""
    return np.asarray(z, np.float64).astype(np.float32).astype(np.float64)


def objective(nmse) -> np.ndarray:
    """What strategies minimise: log10 of the held-out nmse, capped at 6 (inf -> 6)."""
    v = np.asarray(nmse, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.maximum(v, 1e-30))
    return np.where(np.isfinite(out), np.minimum(out, 6.0), 6.0)


#: Columns a ranking strategy may minimise (``objective`` of ``cmaes``): the held-out nmse, or the
#: largest ``|y - x_1|`` over the held-out sequences and scored lengths (a minimax score, like a certificate's eps).
RANKED_COLUMNS = ("nmse", "max_abs_err")


def told_values(table: pa.Table, column: str = "nmse") -> np.ndarray:
    """The values a ranking strategy is told for a batch: :func:`objective` of its ``column``
    (``nmse``, or ``max_abs_err``: log10 either way), or, when the run raced the batch
    (``[eval] racing``), its ``told`` column: values that rank every full-fidelity setting above
    every one stopped at a lower rung (:mod:`lstmsearch.run.racing`)."""
    if "told" in table.column_names:
        return table.column("told").to_numpy()
    return objective(table.column(column).to_numpy())


class Strategy(abc.ABC):
    """The contract between a strategy (optuna, cmaes, sweep) and the run loop.

    A subclass implements :meth:`ask` (and, to learn, :meth:`tell`); every other hook has a
    no-op default, so the loop calls each hook on every strategy and never asks which kind
    it holds. Hooks, in the order the loop calls them: :meth:`resume` (reconcile with stored
    rows), :meth:`warm_start`, :meth:`manifest_extra`, then ``ask -> evaluate -> augment ->
    write -> tell`` until the budget is spent, then :meth:`close`, :meth:`run_stats` and
    :meth:`summary`. :meth:`regenerate_rows` rebuilds stored rows' settings without opening
    the strategy's storage (``reproduce``, ``export``, ``extract``). For workers sharing a
    study (:attr:`shared_storage`): :meth:`trials_of`, :meth:`record_heartbeats` and
    :meth:`recover`. For a cluster: :meth:`range_maker` lets each machine make its share of a
    batch from a key instead of receiving the settings. For ``--repair``: :meth:`repair_state`
    and :meth:`lost_part_batch`.

    What a strategy can do is said by its class attributes (:attr:`shared_storage`,
    :attr:`ranks_whole_batches`, :attr:`rows_regenerable_from_key`, :attr:`z_kept_by_key`,
    :attr:`options`), so that the code around it never compares a strategy's name.

    ``overhead_s`` accumulates the strategy's own time (ask/tell, storage, state files), which
    the run report gives as *strategy* time.
    """

    name = "strategy"
    #: Whether several processes can share the study through a storage of the strategy's own
    #: (an Optuna storage): ``lstmsearch run --workers``, ``lstmsearch worker`` and ``--storage``.
    shared_storage = False
    #: Whether the strategy asks whole batches and needs no more of their values than the ranks
    #: (CMA-ES ranks a generation, a sweep learns nothing), so that ``[eval] racing`` may stop a
    #: batch's worst settings early (:mod:`lstmsearch.run.racing`); an Optuna study prunes with its
    #: own pruners.
    ranks_whole_batches = False
    #: Whether each stored row's setting is rebuilt from the row's key alone (seed, index), so that
    #: ``--repair`` evaluates the rows of a lost part again (:meth:`lost_part_batch`).
    rows_regenerable_from_key = False
    #: What becomes of a lost part's rows instead, when they are not regenerable from a key (the
    #: end of ``--repair``'s one line).
    not_regenerable_reason = "rows are not regenerable from a key"
    #: Whether a row that keeps no z has its z behind its key (stored once per generation or
    #: trial), so that a row is shown with it; a sweep leaves z out on purpose (``store_z``).
    z_kept_by_key = False
    #: The keys of the ``[strategy]`` table: key -> (types, default), as
    #: :meth:`lstmsearch.config.Checker.keys` reads them (the module's ``check`` validates the values).
    options: Dict[str, tuple] = {}

    def __init__(self, cfg, space, store, spec: Dict):
        self.cfg = cfg
        self.space = space
        self.store = store
        self.spec = spec
        self.seed = int(spec["seed"] if spec.get("seed") is not None else cfg.eval.seed)
        self.overhead_s = 0.0
        #: how the strategy's own state files are written: ``persist(fn, *args)`` calls ``fn(*args)``
        #: now, or (set by the run loop) queues it behind the rows on the writer thread, so the state
        #: never reaches the disk before the rows it was told
        self.persist = lambda fn, *args: fn(*args)

    def resume(self) -> str:
        """Reconcile with rows already stored; returns a short message (or "")."""
        return ""

    def warm_start(self, z: np.ndarray, source: str) -> str:
        """Start from ``z`` (k, d), the best rows' search vectors of another study (best first;
        see :func:`lstmsearch.search.best_z`); returns a message (or "")."""
        return ""

    def manifest_extra(self) -> Dict:
        """Entries this strategy needs in the study manifest to rebuild its rows (none by default)."""
        return {}

    @abc.abstractmethod
    def ask(self, n_max: int) -> Optional[Batch]:
        """The next batch of at most ``n_max`` settings, or None when none fits."""

    def tell(self, batch: Batch, table: pa.Table) -> None:
        """Learn from a batch's written rows."""

    def augment(self, batch: Batch, table: pa.Table, evaluate_long) -> Dict[str, np.ndarray]:
        """Extra columns for a batch's rows (e.g. nmse_long); none by default."""
        return {}

    def regenerate(self, rows: pa.Table) -> np.ndarray:
        """The settings (P, D) of stored rows, rebuilt from z (or the row's key)."""
        return self.regenerate_rows(self.cfg, self.space, self.store, rows)

    @classmethod
    def regenerate_z(cls, cfg, space, store, rows: pa.Table) -> np.ndarray:
        """The search vectors z (P, d) of stored rows, without opening the strategy's storage (from
        the z column by default)."""
        z = rows.column("z").to_pylist()
        require(all(v is not None for v in z), "these rows keep neither weights nor z; cannot rebuild them")
        return np.asarray(z, np.float64)

    @classmethod
    def regenerate_rows(cls, cfg, space, store, rows: pa.Table) -> np.ndarray:
        """The settings (P, D) of stored rows, rebuilt without opening the strategy's storage
        (``space.to_params`` of :meth:`regenerate_z` by default)."""
        return space.to_params(cls.regenerate_z(cfg, space, store, rows))

    @classmethod
    def repair_state(cls, store) -> List[str]:
        """``run --repair``, once the rows are verified: set aside the strategy's own state files
        that the stored rows must rebuild; one line per change (none by default)."""
        return []

    @classmethod
    def lost_part_batch(cls, cfg, store, slot: int, first: int, n: int) -> Tuple[Optional[Batch], int, str]:
        """The batch of a lost part's ``n`` rows from row id ``first``, written by writer ``slot``,
        rebuilt from its rows' keys (the same settings, bit for bit), and the run that wrote it:
        ``(batch, run, "")``, or ``(None, 0, why not)``. Only where :attr:`rows_regenerable_from_key`."""
        return None, 0, cls.not_regenerable_reason

    def trials_of(self, batch: Batch) -> list:
        """The units of work of a batch that other workers must know are in flight (Optuna trials)."""
        return []

    def record_heartbeats(self, trials: list) -> None:
        """Tell the shared storage that these trials are still being evaluated."""

    def recover(self, trials: list) -> str:
        """Resolve the trials a dead worker had in flight; returns a message (or "")."""
        return ""

    def range_maker(self, batch: Batch):
        """A picklable ``make(start, stop) -> settings`` that rebuilds ``batch.params[start:stop]``
        from the batch's keys, or None when the settings must be shipped as they are."""
        return None

    def close(self) -> None:
        """Release the strategy's resources (storage connections, threads)."""

    def run_stats(self) -> Dict:
        """Extra entries for this run's manifest record (storage outages, recovered trials)."""
        return {}

    def summary(self) -> str:
        """One line on the strategy's state after the run (or "")."""
        return ""
