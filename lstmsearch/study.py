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

import datetime as _dt
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import pyarrow as pa

from .config import StudyConfig, load_study, parse_study
from .errors import LstmsearchError, install_hint, require
from .evaluate import evaluate
from .kernels import check_backend, describe_auto
from .store import SCHEMA_VERSION, Store, fixed_list, schema, var_list


# ------------------------------------------------------------------ finding a study
def open_study(ref: Union[str, Path, StudyConfig], data_dir: Union[str, Path] = "data"):
    """(config, store) for a study file, a study folder, or a study name under ``data_dir``.

    A folder or name is read through its manifest (the study file text stored there), so
    results can be queried and reproduced without the original study file.
    """
    if isinstance(ref, StudyConfig):
        return ref, Store(ref.out)
    p = Path(ref)
    if p.suffix == ".toml":
        cfg = load_study(p)
        return cfg, Store(cfg.out)
    for root in (p, Path(data_dir) / str(ref)):
        if (root / "manifest.json").is_file():
            store = Store(root)
            m = store.read_manifest()
            cfg = parse_study(m["study_text"], source=f"{root}/manifest.json", base_dir=Path(m.get("base_dir", ".")))
            cfg.out = root
            return cfg, store
    raise LstmsearchError(f"no study {str(ref)!r}: expected a study file (.toml), a study folder with a "
                          f"manifest.json, or a study name under {str(data_dir)!r}/")


def _versions() -> Dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("lstmsearch", "numpy", "numba", "optuna", "pyarrow", "cmaes", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "not installed"
    from . import __version__

    out["lstmsearch"] = __version__
    out["lstmsearch_code"] = _code_hash()
    return out


def _code_hash() -> str:
    """sha256 (12 hex) of the package's source files: tells runs of different code apart."""
    import hashlib

    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunReport:
    """What one ``run`` did and where its time went."""

    study: str
    store: str
    settings: int  # evaluated in this run
    rows: int  # in the store after the run
    complete: bool  # the settings budget is spent
    best_row: Optional[int]
    best_nmse: float
    wall_s: float
    evaluate_s: float
    strategy_s: float
    io_s: float
    outside_share: float  # (wall - evaluate) / wall
    strategy_ms_per_setting: float
    settings_per_s: float
    messages: List[str]

    def lines(self) -> List[str]:
        out = [f"study {self.study}: {self.settings} settings evaluated in this run, {self.rows} rows in "
               f"{self.store}" + (" (budget spent)" if self.complete else "")]
        if self.best_row is not None:
            out.append(f"best     nmse {self.best_nmse:.4g} (row {self.best_row})")
        if self.settings:
            out.append(f"time     {self.wall_s:.2f} s wall, {self.settings_per_s:,.0f} settings/s; "
                       f"evaluate {self.evaluate_s:.2f} s, strategy {self.strategy_s:.2f} s, I/O {self.io_s:.2f} s")
            out.append(f"overhead {self.outside_share:.1%} of wall time outside the kernels; "
                       f"strategy {self.strategy_ms_per_setting:.3f} ms per setting")
        return out


class _TopK:
    """The k smallest nmse seen so far, to decide which rows keep their full weights."""

    def __init__(self, k: Optional[int], values: np.ndarray):
        self.k = k
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        self.best = np.sort(v)[: k] if k is not None else v[:0]

    def keep(self, nmse: np.ndarray) -> np.ndarray:
        finite = np.isfinite(nmse)
        if self.k is None:
            return np.ones(len(nmse), bool)
        if self.k == 0:
            return np.zeros(len(nmse), bool)
        combined = np.sort(np.concatenate([self.best, nmse[finite]]))
        kth = combined[self.k - 1] if combined.size >= self.k else np.inf
        self.best = combined[: self.k]
        return finite & (nmse <= kth)


def rows_table(cfg: StudyConfig, strategy: str, batch, table: pa.Table, row0: int, keep: np.ndarray,
               extra: Dict, wall: float, run: int) -> pa.Table:
    """The store rows of one evaluated batch (see :mod:`lstmsearch.store` for the schema)."""
    cell, task, ev = cfg.cell, cfg.task, cfg.eval
    P = table.num_rows
    ro = table.column("readout").combine_chunks()
    ro_np = ro.flatten().to_numpy().reshape(P, cell.n_readout)
    weights = None
    if keep.any():
        weights = cell.with_readout(batch.params, ro_np)

    def const(v, t):
        return pa.array(np.full(P, v), t) if not isinstance(v, str) else pa.array([v] * P, t)

    def opt(values, t):
        if values is None:
            return pa.nulls(P, t)
        if isinstance(values, tuple):
            return pa.array(values[0], t, mask=~values[1])
        return pa.array(values, t, mask=np.isnan(values) if np.asarray(values).dtype.kind == "f" else None)

    has = table.column_names
    cols = {
        "study": const(cfg.name, pa.string()), "strategy": const(strategy, pa.string()),
        "row": pa.array(np.arange(row0, row0 + P, dtype=np.int64)), "batch": pa.array(batch.batch, pa.int64()),
        "index": pa.array(batch.index, pa.int64()), "cell": const(cell.kind, pa.string()),
        "hidden": const(cell.hidden, pa.int32()), "inputs": const(cell.inputs, pa.int32()),
        "outputs": const(cell.outputs, pa.int32()), "task": const(task.name, pa.string()),
        "length": const(task.length, pa.int32()), "seed": const(ev.seed, pa.int64()),
        "sequences": const(ev.sequences, pa.int32()), "heldout": const(ev.heldout, pa.int32()),
        "z": var_list(batch.z, P), "scale": opt(batch.scale, pa.float32()),
        "key_seed": opt(batch.key_seed, pa.int64()), "key_index": opt(batch.key_index, pa.int64()),
        "weights": fixed_list(weights, cell.n_params, keep, P), "readout": ro,
        "mse": table.column("mse"), "nmse": table.column("nmse"), "max_abs_err": table.column("max_abs_err"),
        "train_mse": table.column("train_mse") if "train_mse" in has else pa.nulls(P, pa.float64()),
        "train_nmse": table.column("train_nmse") if "train_nmse" in has else pa.nulls(P, pa.float64()),
        "nmse_long": opt(extra.get("nmse_long"), pa.float64()),
        "long_length": opt(extra.get("long_length"), pa.int32()),
        "finite": table.column("finite"), "wall_s": const(wall / P, pa.float64()),
        "time": pa.array([_dt.datetime.now(_dt.timezone.utc)] * P, pa.timestamp("ms", tz="UTC")),
        "run": const(run, pa.int32()),
    }
    sch = schema(cell.n_params, cell.n_readout)
    return pa.Table.from_arrays([cols[f.name].cast(f.type) if cols[f.name].type != f.type else cols[f.name]
                                 for f in sch], schema=sch)


def _prepare_manifest(cfg: StudyConfig, store: Store) -> Dict:
    if store.exists():
        m = store.read_manifest()
        if m.get("extracted_from"):
            raise LstmsearchError(
                f"{store.root} holds rows extracted from study {m['extracted_from']['study']!r} (lstmsearch extract), "
                f"not a study to continue; run its study.toml with --out pointing at another folder")
        if m.get("identity") != cfg.identity():
            raise LstmsearchError(
                f"{store.root} holds results of a study with different content (identity {m.get('identity')} vs "
                f"{cfg.identity()} for {cfg.source}); give this study another [study] name or out, or remove "
                f"{store.root}")
        if m.get("schema_version") != SCHEMA_VERSION:
            raise LstmsearchError(f"{store.root} was written with store schema version {m.get('schema_version')}; "
                                  f"this lstmsearch writes version {SCHEMA_VERSION}")
        if store.count():  # a study without rows may still pick its storage
            _check_storage(cfg, m)
        m["study_text"] = cfg.text  # budget/backend changes are recorded
        return m
    return {
        "schema_version": SCHEMA_VERSION, "study": cfg.name, "identity": cfg.identity(),
        "study_file": str(cfg.source), "base_dir": str(cfg.base_dir), "study_text": cfg.text,
        "created": _now(), "strategy": cfg.strategy["kind"],
        "cell": {"kind": cfg.cell.kind, "hidden": cfg.cell.hidden, "inputs": cfg.cell.inputs,
                 "outputs": cfg.cell.outputs, "n_params": cfg.cell.n_params},
        "task": cfg.task.spec(), "baseline": cfg.task.baseline,
        "eval": asdict(cfg.eval), "space": {"kind": cfg.space_obj.kind, "dim": cfg.space_obj.dim,
                                            "names": cfg.space_obj.names[:1000]},
        "seeds": {"eval": cfg.eval.seed, "strategy": int(cfg.strategy.get("seed") or cfg.eval.seed)},
        "runs": [],
    }


def _storage_key(cfg: StudyConfig) -> Optional[str]:
    """The Optuna storage of an optuna study, password removed (recorded in the manifest)."""
    if cfg.strategy["kind"] != "optuna":
        return None
    from .search.optuna_search import _redact

    return _redact(cfg.strategy["storage"])


def _check_storage(cfg: StudyConfig, manifest: Dict):
    """A study's Optuna trials live in one storage: refuse to continue it in another one."""
    recorded = manifest.get("optuna_storage")
    mine = _storage_key(cfg)
    if recorded is None or mine is None or recorded == mine or recorded == "memory":
        return
    raise LstmsearchError(
        f"the Optuna trials of study {cfg.name!r} are in the storage {recorded} (recorded in "
        f"{cfg.out}/manifest.json), not in {mine}; pass --storage with that URL (or set [strategy] storage)")


def _study_config(study, budget=None, seconds=None, backend=None, out=None, storage=None) -> StudyConfig:
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
        plain = _study_config(study, budget, seconds, backend, out)
        require(plain.strategy["kind"] == "optuna", f"--storage is the Optuna storage of strategy optuna; study "
                                                    f"{plain.name} uses {plain.strategy['kind']}")
        overrides["strategy.storage"] = storage
    if isinstance(study, StudyConfig):
        cfg = study if not overrides else parse_study(study.text, study.source, study.base_dir, overrides)
        cfg.out = study.out if out is None else Path(out)
    elif Path(study).suffix == ".toml":
        cfg = load_study(study, overrides)
        if out is not None:
            cfg.out = Path(out)
    else:  # a study folder or name: the study file text kept in its manifest
        cfg0, _ = open_study(study)
        cfg = parse_study(cfg0.text, cfg0.source, cfg0.base_dir, overrides)
        cfg.out = cfg0.out if out is None else Path(out)
    check_backend(cfg.eval.backend)  # "cuda" without numba-cuda or a GPU: refused before any work
    return cfg


def run_study(study, budget: Optional[int] = None, seconds: Optional[float] = None,
              backend: Optional[str] = None, progress: bool = False, echo=None, out=None,
              workers: Optional[int] = None, storage: Optional[str] = None, dask=None,
              heartbeat_s: float = 5.0, grace_s: float = 30.0, plots: Optional[bool] = None) -> RunReport:
    """Run (or continue) a study until its budget is spent.

    Parameters
    ----------
    study : path of a study file, or a :class:`~lstmsearch.config.StudyConfig`
    budget : total settings in the store to reach (overrides ``[budget] settings``)
    seconds : wall-time limit of this run (overrides ``[budget] seconds``)
    backend : overrides ``[eval] backend``
    progress : show a progress bar (settings/s, best nmse so far)
    echo : callable for status lines (default: silent)
    out : result folder (overrides ``[study] out``)
    workers : run this many worker processes on this machine, sharing the Optuna study
        through its storage (strategy optuna; see :mod:`lstmsearch.workers`)
    storage : Optuna storage URL (overrides ``[strategy] storage``), e.g. ``postgresql://...``
    dask : a Dask scheduler address or ``distributed.Client``: each batch (a sweep's index
        range, a CMA-ES generation, a batch of Optuna trials) is split over the cluster
        (see :mod:`lstmsearch.cluster`); the rows are the same as without it
    heartbeat_s, grace_s : worker heartbeat interval and the silence after which a worker's
        trials are failed and retried (workers only)
    plots : after the run, write ``best_so_far.png`` and ``nmse_hist.png`` into the study
        folder's ``plots/`` (default: the study file's ``[store] plots``, false); without
        matplotlib the report says they were skipped
    """
    if workers is not None:
        from .workers import run_workers

        require(isinstance(workers, int) and workers >= 1, f"workers must be a positive integer, got {workers!r}")
        require(dask is None, "--workers and --dask do not go together: workers share an Optuna study, "
                              "--dask spreads each batch over a cluster")
        want = plots if plots is not None else _study_config(study, budget, seconds, backend, out, storage).plots
        report = run_workers(study, workers, budget=budget, seconds=seconds, backend=backend, progress=progress,
                             echo=echo, out=out, storage=storage, heartbeat_s=heartbeat_s, grace_s=grace_s)
        return _write_plots(report) if want else report
    cfg = _study_config(study, budget, seconds, backend, out, storage)
    echo = echo or (lambda s: None)
    store = Store(cfg.out)
    manifest = _prepare_manifest(cfg, store)
    live = [d for d in store.leases() if d["alive"]]
    require(not live, f"{len(live)} worker(s) are running this study (e.g. process {live[0].get('pid') if live else ''} "
                      f"on {live[0].get('host') if live else ''}); add more with lstmsearch worker, or wait for them")
    messages = store.acquire()
    evaluator = None
    try:
        if dask is not None:
            from .cluster import DaskEvaluator

            evaluator = DaskEvaluator(dask, cfg, echo=echo)
            messages.append(evaluator.describe())
        report = _run_locked(cfg, store, manifest, messages, progress, echo, evaluator=evaluator)
    finally:
        if evaluator is not None:
            evaluator.close()
        store.release()
    return _write_plots(report) if (cfg.plots if plots is None else plots) else report


def _write_plots(report: RunReport) -> RunReport:
    """The plots of ``run --plots`` (:func:`lstmsearch.analysis.report.run_plots`); a line in the messages."""
    from .analysis.report import run_plots

    if report.rows:
        try:
            paths = run_plots(report.store)
            report.messages.append(f"plots: {', '.join(str(p) for p in paths)}")
        except LstmsearchError as exc:
            report.messages.append(f"plots skipped: {exc}")
    return report


def local_evaluate(cfg: StudyConfig, batch) -> pa.Table:
    """Evaluate one batch in this process (what every strategy's rows are made of)."""
    ev = cfg.eval
    return evaluate(cfg.cell, batch.params, cfg.task, n_sequences=ev.sequences, seed=ev.seed,
                    backend=ev.backend, readout=ev.readout, n_heldout=ev.heldout, ridge=ev.ridge)


def _run_locked(cfg, store, manifest, messages, progress, echo, worker=None, evaluator=None) -> RunReport:
    """The ask -> evaluate -> write -> tell loop, for a single run or for one worker.

    ``worker`` (a :class:`lstmsearch.workers.Worker`) makes this process one of several
    writers: its rows get its slot's ids, it does not write the manifest's run list under
    the run lock but registers its run through :meth:`Store.update_manifest`, it takes the
    other workers' batches in flight into account for the budget, and it leaves the
    recovery of dead workers' trials to heartbeats.
    """
    from .search import make_strategy

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
    if cfg.warm_start and hasattr(strategy, "warm_start"):
        _, other = open_study(cfg.warm_start["study"])
        msg = strategy.warm_start(other, cfg.warm_start["k"], cfg.warm_start["study"])
        if msg:
            messages.append(msg)
    if cfg.eval.backend == "auto":
        messages.append(describe_auto())
    for m in messages:
        echo(m)

    run_entry = {"start": _now(), "backend": cfg.eval.backend, "host": platform.node(),
                 "rows_before": store.count(), "budget_settings": cfg.budget_settings,
                 "budget_seconds": cfg.budget_seconds, "versions": _versions()}
    if worker is not None:
        import os

        run_entry.update({"worker": store.slot, "pid": os.getpid(),
                          "supervisor": os.environ.get("LSTMSEARCH_SUPERVISOR")})
    extra = strategy.manifest_extra() if hasattr(strategy, "manifest_extra") else {}

    def register(m):
        m.update(extra)
        if store.count() == 0 or "optuna_storage" not in m:  # the storage this study's trials are in
            m["optuna_storage"] = _storage_key(cfg)
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
    topk = _TopK(cfg.keep_weights, nmse_prev)
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
        strat_s = getattr(strategy, "overhead_s", 0.0) + strategy_extra_s
        run_entry.update({
            "end": _now(), "settings": n_run, "rows_after": store.count(), "wall_s": round(wall, 3),
            "evaluate_s": round(eval_s, 3), "strategy_s": round(strat_s, 3), "io_s": round(io_s, 3),
            "outside_share": round((wall - eval_s) / wall, 4) if wall > 0 else 0.0,
            "best_nmse": best[0], "best_row": best[1], "messages": messages,
        })
        if getattr(strategy, "outages", None):
            run_entry["storage_outages_s"] = [round(s, 2) for _, s in strategy.outages]
        if getattr(strategy, "recovered", None) and any(strategy.recovered.values()):
            run_entry["recovered_trials"] = dict(strategy.recovered)
        t_io = time.perf_counter()
        try:
            if worker is None:
                store.write_manifest(manifest)
            else:
                store.update_manifest(lambda m: _replace_run(m, run_entry))
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
        settings_per_s=n_run / wall if wall > 0 else 0.0, messages=messages,
    )


def _disk_guard(fn, *args):
    """Call a strategy; a full disk under its storage (Optuna journal, CMA-ES state) becomes one clear error."""
    import errno

    try:
        return fn(*args)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            from .store import DiskFullError

            raise DiskFullError(f"no space left on the device while the strategy saved its state ({exc}); every part "
                                "written before is intact: free some space and run the study again to continue") from exc
        raise


def _replace_run(m: Dict, entry: Dict) -> Dict:
    for i, r in enumerate(m["runs"]):
        if r.get("run") == entry["run"]:
            m["runs"][i] = entry
            return m
    m["runs"].append(entry)
    return m


# ------------------------------------------------------------------------ reading
#: Columns shown by ``top``/``query`` by default (the big lists are left out).
SUMMARY_COLUMNS = ["row", "strategy", "batch", "index", "nmse", "train_nmse", "max_abs_err", "nmse_long", "finite"]


def parse_where(text: str):
    """A pyarrow expression from a small filter language: ``col OP value [and ...]``.

    OP is one of < <= > >= == = !=; value is a number, true/false or a 'quoted string'.
    """
    import re

    import pyarrow.dataset as ds

    expr = None
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*(<=|>=|==|!=|=|<|>)\s*(.+?)\s*", part)
        require(m is not None, f"cannot read the filter {part!r}; write column OP value, e.g. \"nmse < 1e-3\" "
                               "(joined with and), or use --sql with duckdb installed")
        col, op, val = m.groups()
        if val.lower() in ("true", "false"):
            v = val.lower() == "true"
        elif val[:1] in "'\"" and val[-1:] == val[:1]:
            v = val[1:-1]
        else:
            try:
                v = float(val) if any(c in val for c in ".eE") or val in ("inf", "-inf") else int(val)
            except ValueError:
                raise LstmsearchError(f"cannot read the value {val!r} in the filter {part!r}") from None
        f = ds.field(col)
        e = {"<": f < v, "<=": f <= v, ">": f > v, ">=": f >= v, "==": f == v, "=": f == v, "!=": f != v}[op]
        expr = e if expr is None else expr & e
    return expr


def load_results(study, where=None, columns: Optional[List[str]] = None, data_dir="data") -> pa.Table:
    """A study's rows as a pyarrow Table (sorted by row id).

    ``where`` is a pyarrow compute expression or a filter string (``"nmse < 1e-3 and finite == true"``);
    ``columns`` selects columns (default: all).
    """
    _, store = open_study(study, data_dir)
    if isinstance(where, str):
        where = parse_where(where)
    if columns is not None:
        known = set(schema(1, 1).names)
        bad = [c for c in columns if c not in known]
        if bad:
            raise LstmsearchError(f"unknown column {bad[0]!r}; the store has {', '.join(schema(1, 1).names)}")
    try:
        return store.read(columns=columns, filter=where)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise LstmsearchError(f"cannot apply the filter: {str(exc).splitlines()[0]}") from exc


def top_rows(study, k: int = 10, where=None, data_dir="data", columns=SUMMARY_COLUMNS) -> pa.Table:
    """The ``k`` best rows by nmse then row id (``columns``: default :data:`SUMMARY_COLUMNS`,
    None for all): what ``lstmsearch top`` prints."""
    t = load_results(study, columns=columns, where=where, data_dir=data_dir)
    return t.sort_by([("nmse", "ascending"), ("row", "ascending")]).slice(0, k)


def sql(study, query: str, data_dir="data") -> pa.Table:
    """Run SQL through DuckDB over the study's rows, visible as the table ``rows``."""
    try:
        import duckdb
    except ImportError:
        raise LstmsearchError(f"SQL queries need DuckDB: {install_hint('sql')} (or use --where)") from None
    _, store = open_study(study, data_dir)
    require(store.parts(), f"the study in {store.root} has no rows yet")
    con = duckdb.connect()
    files = ", ".join("'" + p.as_posix().replace("'", "''") + "'" for p in store.parts())  # damaged parts left out
    con.execute(f"CREATE VIEW rows AS SELECT * FROM read_parquet([{files}])")
    try:
        res = con.sql(query)
        if res is None:
            return pa.table({})
        for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
            if hasattr(res, name):
                out = getattr(res, name)()
                return out if isinstance(out, pa.Table) else out.read_all()
        raise LstmsearchError("this DuckDB cannot return Arrow tables; upgrade duckdb")  # pragma: no cover
    except duckdb.Error as exc:
        raise LstmsearchError(f"SQL error: {str(exc).splitlines()[0]}") from exc


def settings_of(cfg: StudyConfig, store: Store, rows: pa.Table) -> np.ndarray:
    """Full settings (P, D) of stored rows, readout included: the stored weights where kept,
    else rebuilt from z or the sweep key with the stored readout spliced in."""
    P = rows.num_rows
    out = np.empty((P, cfg.cell.n_params), np.float32)
    w = rows.column("weights").to_pylist()
    missing = [i for i, v in enumerate(w) if v is None]
    for i, v in enumerate(w):
        if v is not None:
            out[i] = v
    if missing:
        sub = rows.take(pa.array(missing))
        kind = cfg.strategy["kind"]
        space = cfg.space_obj
        seed = int(cfg.strategy.get("seed") or cfg.eval.seed)
        if kind == "optuna":
            from .search.optuna_search import regenerate

            params = regenerate(space, cfg.strategy, seed, sub)
        elif kind == "sweep":
            from .search.sweep import SweepStrategy

            centre = store.read_manifest().get("sweep_centre")
            params = SweepStrategy(cfg, space, store, cfg.strategy, centre=centre).regenerate(sub)
        else:
            z = sub.column("z").to_pylist()
            require(all(v is not None for v in z), "these rows keep neither weights nor z")
            params = space.to_params(np.asarray(z, np.float64))
        ro = sub.column("readout").combine_chunks().flatten().to_numpy().reshape(len(missing), -1)
        out[missing] = cfg.cell.with_readout(params, ro)
    return out
