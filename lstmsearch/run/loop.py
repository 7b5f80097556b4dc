"""Running a study, and finding and reading a study's results.

:func:`run_study` is the loop behind ``lstmsearch run``: ask the strategy for a batch,
evaluate it in one :func:`lstmsearch.evaluate` call, write its rows as one atomic part
file, then tell the strategy -- until the budget (total settings in the store, or wall
seconds of this run) is spent. Running a study again continues it: the rows already
stored count against the budget, and the strategy resumes from its own saved state (see
:mod:`lstmsearch.search.base` for why no row is lost or duplicated when a run is killed).

Time is accounted in three parts: *evaluate* (kernels, readout fit, sequence sampling),
*strategy* (Optuna ask/tell and storage, CMA-ES updates) and *I/O* (Parquet writes,
manifest); the report gives the share of wall time outside ``evaluate``.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..config import DATA_DIR, StudyConfig, load_study, parse_study
from ..errors import DiskFullError, LstmsearchError, require
from ..evaluate import evaluate
from ..kernels import check_backend, describe_auto
from ..query import open_study
from ..search import make_strategy, strategy_class
from ..store.manifest import now, replace_run, storage_key, versions
from ..store.rows import TopK, rows_table
from .report import RunReport


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
            cfg.out = study.out if out is None else Path(out)
    elif Path(study).suffix == ".toml":
        cfg = load_study(study, overrides, data_dir=DATA_DIR if data_dir is None else data_dir)
        if out is not None:
            cfg.out = Path(out)
    else:  # a study folder or name: the study file text kept in its manifest
        cfg0, _ = open_study(study, DATA_DIR if data_dir is None else data_dir)
        cfg = parse_study(cfg0.text, cfg0.source, cfg0.base_dir, overrides)
        cfg.out = cfg0.out if out is None else Path(out)
    check_backend(cfg.eval.backend)  # "cuda" without numba-cuda or a GPU: refused before any work
    return cfg


def local_evaluate(cfg: StudyConfig, batch) -> pa.Table:
    """Evaluate one batch in this process (what every strategy's rows are made of)."""
    ev = cfg.eval
    return evaluate(cfg.cell, batch.params, cfg.task, n_sequences=ev.sequences, seed=ev.seed,
                    backend=ev.backend, readout=ev.readout, n_heldout=ev.heldout, ridge=ev.ridge)


def run_loop(cfg, store, manifest, messages, progress, echo, worker=None, evaluator=None) -> RunReport:
    """The ask -> evaluate -> write -> tell loop, for a single run or for one worker.

    ``worker`` (a :class:`lstmsearch.run.workers.Worker`) makes this process one of several
    writers: its rows get its slot's ids, it does not write the manifest's run list under
    the run lock but registers its run through :meth:`Store.update_manifest`, it takes the
    other workers' batches in flight into account for the budget, and it leaves the
    recovery of dead workers' trials to heartbeats.
    """
    if worker is None:
        n_tmp = store.clean_temporaries()
        if n_tmp:
            messages.append(f"removed {n_tmp} unfinished temporary part file(s) of a killed run")
    messages.extend(store.quarantine())
    space = cfg.space_obj
    strategy = make_strategy(cfg, space, store, echo=echo, **(worker.strategy_options() if worker else {}))
    if worker is None:
        msg = strategy.resume()
        if msg:
            messages.append(msg)
    else:
        worker.start(strategy)
    if cfg.warm_start:
        _, other = open_study(cfg.warm_start["study"])
        msg = strategy.warm_start(other, cfg.warm_start["k"], cfg.warm_start["study"])
        if msg:
            messages.append(msg)
    if cfg.eval.backend == "auto":
        messages.append(describe_auto())
    for m in messages:
        echo(m)

    run_entry = {"start": now(), "backend": cfg.eval.backend, "host": platform.node(),
                 "rows_before": store.count(), "budget_settings": cfg.budget_settings,
                 "budget_seconds": cfg.budget_seconds, "versions": versions()}
    if worker is not None:
        import os

        run_entry.update({"worker": store.slot, "pid": os.getpid(),
                          "supervisor": os.environ.get("LSTMSEARCH_SUPERVISOR")})
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
    if worker is None:
        store.write_manifest(register(manifest))
    else:
        store.update_manifest(register)
    io_s = time.perf_counter() - t_io
    run_no = run_entry["run"]

    prev = store.read(columns=["nmse"]) if store.count() else None
    nmse_prev = prev.column("nmse").to_numpy() if prev is not None else np.empty(0)
    topk = TopK(cfg.keep_weights, nmse_prev)
    best = (float(np.min(nmse_prev)), int(prev.column("row")[int(np.argmin(nmse_prev))].as_py())) \
        if nmse_prev.size else (np.inf, None)

    ev = cfg.eval
    target = cfg.budget_settings
    from tqdm.auto import tqdm

    bar = tqdm(total=target, initial=min(store.count(), target or 0), unit="settings", unit_scale=True,
               disable=not progress, dynamic_ncols=True, desc=cfg.name)
    bar.set_postfix_str(f"best nmse {best[0]:.3g}")

    def evaluate_long(settings, length):
        t = evaluate(cfg.cell, settings, cfg.task.with_length(length), n_sequences=ev.heldout, seed=ev.seed,
                     backend=ev.backend, readout="given")
        return t.column("nmse").to_numpy()

    if evaluator is not None:
        evaluator.bind(strategy)
    run_eval = evaluator.evaluate if evaluator is not None else (lambda b: local_evaluate(cfg, b))
    t_start = time.perf_counter()
    eval_s = 0.0
    n_run = 0
    strategy_extra_s = 0.0
    complete = False
    try:
        while True:
            done = store.count()
            if target is not None and done >= target:
                complete = True
                break
            if cfg.budget_seconds is not None and time.perf_counter() - t_start >= cfg.budget_seconds:
                break
            if worker is not None and worker.stop_requested():
                break
            remaining = (target - done) if target is not None else 1 << 62
            if worker is not None and target is not None:
                others = worker.others_in_flight()
                if remaining - others <= 0:  # the rest of the budget is being evaluated by others
                    time.sleep(0.2)
                    continue
                remaining -= others
            batch = _disk_guard(strategy.ask, remaining)
            if batch is None:
                complete = target is not None
                messages.append(f"{strategy.name}: the next batch does not fit the remaining budget "
                                f"({remaining} settings); stopped")
                break
            if batch.stored is not None:  # rows written by a killed run: tell, do not re-evaluate
                t0 = time.perf_counter()
                strategy.tell(batch, batch.stored)
                strategy_extra_s += time.perf_counter() - t0
                continue
            if worker is not None:
                worker.in_flight(batch)
            t0 = time.perf_counter()
            table = run_eval(batch)
            extra_cols = strategy.augment(batch, table, evaluate_long)
            t1 = time.perf_counter()
            eval_s += t1 - t0
            nmse = table.column("nmse").to_numpy()
            keep = topk.keep(nmse)
            rows = rows_table(cfg, strategy.name, batch, table, store.next_row(), keep, extra_cols, t1 - t0, run_no)
            store.append(rows)
            io_s += time.perf_counter() - t1
            _disk_guard(strategy.tell, batch, rows)
            if worker is not None:
                worker.in_flight(None)
            n_run += len(nmse)
            i = int(np.argmin(nmse))
            if nmse[i] < best[0]:
                best = (float(nmse[i]), int(rows.column("row")[i].as_py()))
            bar.n = min(store.count(), target) if target else bar.n + len(nmse)
            bar.update(0)
            bar.set_postfix_str(f"best nmse {best[0]:.3g}")
    finally:
        bar.close()
        wall = time.perf_counter() - t_start
        strat_s = strategy.overhead_s + strategy_extra_s
        run_entry.update({
            "end": now(), "settings": n_run, "rows_after": store.count(), "wall_s": round(wall, 3),
            "evaluate_s": round(eval_s, 3), "strategy_s": round(strat_s, 3), "io_s": round(io_s, 3),
            "outside_share": round((wall - eval_s) / wall, 4) if wall > 0 else 0.0,
            "best_nmse": best[0], "best_row": best[1], "messages": messages,
        })
        run_entry.update(strategy.run_stats())
        t_io = time.perf_counter()
        try:
            if worker is None:
                store.write_manifest(manifest)
            else:
                store.update_manifest(lambda m: replace_run(m, run_entry))
        except LstmsearchError as exc:  # e.g. the disk is full: do not hide the error that got us here
            echo(f"could not record the end of this run in the manifest: {exc}")
        io_s += time.perf_counter() - t_io
        if worker is not None:
            worker.stop()
        strategy.close()
    summary = strategy.summary()
    if summary:
        messages.append(summary)
    return RunReport(
        study=cfg.name, store=str(store.root), settings=n_run, rows=store.count(), complete=complete,
        best_row=best[1], best_nmse=best[0], wall_s=wall, evaluate_s=eval_s, strategy_s=strat_s, io_s=io_s,
        outside_share=(wall - eval_s) / wall if wall > 0 else 0.0,
        strategy_ms_per_setting=1e3 * strat_s / n_run if n_run else 0.0,
        settings_per_s=n_run / wall if wall > 0 else 0.0, messages=messages, budget=target,
    )


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


# ------------------------------------------------------------------------ reading


