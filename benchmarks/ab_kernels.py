"""A/B timing of the generated CPU kernel of a git revision against the working tree's.

Both kernels run alternately in one process, one thread, on the same inputs (I = 1,
B = 256, T = 50); the best of the repetitions is kept, which is what a shared, noisy
machine allows. Prints cell-steps/s of each, their ratio, and the largest difference of
the final h (0 when the change is bit-identical).

Run:  ``python benchmarks/ab_kernels.py [--rev HEAD] [--cell lstm] [--hidden 32] [--reps 15]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from lstmsearch import Cell  # noqa: E402
from lstmsearch.kernels import _codegen  # noqa: E402

T, B, I = 50, 256, 1


#: The integer codes of the kinds in generators before the kinds were defined once (issue 22).
OLD_CODES = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru": 3}


def kernels(rev, kind, H, folder):
    """(old, new) compiled ``simulate`` for cell kind and H: rev's generator and ours."""
    mods = {}
    for name in ("_vecsum", "_fastmath", "_codegen"):  # rev's generator and what it imports
        got = subprocess.run(["git", "show", f"{rev}:lstmsearch/kernels/{name}.py"], cwd=ROOT,
                             capture_output=True, text=True)
        if got.returncode:  # older revisions have no _vecsum
            continue
        text = got.stdout.replace("cache=True", "cache=False").replace("from ._vecsum import",
                                                                        "from ab_old_vecsum import")
        path = os.path.join(folder, f"ab_old{name}.py")
        with open(path, "w") as f:
            f.write(text)
        mods[name] = _codegen.load_module(path, f"ab_old{name}")
    if hasattr(mods["_codegen"], "_llvm_options"):  # older generators set an LLVM option
        mods["_codegen"]._llvm_options()
    out = []
    for tag, gen in (("old", mods["_codegen"]), ("new", _codegen)):
        try:  # a generator from before issue 22 takes the kind's integer code
            src = gen.source(kind, H, I)
        except Exception:  # noqa: BLE001
            src = gen.source(OLD_CODES[kind], H, I)
        if tag == "old":
            src = src.replace("from lstmsearch.kernels._fastmath import", "from ab_old_fastmath import")
            src = src.replace("from lstmsearch.kernels._vecsum import", "from ab_old_vecsum import")
        out.append(_codegen.load_uncached(src, folder, f"ab_{tag}_{kind}_{H}"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--settings", type=int, default=24)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args(argv)
    cell = Cell(args.cell, args.hidden)
    H, P = args.hidden, args.settings
    params = np.ascontiguousarray(cell.init(P, seed=1), np.float32)
    xT = np.random.default_rng(0).uniform(-1, 1, (T, I, B)).astype(np.float32)
    steps = np.array([T - 1], np.int64)
    z = np.zeros((1, H, B), np.float32)
    with tempfile.TemporaryDirectory() as folder:
        fns = kernels(args.rev, cell.kind, H, folder)
        outs, best = [], [np.inf, np.inf]
        for fn in fns:
            out_h, out_c = np.empty((P, 1, H, B), np.float32), np.empty((P, 1, H, B), np.float32)
            fn(params, xT, steps, z, z, out_h, out_c)
            outs.append((fn, out_h, out_c))
        for _ in range(args.reps):
            for i, (fn, out_h, out_c) in enumerate(outs):
                t0 = time.perf_counter()
                fn(params, xT, steps, z, z, out_h, out_c)
                best[i] = min(best[i], time.perf_counter() - t0)
    work = P * B * T
    for tag, b in zip((args.rev, "working tree"), best):
        print(f"{args.cell} H={H} {tag:>12}: {work / b / 1e6:7.2f} M cell-steps/s ({1e9 * b / work:.1f} ns each)")
    diff = np.abs(outs[0][1] - outs[1][1]).max()
    print(f"new / old: {best[0] / best[1]:.3f}x; max |h_new - h_old| = {diff:.3g}")


if __name__ == "__main__":
    main()
