"""The readout fit in a fixed order (this release) against the BLAS fit (release 0.1.0), side by side
in one run: ``evaluate`` of a blind-study-sized population (sep-CMA-ES population 1,024 of LSTM, GRU
and tanh-RNN settings, H = 32, lengths 20 and 21, 256 + 256 sequences), best of 3 each, and the fit
alone. Prints a Markdown table with the ratio.

    python benchmarks/readout_fit_ab.py [--population 1024] [--hidden 32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lstmsearch import Cell, evaluate, make_task, readout


def best_of(fn, runs=3):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=32)
    args = ap.parse_args(argv)
    task = make_task("recall_first", lengths=[20, 21])
    print(f"| cell | evaluate, fixed order (s) | evaluate, BLAS (s) | ratio | fit alone, fixed (s) | fit alone, BLAS (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for kind in ("lstm", "gru", "rnn_tanh"):
        cell = Cell(kind, hidden=args.hidden)
        params = cell.init(args.population, seed=1, method="normal", scale=0.5)
        run = {m: (lambda m=m: evaluate(cell, params, task, n_sequences=256, readout_fit=m))
               for m in readout.FIT_METHODS}
        for f in run.values():
            f()  # compile, warm
        t = {m: best_of(f) for m, f in run.items()}
        states = np.tanh(rng.standard_normal((args.population, 512, args.hidden))).astype(np.float32)
        y = rng.uniform(-1, 1, (512, 1))
        fit = {m: best_of(lambda m=m: readout.fit(states, y, method=m)) for m in readout.FIT_METHODS}
        print(f"| {kind} H={args.hidden} | {t[readout.FIXED_ORDER]:.3f} | {t[readout.BLAS]:.3f} | "
              f"{t[readout.FIXED_ORDER] / t[readout.BLAS]:.2f} | {fit[readout.FIXED_ORDER]:.3f} | {fit[readout.BLAS]:.3f} |")


if __name__ == "__main__":
    main()
