"""Command-line sub-commands of the analysis: ``construct``, ``lengths``, ``explain``, ``worst``, ``guess``, ``report``.

:func:`add_commands` registers them on the main parser's sub-parsers::

    from lstmsearch.cli.analysis import add_commands
    add_commands(sub)          # in lstmsearch.cli.main.build_parser

A setting is given either as a construction (``--cell lstm --hidden 32 --construction
flag_memory``), as a stored row of a study (``explain STUDY ROW``: the row's full setting
from :func:`lstmsearch.reproduction.row_setting`, scored on the study's task, seed and
number of held-out sequences; ROW may be ``best``), or as a ``.npz`` file (``--npz FILE``) with
arrays ``params`` ((D,) or (P, D); ``--index`` picks a row), ``kind``, ``hidden``, ``inputs``,
``outputs`` -- the file that ``construct --out`` writes (``construct --study NAME`` writes it
into a study store instead, see :mod:`lstmsearch.run.construct_store`) -- or the torch-named
blocks and ``meta`` that ``export --format npz`` writes. ``report`` is :mod:`.report`. User errors raise
:class:`~lstmsearch.errors.LstmsearchError` (one line; the main CLI prints it, exit 2).
"""

from __future__ import annotations

from pathlib import Path

import json

import numpy as np

from ..cells import Cell
from ..errors import LstmsearchError, check_output, require
from .args import STUDY_HELP, add_data_arg, add_row_arg, parse_list, parse_row

#: ``report --format``: :data:`lstmsearch.report.FORMATS`, written out so that building the parser
#: does not import the report (and with it pyarrow and the kernels); tests/test_startup.py checks
#: that the two agree.
REPORT_FORMATS = ("md", "html")


# ------------------------------------------------------------------ helpers
def _add_setting_args(p, positional=False):
    if positional:
        p.add_argument("kind", nargs="?", default=None, help="cell kind (same as --cell)")
    p.add_argument("--cell", default=None, help="rnn_tanh, rnn_relu, lstm or gru (default lstm)")
    p.add_argument("--hidden", type=int, default=32, help="hidden size H (default 32)")
    p.add_argument("--construction", default="flag_memory",
                   help="hand-built setting: flag_memory (all cells), attractor (every n in exact arithmetic: "
                        "lstm and gru, H >= 32: the gray_code, eps < 1e-3 for every n >= 20; mgu, rnn_tanh: the "
                        "thermometer), thermometer (lstm, gru, mgu, rnn_tanh: H latches, eps ~ 1 / (H + 1)), "
                        "gray_code (lstm, gru), integrator (RNNs), delay_line, fixed_length (mingru)")
    p.add_argument("--gain", type=float, default=None, help="input weight of the memory (construction)")
    p.add_argument("--big", type=float, default=None, help="saturating pre-activation (construction)")
    p.add_argument("--input-range", type=float, default=None, help="R, inputs in [-R, R] (rnn_relu, gru, thermometer, gray_code and attractor constructions)")
    if not positional:
        p.add_argument("--npz", default=None, help="read the setting from this .npz instead")
        p.add_argument("--index", type=int, default=0, help="row of params in the .npz (default 0)")


def _add_row_task_args(p):
    """--task/--length/--dist for commands that also take STUDY ROW (None: not given)."""
    p.add_argument("--task", default=None, help="task (default recall_first; not with STUDY ROW)")
    p.add_argument("--length", type=int, default=None, help="base sequence length n (default 20; not with STUDY ROW)")
    p.add_argument("--dist", default=None, help="input distribution (default uniform; not with STUDY ROW)")


def _add_task_args(p, length=20):
    p.add_argument("--task", default="recall_first", help="task (default recall_first)")
    p.add_argument("--length", type=int, default=length, help=f"base sequence length n (default {length})")
    p.add_argument("--dist", default="uniform", help="input distribution (default uniform)")
    p.add_argument("--sequences", type=int, default=256, help="held-out sequences (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="cpu", help="cpu or reference (default cpu)")


def _task(args, length=None):
    from ..tasks import make_task, takes_dist

    extra = {"dist": args.dist} if takes_dist(args.task) else {}
    return make_task(args.task, length=length or args.length, **extra)


def _construction_options(args):
    return {k: v for k, v in (("gain", args.gain), ("big", args.big), ("input_range", args.input_range))
            if v is not None}


def setting_from_args(args):
    """(cell, params (D,) float32, description) from --npz or a construction."""
    from ..analysis.constructions import construct

    npz = getattr(args, "npz", None)
    if npz:
        path = Path(npz)
        require(path.is_file(), f"no such file: {npz}")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
            raise LstmsearchError(f"cannot read {npz} as .npz: {exc}") from None
        if "params" not in data.files and "meta" in data.files:  # written by lstmsearch export --format npz
            return _exported_setting(npz, data, args.index)
        missing = [k for k in ("params", "kind", "hidden") if k not in data.files]
        require(not missing, f"{npz} lacks {', '.join(missing)}; expected params, kind, hidden, inputs, outputs "
                             "(construct --out) or the blocks and meta of export --format npz")
        cell = Cell(str(data["kind"]), int(data["hidden"]),
                    int(data["inputs"]) if "inputs" in data.files else 1,
                    int(data["outputs"]) if "outputs" in data.files else 1)
        params = np.atleast_2d(np.asarray(data["params"]))
        require(params.shape[-1] == cell.n_params,
                f"{npz}: params have {params.shape[-1]} columns; {cell.kind} H={cell.hidden} needs {cell.n_params}")
        require(0 <= args.index < params.shape[0], f"--index {args.index} out of range: {npz} holds {params.shape[0]} setting(s)")
        return cell, params[args.index].astype(np.float32), f"{npz}[{args.index}]"
    positional = getattr(args, "kind", None)
    require(args.cell is None or positional is None or args.cell == positional,
            f"cell given twice: {positional!r} and --cell {args.cell!r}")
    kind = positional or args.cell or "lstm"
    cell, params = construct(kind, args.hidden, args.construction, **_construction_options(args))
    return cell, params, f"construction {args.construction}"


def _exported_setting(npz, data, index):
    """(cell, params, description) of a file written by ``lstmsearch export --format npz``."""
    try:
        meta = json.loads(str(data["meta"]))
        c = meta["cell"]
        cell = Cell(c["kind"], int(c["hidden"]), int(c["inputs"]), int(c["outputs"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise LstmsearchError(f"{npz}: cannot read its meta entry ({exc}); expected the file of "
                              "lstmsearch export --format npz") from None
    require(index == 0, f"--index {index} out of range: {npz} holds 1 setting")
    params = cell.flatten({k: data[k] for k in data.files if k != "meta"})
    return cell, params.astype(np.float32), f"{npz} (study {meta.get('study')} row {meta.get('row')})"


def _nonzero_table(cell, params, names=None):
    from ..analysis.explain import weight_name

    lines = [f"  {'index':>6}  {'weight':<28} {'value':>12}"]
    for k in np.flatnonzero(params):
        lines.append(f"  {k:>6}  {weight_name(cell, int(k), names):<28} {params[k]:>12.6g}")
    return "\n".join(lines)


# ----------------------------------------------------------------- commands
def cmd_construct(args) -> int:
    from ..evaluate import evaluate
    from ..analysis.constructions import ROLES, error_bound

    if args.out:
        check_output(args.out, args.force, "--out")
    cell, params, _ = setting_from_args(args)
    names = None
    if args.construction == "flag_memory":
        roles = ROLES[cell.kind]
        names = [roles.get(j, f"u{j}") for j in range(cell.hidden)]
    print(f"construction {args.construction} for {cell.kind} H={cell.hidden}")
    print(cell.describe())
    print(f"nonzero weights ({np.count_nonzero(params)} of {cell.n_params}):")
    print(_nonzero_table(cell, params, names))
    lengths = parse_list(args.lengths, int, "--lengths")
    print(f"recall_first error, readout as built, {args.sequences} held-out sequences (uniform [-1, 1]):")
    print(f"  {'n':>8} {'nmse':>12} {'max |err|':>12} {'bound':>12}")
    for n in lengths:
        task = _task(args, length=n)
        require(task.n_inputs == cell.inputs, f"task {task.name} has {task.n_inputs} inputs; the construction has 1")
        t = evaluate(cell, params[None], task, n_sequences=args.sequences, seed=args.seed,
                     backend=args.backend, readout="given").to_pydict()
        bound = ""
        if args.construction == "flag_memory" and args.task == "recall_first" and args.dist == "uniform":
            opts = _construction_options(args)
            R = opts.pop("input_range", 1.0)
            if cell.kind != "gru":
                bound = f"{error_bound(cell.kind, n, **opts):12.3g}"
            elif R >= 1.0:  # the GRU's R sets its offset: its bound at R >= 1 covers the task's [-1, 1]
                bound = f"{error_bound(cell.kind, n, input_range=R, **opts):12.3g}"
        print(f"  {n:>8} {t['nmse'][0]:>12.3g} {t['max_abs_err'][0]:>12.3g} {bound}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, params=params, kind=cell.kind, hidden=cell.hidden, inputs=cell.inputs,
                 outputs=cell.outputs, construction=args.construction)
        print(f"wrote {out}")
    if args.study:
        from ..run.construct_store import store_construction

        root, row, err = store_construction(cell, params, _task(args), args.study, args.construction,
                                            _construction_options(args), data_dir=args.data,
                                            sequences=args.sequences, seed=args.seed, backend=args.backend)
        print(f"stored as row {row} of study {args.study} in {root} (nmse {err['nmse']:.3g} at n={args.length}); "
              f"lstmsearch top {args.study} --data {args.data}")
    return 0


def cmd_lengths(args) -> int:
    from ..analysis.length import format_length_curve, length_curve

    for option, path in (("--out", args.out), ("--plot", args.plot)):
        if path:
            check_output(path, args.force, option)
    from ..analysis.verdict import task_check_lengths

    cell, params, what, task, seed, sequences = setting_and_task(args, "lengths", sequences=64)
    # default: the verdict's checked lengths (trained ones, n+1, 2n+1, 10n+3, 100n+3), not only multiples of n
    factors = parse_list(args.factors, float, "--factors") if args.factors else None
    readouts = ["given", "refit"] if args.readout.strip() == "both" else parse_list(args.readout, str, "--readout")
    bad = [r for r in readouts if r not in ("given", "refit")]
    require(not bad, f"--readout takes given, refit or both (or given,refit), got {args.readout!r}")
    table = length_curve(cell, params, task, factors=factors or (), lengths=None if factors else task_check_lengths(task),
                         readout=readouts, n_sequences=sequences, seed=seed, backend=args.backend)
    print(f"{cell.kind} H={cell.hidden} ({what}) on {task.describe()}")
    if factors:  # n is the verdict's n (reproduce --factors multiplies the same): say which it is
        trained = list(task.scored_lengths)
        print(f"--factors multiply n = {task.length}" + (
            f", the longest trained length ({', '.join(map(str, trained))}), as the n of the checked lengths "
            "n+1, 2n+1, 10n+3, 100n+3" if len(trained) > 1 else ", the task's length"))
    print(f"{sequences} held-out sequences per length, seed {seed}")
    print(format_length_curve(table, labels=[f"{args.study} row {args.row}" if args.study else what]))
    if args.out:
        import pyarrow.parquet as pq

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, args.out)
        print(f"wrote {args.out}")
    if args.plot:
        from ..analysis.plots import plot_length_curve

        print(f"wrote {plot_length_curve(table, args.plot, labels={0: cell.kind})}")
    return 0


def _add_study_row_args(p):
    p.add_argument("study", metavar="STUDY", nargs="?", default=None,
                   help=f"{STUDY_HELP} (then ROW); without it: a construction or --npz")
    add_row_arg(p, nargs="?", default=None)
    add_data_arg(p)


def setting_and_task(args, command, sequences):
    """(cell, params, description, task, seed, sequences) of ``COMMAND STUDY ROW`` (the row on its
    study's task, seed and held-out count) or of a construction / ``--npz`` with ``--task`` etc.
    (defaults: recall_first, n = 20, uniform, seed 0, ``sequences``)."""
    if args.study is not None:
        return _study_row(args, command)
    require(args.row is None, f"{command} takes a ROW only after a STUDY, got {args.row}")
    cell, params, what = setting_from_args(args)
    for k, v in (("task", "recall_first"), ("length", 20), ("dist", "uniform")):
        setattr(args, k, v if getattr(args, k) is None else getattr(args, k))
    seed = 0 if args.seed is None else args.seed
    return cell, params, what, _task(args), seed, sequences if args.sequences is None else args.sequences


def _study_row(args, command):
    """(cell, params, description, task, seed, sequences) of ``COMMAND STUDY ROW``."""
    from ..reproduction import row_setting

    require(args.row is not None, f"{command} {args.study} needs a ROW too: lstmsearch {command} STUDY ROW "
                                  f"(lstmsearch top {args.study} lists the best rows)")
    given = [f"--{k}" for k in ("task", "length", "dist", "cell", "npz") if getattr(args, k) is not None]
    require(not given, f"{command} STUDY ROW scores the row on the study's own task and cell; drop {', '.join(given)}")
    args.row = parse_row(args.row, args.study, args.data)
    cfg, r, setting = row_setting(args.study, args.row, data_dir=args.data)
    what = (f"study {cfg.name} row {args.row} (stored nmse {r['nmse']:.6g} on {cfg.eval.heldout} held-out "
            f"sequences, seed {cfg.eval.seed}, readout {cfg.eval.readout})")
    seed = cfg.eval.seed if args.seed is None else args.seed
    return cfg.cell, setting, what, cfg.task, seed, cfg.eval.heldout if args.sequences is None else args.sequences


def cmd_explain(args) -> int:
    from ..analysis.explain import explain

    if args.plot:
        check_output(args.plot, args.force, "--plot")
    cell, params, what, task, seed, sequences = setting_and_task(args, "explain", sequences=256)
    e = explain(cell, params, task, n_sequences=sequences, seed=seed, backend=args.backend,
                readout=args.readout, do_prune=not args.no_prune, max_nmse=args.max_nmse)
    print(f"{what}")
    print(e.format())
    if args.plot:
        from ..analysis.plots import plot_traces

        units = [j for j, r in enumerate(e.roles) if r != "silent"][:8] or [0]
        print(f"wrote {plot_traces(e.traces, args.plot, units=units, names=e.names, max_steps=task.length)}")
    return 0


def cmd_worst(args) -> int:
    from ..analysis.adversary import format_worst, worst_inputs

    if args.save:
        check_output(args.save, args.force, "--save")
    search_seed = 0 if args.seed is None else args.seed
    cell, params, what, task, _, _ = setting_and_task(args, "worst", sequences=0)
    lengths = parse_list(args.lengths, int, "--lengths") if args.lengths else None
    cases = worst_inputs(cell, params, task, lengths=lengths, budget=args.budget, seed=search_seed, refine=args.refine)
    c0 = cases[0]
    print(f"{what}")
    print(f"worst |y_T - x_1| found in [{task.dist.low:g}, {task.dist.high:g}]^T (float32, cpu, stored readout): "
          f"{c0.n_structured} structured candidates, then {c0.n_searched} searched and {c0.n_refined} refined sequences "
          f"(seed {search_seed}); "
          f"random: {c0.n_random} fresh uniform sequences. A search, a lower bound on the worst case, not a proof.")
    for line in format_worst(cases):
        print(line)
    if args.save:
        out = Path(args.save)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, lengths=np.array([c.length for c in cases]), worst=np.array([c.worst for c in cases]),
                 random_max=np.array([c.random_max for c in cases]), families=np.array([c.family for c in cases]),
                 **{f"x_{c.length}": c.sequence for c in cases})
        print(f"wrote {out} (x_T: the worst sequence of length T, shape (T, inputs))")
    return 0


def cmd_certify(args) -> int:
    from ..certify import certify_trained

    cell, params, what, task, _, _ = setting_and_task(args, "certify", sequences=0)
    # a study row: every n >= 1 where the proof covers it, else n >= its shortest trained length (as report)
    trained = min(task.scored_lengths) if args.study is not None else 1
    if args.box:
        low, high = args.box
    else:
        dist = task.dist
        require(task.name == "recall_first", f"certify is defined for recall_first, got task {task.name}")
        require(hasattr(dist, "low") and hasattr(dist, "high"),
                f"the {dist.kind} input distribution is unbounded; pass --box LOW HIGH (the inputs' range to certify)")
        low, high = float(dist.low), float(dist.high)
    tol, slices = args.tol, args.slices
    if args.study is None and not getattr(args, "npz", None):  # a construction may set its own (thermometer)
        from ..analysis.constructions import certify_defaults
        own = certify_defaults(args.construction, args.hidden, args.input_range, kind=cell.kind)
        tol = own.get("tol", 1e-3) if tol is None else tol
        slices = own.get("slices") if slices is None and own and tol == own["tol"] else slices
    tol = 1e-3 if tol is None else tol
    print(f"{what}")
    for arith in (["float32", "real"] if args.arithmetic == "both" else [args.arithmetic]):
        c = certify_trained(cell, params, low, high, trained_length=trained, min_length=args.min_length,
                            arithmetic=arith, tol=tol, slices=slices, max_length=args.max_length,
                            counterexample=not args.no_search, task=None, budget=args.budget,
                            seed=0 if args.seed is None else args.seed, max_seconds=args.max_seconds)
        print(f"[{arith}] {c.kind}: eps {c.eps:.3g}, N {'all' if c.N < 0 else c.N}, {c.slices} slices")
        print(f"  {c.statement}")
        for note in c.notes:
            print(f"  note: {note}")
        if c.counterexample is not None and args.show_sequence:
            print("  counterexample: " + " ".join(f"{v:.6g}" for v in c.counterexample))
    return 0


def cmd_guess(args) -> int:
    from ..anchors.guessing import LENGTHS, format_table, guess

    cells = [c.strip() for c in args.cell.split(",")]
    tasks = [t.strip() for t in args.task.split(",")]
    modes = [m.strip().split(":") for m in args.mode.split(",")]
    for m in modes:
        require(len(m) == 2 and m[0] in ("given", "unit", "fit") and m[1] in ("abs", "class"),
                f"--mode takes readout:criterion pairs such as given:class,fit:abs, got {':'.join(m)!r}")
    lengths = tuple(int(v) for v in args.lengths.split(",")) if args.lengths else LENGTHS
    task_params = {}
    if args.noise_var is not None:
        require("parity" not in tasks, "--noise-var applies to latch and two_sequence (parity has no noise): "
                                       "drop parity from --task or drop --noise-var")
        task_params["noise_var"] = args.noise_var
    results = []
    print(f"weight guessing: U[-{args.scale:g}, {args.scale:g}], {args.runs} runs, at most {args.max_draws} draws "
          f"a run, lengths {','.join(map(str, lengths))} x {args.per_length} sequences, tol {args.tol:g}"
          + (f", noise variance {args.noise_var:g}" if args.noise_var is not None else ""))
    for kind in cells:
        for task in tasks:
            for readout, criterion in modes:
                r = guess(Cell(kind, args.hidden), task, runs=args.runs, seed=args.seed, readout=readout,
                          criterion=criterion, tol=args.tol, scale=args.scale, max_draws=args.max_draws,
                          lengths=lengths, per_length=args.per_length, backend=args.backend,
                          max_seconds=args.max_seconds, zero=tuple(b for b in args.zero.split(",") if b),
                          **task_params)
                results.append(r)
                print(format_table([r])[-1] if len(results) > 1 else "\n".join(format_table([r])), flush=True)
    return 0


def add_commands(subparsers) -> None:
    """Register ``construct``, ``lengths``, ``explain``, ``worst``, ``certify``, ``guess`` and ``report`` on an argparse sub-parsers object."""
    p = subparsers.add_parser("construct", help="build a hand-made setting that solves recall_first")
    _add_setting_args(p, positional=True)
    _add_task_args(p)
    p.add_argument("--lengths", default="10,1000,100000", help="lengths to score it at (default 10,1000,100000)")
    p.add_argument("--out", default=None, help="write the setting to this .npz")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.add_argument("--study", default=None,
                   help="also write it as a row of the study DATA/STUDY (scored at --length), for top/reproduce/export")
    add_data_arg(p)
    p.set_defaults(func=cmd_construct, sequences=64)

    p = subparsers.add_parser("lengths", help="error of a setting against sequence length (a study row, "
                                              "a construction or an .npz)")
    _add_study_row_args(p)
    _add_setting_args(p)
    _add_task_args(p)
    p.add_argument("--factors", default=None,
                   help="lengths as multiples of n, e.g. 1,2,10,100,1000; n is the task's length, the longest "
                        "trained one (21 for lengths = [20, 21]), as for reproduce --factors and the verdict "
                        "(default: the verdict's checked lengths n, n+1, 2n+1, 10n+3, 100n+3, which are not "
                        "multiples of n)")
    p.add_argument("--readout", default="both", help="given, refit or both (default both)")
    p.add_argument("--out", default=None, help="write the table to this Parquet file")
    p.add_argument("--plot", default=None, help="write a PNG of error against length")
    p.add_argument("--force", action="store_true", help="overwrite existing --out / --plot files")
    # None = not given: a study row takes the study's task, seed and held-out count
    p.set_defaults(func=cmd_lengths, task=None, length=None, dist=None, seed=None, sequences=None)

    p = subparsers.add_parser("explain", help="roles, unit ablation and pruning of a setting (a study row, "
                                              "a construction or an .npz)")
    _add_study_row_args(p)
    _add_setting_args(p)
    _add_task_args(p)
    p.add_argument("--readout", default="given", choices=["given", "fit"], help="use the setting's readout or refit it")
    p.add_argument("--no-prune", action="store_true", help="skip magnitude pruning")
    p.add_argument("--max-nmse", type=float, default=None, help="pruning tolerance (default max(2 base, base + 1e-6))")
    p.add_argument("--plot", default=None, help="write a PNG of the gate traces")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    # None = not given: a study row takes the study's task, seed and held-out count
    p.set_defaults(func=cmd_explain, task=None, length=None, dist=None, seed=None, sequences=None)

    p = subparsers.add_parser("worst", help="worst inputs: the input sequences in the task's box that maximise "
                                            "|y - x_1| (a study row, a construction or an .npz), beside random ones")
    _add_study_row_args(p)
    _add_setting_args(p)
    _add_row_task_args(p)
    p.add_argument("--lengths", default=None,
                   help="lengths to search at, e.g. 20,21,41 (default: the checked lengths n, n+1, 2n+1, 10n+3, 100n+3)")
    p.add_argument("--budget", type=int, default=1280, help="searched sequences per length (default 1280: 20 x 64)")
    p.add_argument("--refine", type=int, default=2048,
                   help="sequences of the local refinement per length (grid and pattern search over x_1 and "
                        "structured tails; default 2048, 0: none)")
    p.add_argument("--seed", type=int, default=None, help="seed of the search (default 0)")
    p.add_argument("--save", default=None, help="write the worst sequences to this .npz")
    p.add_argument("--force", action="store_true", help="overwrite an existing --save file")
    p.set_defaults(func=cmd_worst, sequences=None)

    p = subparsers.add_parser("certify", help="prove a bound on |y - x_1| for all recall_first inputs in the box "
                                              "(all n, or n <= N), or give a counterexample (a study row, a construction or an .npz)")
    _add_study_row_args(p)
    _add_setting_args(p)
    _add_row_task_args(p)
    p.add_argument("--box", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                   help="inputs' range (default: the task's uniform box; needed for unbounded distributions)")
    p.add_argument("--arithmetic", default="both", choices=["float32", "real", "both"],
                   help="float32 (the cpu kernel), real (exact arithmetic) or both (default)")
    p.add_argument("--tol", type=float, default=None,
                   help="tolerance on |y - x_1| (default 1e-3; for the thermometer 1.1 R / (H + 1))")
    p.add_argument("--slices", type=int, default=None,
                   help="slices of x_1 (default: width about tol / 4, at most 2^20 / (gates x H), odd)")
    p.add_argument("--max-length", type=int, default=1000, help="longest unrolled propagation (default 1000)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop the unrolled propagation after this many seconds (default: none); in real "
                        "arithmetic the linear-growth induction (lstmsearch.certify.horizon) reaches past it")
    p.add_argument("--min-length", type=int, default=None,
                   help="claim only n >= this (default: every n >= 1 where the proof covers it, else, for a study "
                        "row, n >= its shortest trained length, as the report says: a row searched at n = 20 "
                        "need not answer at n = 1)")
    p.add_argument("--budget", type=int, default=640, help="counterexample search: sequences (default 640)")
    p.add_argument("--no-search", action="store_true", help="skip the counterexample search")
    p.add_argument("--show-sequence", action="store_true", help="print the counterexample sequence")
    p.add_argument("--seed", type=int, default=None, help="seed of the counterexample search (default 0)")
    p.set_defaults(func=cmd_certify, sequences=None)

    p = subparsers.add_parser("guess", help="weight guessing: draws until a random setting solves latch/two_sequence/parity")
    p.add_argument("--cell", default="lstm", help="cell kind(s), comma-separated (default lstm; see lstmsearch layout)")
    p.add_argument("--hidden", type=int, default=1, help="hidden size H (default 1)")
    p.add_argument("--task", default="latch", help="latch, two_sequence, parity; comma-separated (default latch)")
    p.add_argument("--mode", default="given:class,fit:abs",
                   help="readout:criterion pairs: readout given, unit (hidden unit 0) or fit, criterion abs (|err| < tol) or class "
                        "(right side of the midpoint) (default given:class,fit:abs)")
    p.add_argument("--runs", type=int, default=40, help="runs (default 40)")
    p.add_argument("--max-draws", type=int, default=20000, help="draws after which a run is capped (default 20000)")
    p.add_argument("--max-seconds", type=float, default=None, help="cap the unfinished runs after this long, per row")
    p.add_argument("--scale", type=float, default=100.0, help="weights uniform in [-scale, scale] (default 100)")
    p.add_argument("--tol", type=float, default=0.1, help="|error| below which a sequence is correct (default 0.1)")
    p.add_argument("--lengths", default=None, help="length groups (default 500,525,550,575,600)")
    p.add_argument("--per-length", type=int, default=20, help="training sequences per length group (default 20)")
    p.add_argument("--seed", type=int, default=0, help="draws of run r come from (seed, r) (default 0)")
    p.add_argument("--backend", default="cpu", help="cpu, cuda or reference (default cpu)")
    p.add_argument("--zero", default="", help="blocks fixed at 0, e.g. bias_hh_l0 (one bias per unit, as in the "
                                               "papers' nets); marked * in the table")
    p.add_argument("--noise-var", type=float, default=None,
                   help="variance of the noise after the first input, latch and two_sequence (default 0.2, the papers')")
    p.set_defaults(func=cmd_guess)


    add_report_command(subparsers)


def cmd_report(args) -> int:
    from ..report import build_report

    factors = parse_list(args.lengths, float, "--lengths") if args.lengths is not None else None
    rep = build_report(args.studies, data_dir=args.data, out=args.out, fmt=args.format, top=args.top,
                       factors=factors, n_sequences=args.sequences, backend=args.backend, plots=not args.no_plots,
                       force=args.force, answers=not args.no_answer, certificates=not args.no_certificates)
    for n in rep.notes:
        print(n)
    for s in rep.summaries:
        print(f"{s.cfg.name}: {s.cfg.cell.kind} H={s.cfg.cell.hidden}, {s.rows} settings, best nmse "
              f"{s.best_nmse:.4g} (row {s.best_row}), "
              + (f"{s.verdict.text} ({s.verdict.n_sequences} fresh sequences per length)" if s.verdict
                 else "not checked"))
    print(f"wrote {rep.path}" + (f" and {len(rep.files)} PNG(s) beside it" if rep.files else ""))
    return 0


def add_report_command(subparsers) -> None:
    """Register ``report`` on an argparse sub-parsers object."""
    p = subparsers.add_parser("report", help="a Markdown or HTML page with the tables and plots of studies")
    p.add_argument("studies", nargs="+", metavar="STUDY", help=STUDY_HELP)
    add_data_arg(p)
    p.add_argument("--out", default=None, help="folder of the page and its PNGs (default DATA/reports/NAME)")
    p.add_argument("--format", default="md", choices=REPORT_FORMATS, help="md (default) or html (self-contained)")
    p.add_argument("--top", type=int, default=5, help="best rows to list per study (default 5)")
    p.add_argument("--lengths", default=None,
                   help="lengths of the length table, as multiples of the study length, e.g. 1,2,10,100 (default: "
                        "the checked lengths n, n+1, 2n+1, 10n+3, 100n+3 of the verdict)")
    from ..config import CHECK_SEQUENCES

    p.add_argument("--sequences", type=int, default=CHECK_SEQUENCES,
                   help=f"fresh sequences per length of the length table and for explain (default {CHECK_SEQUENCES}, "
                        "as every verdict; the verdicts and the answer table always use that many)")
    p.add_argument("--backend", default="cpu", help="backend of the re-simulations (default cpu)")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.add_argument("--no-answer", action="store_true",
                   help="leave out the answer table (verdict, roles, construction, certificate, worst input, "
                        "float64 and PyTorch per cell)")
    p.add_argument("--no-certificates", action="store_true",
                   help="answer table without the certificates (the slowest part: interval propagation)")
    p.add_argument("--force", action="store_true", help="overwrite a report page already in --out")
    p.set_defaults(func=cmd_report)
