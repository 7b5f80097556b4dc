"""Run or continue a study: in this process, with local workers, or over a Dask cluster.

:func:`run_study` is the entry point behind ``lstmsearch run``; every mode runs the same
loop (:func:`lstmsearch.run.loop.run_loop`).
"""

from __future__ import annotations

import signal
import threading
from typing import Optional

from ..analysis.verdict import row_verdicts
from ..errors import LstmsearchError, require
from ..report import run_plots
from ..search import strategy_class
from ..store import Store
from ..store.manifest import prepare_manifest
from .cluster import DaskEvaluator
from .coordinator import Coordinator
from .loop import run_loop, say_compile, study_config
from .report import RunReport
from .restore import repair_store
from .workers import run_workers


def run_study(study, budget: Optional[int] = None, seconds: Optional[float] = None,
              backend: Optional[str] = None, progress: bool = False, echo=None, out=None,
              workers: Optional[int] = None, storage: Optional[str] = None, dask=None,
              heartbeat_s: float = 5.0, grace_s: float = 30.0, plots: Optional[bool] = None,
              data_dir=None, repair: bool = False) -> RunReport:
    """Run (or continue) a study until its budget is spent.

    The report's ``verdict`` is the best row's :mod:`~lstmsearch.analysis.verdict` line (solved
    at every checked length, at n only, ...), one line of :meth:`RunReport.lines`.

    Parameters
    ----------
    study : path of a study file, or a :class:`~lstmsearch.config.StudyConfig`
    budget : total settings in the store to reach (overrides ``[budget] settings``)
    seconds : wall-time limit of this run (overrides ``[budget] seconds``)
    backend : overrides ``[eval] backend``
    progress : show a progress bar (settings/s, best nmse so far)
    echo : callable for status lines (default: silent)
    out : the exact result folder (overrides ``[study] out`` and ``data_dir``)
    data_dir : parent folder of study results (default ``data``): the results go to
        ``data_dir``/NAME unless the study file sets ``[study] out``; a study name is looked up there
    workers : run this many worker processes on this machine, sharing the Optuna study
        through its storage (strategy optuna; see :mod:`lstmsearch.run.workers`)
    storage : Optuna storage URL (overrides ``[strategy] storage``), e.g. ``postgresql://...``
    dask : a Dask scheduler address or ``distributed.Client``: each batch (a sweep's index
        range, a CMA-ES generation, a batch of Optuna trials) is split over the cluster
        (see :mod:`lstmsearch.run.cluster`); the rows are the same as without it
    heartbeat_s, grace_s : worker heartbeat interval and the silence after which a worker's
        trials are failed and retried (workers only)
    plots : after the run, write ``best_so_far.png`` and ``nmse_hist.png`` into the study
        folder's ``plots/`` (default: the study file's ``[store] plots``, false); without
        matplotlib the report says they were skipped
    repair : the rows are the truth; for every strategy, first verify every part (as the
        command ``check`` does), quarantine the damaged ones and re-evaluate their rows where they can be
        regenerated (sweep; see :mod:`lstmsearch.run.restore`). Then, strategy optuna: if the
        Optuna storage lost trials that the rows come from (a journal cut short or deleted),
        rebuild them from the rows (see
        :meth:`~lstmsearch.search.optuna_search.OptunaStrategy.rebuild_from_rows`) instead of
        refusing to continue; strategy cmaes: set the optimizer's state file aside and replay it
        from the stored generations (a damaged state file, or generations whose rows were lost,
        are evaluated again); strategy sweep: it resumes after the largest stored setting index.
        One process only (not with ``workers``)
    """
    if workers is not None:
        require(isinstance(workers, int) and workers >= 1, f"workers must be a positive integer, got {workers!r}")
        require(dask is None, "--workers and --dask do not go together: workers share an Optuna study, "
                              "--dask spreads each batch over a cluster")
        require(not repair, "--repair runs in one process: run the study once with --repair, then with --workers")
        want = plots if plots is not None else study_config(study, budget, seconds, backend, out, storage,
                                                            data_dir).plots
        report = run_workers(study, workers, budget=budget, seconds=seconds, backend=backend, progress=progress,
                             echo=echo, out=out, storage=storage, heartbeat_s=heartbeat_s, grace_s=grace_s,
                             data_dir=data_dir)
        report = _add_verdict(report)
        return _write_plots(report) if want else report
    cfg = study_config(study, budget, seconds, backend, out, storage, data_dir)
    echo = echo or (lambda s: None)
    store = Store(cfg.out)
    manifest = prepare_manifest(cfg, store)
    live = [d for d in store.leases() if d["alive"]]
    require(not live, f"{len(live)} worker(s) are running this study (e.g. process {live[0].get('pid') if live else ''} "
                      f"on {live[0].get('host') if live else ''}); add more with lstmsearch worker, or wait for them")
    require(not (dask is not None and cfg.eval.racing), "[eval] racing runs in this process: remove --dask, or "
                                                        "remove racing from the study file")
    require(not (repair and cfg.eval.racing), "--repair re-evaluates lost rows at full fidelity only: remove "
                                              "[eval] racing from the study file to repair it")
    messages = store.acquire()
    evaluator = None
    try:
        if repair:  # the rows are the truth: verify them, re-evaluate lost ones, rebuild the strategy's state
            messages.extend(repair_store(cfg, store))
            messages.extend(strategy_class(cfg).repair_state(store))
        if dask is not None:
            evaluator = DaskEvaluator(dask, cfg, echo=echo)
            messages.append(evaluator.describe())
        coordinator = Coordinator(repair=repair)
        old = None
        if threading.current_thread() is threading.main_thread():  # SIGTERM: finish the batch, then stop
            old = signal.signal(signal.SIGTERM, coordinator.request_stop)
        try:
            report = run_loop(cfg, store, manifest, messages, progress, echo, coordinator=coordinator,
                              evaluator=evaluator)
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
        report.stopped_by = coordinator.stopped_by
    finally:
        if evaluator is not None:
            evaluator.close()
        store.release()
    if report.best_row is not None:  # the verdict simulates on cpu: a cuda or Dask run may not have compiled it here
        say_compile(cfg.cell, "cpu", echo)
    report = _add_verdict(report)
    return _write_plots(report) if (cfg.plots if plots is None else plots) else report


def _add_verdict(report: RunReport) -> RunReport:
    """The best row's verdict (solved at every checked length n, n+1, 2n+1, 10n+3, 100n+3?) as one
    line of the run summary; only the best row, on the verdict's CHECK_SEQUENCES (1,024) fresh
    sequences, as every verdict (the line says how many)."""
    if report.best_row is not None and report.rows:
        try:
            v = row_verdicts(report.store, [report.best_row])[report.best_row]
            report.verdict = f"{v.text} [nmse < {v.threshold:g}, stored readout, {v.n_sequences} fresh sequences]"
        except LstmsearchError as exc:
            report.verdict = f"not checked: {exc}"
    return report


def _write_plots(report: RunReport) -> RunReport:
    """The plots of ``run --plots`` (:func:`lstmsearch.report.run_plots`); a line in the messages."""
    if report.rows:
        try:
            paths = run_plots(report.store)
            report.messages.append(f"plots: {', '.join(str(p) for p in paths)}")
        except LstmsearchError as exc:
            report.messages.append(f"plots skipped: {exc}")
    return report

