r"""Racing: successive halving of every batch (``[eval] racing``), off by default.

Most settings of a blind search are hopeless after a few short sequences. With
``[eval] racing = { rungs = [[s_0, n_0], ..., [s_{R-1}, n_{R-1}]], keep = q }`` each batch a
strategy asks (a CMA-ES generation, a sweep chunk) of P settings is raced through R + 1 rungs:

* rung 0 scores all P settings at the cheapest fidelity: the readout fitted on s_0 training
  sequences of the one length n_0 and scored on s_0 held-out ones (``evaluate`` of the task
  ``with_length(n_0)``);
* the best ``P_{r+1} = ceil(q P_r)`` settings of rung r (smallest nmse there, ties by index;
  settings with a non-finite error never go on) are scored at rung r + 1;
* rung R is **full fidelity**: the study's own ``[eval]`` scoring (sequences, heldout, every
  length of ``[task]``), the very :func:`lstmsearch.evaluate` call a study without racing makes.

This is the successive-halving rule of Jamieson & Talwalkar (2016), "Non-stochastic Best Arm
Identification and Hyperparameter Optimization" (AISTATS), with eta = 1 / q, as used inside
each bracket of Hyperband (Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar 2017, "Hyperband: A
Novel Bandit-Based Approach to Hyperparameter Optimization", JMLR 18): one bracket per batch,
the budget being sequences x length instead of training epochs.

**What the strategy is told.** CMA-ES ranks its population, so the values it is told must rank
the settings comparably although they were scored at different fidelities. A setting stopped at
rung r_i with nmse e_i there is told

.. math::

    v_i = \mathrm{objective}(e_i) + G\,(R - r_i), \qquad G = 100,

``objective`` being log10 of the nmse capped to [-30, 6] (:func:`lstmsearch.search.base.objective`),
so G exceeds its range. Sorting by v sorts by the rung reached (highest first), then by the nmse at
that rung: every promoted setting ranks above every setting stopped at a lower rung, ranked by its
full-fidelity value, and the settings stopped at one rung keep their order there. Values of
different rungs are never compared as numbers, only as ranks, which is all a rank-based strategy
(CMA-ES's weighted recombination) uses. A sweep learns nothing and is told nothing.

**Rows.** Every evaluation is a row: a promoted setting has one row per rung it reached (same
``batch`` and ``index``, so the same setting, rebuilt from the same key), each with its
``fidelity`` (rung index, R = full), ``sequences``, ``heldout`` and ``length``. Only full-fidelity
rows count for ``top``, the best row, the verdict and the run report
(:func:`lstmsearch.store.rows.full_fidelity`). The budget counts settings (rung-0 rows).

Optuna studies do not race: their pruners (median, successive halving, Hyperband, Wilcoxon)
are the ecosystem's version of this for trials that report intermediate values, and an Optuna
trial here evaluates one region in one call, with nothing intermediate to prune.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..evaluate import evaluate
from ..search.base import Batch, objective

#: Gap between rungs in the told values: more than the range of ``objective`` (-30 .. 6).
GAP = 100.0


@dataclass(frozen=True)
class Rung:
    """One rung: its fidelity (index), sequences (training = held-out at low rungs) and length."""

    fidelity: int
    sequences: int
    heldout: int
    length: int

    def key(self) -> tuple:
        """(fidelity, sequences, heldout, length): what a row records of its rung."""
        return (self.fidelity, self.sequences, self.heldout, self.length)


@dataclass
class Piece:
    """The rows of one rung of a raced batch: the settings at ``positions`` of the batch."""

    rung: Rung
    batch: Batch
    table: pa.Table


def rungs(cfg) -> List[Rung]:
    """The rungs of ``cfg``'s racing, cheapest first; the last is full fidelity."""
    ev = cfg.eval
    low = [Rung(i, s, s, n) for i, (s, n) in enumerate(ev.racing.rungs)]
    return low + [Rung(len(low), ev.sequences, ev.heldout, cfg.task.length)]


def promote(nmse: np.ndarray, keep: float) -> np.ndarray:
    """Positions (sorted) of the best ``ceil(keep * len(nmse))`` finite values, ties by position."""
    nmse = np.asarray(nmse, np.float64)
    n = min(int(math.ceil(keep * nmse.size)), int(np.isfinite(nmse).sum()))
    return np.sort(np.argsort(nmse, kind="stable")[:n])


def told_values(fidelity: np.ndarray, nmse: np.ndarray, full: int) -> np.ndarray:
    """``objective(nmse) + GAP * (full - fidelity)``: the values a strategy is told (module doc)."""
    return objective(nmse) + GAP * (full - np.asarray(fidelity, np.float64))


def sub_batch(batch: Batch, positions: np.ndarray) -> Batch:
    """The settings at ``positions`` of a batch, with their keys (no generation state: it is
    written once, with the batch)."""
    take = (lambda a: None if a is None else a[positions])
    return Batch(params=batch.params[positions], batch=batch.batch[positions], index=batch.index[positions],
                 z=take(batch.z), scale=take(batch.scale), key_seed=take(batch.key_seed),
                 key_index=take(batch.key_index), info=batch.info)


def evaluate_rung(cfg, rung: Rung, params) -> pa.Table:
    """A low rung's scores: the task at the rung's one length, ``rung.sequences`` training and
    held-out sequences, the study's seed, backend, readout and ridge."""
    ev = cfg.eval
    return evaluate(cfg.cell, params, cfg.task.with_length(rung.length), n_sequences=rung.sequences, seed=ev.seed,
                    backend=ev.backend, readout=ev.readout, n_heldout=rung.heldout, ridge=ev.ridge,
                    readout_fit=ev.readout_fit)


def race(cfg, batch: Batch, evaluate_full: Callable[[Batch], pa.Table]):
    """Race one batch through the rungs; returns (pieces, told) where ``told`` has one row per
    setting of the batch (``nmse`` at the highest rung it reached, ``fidelity``, ``told``: the
    value for the strategy). ``evaluate_full(batch)`` scores at full fidelity (the evaluator)."""
    ladder = rungs(cfg)
    full = ladder[-1].fidelity
    P = len(batch)
    reached = np.zeros(P, np.int32)
    best = np.full(P, np.inf)
    pieces = []
    positions = np.arange(P)
    for rung in ladder:
        sub = sub_batch(batch, positions) if positions.size != P else batch
        table = evaluate_full(sub) if rung.fidelity == full else evaluate_rung(cfg, rung, sub.params)
        pieces.append(Piece(rung, sub, table))
        nmse = table.column("nmse").to_numpy()
        reached[positions] = rung.fidelity
        best[positions] = nmse
        if rung.fidelity == full:
            break
        positions = positions[promote(nmse, cfg.eval.racing.keep)]
        if positions.size == 0:  # nothing finite to promote: the batch stops here
            break
    told = pa.table({"nmse": pa.array(best, pa.float64()), "fidelity": pa.array(reached, pa.int32()),
                     "told": pa.array(told_values(reached, best, full), pa.float64())})
    return pieces, told


def replay(cfg, stored: pa.Table) -> pa.Table:
    """The told table of a batch from its stored rows of every rung (a resumed run tells them
    instead of evaluating again): per setting, the row of the highest rung it reached, by index."""
    full = cfg.eval.racing.full
    fid = stored.column("fidelity").to_numpy()
    index = stored.column("index").to_numpy()
    order = np.lexsort((-fid, index))  # by index, highest rung first
    first = np.ones(order.size, bool)
    first[1:] = index[order][1:] != index[order][:-1]
    top = stored.take(pa.array(order[first]))
    f = top.column("fidelity").to_numpy()
    nmse = top.column("nmse").to_numpy()
    return pa.table({"nmse": pa.array(nmse, pa.float64()), "fidelity": pa.array(f, pa.int32()),
                     "told": pa.array(told_values(f, nmse, full), pa.float64())})


def settings_stored(cfg, store) -> int:
    """Settings in the store: its rows, or, racing, its rung-0 rows (the budget counts settings)."""
    if cfg.eval.racing is None:
        return store.count()
    if not store.count():
        return 0
    return store.read(columns=["fidelity"], filter=pc.field("fidelity") == 0).num_rows


__all__ = ["GAP", "Piece", "Rung", "promote", "race", "replay", "rungs", "settings_stored",
           "sub_batch", "told_values"]
