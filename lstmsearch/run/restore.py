"""Repair a study's store: quarantine what fails verification, re-evaluate what was lost.

:func:`repair_store` is ``lstmsearch check STUDY --repair`` and the first step of
``lstmsearch run STUDY --repair``. It verifies every part (:meth:`~lstmsearch.store.Store.check`),
moves the damaged ones to ``rows/damaged/``, then re-evaluates the rows of each quarantined part
whose settings can be regenerated (a strategy with
:attr:`~lstmsearch.search.base.Strategy.rows_regenerable_from_key`), writing them back under the
part's own name and row ids:

- **sweep** rows are regenerable from their key (seed, global setting index). A lost part's
  indices follow from its neighbours in the same writer slot (a sweep writes its chunks in order,
  its row ids and setting indices advancing together; a part of several chunks gives each row its
  own chunk); the settings are rebuilt from the key and evaluated again, so every value is bit for
  bit what was first stored (only ``time`` and ``wall_s`` differ). The best rows' weights go to
  ``best/``, rebuilt from all the rows, not into the part. A part whose indices a later run already
  evaluated again is left as it is.
- **optuna** rows are not regenerable from a key here: the next run re-queues the parameters of
  the COMPLETE trials that lost their rows (they are kept in the Optuna storage).
- **cmaes** rows are not regenerable from a key: ``run --repair`` replays the optimizer from the
  stored generations and evaluates a lost generation again (see
  :meth:`~lstmsearch.search.cma.CmaStrategy.repair_state`).

Each strategy says which of these it is (:attr:`~lstmsearch.search.base.Strategy.not_regenerable_reason`,
:meth:`~lstmsearch.search.base.Strategy.lost_part_batch`); nothing here asks its name.
"""

from __future__ import annotations

import time
from typing import List

import numpy as np

from ..search import strategy_class
from ..store import Store
from ..store.rows import rows_table
from ..store.schema import part_slot_first
from .loop import local_evaluate, reconcile_best


def repair_store(cfg, store: Store) -> List[str]:
    """Verify every part, quarantine the damaged ones, re-evaluate the lost rows that can be
    regenerated, then make ``best/`` hold exactly the best ``keep_weights`` rows on disk (rebuilt
    from the rows: a damaged or foreign best file is replaced), and record a changed Optuna journal
    afresh (the run that follows checks its trials against the rows); one line per finding. The
    caller holds the study's run lock."""
    lines = store.quarantine_checked(store.check())
    lines.extend(restore_quarantined(cfg, store))
    lines.extend(reconcile_best(cfg, Store(store.root)))
    journal = store.journal_problem()
    if journal and not journal.startswith("ok") and journal != "missing":
        store.record_journal()  # the rows are the truth: the run's start checks the trials against them
        lines.append(f"the Optuna journal was {journal.split(' (')[0]}; recorded afresh (a run cuts a record "
                     "that does not replay and rebuilds from the rows the trials that do not match them)")
    return lines


def restore_quarantined(cfg, store: Store) -> List[str]:
    """Re-evaluate the rows of the quarantined parts (``rows/damaged/``) that are not back in the
    store; returns one line on what was restored and what could not be (see the module doc)."""
    todo = {name: n for name, n in store.quarantined().items() if not (store.rows_dir / name).exists()}
    if not todo:
        return []
    strategy = strategy_class(cfg)
    total = sum(n or 0 for n in todo.values())
    if not strategy.rows_regenerable_from_key:
        return [f"{total} row(s) of {len(todo)} quarantined part(s) were not re-evaluated: "
                + strategy.not_regenerable_reason]
    restored, left = 0, []
    for name, n in todo.items():
        why = _restore_part(cfg, store, strategy, name, n)
        if why:
            left.append(f"{name}: {why}")
        else:
            restored += n
    line = (f"re-evaluated {restored} row(s) of {len(todo) - len(left)} quarantined part(s) from their "
            f"{strategy.name} keys")
    if left:
        line += f"; {len(left)} part(s) not re-evaluated: " + "; ".join(left)
    return [line]


def _restore_part(cfg, store: Store, strategy, name: str, n) -> str:
    """Re-evaluate one quarantined part under its own name, its settings rebuilt from their keys by
    ``strategy`` (a Strategy class); returns why not ("" when done)."""
    key = part_slot_first(name)
    if key is None or not n:
        return "its row count is unknown (not in the manifest, footer unreadable)"
    slot, first = key
    batch, run, why = strategy.lost_part_batch(cfg, store, slot, first, n)
    if batch is None:
        return why
    t0 = time.perf_counter()
    table = local_evaluate(cfg, batch)
    wall = time.perf_counter() - t0
    # keep_weights "all": every row keeps its weights in the parts; else best/ keeps them (reconcile_best)
    keep = np.full(table.num_rows, cfg.keep_weights is None)
    writer = Store(store.root, slot=slot)
    writer.identity = store.study_identity()
    writer.append(rows_table(cfg, strategy.name, batch, table, first, keep, {}, wall, run))
    return ""
