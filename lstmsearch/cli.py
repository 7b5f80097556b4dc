"""The ``lstmsearch`` command line.

Each sub-command is a small function ``cmd_<name>(args)``; user errors
(:class:`~lstmsearch.errors.LstmsearchError`) are printed as one line and exit with 2.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .errors import LstmsearchError


def _add_cell_args(p, hidden_default=32):
    p.add_argument("--cell", default="lstm", help="rnn_tanh, rnn_relu, lstm or gru (default lstm)")
    p.add_argument("--hidden", type=int, default=hidden_default, help="hidden size H")


def _add_task_args(p):
    p.add_argument("--task", default="recall_first",
                   help="recall_first, recall_lag, next_value, copy, adding (default recall_first)")
    p.add_argument("--length", type=int, default=20, help="sequence length T (default 20)")
    p.add_argument("--dist", default="uniform", help="input distribution: uniform, normal, bits, symbols")


def cmd_evaluate(args) -> int:
    from .cells import Cell
    from .evaluate import evaluate
    from .tasks import make_task

    task = make_task(args.task, length=args.length, **({} if args.task in ("copy", "adding") else {"dist": args.dist}))
    cell = Cell(args.cell, args.hidden, inputs=task.n_inputs, outputs=task.n_outputs)
    params = cell.init(args.n_settings, seed=args.seed, method=args.init, scale=args.scale)
    print(f"{cell.kind} H={cell.hidden} ({cell.n_params} parameters) on {task.describe()}")
    print(f"{args.n_settings} settings ({args.init} init), {args.sequences} sequences, "
          f"readout {args.readout}, backend {args.backend}")
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
    from .cells import Cell

    print(Cell(args.cell, args.hidden, inputs=args.inputs, outputs=args.outputs).describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmsearch",
        description="Search the weight space of recurrent cells (LSTM, GRU, RNN) at scale.",
    )
    from . import __version__

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
    p.add_argument("--backend", default="cpu", help="cpu or reference (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--solved", type=float, default=1e-3, help="nmse below which a setting counts as solved")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("layout", help="print the flat parameter layout of a cell")
    _add_cell_args(p, hidden_default=2)
    p.add_argument("--inputs", type=int, default=1)
    p.add_argument("--outputs", type=int, default=1)
    p.set_defaults(func=cmd_layout)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except LstmsearchError as exc:
        print(f"lstmsearch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lstmsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
