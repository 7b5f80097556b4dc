"""Repair a study's store: quarantine what fails verification, re-evaluate what was lost.

:func:`repair_store` is ``lstmsearch check STUDY --repair`` and the first step of
``lstmsearch run STUDY --repair``. It verifies every part (:meth:`~lstmsearch.store.Store.check`),
moves the damaged ones to ``rows/damaged/``, then re-evaluates the rows of each quarantined part
whose settings can be regenerated, writing them back under the part's own name and row ids:

- **sweep** rows are regenerable from their key (seed, global setting index). A lost part's
  indices follow from its neighbours in the same writer slot (a sweep writes one chunk per part,
  its row ids and setting indices advancing together); the settings are rebuilt from the key and
  evaluated again, so every value is bit for bit what was first stored (only ``time`` and
  ``wall_s`` differ; which rows keep their full weights is decided against the rows stored now).
  A part whose indices a later run already evaluated again is left as it is.
- **optuna** rows are not regenerable from a key here: the next run re-queues the parameters of
  the COMPLETE trials that lost their rows (they are kept in the Optuna storage).
- **cmaes** rows are not regenerable from a key: ``run --repair`` replays the optimizer from the
  stored generations and evaluates a lost generation again (see :func:`repair_cma_state`).
"""

from __future__ import annotations

import time
from typing import List

import numpy as np
import pyarrow.dataset as ds

from ..search.sweep import SweepStrategy
from ..store import Store
from ..store.parts import part_slot_first
from ..store.rows import TopK, rows_table
from .loop import local_evaluate

#: What ``--repair`` does for the rows of quarantined parts of strategies without a key
NOT_REGENERABLE = {
    "optuna": "optuna rows are not regenerable from a key: the next run re-queues their trials' parameters "
              "(kept in the Optuna storage)",
    "cmaes": "cmaes rows are not regenerable from a key: lstmsearch run STUDY --repair replays CMA-ES from the "
             "stored generations and evaluates the lost ones again",
}


def repair_store(cfg, store: Store) -> List[str]:
    """Verify every part, quarantine the damaged ones, re-evaluate the lost rows that can be
    regenerated; one line per finding. The caller holds the study's run lock."""
    lines = store.quarantine_checked(store.check())
    lines.extend(restore_quarantined(cfg, store))
    return lines


def restore_quarantined(cfg, store: Store) -> List[str]:
    """Re-evaluate the rows of the quarantined parts (``rows/damaged/``) that are not back in the
    store; returns one line on what was restored and what could not be (see the module doc)."""
    todo = {name: n for name, n in store.quarantined().items() if not (store.rows_dir / name).exists()}
    if not todo:
        return []
    kind = cfg.strategy["kind"]
    total = sum(n or 0 for n in todo.values())
    if kind != "sweep":
        return [f"{total} row(s) of {len(todo)} quarantined part(s) were not re-evaluated: "
                + NOT_REGENERABLE.get(kind, f"{kind} rows are not regenerable")]
    restored, left = 0, []
    for name, n in todo.items():
        why = _restore_sweep_part(cfg, store, name, n)
        if why:
            left.append(f"{name}: {why}")
        else:
            restored += n
    line = f"re-evaluated {restored} row(s) of {len(todo) - len(left)} quarantined part(s) from their sweep keys"
    if left:
        line += f"; {len(left)} part(s) not re-evaluated: " + "; ".join(left)
    return [line]


def _restore_sweep_part(cfg, store: Store, name: str, n) -> str:
    """Re-evaluate one quarantined sweep part under its own name; returns why not ("" when done)."""
    key = part_slot_first(name)
    if key is None or not n:
        return "its row count is unknown (not in the manifest, footer unreadable)"
    slot, first = key
    if slot != 0:
        return "a sweep is written by writer slot 0 only"
    near = store.read(columns=["row", "batch", "index", "run", "strategy"],
                      filter=(ds.field("row") >= first - 1) & (ds.field("row") <= first + n))
    rows = dict(zip(near.column("row").to_pylist(), near.to_pylist()))
    if any(r in rows for r in range(first, first + n)):
        return "its row ids are in use by other rows"
    prev, nxt = rows.get(first - 1), rows.get(first + n)
    if prev is not None and prev["strategy"] == "sweep":
        index0, chunk, run = prev["index"] + 1, prev["batch"] + 1, prev["run"]
    elif prev is None and first == 0:  # the study's first part
        index0, chunk, run = 0, 0, nxt["run"] if nxt else 0
    else:
        return "no stored neighbour tells its setting indices"
    index = np.arange(index0, index0 + n, dtype=np.int64)
    taken = store.read(columns=["index"], filter=(ds.field("strategy") == "sweep") & ds.field("index").isin(index))
    if taken.num_rows == n:
        return "a later run evaluated its settings again already"
    if taken.num_rows or (nxt is not None and (nxt["index"], nxt["batch"]) != (index0 + n, chunk + 1)):
        return "its neighbours' setting indices do not bracket it"
    batch = SweepStrategy.of_store(cfg, cfg.space_obj, store).batch_at(index, chunk)
    t0 = time.perf_counter()
    table = local_evaluate(cfg, batch)
    wall = time.perf_counter() - t0
    nmse = store.read(columns=["nmse"]).column("nmse").to_numpy()
    keep = TopK(cfg.keep_weights, nmse).keep(table.column("nmse").to_numpy())
    writer = Store(store.root, slot=slot)
    writer.identity = store.study_identity()
    writer.append(rows_table(cfg, "sweep", batch, table, first, keep, {}, wall, run))
    return ""


def repair_cma_state(store: Store) -> List[str]:
    """``run --repair`` on a cmaes study: set the optimizer's state file aside, so that the run
    replays CMA-ES from generation 0, telling each stored generation its stored rows and
    evaluating again a generation whose rows were lost (the same population, bit for bit)."""
    from ..search.cma import STATE as CMA_STATE  # here: cmaes imports scipy.stats, a second at start-up

    path = store.root / CMA_STATE
    if not path.is_file():
        return []
    kept = path.with_name(f"{CMA_STATE}.before-repair-{time.strftime('%Y%m%dT%H%M%S')}")
    path.replace(kept)
    return [f"--repair: set the CMA-ES state aside as {kept.name}; CMA-ES is replayed from the stored generations "
            "(rows told, not evaluated again; a generation without rows is evaluated again)"]
