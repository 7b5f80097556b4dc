"""What every strategy implements, and the batch it hands to the run loop.

The run loop (:mod:`lstmsearch.study`) repeats: ``ask`` a batch -> evaluate its settings in
one call -> write the rows (one atomic part file) -> ``tell`` the strategy. Because the rows
are durable before the strategy hears of them, a run killed at any point loses no written
row; on the next run :meth:`Strategy.resume` reconciles the strategy's own state (Optuna
storage, CMA-ES state file) with the rows, telling it about rows it never heard of instead
of evaluating them again, so no row is duplicated either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import pyarrow as pa

from ..errors import LstmsearchError, require


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


class Strategy:
    """Base class of optuna, cmaes and sweep (see the module doc for the protocol)."""

    name = "strategy"

    def __init__(self, cfg, space, store, spec: Dict):
        self.cfg = cfg
        self.space = space
        self.store = store
        self.spec = spec
        self.seed = int(spec["seed"] if spec.get("seed") is not None else cfg.eval.seed)

    def resume(self) -> str:
        """Reconcile with rows already stored; returns a short message (or "")."""
        return ""

    def ask(self, n_max: int) -> Optional[Batch]:
        raise NotImplementedError

    def tell(self, batch: Batch, table: pa.Table) -> None:
        pass

    def augment(self, batch: Batch, table: pa.Table, evaluate_long) -> Dict[str, np.ndarray]:
        """Extra columns for a batch's rows (e.g. nmse_long); none by default."""
        return {}

    def regenerate(self, rows: pa.Table) -> np.ndarray:
        """The settings (P, D) of stored rows, rebuilt from z (or the row's key)."""
        z = rows.column("z").to_pylist()
        require(all(v is not None for v in z), "these rows keep neither weights nor z; cannot rebuild them")
        return self.space.to_params(np.asarray(z, np.float64))

    def close(self):
        pass

    def summary(self) -> str:
        return ""


def stored_z(store, k: int, dim: int, source: str) -> np.ndarray:
    """The z of the k best rows of another study's store (for warm starts), best first."""
    import pyarrow.compute as pc

    t = store.read(columns=["z", "nmse"])
    require(t.num_rows > 0, f"warm start: {source} has no rows")
    t = t.filter(pc.is_valid(t.column("z")))
    require(t.num_rows > 0, f"warm start: {source} keeps no z vectors (a sweep over a large space?)")
    t = t.sort_by("nmse").slice(0, k)
    z = np.asarray(t.column("z").to_pylist(), np.float64)
    if z.shape[1] != dim:
        raise LstmsearchError(f"warm start: {source} searched a space of dimension {z.shape[1]}; "
                              f"this study's space has dimension {dim} (warm starts need the same space)")
    return z
