"""The ``lstmsearch`` command line.

Each sub-command is a small function ``cmd_<name>(args)``; user errors
(:class:`~lstmsearch.errors.LstmsearchError`) are printed as one line and exit with 2.
Output cut short by its reader (``lstmsearch query ... | head``) ends quietly with status 141
(128 + SIGPIPE, what a shell reports for a command killed by a closed pipe).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from ..errors import LstmsearchError, StopRequested, check_output, redact_url
from ..kernels import check_backend, describe_auto
from ..kinds import BUILTIN
from ..kinds.spec import kinds_help
from .args import STUDY_HELP, add_data_arg, add_row_arg, parse_list, parse_row

#: Exit status when stdout's reader goes away (``| head``): 128 + SIGPIPE, as a shell reports it.
EXIT_BROKEN_PIPE = 141


def _add_cell_args(p, hidden_default=32):
    p.add_argument("--cell", default="lstm", help=f"cell kind: {kinds_help(BUILTIN)}, or module:NAME of your own "
                   "(default lstm; lstmsearch layout --cell KIND prints its equations)")
    p.add_argument("--hidden", type=int, default=hidden_default, help="hidden size H")


def _add_task_args(p):
    p.add_argument("--task", default="recall_first",
                   help="recall_first, recall_lag, next_value, copy, adding, latch, two_sequence, parity "
                        "(default recall_first)")
    p.add_argument("--length", type=int, default=20, help="sequence length T (default 20)")
    p.add_argument("--dist", default="uniform", help="input distribution: uniform, normal, bits, symbols")


def cmd_evaluate(args) -> int:
    import numpy as np

    from ..cells import Cell
    from ..evaluate import evaluate
    from ..tasks import make_task, takes_dist

    backend = check_backend(args.backend)  # refused before any work
    task = make_task(args.task, length=args.length, **({"dist": args.dist} if takes_dist(args.task) else {}))
    cell = Cell(args.cell, args.hidden, inputs=task.n_inputs, outputs=task.n_outputs)
    params = cell.init(args.n_settings, seed=args.seed, method=args.init, scale=args.scale)
    print(f"{cell.kind} H={cell.hidden} ({cell.n_params} parameters) on {task.describe()}")
    print(f"{args.n_settings} settings ({args.init} init), {args.sequences} sequences, "
          f"readout {args.readout}, backend {args.backend}")
    if backend != args.backend:
        print(describe_auto())
    from ..kernels import compile_notice

    notice = compile_notice(cell, backend)  # a kernel not yet in the disk cache compiles first: say so
    if notice:
        print(notice, flush=True)
    t0 = time.perf_counter()
    table = evaluate(cell, params, task, n_sequences=args.sequences, seed=args.seed, backend=args.backend,
                     readout=args.readout, progress=not args.quiet)
    wall = time.perf_counter() - t0
    nmse = table.column("nmse").to_numpy()
    finite = table.column("finite").to_numpy()
    steps = args.n_settings * args.sequences * (2 if args.readout == "fit" else 1) * task.length
    best = int(np.argmin(nmse))
    print(f"best     nmse {nmse[best]:.4g} (setting {best})")
    print(f"median   nmse {np.median(nmse):.4g}")
    print(f"solved   {np.mean(nmse < args.solved):.2%} of settings with nmse < {args.solved:g}")
    print(f"finite   {finite.mean():.2%}")
    print(f"time     {wall:.2f} s, {steps / wall / 1e6:.2f} M cell-steps/s")
    return 0


def cmd_layout(args) -> int:
    from ..cells import Cell

    cell = Cell(args.cell, args.hidden, inputs=args.inputs, outputs=args.outputs)
    print(cell.describe())
    print(cell.spec.describe())
    print(f"  state: {', '.join(cell.spec.states)}; recurrence: {cell.spec.recurrence}; PyTorch: {cell.spec.torch_name}")
    return 0


# ---------------------------------------------------------------- studies
def _echo(line: str) -> None:
    """A status line of a running command, shown when it happens (also when stdout is a pipe, as in CI
    logs: "compiling the lstm H=8 kernel" must not wait for the end of the run)."""
    print(line, flush=True)


def cmd_run(args) -> int:
    if args.workers is None and args.budget is None and args.seconds is None and args.storage is None:
        _locate_study(args)  # then finding the study is run_study's first check
    from ..run import run_study
    from ..run.loop import study_config
    from ..search import strategy_class

    if args.storage is None and os.environ.get("LSTMSEARCH_STORAGE"):  # the URL kept out of files and ps
        plain = study_config(args.study, out=args.out, data_dir=args.data)
        if strategy_class(plain).shared_storage:
            args.storage = os.environ["LSTMSEARCH_STORAGE"]
    report = run_study(args.study, budget=args.budget, seconds=args.seconds, backend=args.backend,
                       progress=not args.quiet, echo=_echo, out=args.out, data_dir=args.data, workers=args.workers,
                       storage=args.storage, dask=args.dask, heartbeat_s=args.heartbeat, grace_s=args.grace,
                       plots=True if args.plots else None, repair=args.repair)
    for line in report.lines():
        print(line)
    for m in report.messages[-1:]:
        print(m)
    if report.stopped_by:
        print(f"lstmsearch: stopped by {report.stopped_by} after the batch in progress; every part written is "
              "kept: run the same command again to continue", file=sys.stderr)
        return 128 + signal.Signals[report.stopped_by].value
    return 0


def cmd_worker(args) -> int:
    from ..run.workers import run_worker

    report = run_worker(args.study, storage=args.storage, slot=args.slot, budget=args.budget, seconds=args.seconds,
                        backend=args.backend, out=args.out, data_dir=args.data, progress=not args.quiet, echo=print,
                        heartbeat_s=args.heartbeat, grace_s=args.grace, storage_retry_s=args.storage_retry)
    for line in report.lines():
        print(line)
    return 0


def _warn_damaged():
    """Damaged part files that a command skips are named on stderr, one line each."""
    import warnings

    from ..errors import DamagedPartWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DamagedPartWarning):
            print(f"lstmsearch: warning: {str(message).removeprefix('lstmsearch: ')}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", DamagedPartWarning)
    warnings.showwarning = show


def _print_table(table, columns=None, limit=None):

    if columns:
        table = table.select([c for c in columns if c in table.column_names])
    if limit is not None:
        table = table.slice(0, limit)
    names = table.column_names
    rows = table.to_pylist()

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, list):
            return f"[{len(v)} floats]"
        return "" if v is None else str(v)

    cells = [[fmt(r[n]) for n in names] for r in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    print("  ".join(n.rjust(w) for n, w in zip(names, widths)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)))
    if not rows:
        print("(no rows)")


def _locate_study(args) -> None:
    """A STUDY that is not there: the one-line error at once, before the command imports pyarrow and
    the kernels (the command's own first step would raise the same error, a second later)."""
    from ..config import DATA_DIR, locate_study

    locate_study(args.study, DATA_DIR if args.data is None else args.data)


def cmd_top(args) -> int:
    _locate_study(args)
    import pyarrow as pa

    from ..query import open_study, spread_by_length, summary_columns, top_rows

    cfg, _ = open_study(args.study, args.data)
    t = spread_by_length(top_rows(cfg, args.k, where=args.where, data_dir=args.data), cfg.task.scored_lengths)
    cols = [c for c in t.column_names if c in summary_columns(cfg) or c.startswith("nmse@")]
    if not args.no_check and t.num_rows:
        # solved means solved: the rows shown, at n, n+1, 2n+1, 10n+3, 100n+3 (one batch per length)
        # on the verdict's CHECK_SEQUENCES fresh sequences: the digits of reproduce, report and the README
        ids = t.column("row").to_pylist()
        vs, refused = _verdicts_without_code(args, ids)
        worst = [None if r not in vs else float("nan") if any(e != e for e in vs[r].nmse) else max(vs[r].nmse)
                 for r in ids]
        t = t.append_column("fresh_nmse", pa.array(worst, pa.float64()))
        t = t.append_column("solved", pa.array([vs[r].short if r in vs else None for r in ids], pa.string()))
        cols += ["fresh_nmse", "solved"]
        if vs:
            v = next(iter(vs.values()))
            print(f"nmse: as stored by the search ({cfg.eval.heldout} held-out sequences, seed {cfg.eval.seed}); "
                  f"fresh_nmse: the worst over the checked lengths; solved: {v.describe()}; "
                  "every length / some lengths / n only / no (--no-check skips both)", file=sys.stderr)
        if refused:
            print(f"fresh_nmse and solved left empty for {refused}", file=sys.stderr)
    _print_table(t, cols)
    return 0


def _verdicts_without_code(args, ids):
    """({row: verdict}, note): the verdicts of the rows ``ids``, but those only the study's template code
    rebuilds (reading runs none unless --allow-code), and a note naming them (None when there are none)."""
    from ..analysis.verdict import row_verdicts

    vs = row_verdicts(args.study, ids, data_dir=args.data, code_optional=True)
    left = len(ids) - len(vs)
    return vs, (None if not left else f"{left} of {len(ids)} rows: they keep no weights and their settings are "
                                      "rebuilt by the study's template code, which reading does not run: pass "
                                      "--allow-code to import and run it")


def cmd_query(args) -> int:
    if not args.sql:  # sql asks for DuckDB first
        _locate_study(args)
    from ..query import SUMMARY_COLUMNS, load_results, sql

    if args.sql:
        t = sql(args.study, args.sql, data_dir=args.data)
        cols = None
    else:
        cols = args.columns.split(",") if args.columns else SUMMARY_COLUMNS
        # --output writes every column (the weights too), the screen a summary
        t = load_results(args.study, where=args.where, columns=None if args.output and not args.columns else cols,
                         data_dir=args.data)
        if args.sort:
            t = t.sort_by(args.sort)
    if args.weights:
        if not args.output or args.sql or args.columns:
            raise LstmsearchError("--weights fills the weights of every row written by --output (every column): "
                                  "give --output FILE, without --sql and --columns")
        t = _with_full_weights(args, t)
    if args.output:
        check_output(args.output, args.force, "--output")
        _write_rows(t, args.output)
        kept = t.num_rows - t.column("weights").null_count if "weights" in t.column_names else None
        print(f"{t.num_rows} rows written to {args.output}, {t.num_columns} columns"
              + ("" if kept is None or kept == t.num_rows else
                 f" (weights stored for {kept} of them; the others keep the keys reproduce rebuilds them from: "
                 "--weights writes them all)"))
        return 0
    print(f"{t.num_rows} matching rows")
    _print_table(t, cols, args.limit)
    if args.limit is not None and t.num_rows > max(args.limit, 0):
        print(f"showing {max(args.limit, 0)} of {t.num_rows} matching rows (--limit N for more, --output FILE "
              "writes them all)")
    return 0


def _with_full_weights(args, t):
    """``t`` with the full setting of every row in ``weights`` (and its tail in ``readout``)."""
    import pyarrow as pa

    from ..query import open_study, settings_of

    cfg, store = open_study(args.study, args.data)
    if not t.num_rows:
        return t
    settings = settings_of(cfg, store, t)
    for name, block in (("weights", settings), ("readout", settings[:, cfg.cell.n_recurrent:])):
        arr = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel(), pa.float32()), block.shape[1])
        i = t.column_names.index(name)
        t = t.set_column(i, t.schema.field(name).with_type(arr.type), arr)
    return t


def _write_rows(t, path: str) -> None:
    """Every column of ``t`` to Parquet, or to CSV with the list columns as JSON arrays."""
    if not path.endswith(".csv"):
        import pyarrow.parquet as pq

        pq.write_table(t, path)
        return
    import json

    import pyarrow as pa
    import pyarrow.csv as pcsv

    for i, f in enumerate(t.schema):
        if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type) or pa.types.is_large_list(f.type):
            text = [None if v is None else json.dumps(v) for v in t.column(i).to_pylist()]
            t = t.set_column(i, pa.field(f.name, pa.string()), pa.array(text, pa.string()))
    pcsv.write_csv(t, path)


def cmd_show(args) -> int:
    import numpy as np

    from ..reproduction import row_setting

    args.row = parse_row(args.row, args.study, args.data)
    cfg, r, setting = row_setting(args.study, args.row, data_dir=args.data, code_optional=True)
    print(f"study {cfg.name} row {args.row}: {cfg.cell.kind} H={cfg.cell.hidden}, {cfg.task.describe()}")
    for k, v in r.items():
        if k in ("weights", "z", "readout", "setting_refused"):
            continue
        print(f"  {k:12s} {v}")
    if r.get("z") is not None:
        names = cfg.space_obj.names
        print(f"  z ({len(r['z'])} dims):")
        for n, v in list(zip(names, r["z"]))[:64]:
            print(f"    {n:24s} {v: .6g}")
    if setting is None:  # rebuilding it would run the study's template code
        print(f"  weights      not shown: {r['setting_refused']}")
        return 0
    print(f"  weights      {'stored' if r.get('weights') is not None else 'rebuilt from z / key'}")
    if r.get("weights") is None and r.get("readout") is None and cfg.eval.readout == "fit":
        print("  readout      fitted again from the stored seed (rows below the best keep_weights do not store it)")
    np.set_printoptions(precision=4, suppress=True, linewidth=110, threshold=200)
    for name, block in cfg.cell.unflatten(setting).items():
        print(f"  {name} {block.shape}:")
        print("    " + str(block).replace("\n", "\n    "))
    return 0


def cmd_reproduce(args) -> int:
    from ..reproduction import format_reproduction, reproduce

    factors = parse_list(args.factors, float, "--factors") if args.factors is not None else None
    lengths = parse_list(args.lengths, int, "--lengths") if args.lengths is not None else None
    args.row = parse_row(args.row, args.study, args.data)
    rep = reproduce(args.study, args.row, backend=args.backend, factors=factors, lengths=lengths,
                    n_sequences=args.sequences, data_dir=args.data, check=not args.no_check)
    lines = format_reproduction(rep)
    at = next((i for i, ln in enumerate(lines) if ln.startswith("fresh sequences")), len(lines))
    lines.insert(at, f"{rep['n_sequences']} fresh sequences per length"  # every output that judges says how many
                 + (f"; --factors multiply n = {_factor_base(args)}" if factors is not None else ""))
    for line in lines:
        print(line)
    return 0


def _factor_base(args) -> str:
    """What ``--factors`` multiply (the task's length: the longest trained one), in words."""
    from ..query import open_study

    task = open_study(args.study, args.data)[0].task
    trained = list(task.scored_lengths)
    return f"{task.length}" + (f", the longest trained length ({', '.join(map(str, trained))}), as lengths --factors"
                               if len(trained) > 1 else ", the task's length")


def cmd_export(args) -> int:
    from ..reproduction import export

    args.row = parse_row(args.row, args.study, args.data)
    path = export(args.study, args.row, args.format, args.output, data_dir=args.data, cell=args.cell,
                  force=args.force)
    print(f"wrote {path}")
    return 0


def cmd_extract(args) -> int:
    from ..extract import extract, format_extracted

    rows = [parse_row(r, args.study, args.data) for r in parse_list(args.rows, str, "--rows")] if args.rows else None
    top = None if rows is not None else args.top
    print(format_extracted(extract(args.study, args.to, top=top, rows=rows, name=args.name, data_dir=args.data)))
    return 0


def _check_files(store, cfg):
    """:meth:`lstmsearch.store.Store.check_files` of a store (best/, generations/, state files, the
    Optuna journal), against the (row, nmse) of its readable parts."""
    import warnings

    import pyarrow as pa

    try:
        with warnings.catch_warnings():  # damaged parts are in the table already
            warnings.simplefilter("ignore")
            stored = store.read(columns=["row", "nmse"]) if store.parts() else None
    except (LstmsearchError, OSError, ValueError, pa.ArrowException):
        stored = None
    return store.check_files(cfg.cell.n_params if cfg is not None else None, stored)


def cmd_check(args) -> int:
    """Verify a whole store: one table (file, rows, status), a summary line; exit 0 clean, 1 not."""
    from pathlib import Path

    from ..query import open_study
    from ..store import Store

    cfg = None
    try:
        cfg, store = open_study(args.study, args.data)
    except LstmsearchError:
        if args.repair:
            raise  # re-evaluating rows needs the study (its manifest)
        roots = [r for r in (Path(args.study), Path(args.data) / str(args.study)) if (r / "rows").is_dir()]
        if not roots:
            raise
        store = Store(roots[0])  # a folder whose manifest is gone: its parts are still checked
    if args.repair:
        from ..run.restore import repair_store

        store.acquire("check")  # no run may be writing meanwhile
        try:
            for line in repair_store(cfg, store):
                print(line)
        finally:
            store.release()
        store = Store(store.root)
    results = store.check()
    problems = [r for r in results if not r["status"].startswith("ok")]
    others = _check_files(store, cfg)  # best/, generations/, state files, the Optuna journal
    if args.quarantine and problems:
        store.acquire("check")  # no run may be writing meanwhile
        try:
            for line in store.quarantine_checked(results):
                print(line)
        finally:
            store.release()
    if results or others:
        width = max(len("part"), *(len(r["part"]) for r in results + others))
        print(f"{'part':<{width}}  {'rows':>10}  status")
        for r in results + others:
            rows = "?" if r["rows"] is None else str(r["rows"])
            print(f"{r['part']:<{width}}  {rows:>10}  {r['status']}")
    damaged = store.manifest_problem()
    notes = ([f"manifest.json is damaged ({damaged}; a run of the study file keeps it aside and rebuilds it "
              "from the parts)"] if damaged else
             [] if store.exists() else ["no manifest.json (a run of the same study rebuilds it from the parts)"])
    total = sum(r["rows"] or 0 for r in results if r["status"].startswith("ok"))
    ok_text = ""
    for what, which, fix in _CHECKED_FILES:
        mine = [r for r in others if which(r["part"])]
        bad = [r for r in mine if not r["status"].startswith("ok")]
        if bad:
            notes.append(f"{len(bad)} of {len(mine)} {what} files not ok ({fix})")
        elif mine:
            ok_text += f", {len(mine)} {what} file(s) ok"
    if problems or notes:
        print(f"{store.root}: {len(problems)} of {len(results)} parts not ok" + "".join(f"; {n}" for n in notes)
              + f"; {total} rows readable (a run quarantines damaged parts to rows/damaged/ and leaves them out)")
        return 1
    print(f"{store.root}: {len(results)} parts ok, {total} rows{ok_text}")
    return 0


#: The files ``check`` verifies besides the parts: (name in the summary, which, what then happens)
_CHECKED_FILES = (
    ("generation state", lambda f: f.startswith("generations/"),
     "the rows of their batches cannot be rebuilt from keys; their best rows keep full weights"),
    ("strategy state", lambda f: not f.startswith(("generations/", "best/")),
     "run --repair rebuilds the CMA-ES state from the generations and cuts a damaged journal back"),
    ("best-rows", lambda f: f.startswith("best/"),
     "the weights of the rows they hold are rebuilt from their keys when read; run --repair rewrites them"),
)


def _add_study_arg(p):
    """The STUDY positional of the result commands, with --data to find it by name."""
    p.add_argument("study", metavar="STUDY", help=STUDY_HELP)
    add_data_arg(p)


#: ``--out`` of ``run`` and ``worker``.
OUT_HELP = "the exact result folder (overrides [study] out and --data)"


def build_parser() -> argparse.ArgumentParser:
    from ..config import CHECK_SEQUENCES, SOLVED_NMSE

    parser = argparse.ArgumentParser(
        prog="lstmsearch",
        description="Search the weight space of recurrent cells (LSTM, GRU, RNN) at scale.",
    )
    from ..version import __version__

    parser.add_argument("--version", action="version", version=f"lstmsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("evaluate", help="evaluate random settings of a cell on a task")
    _add_cell_args(p)
    _add_task_args(p)
    p.add_argument("--n-settings", type=int, default=10000, help="number of random settings (default 10000)")
    p.add_argument("--sequences", type=int, default=256, help="sequences per setting (default 256)")
    p.add_argument("--init", default="torch", choices=["torch", "uniform", "normal"],
                   help="how settings are drawn (default torch: U(-1/sqrt(H), 1/sqrt(H)))")
    p.add_argument("--scale", type=float, default=None, help="scale for uniform/normal init")
    p.add_argument("--readout", default="fit", choices=["fit", "given"], help="fit the readout or use the drawn one")
    p.add_argument("--backend", default="cpu", help="cpu, reference, cuda or auto (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--solved", type=float, default=SOLVED_NMSE,
                   help=f"nmse below which a setting counts as solved (default {SOLVED_NMSE:g}, as a study's [eval] solved)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("layout", help="print the flat parameter layout of a cell")
    _add_cell_args(p, hidden_default=2)
    p.add_argument("--inputs", type=int, default=1)
    p.add_argument("--outputs", type=int, default=1)
    p.set_defaults(func=cmd_layout)

    p = sub.add_parser("run", help="run or continue a study (studies/*.toml)")
    p.add_argument("study", metavar="STUDY", help="study file, or study folder or name under --data")
    p.add_argument("--budget", type=int, default=None, help="total settings to reach (overrides [budget] settings)")
    p.add_argument("--seconds", type=float, default=None, help="wall-time limit of this run")
    p.add_argument("--backend", default=None, help="overrides [eval] backend")
    p.add_argument("--out", default=None, help=OUT_HELP)
    add_data_arg(p, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, default=None,
                   help="start N worker processes on this machine that share the Optuna study (strategy optuna)")
    p.add_argument("--storage", default=None, help="Optuna storage URL, e.g. postgresql://user@host/db "
                                                   "(overrides [strategy] storage; default $LSTMSEARCH_STORAGE "
                                                   "for strategy optuna); never written to a file")
    p.add_argument("--dask", default=None, metavar="SCHEDULER",
                   help="spread each batch (sweep index ranges, CMA-ES generations) over a Dask cluster")
    p.add_argument("--heartbeat", type=float, default=5.0, help="worker heartbeat interval in s (default 5)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="a worker silent this long (s) is dead; its trials are retried (default 30)")
    p.add_argument("--plots", action="store_true",
                   help="after the run, write best-so-far and nmse-histogram PNGs into STUDY_FOLDER/plots/ "
                        "(as [store] plots = true)")
    p.add_argument("--repair", action="store_true",
                   help="strategy optuna: when the Optuna storage lost trials the rows come from (a journal cut "
                        "short or deleted), rebuild them from the rows instead of refusing to continue")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("worker", help="join a study as one more worker (strategy optuna, shared storage)")
    p.add_argument("study", metavar="STUDY", help="study file, or study folder or name under --data")
    p.add_argument("--storage", default=None, help="Optuna storage URL shared by the workers, e.g. "
                                                   "postgresql://user@host/db (or $LSTMSEARCH_STORAGE)")
    p.add_argument("--slot", type=int, default=None, help="writer slot (default: the first free one)")
    p.add_argument("--budget", type=int, default=None, help="total settings of the study to reach")
    p.add_argument("--seconds", type=float, default=None, help="wall-time limit of this worker")
    p.add_argument("--backend", default=None, help="overrides [eval] backend")
    p.add_argument("--out", default=None, help=OUT_HELP + "; shared by the workers")
    add_data_arg(p, default=None)
    p.add_argument("--heartbeat", type=float, default=5.0, help="heartbeat interval in s (default 5)")
    p.add_argument("--grace", type=float, default=30.0, help="silence after which a worker is dead (default 30 s)")
    p.add_argument("--storage-retry", type=float, default=120.0,
                   help="keep retrying a lost database connection this long (s) before giving up (default 120)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("check", help="verify a study's store: every part readable, checksums, hashes, rows, identity")
    _add_study_arg(p)
    p.add_argument("--quarantine", action="store_true",
                   help="move the parts found damaged to rows/damaged/ (they are left out of every read and run)")
    p.add_argument("--repair", action="store_true",
                   help="quarantine the damaged parts, then re-evaluate the rows of quarantined parts where they "
                        "can be regenerated (sweep: from their keys, bit for bit) and write them back")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("top", help="the best rows of a study")
    _add_study_arg(p)
    p.add_argument("-k", type=int, default=10, help="how many rows (default 10)")
    p.add_argument("--where", default=None, help='filter, e.g. "finite == true"')
    p.add_argument("--no-check", action="store_true",
                   help="skip the fresh_nmse and solved columns (each row shown is re-simulated with its stored "
                        f"readout at n, n+1, 2n+1, 10n+3, 100n+3 on {CHECK_SEQUENCES} fresh sequences, as every verdict)")
    p.set_defaults(func=cmd_top)

    p = sub.add_parser("query", help="rows matching a filter, or an SQL query (DuckDB)")
    _add_study_arg(p)
    p.add_argument("--where", default=None, help='filter: column OP value [and ...], e.g. "nmse < 1e-3"')
    p.add_argument("--sql", default=None, help="SQL over the table rows (needs duckdb), e.g. "
                                               "\"SELECT strategy, min(nmse) FROM rows GROUP BY 1\"")
    p.add_argument("--columns", default=None,
                   help="comma-separated columns to show or write (default: a summary on screen, every column "
                        "with --output)")
    p.add_argument("--sort", default=None, help="column to sort by")
    p.add_argument("--limit", type=int, default=20, help="rows to print (default 20; --output writes them all)")
    p.add_argument("--output", default=None,
                   help="write all matching rows, with every stored column (weights, readout, z and the keys "
                        "they are rebuilt from included), to a .parquet or .csv file (CSV: list columns as JSON "
                        "arrays; never inside a study folder)")
    p.add_argument("--weights", action="store_true",
                   help="with --output: the full setting of every row in weights (and readout), rebuilt from its "
                        "keys where the store keeps only those (rows outside the best keep_weights; the readout "
                        "of a fitted study is fitted again: a re-simulation of those rows)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("show", help="one row: metrics, z, and the weights by block")
    _add_study_arg(p)
    add_row_arg(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("reproduce", help="re-simulate a row: stored sequences, then fresh ones at n, n+1, 2n+1, "
                                         "10n+3, 100n+3; the verdict (solved at every checked length?) and the "
                                         "float64 / PyTorch precision check")
    _add_study_arg(p)
    add_row_arg(p)
    p.add_argument("--backend", default=None, help="default: the study's backend")
    p.add_argument("--factors", default=None,
                   help="fresh sequences at n * these factors instead of the checked lengths n, n+1, 2n+1, 10n+3, "
                        "100n+3 (e.g. 1,10,100); the verdict always uses the checked lengths")
    p.add_argument("--lengths", default=None,
                   help="fresh sequences at exactly these lengths instead (e.g. 7,37,1001); not with --factors")
    p.add_argument("--sequences", type=int, default=None,
                   help=f"fresh sequences per length (default {CHECK_SEQUENCES}, as every verdict: top, report, run)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the verdict and the float64 / PyTorch precision check")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("export", help="write a row's setting as a torch state dict, npz or json")
    _add_study_arg(p)
    add_row_arg(p)
    p.add_argument("--format", default="torch", choices=["torch", "npz", "json"])
    p.add_argument("-o", "--output", default=None, help="file to write (default <study>-row<ROW>.<ext>; "
                                                        "never inside a study folder)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--cell", default=None, help="the cell kind you expect (lstm, gru, ...): other rows are refused")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("extract", help="copy the best rows of a study (with full weights) into a small study folder")
    _add_study_arg(p)
    p.add_argument("--top", type=int, default=5, help="the K best finite rows by nmse (default 5)")
    p.add_argument("--rows", default=None, help="these row ids instead, comma-separated (best: the best row)")
    p.add_argument("--to", default="data/examples", help="parent folder of the new study folder (default data/examples)")
    p.add_argument("--name", default=None, help="name of the new folder (default: the study's name)")
    p.set_defaults(func=cmd_extract)

    from .analysis import add_commands as add_analysis_commands

    add_analysis_commands(sub)  # construct, lengths, explain, worst, guess, report
    return parser


def main(argv=None) -> int:
    """Run one command; returns the exit status (0, 1 file system, 2 user error, 130 interrupted,
    141 output cut short by its reader, 143 stopped by SIGTERM).

    SIGTERM stops a command cleanly, with one line: ``run`` finishes the batch in progress
    (rows written, strategy told: no Optuna trial left RUNNING) and releases the study's
    lock; the supervisor of ``--workers`` stops its workers (each finishes its batch); any
    other command stops at once, like Ctrl-C.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGTERM, _raise_stop)
    try:
        rc = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    finally:
        if main_thread and argv is None:  # the process's own command is done: what is left is the interpreter's
            # exit, during which Python restores SIGTERM's default action; a SIGTERM then (a second one to
            # a stopping supervisor) would end the process by the signal instead of with its exit status
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _main(argv) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help, --version, usage errors: their text may meet a closed pipe too
        sys.stdout.flush()
        raise
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _warn_damaged()
    try:
        _refuse_control_characters(args)
        if getattr(args, "allow_code", False):
            from ..query import allow_study_code

            allow_study_code()
        return args.func(args)
    except BrokenPipeError:
        raise
    except LstmsearchError as exc:  # messages redact their URLs; redact_url once more in case one did not
        print(f"lstmsearch: error: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system problem the command could not turn into a clearer message
        print(f"lstmsearch: error: {redact_url(str(exc))}", file=sys.stderr)
        return 1
    except StopRequested as stop:
        print(f"lstmsearch: stopped by {signal.Signals(stop.signum).name}; every part written is kept: "
              "run the same command again to continue", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("lstmsearch: interrupted", file=sys.stderr)
        return 130


def _refuse_control_characters(args) -> None:
    """A NUL (or another control character) in a study name, a path, a storage URL or a row id is
    a one-line error before any work; SQL and filters may hold tabs and newlines."""
    from ..errors import check_text

    for dest, value in vars(args).items():
        what = {"study": "STUDY", "studies": "STUDY", "row": "ROW", "kind": "KIND"}.get(dest, "--" + dest.replace("_", "-"))
        for v in value if isinstance(value, list) else [value]:
            check_text(v, what, allow="\t\n\r" if dest in ("sql", "where") else "")


def _raise_stop(signum, frame):
    raise StopRequested(signum)


def _silence_stdout():
    """Point stdout at /dev/null so that Python's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. captured in tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
