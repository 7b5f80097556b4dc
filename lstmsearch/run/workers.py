"""Many workers, one study: ``lstmsearch worker`` and ``lstmsearch run --workers N``.

Several processes, on one machine or on many, run the same Optuna study. They share

* the **Optuna study**, through its storage: PostgreSQL (``--storage postgresql://...``)
  for workers on several machines; on one machine the study's own storage works too (the
  default journal file, whose lock Optuna takes for every write, or SQLite);
* the **Parquet dataset** in the study folder (a shared file system when the workers are
  on several machines). Each worker claims a *slot* k >= 1 with a lease file
  ``workers/w<k>.json`` and writes its own parts, ``rows/part-w<k>-<first row>.parquet``,
  with row ids ``k * 10**12 + 0, 1, 2, ...``: ids never collide, so no coordination is needed
  to write, and no row is lost or duplicated.

Liveness. Every worker touches its lease every ``heartbeat_s`` seconds and keeps in it the
Optuna trials it is evaluating. With an RDB storage it also records Optuna heartbeats for
them (``heartbeat_interval``/``grace_period``): when a worker dies (SIGKILL, a lost machine),
the next worker to ask fails its trials after ``grace_s`` and
:class:`~lstmsearch.search.optuna_search.StaleTrialCallback` either tells Optuna the rows the
dead worker had already written or re-queues the trials (``RetryFailedTrialCallback``).
Under ``run --workers N`` the supervising process also sees a worker die at once, recovers
its trials the same way from its lease (this is what makes the journal storage, which has
no heartbeats, safe), and starts a replacement worker in the same slot.

Budget. ``[budget] settings`` counts the rows in the store. A worker leaves the part of the
budget that other live workers are evaluating to them, so the study ends within one batch
per worker of the budget.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..errors import LstmsearchError, StopRequested, require
from ..query import open_study
from ..search import make_strategy, strategy_class
from ..store import Store
from ..store.manifest import prepare_manifest, replace_run
from .coordinator import Coordinator
from .loop import reconcile_best, run_loop, say_compile, study_config
from .report import Progress, RunReport


class Worker(Coordinator):
    """One worker's side of the protocol: its slot's lease, heartbeats and trials in flight.

    As the run loop's :class:`~lstmsearch.run.coordinator.Coordinator`: its rows get its
    slot's ids; it registers its run through :meth:`Store.update_manifest` (other workers write
    the manifest too) instead of under the study's lock; it leaves to the other live workers the
    part of the budget they are evaluating; it leaves the recovery of dead workers' trials to
    heartbeats and to the supervisor, so it neither tidies nor resumes on start.
    """

    def __init__(self, store: Store, heartbeat_s: float = 5.0, grace_s: float = 30.0,
                 storage_retry_s: float = 120.0, echo=None):
        require(heartbeat_s > 0 and grace_s > heartbeat_s,
                f"the grace period ({grace_s} s) must be longer than the heartbeat interval ({heartbeat_s} s)")
        self.store = store
        self.slot = store.slot
        self.heartbeat_s = float(heartbeat_s)
        self.grace_s = float(grace_s)
        self.storage_retry_s = float(storage_retry_s)
        self.echo = echo or (lambda s: None)
        self.strategy = None
        self.trials = []
        self._stop = threading.Event()
        self._stop_requested = False
        self._thread = None
        self.info = {"pid": os.getpid(), "host": platform.node(), "grace_s": self.grace_s,
                     "heartbeat_s": self.heartbeat_s, "trials": [], "settings": 0}

    def strategy_options(self):
        return {"heartbeat_s": self.heartbeat_s, "grace_s": self.grace_s, "storage_retry_s": self.storage_retry_s,
                "worker_slot": self.slot}  # a sampler seed of its own: see OptunaStrategy

    def prepare(self, store, messages):
        """Other workers may be writing: no temporary file is a killed run's for sure."""

    def start(self, strategy, messages=None):
        self.strategy = strategy
        self._thread = threading.Thread(target=self._beat, name="lstmsearch-heartbeat", daemon=True)
        self._thread.start()

    def run_entry(self):
        return {"worker": self.slot, "pid": os.getpid(), "supervisor": os.environ.get("LSTMSEARCH_SUPERVISOR")}

    def record(self, store, manifest, register):
        store.update_manifest(register)

    def finish(self, store, manifest, entry):
        store.update_manifest(lambda m: replace_run(m, entry))

    def room(self, remaining, target):
        if target is None:
            return remaining
        others = self.others_in_flight()
        return remaining - others if remaining - others > 0 else None

    def _beat(self):
        lease = self.store.workers_dir / f"w{self.slot}.json"
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(lease)
            except OSError:
                pass
            try:
                self.strategy.record_heartbeats(list(self.trials))
            except Exception:  # noqa: BLE001 - the storage may be down; the main loop retries
                pass

    def in_flight(self, batch):
        """Record the batch being evaluated (None when it is written and told)."""
        trials = self.strategy.trials_of(batch) if batch is not None and self.strategy is not None else []
        self.trials = trials
        self.info.update(trials=[t.number for t in trials], settings=0 if batch is None else len(batch))
        self.store.write_lease(self.slot, self.info)
        if trials:
            try:
                self.strategy.record_heartbeats(trials)
            except Exception:  # noqa: BLE001
                pass

    def others_in_flight(self) -> int:
        return int(sum(d.get("settings", 0) for d in self.store.leases()
                       if d["alive"] and d.get("slot") != self.slot))

    def request_stop(self, *_):
        self._stop_requested = True

    def stop_requested(self) -> bool:
        return self._stop_requested

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.heartbeat_s)
        self.trials = []
        # the last worker out resolves what nobody else will: trials of dead workers whose
        # grace period has not passed, and trials orphaned by a lost connection (created by
        # an ask whose answer never arrived; they have no heartbeat, so Optuna never fails them).
        # The lease says "stopping" first: two workers that stop together each see the other
        # stopping, so at least one of them resolves (never neither).
        self.info.update(trials=[], settings=0, stopping=True)
        try:
            self.store.write_lease(self.slot, self.info)
        except OSError:
            pass
        others = [d for d in self.store.leases() if d.get("slot") != self.slot and d["alive"] and not d.get("stopping")]
        if self.strategy is not None and not others:
            try:
                msg = self.strategy.resume()
                if msg:
                    self.echo(msg.replace("resumed", "last worker out: resolved"))
            except Exception as exc:  # noqa: BLE001 - the next run resolves them
                self.echo(f"could not resolve the unfinished trials ({exc}); the next run will")


def _worker_config(study, budget, seconds, backend, out, storage, data_dir=None):
    cfg = study_config(study, budget, seconds, backend, out, storage, data_dir=data_dir)
    require(strategy_class(cfg).shared_storage,
            f"workers share an Optuna study; study {cfg.name} uses strategy {cfg.strategy['kind']}: "
            "spread its batches over a cluster with lstmsearch run --dask SCHEDULER instead")
    require(cfg.strategy["storage"] != "memory",
            f"workers need a shared Optuna storage; study {cfg.name} has storage = \"memory\"")
    return cfg


def _ensure_manifest(cfg, store: Store):
    manifest = prepare_manifest(cfg, store)
    if not store.create_manifest(manifest):
        manifest = prepare_manifest(cfg, store)  # another worker made it meanwhile: check it again
    return manifest


def run_worker(study, storage: Optional[str] = None, slot: Optional[int] = None, budget=None, seconds=None,
               backend=None, out=None, progress=False, echo=None, heartbeat_s: float = 5.0,
               grace_s: float = 30.0, storage_retry_s: float = 120.0, data_dir=None):
    """Join a study as one worker (see the module doc); returns its :class:`RunReport`.
    ``out`` is the exact result folder; ``data_dir`` its parent (see :func:`~lstmsearch.run.loop.study_config`)."""
    echo = echo or (lambda s: None)
    storage = storage or os.environ.get("LSTMSEARCH_STORAGE") or None
    cfg = _worker_config(study, budget, seconds, backend, out, storage, data_dir)
    base = Store(cfg.out)
    _ensure_manifest(cfg, base)
    holder = base.lock_holder()
    if holder and holder.get("mode") != "workers":
        raise LstmsearchError(f"the study in {str(cfg.out)!r} is being run by a single lstmsearch run (process "
                              f"{holder.get('pid')} on {holder.get('host')}); wait for it, or start it with --workers")
    worker_info = {"pid": os.getpid(), "host": platform.node(), "grace_s": float(grace_s),
                   "heartbeat_s": float(heartbeat_s), "trials": [], "settings": 0}
    got = base.claim_slot(worker_info, slot)
    store = Store(cfg.out, slot=got)
    worker = Worker(store, heartbeat_s, grace_s, storage_retry_s, echo)
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, worker.request_stop)
    try:
        return run_loop(cfg, store, None, [f"worker w{got} of study {cfg.name}"], progress, echo, coordinator=worker)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        store.release_slot(got)


# -------------------------------------------------------------------- supervisor
def run_workers(study, n: int, budget=None, seconds=None, backend=None, progress=False, echo=None, out=None,
                storage=None, heartbeat_s: float = 5.0, grace_s: float = 30.0, max_restarts: int = 3, data_dir=None):
    """``lstmsearch run --workers N``: start N worker processes on this machine and supervise them.

    A worker that dies is noticed at once: its trials in flight are recovered (told from
    its written rows, or re-queued) and a new worker takes its slot (at most
    ``max_restarts`` times per slot). Returns a :class:`RunReport` over all workers.
    """
    echo = echo or (lambda s: None)
    cfg = _worker_config(study, budget, seconds, backend, out, storage, data_dir)
    store = Store(cfg.out)
    _ensure_manifest(cfg, store)
    procs = {}
    stop = _SupervisorStop(procs)
    with stop.installed():
        report = _supervise(cfg, store, procs, stop, n, budget, seconds, backend, storage, progress, echo,
                            heartbeat_s, grace_s, max_restarts)
    if stop.signum is not None:  # every worker has ended (each finished its batch): said as a stop, exit 128 + signal
        raise StopRequested(stop.signum)
    return report


class _SupervisorStop:
    """SIGTERM to the supervisor of ``run --workers``: never an exception in the middle of its work.

    Each SIGTERM (the first, a second one while the workers finish their batches, a third...) is
    forwarded to every live worker; the supervisor starts no worker after it, waits until every worker
    has ended (each finishes its batch: no row lost, no trial left running, no orphan process),
    releases the study's lock and only then stops (``lstmsearch: stopped by SIGTERM``, exit 143).
    An exception raised by the handler instead could land anywhere, in the wait for the workers of an
    earlier stop among others, and leave workers behind. After a stop the handler stays installed, and
    the command line ignores SIGTERM once its command is done (:func:`lstmsearch.cli.main.main`): during
    the interpreter's exit a SIGTERM would otherwise end the process by the signal."""

    def __init__(self, procs):
        self.procs = procs
        self.signum = None

    def __call__(self, signum, frame):
        self.signum = signum if self.signum is None else self.signum
        self.forward()

    def forward(self):
        for p in list(self.procs.values()):
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:  # pragma: no cover - it has just ended
                pass

    def installed(self):
        import contextlib

        @contextlib.contextmanager
        def handler():
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = signal.signal(signal.SIGTERM, self)
            try:
                yield
            finally:
                if self.signum is None:  # after a stop, later SIGTERMs stay absorbed while the command ends
                    signal.signal(signal.SIGTERM, old)

        return handler()


def _supervise(cfg, store, procs, stop, n, budget, seconds, backend, storage, progress, echo, heartbeat_s,
               grace_s, max_restarts):
    """The body of :func:`run_workers`, under ``stop`` (:class:`_SupervisorStop`)."""
    messages = store.acquire(mode="workers")
    t_start = time.perf_counter()
    try:
        messages.extend(store.verify_counts())
        messages.extend(store.quarantine())
        live = {d["slot"] for d in store.leases() if d["alive"]}
        # recovers trials; asks none; with no worker running it may cut a journal's partial last record
        # (said by its resume below)
        sup = make_strategy(cfg, cfg.space_obj, store, echo=echo, sole_writer=not live)
        dead = [d for d in store.leases() if not d["alive"]]
        if not live:
            msg = sup.resume()  # nobody else runs: every RUNNING trial is a dead process's
            if msg:
                messages.append(msg)
        for d in dead:
            msg = sup.recover(d.get("trials", []))
            if msg:
                messages.append(msg)
            store.release_slot(d["slot"])
        store.clean_temporaries()
        for m in messages:
            echo(m)
        say_compile(cfg.cell, cfg.eval.backend, echo)  # each worker compiles it first when the disk cache lacks it
        rows_before = store.count()
        env = dict(os.environ, LSTMSEARCH_SUPERVISOR=str(os.getpid()))
        if storage:
            env["LSTMSEARCH_STORAGE"] = storage  # not on the command line, where ps shows passwords
        pkg_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

        def spawn(slot):
            cmd = [sys.executable, "-m", "lstmsearch.cli", "worker", str(cfg.out), "--slot", str(slot), "--quiet",
                   "--heartbeat", str(heartbeat_s), "--grace", str(grace_s)]
            for flag, v in (("--budget", budget), ("--seconds", seconds), ("--backend", backend)):
                if v is not None:
                    cmd += [flag, str(v)]
            return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        slots = []
        s = 1
        while len(slots) < n:
            if s not in live:
                slots.append(s)
            s += 1
        for s in slots:  # one by one into procs: a SIGTERM meanwhile is forwarded to those already started
            if stop.signum is None:
                procs[s] = spawn(s)
        restarts = {s: 0 for s in slots}
        target = cfg.budget_settings
        bar = Progress(cfg, store, progress, desc=f"{cfg.name} x{n}")
        errors = []
        while procs:
            time.sleep(0.3)
            if target:
                bar.show(store.count())
            for s, p in list(procs.items()):
                rc = p.poll()
                if rc is None:
                    continue
                err = (p.stderr.read() or "").strip()
                del procs[s]
                if rc == 0:
                    continue
                lease = [d for d in store.leases() if d.get("slot") == s]
                trials = lease[0].get("trials", []) if lease else []
                msg = sup.recover(trials) or "it had no trial in flight"
                store.release_slot(s)
                why = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
                line = f"worker w{s} stopped ({why}): {msg}"
                if err:
                    line += f"; it said: {err.splitlines()[-1]}"
                messages.append(line)
                echo(line)
                if rc == 2:  # a user error (bad storage, ...): the others will hit it too
                    errors.append(err.splitlines()[-1] if err else line)
                    continue
                done = target is not None and store.count() >= target
                if not done and restarts[s] < max_restarts and stop.signum is None:
                    restarts[s] += 1
                    procs[s] = spawn(s)
                    line = f"worker w{s} started again (restart {restarts[s]} of at most {max_restarts})"
                    messages.append(line)
                    echo(line)
        bar.close()
        if not any(d["alive"] for d in store.leases()):
            msg = sup.resume()  # trials orphaned by workers that died last
            if msg:
                messages.append(msg.replace("resumed", "after the workers: resolved"))
            # each worker kept its own best k in best/w<slot>; with every worker stopped, the files
            # together are made the best k rows on disk (a killed worker's rows put back, the rest dropped)
            messages.extend(reconcile_best(cfg, Store(cfg.out)))
        if errors and store.count() == rows_before:
            raise LstmsearchError(errors[0].removeprefix("lstmsearch: error: "))
    except BaseException:
        stop.forward()
        for p in procs.values():
            _wait_for_worker(p)
        raise
    finally:
        store.release()
    wall = time.perf_counter() - t_start
    m = store.read_manifest()
    mine = [r for r in m["runs"] if str(r.get("supervisor")) == str(os.getpid())]
    ev_s = sum(r.get("evaluate_s", 0.0) for r in mine)
    st_s = sum(r.get("strategy_s", 0.0) for r in mine)
    io_s = sum(r.get("io_s", 0.0) for r in mine)
    settings = sum(r.get("settings", 0) for r in mine)
    t = store.read(columns=["nmse"])
    best_row, best = (None, float("inf"))
    if t.num_rows:
        i = int(np.argmin(t.column("nmse").to_numpy()))
        best_row, best = int(t.column("row")[i].as_py()), float(t.column("nmse")[i].as_py())
    rows = store.count()
    busy = sum(r.get("wall_s", 0.0) for r in mine)
    messages.append(f"{n} workers, {len(mine)} worker runs; worker time: evaluate {ev_s:.1f} s, Optuna {st_s:.1f} s, "
                    f"I/O {io_s:.1f} s of {busy:.1f} s")
    return RunReport.build(cfg, store, settings=settings,
                           complete=cfg.budget_settings is not None and rows >= cfg.budget_settings,
                           best=(best, best_row), wall_s=wall, evaluate_s=ev_s, strategy_s=st_s, io_s=io_s,
                           messages=messages, busy_s=busy)


def _wait_for_worker(p, patience_s: float = 30.0) -> None:
    """Wait until the worker process ``p`` (sent SIGTERM) has ended: it finishes its batch; one that
    has not after ``patience_s`` is killed (its rows written so far are kept, its trials recovered on
    the next start). A Ctrl-C during the wait does not leave it behind either."""
    try:
        p.wait(timeout=patience_s)
    except subprocess.TimeoutExpired:  # pragma: no cover - a worker stuck in its batch
        p.kill()
        p.wait()
    except KeyboardInterrupt:
        p.kill()
        p.wait()
        raise


def worker_status(study, data_dir="data") -> List[dict]:
    """The leases of a study's workers (for ``lstmsearch workers STUDY``)."""
    _, store = open_study(study, data_dir)
    return store.leases()
