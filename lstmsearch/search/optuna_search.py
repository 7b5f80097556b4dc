"""Strategy ``optuna``: an Optuna study over the search vector z, batch ask/tell.

Each batch asks ``batch`` trials (one Optuna parameter per z dimension -- spaces keep z
small), evaluates all their settings in one call and tells every trial its value.

Regions: with ``region.size = K > 1`` one trial stands for a region of K settings: the
trial's z is the centre (row index 0) and rows 1..K-1 add Gaussian jitter of scale
``region.scale`` (a number, or ``[low, high]`` to let Optuna pick it on a log scale as the
extra parameter ``log10_scale``) to the free weights. The jitter of row j of trial t is
regenerable from (seed, t, j). The trial's value is the best (``value = "min"``) or a
quantile of its rows' objective. Thus one Optuna trial (milliseconds of overhead) buys
K kernel evaluations.

Objectives: ``"nmse"`` (log10 of held-out nmse), ``"norm"`` (L2 norm of the recurrent
weights of the trial's best setting), ``"nmse_long"`` (log10 nmse of that setting at
``long_factor`` x the length, with its readout fitted at the trained length),
``"nmse_worst"`` (the larger of the two: a single objective that asks for settings which
solve the task at both lengths). Two or more
objectives make a multi-objective study (NSGA-II by default).

Storage: ``"journal"`` (default: ``optuna.journal`` in the study folder, which
optuna-dashboard opens), ``"sqlite"`` (``optuna.db`` there), ``"memory"``, or any Optuna
storage URL. The Optuna study name is the lstmsearch study name.

Several workers (:mod:`lstmsearch.run.workers`) share one Optuna study through its storage.
With an RDB storage (PostgreSQL, SQLite) each worker records a heartbeat for the trials
it is evaluating; a trial whose heartbeat is older than the grace period (its worker was
killed or lost its machine) is failed by the next worker that asks, and
:class:`StaleTrialCallback` then either tells Optuna the rows the dead worker had already
written (as a new COMPLETE trial with the same parameters) or re-queues the parameters
(Optuna's ``RetryFailedTrialCallback``). Every storage call is retried while the database
is unreachable (``storage_retry_s``), so a restarted database server does not end a run.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Dict, List

import numpy as np
import optuna
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from ..errors import LstmsearchError, install_hint, redact_url, require
from ..store.generations import GenerationStore, state_table
from .base import Batch, Strategy, objective, round_z
from .spaces import jitter

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
SAMPLERS = ("tpe", "cmaes", "gp", "qmc", "random", "nsga2")
OBJECTIVES = ("nmse", "norm", "nmse_long", "nmse_worst")
REGION_STREAM = 101  # rng stream of region jitter
SCALE_PARAM = "log10_scale"


def check(spec: Dict, space, chk) -> Dict:
    """Validate an optuna ``[strategy]`` table (keys: :attr:`OptunaStrategy.options`)."""
    s = chk.keys(spec, "[strategy]", OptunaStrategy.options)
    chk.choice("[strategy]", "sampler", s["sampler"], SAMPLERS)
    chk.positive("[strategy]", "batch", s["batch"])
    chk.positive("[strategy]", "long_factor", s["long_factor"])
    chk.choice("[strategy]", "value", s["value"], ("min", "quantile"))
    if not 0 < s["quantile"] <= 1:
        chk.fail("[strategy] quantile", f"must be in (0, 1], got {s['quantile']}")
    if not s["objectives"] or any(o not in OBJECTIVES for o in s["objectives"]):
        chk.fail("[strategy] objectives", f"must be a list of {', '.join(OBJECTIVES)}, got {s['objectives']!r}")
    if len(set(s["objectives"])) != len(s["objectives"]):
        chk.fail("[strategy] objectives", f"names an objective twice: {s['objectives']!r}; give each once")
    _check_sampler_options(s, chk)
    if space.dim > s["max_dim"]:
        chk.fail("[strategy]", f"optuna over a space of dimension {space.dim} (max_dim {s['max_dim']}) "
                               "would make every weight an Optuna parameter; use a masked or subspace "
                               "space, a region, or strategy cmaes/sweep (or raise max_dim)")
    region = {"size": 1, "scale": 0.0}
    if s["region"] is not None:
        region = chk.keys(s["region"], "[strategy.region]", {"size": ((int,), 1), "scale": ((float, list), 0.1)})
        chk.positive("[strategy.region]", "size", region["size"])
        sc = region["scale"]
        if isinstance(sc, list):
            if len(sc) != 2 or not all(isinstance(v, (int, float)) and v > 0 for v in sc) or sc[0] >= sc[1]:
                chk.fail("[strategy.region] scale", f"must be a number or [low, high] with 0 < low < high, got {sc!r}")
        else:
            chk.positive("[strategy.region]", "scale", sc, allow_zero=True)
    s["region"] = region
    if len(s["objectives"]) > 1 and "sampler" not in spec:
        s["sampler"] = "nsga2"
    if s["seed"] is not None:
        chk.positive("[strategy]", "seed", s["seed"], allow_zero=True)
    return s


def _check_sampler_options(s: Dict, chk) -> None:
    """``sampler_options``: every number finite and not negative (``popsize`` at least 2, ``sigma0`` above 0),
    and options the sampler takes (it is made once here, so that a run does not fail on them later)."""
    stack = [("sampler_options", s["sampler_options"])]
    while stack:
        where, v = stack.pop()
        if isinstance(v, dict):
            stack.extend((f"{where}.{k}", x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{where}[{i}]", x) for i, x in enumerate(v))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            key = where.rpartition(".")[2]
            if not (np.isfinite(v) and 0 <= v < 2 ** 62) or (key == "sigma0" and v <= 0) or (key == "popsize" and v < 2):
                least = {"popsize": "at least 2", "sigma0": "above 0"}.get(key, "at least 0")
                chk.fail(f"[strategy] {where}", f"must be a finite number {least}, got {v!r}")
    if not s["sampler_options"]:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental options warn when a run makes its sampler
            make_sampler(s["sampler"], 0, len(s["objectives"]), s["sampler_options"])
    except LstmsearchError as exc:
        chk.fail("[strategy] sampler_options", str(exc).partition("sampler_options ")[2] or str(exc))
    except (ValueError, AssertionError, AttributeError) as exc:  # refused by the sampler itself
        chk.fail("[strategy] sampler_options", f"do not fit the {s['sampler']} sampler: {type(exc).__name__}: {exc}")


def make_sampler(name: str, seed: int, n_objectives: int, options: Dict):
    opts = dict(options)
    try:
        if name == "tpe":
            opts.setdefault("multivariate", True)
            opts.setdefault("constant_liar", True)
            return optuna.samplers.TPESampler(seed=seed, **opts)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, **opts)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, **opts)
        if name == "qmc":
            opts.setdefault("scramble", True)
            return optuna.samplers.QMCSampler(seed=seed, **opts)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **opts)
        return optuna.samplers.RandomSampler(seed=seed, **opts)
    except TypeError as exc:
        raise LstmsearchError(f"[strategy] sampler_options do not fit the {name} sampler: {exc}") from exc


def _transient(exc: BaseException) -> bool:
    """Is this storage error worth retrying (a lost or refused database connection)?"""
    try:
        import sqlalchemy.exc as sa_exc

        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    text = str(exc).lower()
    return any(k in text for k in ("could not connect", "connection refused", "server closed the connection",
                                   "terminating connection", "database is locked", "connection already closed",
                                   "ssl syscall", "the database system is"))


class StaleTrialCallback:
    """Called (through Optuna's heartbeat) for each trial of a dead worker, already FAILed.

    If the dead worker had written the trial's rows, a COMPLETE trial with the same
    parameters and the values from those rows is added (no setting is evaluated twice);
    otherwise the parameters are re-queued (Optuna's ``RetryFailedTrialCallback``).
    """

    def __init__(self, strategy, max_retry: int = 3):
        self.strategy = strategy
        cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
            optuna.storages.RetryFailedTrialCallback
        self.retry = cls(max_retry=max_retry)

    def __call__(self, study, trial):
        strat = self.strategy
        rows = strat.store.read(columns=["batch", "index", "nmse", "nmse_long", "weights", "z", "scale"],
                                filter=(ds.field("strategy") == "optuna") & (ds.field("batch") == trial.number))
        if rows.num_rows:
            values = strat._values(rows, None)
            study.add_trial(optuna.trial.create_trial(
                params=trial.params, distributions=trial.distributions, values=values,
                user_attrs={"rows_of_trial": trial.number}))
            strat.recovered["told"] += 1
        else:
            self.retry(study, trial)
            strat.recovered["requeued"] += 1


class OptunaStrategy(Strategy):
    """An Optuna study over z, batch ask/tell (see the module doc)."""

    name = "optuna"
    shared_storage = True
    not_regenerable_reason = ("optuna rows are not regenerable from a key: the next run re-queues their trials' "
                              "parameters (kept in the Optuna storage)")
    z_kept_by_key = True
    options = {
        "kind": ((str,), "optuna"), "sampler": ((str,), "cmaes"), "batch": ((int,), 64),
        "storage": ((str,), "journal"), "objectives": ((list,), ["nmse"]), "seed": ((int,), None),
        "region": ((dict,), None), "sampler_options": ((dict,), {}), "max_dim": ((int,), 200),
        "long_factor": ((int,), 10), "value": ((str,), "min"), "quantile": ((float,), 0.1),
    }

    def __init__(self, cfg, space, store, spec, heartbeat_s: float = None, grace_s: float = None,
                 storage_retry_s: float = 120.0, echo=None, sole_writer: bool = False, repair: bool = False,
                 worker_slot: int = None):
        super().__init__(cfg, space, store, spec)
        self.sole_writer = sole_writer  # this process holds the study's run lock (not a worker)
        self.repair = repair  # ``run --repair``: rebuild the storage's trials from the rows
        self.start_messages: List[str] = []
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.heartbeat_s = heartbeat_s
        self.grace_s = grace_s
        self.storage_retry_s = storage_retry_s
        self.echo = echo or (lambda s: None)
        self.recovered = {"told": 0, "requeued": 0}
        self.outages = []  # (start, seconds) of storage outages survived
        self.objectives = list(spec["objectives"])
        self.region = spec["region"]
        self.K = int(self.region["size"])
        self.scale_range = self.region["scale"] if isinstance(self.region["scale"], list) else None
        self.distributions = {n: FloatDistribution(float(lo), float(hi))
                              for n, lo, hi in zip(space.names, space.low, space.high)}
        if self.scale_range:
            lo, hi = self.scale_range
            self.distributions[SCALE_PARAM] = FloatDistribution(math.log10(lo), math.log10(hi))
        self.jitter_mask = space.free_mask()
        self.storage = self._storage(spec["storage"])
        directions = ["minimize"] * len(self.objectives)
        sampler_name = spec["sampler"]
        self.sampler_name = sampler_name
        try:
            self.study = optuna.create_study(study_name=cfg.name, storage=self.storage, directions=directions,
                                             load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=0))
        except Exception as exc:  # noqa: BLE001 - any failure to reach the storage is a user error here
            if isinstance(exc, LstmsearchError):
                raise
            raise LstmsearchError(f"cannot open the Optuna storage {redact_url(spec['storage'])}: "
                                  f"{_first_line(exc)}; check that the database server runs and the URL "
                                  "(host, port, user, database) is right") from exc
        if [d.name.lower() for d in self.study.directions] != directions:
            raise LstmsearchError(f"the Optuna study {cfg.name!r} in {redact_url(spec['storage'])!r} has "
                                  f"{len(self.study.directions)} objective(s); this study file has {len(directions)}")
        # a new sampler seed per run: a resumed run must not replay the first run's draws; and per
        # worker slot: workers that start together see the same trial count and would otherwise
        # draw the same parameters (the same region centres) as each other
        n_before = len(self.study.trials)
        entropy = [self.seed, n_before] + ([1 + int(worker_slot)] if worker_slot is not None else [])
        run_seed = int(np.random.SeedSequence(entropy).generate_state(1)[0] % (2 ** 31))
        self.study.sampler = make_sampler(sampler_name, run_seed, len(self.objectives), spec["sampler_options"])
        self._warm_started = n_before > 0

    def _storage(self, storage: str):
        if storage == "memory":
            return None
        if storage == "journal":
            from optuna.storages import JournalStorage

            self.store.root.mkdir(parents=True, exist_ok=True)
            path = self.store.root / "optuna.journal"
            if self.sole_writer:  # workers may be appending: only the lock holder may cut the file
                msg = repair_journal_tail(path)
                if msg:
                    self.start_messages.append(msg)
            try:
                return JournalStorage(SafeJournalFile(str(path), echo=self.echo))
            except Exception as exc:  # noqa: BLE001 - a damaged record: any replay error (KeyError, ValueError, ...)
                if not (self.repair and self.sole_writer):
                    raise LstmsearchError(
                        f"the Optuna journal {path} is damaged (a record does not replay: {type(exc).__name__}: "
                        f"{_first_line(exc)}); run the study again with --repair to cut it back to its last good "
                        "record and rebuild the lost trials from the stored rows") from None
            self.start_messages.append(cut_journal_to_replayable(path))
            self.store.record_journal()
            return JournalStorage(SafeJournalFile(str(path), echo=self.echo))
        if storage == "sqlite":
            self.store.root.mkdir(parents=True, exist_ok=True)
            storage = f"sqlite:///{(self.store.root / 'optuna.db').resolve()}"
        require("://" in storage, f"[strategy] storage must be journal, sqlite, memory or an Optuna "
                                  f"storage URL, got {storage!r}")
        return self._rdb(storage)

    def _rdb(self, url: str):
        """An RDBStorage: connections checked before use, a short connect timeout, and
        heartbeats when this process is one of several workers."""
        from optuna.storages import RDBStorage

        engine_kwargs = {"pool_pre_ping": True}
        url = _pg_driver(_quote_password(url))
        if url.startswith("postgresql"):
            engine_kwargs["connect_args"] = {"connect_timeout": 5}
        elif url.startswith("sqlite"):
            engine_kwargs["connect_args"] = {"timeout": 60}
        kw = {}
        if self.heartbeat_s:
            kw = dict(heartbeat_interval=max(1, int(round(self.heartbeat_s))),
                      grace_period=max(2, int(round(self.grace_s or 6 * self.heartbeat_s))),
                      heartbeat_stale_trial_callback=StaleTrialCallback(self))
        try:
            for attempt in range(6):
                try:
                    return RDBStorage(url, engine_kwargs=engine_kwargs, **kw)
                except Exception as exc:  # noqa: BLE001
                    # workers starting at once race to create Optuna's tables: try again
                    text = str(exc)
                    if attempt == 5 or not ("duplicate key" in text or "already exists" in text):
                        raise
                    time.sleep(0.2 + 0.3 * attempt)
        except ImportError as exc:
            hint = f" ({install_hint('postgres')}, which installs psycopg)" if url.startswith("postgres") else ""
            raise LstmsearchError(f"the Optuna storage {redact_url(url)} needs a database driver that is not "
                                  f"installed{hint}") from exc
        except Exception as exc:  # noqa: BLE001
            raise LstmsearchError(f"cannot open the Optuna storage {redact_url(url)}: {_first_line(exc)}; check that "
                                  "the database server runs and the URL (host, port, user, database) is right") from exc

    # ------------------------------------------------------------ storage calls
    def db(self, fn, *args, **kwargs):
        """Call the storage, retrying while the database is unreachable (up to storage_retry_s)."""
        t0 = None
        delay = 0.2
        while True:
            try:
                out = fn(*args, **kwargs)
                if t0 is not None:
                    self._storage_back(t0)
                return out
            except Exception as exc:  # noqa: BLE001
                if not _transient(exc):
                    if t0 is not None:  # the database answered (for example "trial already finished": a
                        self._storage_back(t0)  # retried tell whose first attempt had been committed)
                    raise
                now = time.time()
                if t0 is None:
                    t0 = now
                    self.echo(f"lost the Optuna storage ({_first_line(exc)}); retrying for up to "
                              f"{self.storage_retry_s:.0f} s")
                if now - t0 > self.storage_retry_s:
                    raise LstmsearchError(
                        f"the Optuna storage {redact_url(str(self.spec['storage']))} was unreachable for "
                        f"{now - t0:.0f} s ({_first_line(exc)}); the rows written so far are safe: run again "
                        "when the database is back") from exc
                time.sleep(delay)
                delay = min(2.0, delay * 1.5)

    def _storage_back(self, t0: float):
        """Record an outage that began at ``t0`` and has just ended, and say so."""
        self.outages.append((t0, time.time() - t0))
        self._outage_end = time.time()
        self.echo(f"the Optuna storage is back after {time.time() - t0:.1f} s")

    def trials_of(self, batch):
        return list(batch.info) if batch.info is not None else []

    def record_heartbeats(self, trials):
        """Heartbeats for trials being evaluated (RDB storages with heartbeats only)."""
        if not self.heartbeat_s or not hasattr(self.study._storage, "record_heartbeat"):
            return
        for t in trials:
            self.study._storage.record_heartbeat(t._trial_id)

    def fail_stale(self):
        # after an outage every worker's heartbeats are old: give the others a grace period to
        # beat again before failing their trials
        if self.heartbeat_s and time.time() - getattr(self, "_outage_end", 0.0) > (self.grace_s or 0):
            self.db(optuna.storages.fail_stale_trials, self.study)

    def recover(self, numbers) -> str:
        """Trials of a dead worker (by number): tell those whose rows were written, re-queue the rest."""
        told = requeued = 0
        numbers = list(numbers)
        if not numbers:
            return ""
        trials = {t.number: t for t in self.db(self.study.get_trials, deepcopy=False, states=(TrialState.RUNNING,))}
        mine = [trials[n] for n in numbers if n in trials]
        if not mine:
            return ""
        rows = self.store.read(columns=["batch", "index", "nmse", "nmse_long", "weights", "z", "scale", "strategy"],
                               filter=(ds.field("strategy") == "optuna") & ds.field("batch").isin([t.number for t in mine]))
        for t in mine:
            sel = rows.filter(pc.equal(rows.column("batch"), t.number))
            try:
                if sel.num_rows:
                    self.db(self.study.tell, t.number, self._values(sel, None))
                    told += 1
                else:
                    self.db(self.study.tell, t.number, state=TrialState.FAIL)
                    self.db(self.study.enqueue_trial, t.params, user_attrs={"retry_of": t.number})
                    requeued += 1
            except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # finished meanwhile (by its heartbeat, or by another worker)
        self.recovered["told"] += told
        self.recovered["requeued"] += requeued
        return f"recovered {told + requeued} trial(s) of a dead worker: {told} told from stored rows, {requeued} re-queued"

    # ------------------------------------------------------------------ resume
    def warm_start(self, z, source: str) -> str:
        if self._warm_started:
            return ""
        for row in z:
            params = {n: float(np.clip(v, d.low, d.high)) for (n, d), v in zip(self.distributions.items(), row)}
            if self.scale_range:
                params[SCALE_PARAM] = self.distributions[SCALE_PARAM].low
            self.study.enqueue_trial(params)
        return f"warm start: enqueued the {len(z)} best z of {source}"

    def resume(self) -> str:
        """Reconcile the Optuna storage with the rows (the rows are the truth); one line per finding.

        Only for a single run (it holds the study's run lock, so every RUNNING trial is a dead
        run's); workers recover the trials of dead workers by heartbeat instead. In order:

        - the storage must know every trial the rows came from: if the rows reference a trial
          number the storage does not have (its journal lost its tail or was deleted), or a
          trial whose parameters are not its rows' z, new trials would reuse numbers and
          duplicate (trial, index) keys, so the run refuses with one line naming ``--repair``
          (``run --repair`` rebuilds those trials from the rows, see :meth:`rebuild_from_rows`;
          an in-memory storage is rebuilt on every start without asking);
        - trials left RUNNING: told from their rows, or failed and re-queued;
        - FAILed trials whose rows were written (a worker failed by its heartbeat after it wrote
          them) and that no COMPLETE trial carries: told as a new COMPLETE trial from the rows;
        - COMPLETE trials without rows (a part file lost): their parameters are re-queued.
        """
        lines = list(self.start_messages)
        rows = fill_z(self.store, self.store.read(columns=["batch", "index", "z", "run"],
                                                  filter=(ds.field("strategy") == "optuna") & (ds.field("index") == 0)))
        trials = self.db(self.study.get_trials, deepcopy=False)
        bad = self._inconsistent(rows, trials)
        if bad:
            if self.repair or self.spec["storage"] == "memory":
                lines.append(self.rebuild_from_rows(rows, trials, bad))
                trials = self.db(self.study.get_trials, deepcopy=False)
            else:
                raise LstmsearchError(
                    f"the Optuna storage {redact_url(str(self.spec['storage']))} does not match the stored rows: {bad[0]}; "
                    "it lost records (a journal cut short or deleted?) and continuing would reuse trial numbers: "
                    "run again with --repair to rebuild its trials from the rows")
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if running:
            before = dict(self.recovered)
            self.recover([t.number for t in running])
            told = self.recovered["told"] - before["told"]
            requeued = self.recovered["requeued"] - before["requeued"]
            lines.append(f"resumed {len(running)} unfinished Optuna trial(s): {told} told from stored rows, "
                         f"{requeued} re-queued")
            trials = self.db(self.study.get_trials, deepcopy=False)
        with_rows = set(rows.column("batch").to_pylist())
        carried = {t.user_attrs.get("rows_of_trial") for t in trials if t.state == TrialState.COMPLETE}
        retried = {t.user_attrs.get("retry_of") for t in trials}
        failed = [t for t in trials if t.state == TrialState.FAIL and t.number in with_rows and t.number not in carried]
        if failed:
            self._add_from_rows(failed)
            lines.append(f"{len(failed)} failed Optuna trial(s) had written their rows: told from the stored rows")
        lost = [t for t in trials if t.state == TrialState.COMPLETE and t.number not in with_rows
                and "rows_of_trial" not in t.user_attrs and t.number not in retried]
        if lost:
            for t in lost:
                self.db(self.study.enqueue_trial, t.params, user_attrs={"retry_of": t.number})
            lines.append(f"{len(lost)} COMPLETE Optuna trial(s) have no stored rows (a part file lost?): their "
                         f"parameters are re-queued (trials {_numbers(t.number for t in lost)})")
        return "\n".join(lines)

    def _inconsistent(self, rows: pa.Table, trials) -> List[str]:
        """What in the storage contradicts the rows (index-0 rows: batch, z, run), one phrase each."""
        if not rows.num_rows:
            return []
        batch = rows.column("batch").to_numpy()
        n = len(trials)
        out = []
        if int(batch.max()) >= n:
            out.append(f"the rows come from trials up to {int(batch.max())}, the storage holds {n} trial(s)")
        repaired = set(self.study.user_attrs.get("rows_repaired", []))
        # the latest run's rows of each trial number must have the trial's parameters
        run = rows.column("run").to_numpy()
        latest = {}
        for i in np.lexsort((run, batch)):
            latest[int(batch[i])] = int(i)
        z = rows.column("z")
        names = self.space.names
        for b, i in latest.items():
            if b >= n or b in repaired:
                continue
            params = trials[b].params
            zi = z[i].as_py()
            if zi is None or not all(n_ in params for n_ in names):
                continue
            if not np.array_equal(np.float32([params[n_] for n_ in names]), np.float32(zi)):
                out.append(f"trial {b}'s parameters are not its rows' z")
                break
        return out

    def rebuild_from_rows(self, rows: pa.Table, trials, bad) -> str:
        """``run --repair``: make the storage's trials agree with the rows, so that new trial
        numbers never collide with stored ones.

        Trial numbers the storage lost (``n .. max batch``) are added in order, so each gets its
        old number: a COMPLETE trial with the rows' z and the values from the rows where rows
        exist, a FAIL placeholder where none do. A stored trial whose parameters are not its
        rows' z keeps its number; the rows' version is added as a new COMPLETE trial (user
        attribute ``rows_of_trial``) and the number is recorded in the study's ``rows_repaired``
        attribute. No row is changed or deleted.
        """
        batch = rows.column("batch").to_numpy()
        n = len(trials)
        top = int(batch.max())
        have = set(int(b) for b in batch)
        added = placeholders = 0
        for b in range(n, top + 1):
            if b in have:
                self._add_from_rows([b])
                added += 1
            else:
                self.db(self.study.add_trial, optuna.trial.create_trial(
                    state=TrialState.FAIL, params={}, distributions={}, user_attrs={"placeholder_of_lost_trial": b}))
                placeholders += 1
        mism = [msg for msg in self._inconsistent(rows, self.db(self.study.get_trials, deepcopy=False))
                if "parameters" in msg]
        fixed = []
        if mism:
            cur = self.db(self.study.get_trials, deepcopy=False)
            names = self.space.names
            for b in sorted(have):
                if b >= len(cur) or cur[b].user_attrs.get("rows_of_trial") is not None:
                    continue
                params = cur[b].params
                sel = rows.filter(pc.equal(rows.column("batch"), b))
                zs = [zi for zi in sel.column("z").to_pylist() if zi is not None]
                if any(not all(n_ in params for n_ in names) or
                       not np.array_equal(np.float32([params[n_] for n_ in names]), np.float32(zi)) for zi in zs):
                    self._add_from_rows([b])
                    fixed.append(b)
            self.db(self.study.set_user_attr, "rows_repaired",
                    sorted(set(self.study.user_attrs.get("rows_repaired", [])) | set(fixed)))
        return (f"repaired the Optuna storage from the rows ({bad[0]}): added {added} trial(s) told from their rows "
                f"and {placeholders} failed placeholder(s) for trial numbers without rows, so new trials start at "
                f"{max(n, top + 1)}" + (f"; {len(fixed)} trial(s) whose parameters differed from their rows were "
                                        "added again from the rows" if fixed else ""))

    def _add_from_rows(self, numbers) -> None:
        """A new COMPLETE trial for each trial number: its rows' z as parameters, their values told."""
        numbers = [t.number if hasattr(t, "number") else int(t) for t in numbers]
        rows = fill_z(self.store, self.store.read(
            columns=["batch", "index", "nmse", "nmse_long", "weights", "z", "scale", "strategy"],
            filter=(ds.field("strategy") == "optuna") & ds.field("batch").isin(numbers)))
        for b in numbers:
            sel = rows.filter(pc.equal(rows.column("batch"), b)).sort_by("index")
            z = np.asarray(sel.column("z")[0].as_py(), np.float64)
            params = {name: float(np.clip(v, d.low, d.high))
                      for (name, d), v in zip(list(self.distributions.items())[:len(z)], z)}
            if self.scale_range:
                sc = np.asarray(sel.column("scale").to_numpy(zero_copy_only=False), np.float64)
                d = self.distributions[SCALE_PARAM]
                params[SCALE_PARAM] = float(np.clip(math.log10(sc.max()), d.low, d.high)) if sc.max() > 0 else d.low
            self.db(self.study.add_trial, optuna.trial.create_trial(
                params=params, distributions={k: self.distributions[k] for k in params},
                values=self._values(sel, None), user_attrs={"rows_of_trial": b}))

    # --------------------------------------------------------------- ask, tell
    def ask(self, n_max: int):
        n_trials = max(1, min(self.spec["batch"], n_max // self.K))
        t0 = time.perf_counter()
        self.fail_stale()
        trials = [self.db(self.study.ask, self.distributions) for _ in range(n_trials)]
        self.overhead_s += time.perf_counter() - t0
        names = self.space.names
        z = round_z([[t.params[n] for n in names] for t in trials])
        centre = self.space.to_params(z)
        K = self.K
        params, scales = [], []
        for i, t in enumerate(trials):
            block = np.repeat(centre[i:i + 1], K, axis=0)
            scale = self._scale(t.params)
            s = np.full(K, scale, np.float32)
            s[0] = 0.0
            if K > 1:
                block = jitter(block, self.jitter_mask, s, self.seed, REGION_STREAM, t.number)
            params.append(block)
            scales.append(s)
        numbers = [t.number for t in trials]
        # the trials' centres and jitter scales, stored once per trial (rows keep only trial and index)
        state = state_table("optuna", numbers, "region", self.seed, 0, K, [s[-1] for s in scales], z, None)
        return Batch(
            params=np.concatenate(params), batch=np.repeat(numbers, K).astype(np.int64),
            index=np.tile(np.arange(K, dtype=np.int64), n_trials),
            scale=np.concatenate(scales) if K > 1 else None, info=trials, state=state,
        )

    def _scale(self, params) -> float:
        if self.scale_range:
            return float(np.float32(10 ** params[SCALE_PARAM]))
        return float(self.region["scale"])

    def _values(self, rows: pa.Table, params) -> List[float]:
        """The trial's objective values from its rows."""
        obj = objective(rows.column("nmse").to_numpy())
        best = int(np.argmin(obj))
        out = []
        for o in self.objectives:
            if o == "nmse":
                out.append(float(obj.min() if self.spec["value"] == "min"
                                 else np.quantile(obj, self.spec["quantile"])))
            elif o == "norm":
                w = rows.column("weights")[best].as_py() if params is None else params[best]
                if w is None:
                    w = self.regenerate(rows.slice(best, 1))[0]
                w = np.asarray(w, np.float64)[: self.cfg.cell.n_recurrent]
                out.append(float(np.linalg.norm(w)))
            else:
                nl = rows.column("nmse_long").to_numpy(zero_copy_only=False).astype(float)
                v = nl[~np.isnan(nl)]
                long = float(objective(v.min() if v.size else np.inf))
                out.append(long if o == "nmse_long" else max(long, float(obj.min())))
        return out

    def augment(self, batch, table, evaluate_long):
        if "nmse_long" not in self.objectives and "nmse_worst" not in self.objectives:
            return {}
        nmse = table.column("nmse").to_numpy()
        P = len(nmse)
        best_rows = [int(np.flatnonzero(batch.batch == b)[np.argmin(nmse[batch.batch == b])])
                     for b in np.unique(batch.batch)]
        ro = table.column("readout").combine_chunks().flatten().to_numpy().reshape(P, -1)
        settings = self.cfg.cell.with_readout(batch.params[best_rows], ro[best_rows])
        length = self.cfg.task.length * int(self.spec["long_factor"])
        long = evaluate_long(settings, length)
        col = np.full(P, np.nan)
        col[best_rows] = long
        lengths = np.where(np.isnan(col), 0, length).astype(np.int32)
        return {"nmse_long": col, "long_length": (lengths, ~np.isnan(col))}

    def tell(self, batch, table):
        t0 = time.perf_counter()
        nmse_cols = table.select([c for c in ("nmse", "nmse_long") if c in table.column_names])
        for trial in batch.info:
            sel = np.flatnonzero(batch.batch == trial.number)
            rows = nmse_cols.take(pa.array(sel))
            vals = self._values(rows, batch.params[sel] if "norm" in self.objectives else None)
            self._tell(trial, vals if len(vals) > 1 else vals[0])
        self.overhead_s += time.perf_counter() - t0

    def _tell(self, trial, values):
        try:
            self.db(self.study.tell, trial, values)
        except KeyError:
            # the database lost the trial (restored from a backup, or a crash that lost its last
            # commits): its rows are stored, so record them as a new COMPLETE trial
            self.db(self.study.add_trial, optuna.trial.create_trial(
                params=trial.params, distributions=trial.distributions, values=values if isinstance(values, list)
                else [values], user_attrs={"rows_of_trial": trial.number}))
            self.echo(f"trial {trial.number} was missing from the storage; its rows were told as a new trial")
        except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError) as exc:
            # finished already: a retried tell whose first attempt did reach the database, or a
            # trial failed by the heartbeat of a slow worker (its rows are written; the stale
            # callback told Optuna their values)
            state = self.db(self.study._storage.get_trial, trial._trial_id).state
            if state == TrialState.RUNNING:
                raise
            if state != TrialState.COMPLETE:
                self.echo(f"trial {trial.number} had been marked {state.name} (heartbeat missed); its rows are "
                          f"stored ({type(exc).__name__})")

    @classmethod
    def regenerate_z(cls, cfg, space, store, rows):
        """The trials' centres z (P, d): from the rows' z (older stores) or the trials' stored state."""
        return np.asarray(fill_z(store, rows).column("z").to_pylist(), np.float64)

    @classmethod
    def regenerate_rows(cls, cfg, space, store, rows):
        return regenerate(space, cfg.strategy, int(cfg.strategy.get("seed") or cfg.eval.seed), fill_z(store, rows))

    def run_stats(self):
        out = {}
        if self.outages:
            out["storage_outages_s"] = [round(s, 2) for _, s in self.outages]
        if any(self.recovered.values()):
            out["recovered_trials"] = dict(self.recovered)
        return out

    def summary(self):
        n = len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        return f"Optuna study {self.cfg.name!r}: {n} complete trials, sampler {self.sampler_name}"


class SafeJournalFile(optuna.storages.journal.JournalFileBackend):
    """Optuna's journal file, safe for workers that may be killed (SIGKILL) or meet a full disk.

    Optuna appends a record under a lock file that outlives a killed holder (the others wait out
    its 30 s grace period), and appends after whatever the file ends with: a record half written
    by a killed worker or a full disk gets the next record glued to it, and from then on every
    read of the journal fails (a JSONDecodeError). Here the lock is ``flock`` on
    ``<journal>.flock`` (it dies with its holder), and each append first cuts a partial record
    at the end of the file (no reader ever took it: Optuna reads only newline-terminated
    records), saying so in one line through ``echo``. The file format is Optuna's.
    """

    def __init__(self, file_path: str, echo=None):
        super().__init__(file_path)
        self.path = file_path
        self.echo = echo or (lambda s: None)

    def append_logs(self, logs) -> None:
        import fcntl
        import json

        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
        with open(self.path + ".flock", "a") as lk:
            fcntl.flock(lk.fileno(), fcntl.LOCK_EX)
            try:
                with open(self.path, "r+b") as f:
                    end = f.seek(0, os.SEEK_END)
                    whole = _last_newline_end(f, end)
                    if whole < end:  # a killed or disk-full writer's partial record: never read by anyone
                        f.truncate(whole)
                        self.echo(f"cut a partial record ({end - whole} bytes) at the end of the Optuna journal "
                                  f"{self.path}, left by a killed or disk-full write")
                    f.seek(whole)
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                fcntl.flock(lk.fileno(), fcntl.LOCK_UN)


def _last_newline_end(f, end: int, chunk: int = 1 << 16) -> int:
    """The offset just after the last newline of the open file ``f`` of size ``end`` (0 if none)."""
    pos = end
    while pos > 0:
        start = max(0, pos - chunk)
        f.seek(start)
        i = f.read(pos - start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def repair_journal_tail(path) -> str:
    """Cut an Optuna journal after its last whole record (a newline-terminated JSON line).

    A disk that fills up (or a process killed) mid-write leaves half a record at the end;
    Optuna's next append glues its record to it and every later read fails with a
    JSONDecodeError. Everything from the first line that is not a whole JSON record on is
    dropped; returns one line saying so ("" when the journal is whole). Call it only while no
    other process may write the journal.
    """
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return ""
    data = path.read_bytes()
    good = 0
    dropped = 0
    for line in data.splitlines(keepends=True):
        if dropped == 0:
            ok = line.endswith(b"\n")
            if ok:
                try:
                    json.loads(line)
                except ValueError:
                    ok = False
            if ok:
                good += len(line)
                continue
        dropped += 1
    if good == len(data):
        return ""
    with open(path, "r+b") as fh:
        fh.truncate(good)
        fh.flush()
        os.fsync(fh.fileno())
    what = "a partial last record" if dropped == 1 else f"a damaged record and the {dropped - 1} after it"
    return (f"repaired the Optuna journal {path}: it ended in {what} ({len(data) - good} bytes; a full disk or a "
            "killed write), which was dropped")


def cut_journal_to_replayable(path) -> str:
    """Cut an Optuna journal before its first record that Optuna cannot replay (a flipped bit that
    left valid JSON: a key renamed, a date garbled); returns one line saying so. The trials of the
    records dropped are rebuilt from the stored rows (:meth:`OptunaStrategy.resume`, ``--repair``).
    Call it only while no other process may write the journal."""
    import json
    from pathlib import Path

    from optuna.storages.journal._storage import JournalStorageReplayResult

    data = Path(path).read_bytes()
    replay = JournalStorageReplayResult("repair-")
    good, n = 0, 0
    for line in data.splitlines(keepends=True):
        try:
            replay.apply_logs([json.loads(line)])
        except Exception:  # noqa: BLE001 - the first record that does not replay
            break
        good += len(line)
        n += 1
    with open(path, "r+b") as fh:
        fh.truncate(good)
        fh.flush()
        os.fsync(fh.fileno())
    return (f"--repair: cut the Optuna journal {path} back to its last good record (record {n}; "
            f"{len(data) - good} bytes after it dropped); the trials they held are rebuilt from the stored rows")


def _pg_driver(url: str) -> str:
    """``postgresql://`` means psycopg (3) to SQLAlchemy 2.1; use psycopg2 where only it is installed."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _quote_password(url: str) -> str:
    """``url`` with its user name and password percent-encoded: ``postgresql://u:p@ss@host/db`` ->
    ``postgresql://u:p%40ss@host/db``, so the driver reads the host as ``host`` rather than ``ss@host``
    (and never quotes the password's tail in an error). The password runs from ``://user:`` to the
    LAST ``@`` of the URL, as in :func:`~lstmsearch.errors.redact_url`, so what the driver is given
    as host, database and query is exactly what messages show; a raw ``/``, ``:``, ``?``, ``#`` or
    ``%`` in it is encoded too. A URL where that ``@`` lies inside a secret query value
    (``postgresql://u:pw@host/db?password=a@b``) cannot be read safely and is refused."""
    from urllib.parse import quote, unquote

    from ..errors import url_secret_spans, split_userinfo

    parts = split_userinfo(url)
    if parts is None:
        return url
    head, user, pw, rest = parts
    at = len(url) - len(rest) - 1
    mine = (len(head) + len(user) + 1, at)  # the password's span: the others are query values
    if any(s <= at < e for s, e in url_secret_spans(url, len(head)) if (s, e) != mine):
        raise LstmsearchError(f"cannot tell where the password ends in the Optuna storage {redact_url(url)}: "
                              "write each @ in the password and in the query as %40")
    return f"{head}{quote(unquote(user), safe='')}:{quote(unquote(pw), safe='')}@{rest}"


def _numbers(numbers, limit: int = 8) -> str:
    ns = sorted(numbers)
    return ", ".join(map(str, ns[:limit])) + (f" and {len(ns) - limit} more" if len(ns) > limit else "")


def _first_line(exc) -> str:
    text = redact_url(str(exc)).strip().splitlines()  # a driver's message may quote the URL
    return (text[0] if text else type(exc).__name__)[:300]


def fill_z(store, rows: pa.Table) -> pa.Table:
    """``rows`` with the z column filled from the trials' stored state where the rows keep none (every
    row written since the state is kept per trial; see :mod:`lstmsearch.store.generations`)."""
    z = rows.column("z").to_pylist() if "z" in rows.column_names else [None] * rows.num_rows
    missing = [i for i, v in enumerate(z) if v is None]
    if not missing:
        return rows
    batch = rows.column("batch").to_numpy()
    records = GenerationStore(store.root).records("optuna", batch[missing])
    for i in missing:
        z[i] = records[int(batch[i])]["mean"].astype(np.float32).tolist()
    col = pa.array(z, pa.list_(pa.float32()))
    if "z" in rows.column_names:
        return rows.set_column(rows.column_names.index("z"), "z", col)
    return rows.append_column("z", col)


def regenerate(space, spec, seed, rows) -> np.ndarray:
    """Settings (P, D) of stored Optuna rows from z (the trial's centre) and the region jitter."""
    K = int(spec["region"]["size"])
    mask = space.free_mask()
    out = []
    for r in rows.to_pylist():
        require(r["z"] is not None, f"row {r.get('row')} keeps no z; cannot rebuild it")
        centre = space.to_params(np.asarray(r["z"], np.float64)[None])
        if not r.get("scale"):
            out.append(centre[0])
            continue
        s = np.full(K, r["scale"], np.float32)
        s[0] = 0.0
        block = jitter(np.repeat(centre, K, axis=0), mask, s, seed, REGION_STREAM, r["batch"])
        out.append(block[r["index"]])
    return np.asarray(out, np.float32)
