"""The run loop, shared by ``lstmsearch run``, its workers and Dask runs.

:func:`run_loop` asks the strategy for a batch, evaluates it in one
:func:`lstmsearch.evaluate` call, hands its rows to the writer thread (:mod:`.writer`: the
batch's generation state, then its part file, then the strategy's state file, in that order,
while the next batch is evaluated; small batches are gathered into one part first), then tells the strategy -- until the budget (total settings in the store, or wall
seconds of this run) is spent. Running a study again continues it: the rows already
stored count against the budget, and the strategy resumes from its own saved state (see
:mod:`lstmsearch.search.base` for why no row is lost or duplicated when a run is killed).

Time is accounted in three parts: *evaluate* (kernels, readout fit, sequence sampling),
*strategy* (Optuna ask/tell and storage, CMA-ES updates) and *I/O* (the loop's waits for the
writer thread, the manifest); the report gives the share of wall time outside ``evaluate``.
The run's manifest record adds ``writer_s``, the writer thread's own (overlapped) time.
"""

from __future__ import annotations

import platform
import uuid
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa

from ..config import DATA_DIR, StudyConfig, check_result_folder, load_study, parse_study
from ..errors import MAX_COUNT, DiskFullError, LstmsearchError, require
from ..evaluate import evaluate, solutions
from ..kernels import check_backend, compile_notice, describe_auto
from ..query import open_study
from ..search import best_z, make_strategy, strategy_class
from ..store import Store
from ..store.manifest import now, recorded_fit, storage_key, versions
from ..store.generations import GenerationStore
from ..store.best import BestRows, TopK
from ..store.rows import full_fidelity, rows_table
from . import racing as racing_mod
from .coordinator import Coordinator
from .report import Progress, RunReport
from .writer import PartGatherer, Writer


def study_config(study, budget=None, seconds=None, backend=None, out=None, storage=None, data_dir=None) -> StudyConfig:
    """The study to run, with the command line's overrides.

    The result folder: ``out`` exactly when given; else a study file's ``[study] out``, else
    ``data_dir``/NAME (``data_dir`` default ``data``); a study folder or a name under ``data_dir``
    is its own folder.
    """
    overrides = {}
    if backend is not None:
        overrides["eval.backend"] = backend
    if budget is not None:
        require(isinstance(budget, int) and not isinstance(budget, bool) and budget > 0,
                f"budget must be a positive integer, got {budget!r}")
        require(budget < MAX_COUNT, f"budget {budget} is more settings than a store can number (at most "
                                    f"{MAX_COUNT - 1}); give a smaller --budget")
        overrides["budget.settings"] = budget
    if seconds is not None:
        require(isinstance(seconds, (int, float)) and seconds > 0 and np.isfinite(seconds),
                f"seconds must be a positive number, got {seconds!r}")
        overrides["budget.seconds"] = float(seconds)
    if storage is not None:
        require(isinstance(storage, str) and storage, f"storage must be a URL, got {storage!r}")
        plain = study_config(study, budget, seconds, backend, out, data_dir=data_dir)
        require(strategy_class(plain).shared_storage, f"--storage is the Optuna storage of strategy optuna; study "
                                                    f"{plain.name} uses {plain.strategy['kind']}")
        overrides["strategy.storage"] = storage
    if isinstance(study, StudyConfig):
        if data_dir is not None and out is None:  # the folder under data_dir, unless [study] out is set
            cfg = parse_study(study.text, study.source, study.base_dir, overrides, data_dir=data_dir)
        else:
            cfg = study if not overrides else parse_study(study.text, study.source, study.base_dir, overrides)
            cfg = cfg.with_out(study.out if out is None else out)
    elif Path(study).suffix == ".toml":
        cfg = load_study(study, overrides, data_dir=DATA_DIR if data_dir is None else data_dir)
        if out is not None:
            cfg = cfg.with_out(out)
    else:  # a study folder or name: the study file text kept in its manifest
        cfg0, _ = open_study(study, DATA_DIR if data_dir is None else data_dir)
        cfg = parse_study(cfg0.text, cfg0.source, cfg0.base_dir, overrides).with_out(cfg0.out if out is None else out)
    check_backend(cfg.eval.backend)  # "cuda" without numba-cuda or a GPU: refused before any work
    check_result_folder(cfg.out)  # not a file (a manifest.json), not inside another study folder
    store = Store(cfg.out)  # a study is continued with the readout fit it recorded
    return recorded_fit(cfg, store.read_manifest()) if store.exists() and not store.manifest_problem() else cfg


def local_evaluate(cfg: StudyConfig, batch) -> pa.Table:
    """Evaluate one batch in this process (what every strategy's rows are made of)."""
    ev = cfg.eval
    return evaluate(cfg.cell, batch.params, cfg.task, n_sequences=ev.sequences, seed=ev.seed,
                    backend=ev.backend, readout=ev.readout, n_heldout=ev.heldout, ridge=ev.ridge,
                    readout_fit=ev.readout_fit)


class LocalEvaluator:
    """Evaluates batches in this process (the default; :class:`~lstmsearch.run.cluster.DaskEvaluator`
    spreads them over a cluster)."""

    def __init__(self, cfg: StudyConfig):
        self.cfg = cfg

    def bind(self, strategy) -> None:
        """The strategy whose batches come next."""

    def evaluate(self, batch) -> pa.Table:
        return local_evaluate(self.cfg, batch)

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class _Tally:
    """What a run has done so far: settings evaluated, the next row id, the best full-fidelity
    (nmse, row), whether its budget is spent, and where its time went (seconds)."""

    done0: int  # settings stored before this run (racing: settings, not rows of every rung)
    next_row: int
    best: tuple
    io_s: float
    n_run: int = 0
    complete: bool = False
    eval_s: float = 0.0
    replay_s: float = 0.0
    strategy_s: float = 0.0
    wall_s: float = 0.0
    t_start: float = field(default_factory=time.perf_counter)

    def done(self, store, strategy) -> int:
        """Settings in the study now. A strategy sharing its storage with other workers counts their
        rows too (its writes are flushed before it is told); otherwise this process is the only writer."""
        return store.count() if strategy.shared_storage else self.done0 + self.n_run

    def add(self, n: int, pieces, table) -> None:
        """Count a written and told batch of ``n`` settings: its rows (of every rung) and its best row."""
        self.n_run += n
        full_row0 = self.next_row + sum(p.table.num_rows for p in pieces[:-1])
        self.next_row += sum(p.table.num_rows for p in pieces)
        if table is not None and table.num_rows:
            nmse = table.column("nmse").to_numpy()
            i = int(np.argmin(nmse))
            if nmse[i] < self.best[0]:
                self.best = (float(nmse[i]), full_row0 + i)

    def record(self, run_entry: Dict, strategy, writer, messages: List[str]) -> None:
        """Stop the clock and put this run's settings, times and best row in its manifest record."""
        self.wall_s = wall = time.perf_counter() - self.t_start
        self.strategy_s = strategy.overhead_s + self.replay_s
        self.io_s += writer.wait_s
        run_entry.update({"settings": self.n_run, "wall_s": round(wall, 3), "evaluate_s": round(self.eval_s, 3),
                          "strategy_s": round(self.strategy_s, 3), "io_s": round(self.io_s, 3),
                          "writer_s": round(writer.busy_s, 3),
                          "outside_share": round((wall - self.eval_s) / wall, 4) if wall > 0 else 0.0,
                          "best_nmse": self.best[0], "best_row": self.best[1], "messages": messages})


def run_loop(cfg, store, manifest, messages, progress, echo, coordinator: Optional[Coordinator] = None,
             evaluator=None) -> RunReport:
    """The ask -> evaluate -> write -> tell loop, until the budget is spent.

    One loop for every way of running a study: ``coordinator`` says how this process shares it
    (alone by default; a :class:`~lstmsearch.run.workers.Worker` is one writer of several) and
    ``evaluator`` where batches are evaluated (here, or a Dask cluster). Rows are written
    before the strategy is told of them, so a kill at any point loses no written row.
    """
    coordinator = coordinator or Coordinator()
    evaluator = _evaluator(cfg, evaluator, echo)
    strategy = _start_strategy(cfg, store, coordinator, messages, echo)
    run_entry, io_s = _register_run(cfg, store, manifest, strategy, coordinator)
    topk, best = _best_so_far(cfg, store)
    bar = Progress(cfg, store, progress)
    done0 = racing_mod.settings_stored(cfg, store)  # racing: settings, not rows of every rung
    bar.show(done0, best[0])
    evaluate_long = _long_evaluator(cfg)
    evaluator.bind(strategy)
    writer = Writer()
    gather = _gatherer(cfg, store, writer, strategy, echo)
    tally = _Tally(done0, store.next_row(), best, io_s)
    try:
        while True:
            done = tally.done(store, strategy)
            if _stops(cfg, coordinator, tally, done):
                break
            room = coordinator.room(_remaining(cfg, done), cfg.budget_settings)
            if room is None:  # the rest of the budget is being evaluated by other workers
                time.sleep(0.2)
                continue
            batch = _disk_guard(strategy.ask, room)
            if batch is None:
                tally.complete = cfg.budget_settings is not None
                messages.append(f"{strategy.name}: the next batch does not fit the remaining budget "
                                f"({room} settings); stopped")
                break
            if batch.stored is not None:  # rows written by a killed run: tell, do not re-evaluate
                _replay(cfg, strategy, batch, tally)
                continue
            coordinator.in_flight(batch)
            t0 = time.perf_counter()
            pieces, table, told, extra_cols = _evaluate(cfg, batch, evaluator, strategy, evaluate_long)
            wall = time.perf_counter() - t0
            tally.eval_s += wall
            _hand_over(gather, writer, strategy,
                       (batch, pieces, tally.next_row, _keeps(topk, pieces, table), extra_cols, wall, run_entry["run"]))
            _disk_guard(strategy.tell, batch, told)
            coordinator.in_flight(None)
            tally.add(len(batch), pieces, table)
            bar.show(tally.done(store, strategy), tally.best[0], added=len(batch))
    finally:
        try:
            _drain(gather, writer)
        finally:
            bar.close()
            tally.record(run_entry, strategy, writer, messages)
            tally.io_s += _close_run(store, manifest, strategy, coordinator, run_entry, echo)
    summary = strategy.summary()
    if summary:
        messages.append(summary)
    return RunReport.build(cfg, store, settings=tally.n_run, complete=tally.complete, best=tally.best,
                           wall_s=tally.wall_s, evaluate_s=tally.eval_s, strategy_s=tally.strategy_s, io_s=tally.io_s,
                           messages=messages)


def _evaluator(cfg, evaluator, echo):
    """Where batches are evaluated: ``evaluator``, else this process (a :class:`LocalEvaluator`,
    after one line when its first batch will compile a kernel). Racing runs in this process only."""
    require(cfg.eval.racing is None or evaluator is None,
            "[eval] racing runs in this process: remove --dask, or remove racing from the study file")
    if evaluator is None:  # the first batch compiles the kernel here when the disk cache lacks it: say so first
        say_compile(cfg.cell, cfg.eval.backend, echo)
    return evaluator or LocalEvaluator(cfg)


def _gatherer(cfg, store, writer: Writer, strategy, echo=print) -> PartGatherer:
    """Gathers evaluated batches into parts for ``writer`` (:func:`_write_batches`); the strategy's
    state files go behind the rows they were told (``strategy.persist``)."""
    gens = GenerationStore(store.root)
    kept = _kept_rows(cfg, store, echo)
    gather = PartGatherer(writer, lambda jobs: _write_batches(cfg, store, gens, kept, strategy.name, jobs),
                          cfg.max_part_rows)
    strategy.persist = gather.persist
    return gather


def _stops(cfg, coordinator: Coordinator, tally: _Tally, done: int) -> bool:
    """Whether the run ends before asking another batch: its budget of settings is spent (then the
    tally says it is complete), its seconds are, or a stop was requested."""
    if cfg.budget_settings is not None and done >= cfg.budget_settings:
        tally.complete = True
        return True
    out_of_time = cfg.budget_seconds is not None and time.perf_counter() - tally.t_start >= cfg.budget_seconds
    return out_of_time or coordinator.stop_requested()


def _remaining(cfg, done: int) -> int:
    """Settings left in the budget (no limit for a budget of seconds only)."""
    return (cfg.budget_settings - done) if cfg.budget_settings is not None else 1 << 62


def _replay(cfg, strategy, batch, tally: _Tally) -> None:
    """Tell the strategy a batch's rows that a killed run had written (racing: their ranks)."""
    t0 = time.perf_counter()
    strategy.tell(batch, batch.stored if cfg.eval.racing is None else racing_mod.replay(cfg, batch.stored))
    tally.replay_s += time.perf_counter() - t0


def _evaluate(cfg, batch, evaluator, strategy, evaluate_long):
    """Evaluate one batch: ``(pieces, table, told, extra_cols)``. Without racing one piece, every
    setting at full fidelity, told its rows (with the strategy's ``nmse_long``). With racing
    (successive halving) every rung's rows are stored and the strategy is told ranks; ``table`` is
    the full-fidelity rows (None when no setting reached full fidelity)."""
    racing = cfg.eval.racing
    if racing is None:
        table = evaluator.evaluate(batch)
        pieces = [racing_mod.Piece(None, batch, table)]
    else:
        pieces, told = racing_mod.race(cfg, batch, evaluator.evaluate)
        table = pieces[-1].table if pieces[-1].rung.fidelity == racing.full else None
    extra_cols = strategy.augment(pieces[-1].batch, table, evaluate_long) if table is not None else {}
    if racing is None:
        told = table if "nmse_long" not in extra_cols else table.append_column(
            "nmse_long", pa.array(extra_cols["nmse_long"], pa.float64()))
    return pieces, table, told, extra_cols


def _keeps(topk: TopK, pieces, table) -> list:
    """Which rows of each piece keep their full weights: only full-fidelity rows (``table``) can, the
    best so far (``topk``); the rows of lower rungs never do."""
    return [topk.keep(p.table.column("nmse").to_numpy()) if p.table is table else np.zeros(p.table.num_rows, bool)
            for p in pieces]


def _hand_over(gather: PartGatherer, writer: Writer, strategy, job: tuple) -> None:
    """An evaluated batch to the writer thread (``job``: batch, pieces, row0, keeps, extra_cols, wall,
    run, as :func:`_write_batches` reads it); written at once for a strategy that shares its storage,
    whose other workers read the rows of told trials."""
    gather.add(job, sum(p.table.num_rows for p in job[1]))
    if strategy.shared_storage:
        gather.flush()
        writer.flush()


def _drain(gather: PartGatherer, writer: Writer) -> None:
    """Every evaluated batch to the writer, also when the loop failed, and the writer closed once
    they are written (or its error raised)."""
    try:
        gather.flush()
    finally:
        writer.close()


def say_compile(cell, backend: str, echo) -> None:
    """Echo one line when simulating ``cell`` on ``backend`` in this process will first compile a
    kernel that Numba's disk cache does not hold (seconds of a standing progress bar otherwise);
    nothing when it is cached. Not a study message: it is not kept in the manifest."""
    line = compile_notice(cell, backend)
    if line:
        echo(line)


def _kept_rows(cfg, store, echo) -> Optional[BestRows]:
    """Where the best ``keep_weights`` rows keep their weights: the writer's file under ``best/``
    (None: ``keep_weights`` is 0, or "all", which keeps every row's weights in the parts), first
    made to hold exactly the best k rows on disk (a killed run may have left some out)."""
    k = cfg.keep_weights
    if not k:
        return None
    for line in reconcile_best(cfg, store):
        echo(line)
    return store.best_rows(k, cfg.cell.n_params, cfg.cell.n_readout)


def reconcile_best(cfg, store) -> List[str]:
    """``best/`` made to hold exactly the best ``keep_weights`` rows on disk, the weights of rows no
    usable file holds rebuilt from their keys (:meth:`~lstmsearch.store.Store.reconcile_best`)."""
    import pyarrow.dataset as ds

    from ..query import settings_of

    def settings(rows):  # the full settings of stored rows (a killed run left them out of best/)
        return settings_of(cfg, store, store.read(filter=ds.field("row").isin(pa.array(rows, pa.int64()))))

    k = cfg.keep_weights
    return store.reconcile_best(k, cfg.cell.n_params, cfg.cell.n_readout, settings, full_fidelity(cfg)) if k else []


def _write_batches(cfg, store, gens, kept, strategy_name, jobs) -> None:
    """Gathered batches on disk (on the writer thread): their generation state first, in one file,
    then their rows, in one part (a raced batch: the rows of every rung, cheapest first;
    ``extra_cols`` go to the last), then the best rows' weights (``kept``, a :class:`BestRows`,
    when the parts do not hold them). ``jobs``: (batch, pieces, row0, keeps, extra_cols, wall, run)."""
    states = [job[0].state for job in jobs if job[0].state is not None]
    state_file = gens.write(states[0] if len(states) == 1 else pa.concat_tables(states)) if states else None
    tables = []
    for batch, pieces, row0, keeps, extra_cols, wall, run in jobs:
        n_rows = sum(p.table.num_rows for p in pieces)
        for k, (p, keep) in enumerate(zip(pieces, keeps)):
            if kept is not None and keep.any():
                kept.offer(row0 + np.flatnonzero(keep), p.table.column("nmse").to_numpy()[keep],
                           solutions(p.table.filter(pa.array(keep)), p.batch.params[keep], cfg.cell))
            tables.append(rows_table(cfg, strategy_name, p.batch, p.table, row0,
                                     keep if kept is None else np.zeros_like(keep),
                                     extra_cols if k == len(pieces) - 1 else {},
                                     wall if len(pieces) == 1 else wall * p.table.num_rows / n_rows, run,
                                     rung=None if p.rung is None else p.rung.key()))
            row0 += p.table.num_rows
    # the part, then the best rows' file (it never names a row that is not on disk), then the manifest
    store.append(tables[0] if len(tables) == 1 else pa.concat_tables(tables), best=kept, files=[state_file])


def _start_strategy(cfg, store, coordinator: Coordinator, messages: List[str], echo):
    """The study's strategy, reconciled with the stored rows and warm-started; the start messages echoed."""
    coordinator.prepare(store, messages)
    if hasattr(cfg.space_obj, "describe_code"):  # a template space runs the user's code: say so
        messages.append(cfg.space_obj.describe_code())
    messages.extend(store.quarantine())
    strategy = make_strategy(cfg, cfg.space_obj, store, echo=echo, **coordinator.strategy_options())
    coordinator.start(strategy, messages)
    if cfg.warm_start:
        other_cfg, other = open_study(cfg.warm_start["study"])
        z = best_z(other_cfg, other, cfg.warm_start["k"], strategy.space.dim, cfg.warm_start["study"])
        msg = strategy.warm_start(z, cfg.warm_start["study"])
        if msg:
            messages.append(msg)
    if cfg.eval.backend == "auto":
        messages.append(describe_auto())
    for m in messages:
        echo(m)
    return strategy


def _register_run(cfg, store, manifest, strategy, coordinator: Coordinator):
    """This run's record, added to the manifest; returns it and the seconds that took."""
    run_entry = {"id": uuid.uuid4().hex, "start": now(), "backend": cfg.eval.backend, "host": platform.node(),
                 "rows_before": store.count(), "budget_settings": cfg.budget_settings,
                 "budget_seconds": cfg.budget_seconds, "versions": versions(), **coordinator.run_entry()}
    extra = strategy.manifest_extra()

    def register(m):
        m.update(extra)
        if store.count() == 0 or "optuna_storage" not in m:  # the storage this study's trials are in
            m["optuna_storage"] = storage_key(cfg)
        run_entry["run"] = len(m["runs"])
        if not m["runs"]:
            m["versions"] = run_entry["versions"]
        m["runs"].append(run_entry)
        return m

    t_io = time.perf_counter()
    coordinator.record(store, manifest, register)
    store.run_id = run_entry["id"]  # recorded: this run's parts carry it (an unrecorded part is adopted by it)
    return run_entry, time.perf_counter() - t_io


def _close_run(store, manifest, strategy, coordinator: Coordinator, run_entry: Dict, echo) -> float:
    """Record the finished run in the manifest, stop the coordinator and the strategy; returns
    the seconds the manifest write took."""
    run_entry.update({"end": now(), "rows_after": store.count(), **strategy.run_stats()})
    t_io = time.perf_counter()
    try:
        coordinator.finish(store, manifest, run_entry)
    except LstmsearchError as exc:  # e.g. the disk is full: do not hide the error that got us here
        echo(f"could not record the end of this run in the manifest: {exc}")
    io_s = time.perf_counter() - t_io
    coordinator.stop()
    strategy.close()
    return io_s


def _best_so_far(cfg, store):
    """(which rows keep full weights, (best nmse, its row)) from the rows already stored."""
    prev = store.read(columns=["nmse"], filter=full_fidelity(cfg)) if store.count() else None  # racing: full rows
    nmse_prev = prev.column("nmse").to_numpy() if prev is not None else np.empty(0)
    best = (float(np.min(nmse_prev)), int(prev.column("row")[int(np.argmin(nmse_prev))].as_py())) \
        if nmse_prev.size else (np.inf, None)
    return TopK(cfg.keep_weights, nmse_prev), best


def _long_evaluator(cfg):
    """``evaluate_long(settings, length)``: held-out nmse at another length with the given readout."""
    ev = cfg.eval

    def evaluate_long(settings, length):
        t = evaluate(cfg.cell, settings, cfg.task.with_length(length), n_sequences=ev.heldout, seed=ev.seed,
                     backend=ev.backend, readout="given")
        return t.column("nmse").to_numpy()

    return evaluate_long


def _disk_guard(fn, *args):
    """Call a strategy; a full disk under its storage (Optuna journal, CMA-ES state) becomes one clear error."""
    import errno

    try:
        return fn(*args)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"no space left on the device while the strategy saved its state ({exc}); every part "
                                "written before is intact: free some space and run the study again to continue") from exc
        raise
