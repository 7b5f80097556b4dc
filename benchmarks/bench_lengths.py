"""Cost of several lengths in one objective: evaluate one population at lengths (n, n+1)
against n+1 alone and n alone (same cell, population, sequences and backend).

One simulation of the longest length reads the state at every requested step and the
readout is fitted once over the stacked states, so (n, n+1) should cost about as much as
n+1 alone (the least-squares fit sees twice the rows). Prints the best of ``--repeat``
wall times and the ratios.

On a shared machine pin the BLAS threads (the fit's batched matmuls thrash otherwise):

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_lengths.py [--cell lstm] [--hidden 32] [--n 20] [--settings 4096]
                                       [--sequences 256] [--backend cpu] [--repeat 3]
"""
import argparse
import time

import numpy as np

import lstmsearch as ls

ap = argparse.ArgumentParser()
ap.add_argument("--cell", default="lstm")
ap.add_argument("--hidden", type=int, default=32)
ap.add_argument("--n", type=int, default=20)
ap.add_argument("--settings", type=int, default=4096)
ap.add_argument("--sequences", type=int, default=256)
ap.add_argument("--backend", default="cpu")
ap.add_argument("--repeat", type=int, default=3)
a = ap.parse_args()

cell = ls.Cell(a.cell, a.hidden)
params = cell.init(a.settings, seed=0, method="uniform", scale=1.0)
tasks = {f"lengths ({a.n}, {a.n + 1})": ls.make_task("recall_first", lengths=(a.n, a.n + 1)),
         f"length {a.n + 1} alone": ls.make_task("recall_first", length=a.n + 1),
         f"length {a.n} alone": ls.make_task("recall_first", length=a.n)}
ls.evaluate(cell, params[:8], tasks[f"length {a.n} alone"], n_sequences=a.sequences, backend=a.backend)  # compile
best = {}
for name, task in tasks.items():
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        ls.evaluate(cell, params, task, n_sequences=a.sequences, backend=a.backend)
        times.append(time.perf_counter() - t0)
    best[name] = min(times)
    print(f"{name:22s} {best[name]:8.3f} s  ({a.settings / best[name]:,.0f} settings/s)")
names = list(best)
print(f"ratio {names[0]} / {names[1]}: {best[names[0]] / best[names[1]]:.2f}")
print(f"ratio {names[0]} / {names[2]}: {best[names[0]] / best[names[2]]:.2f}")
print(f"({a.cell} H={a.hidden}, {a.settings} settings, {a.sequences} + {a.sequences} sequences, backend {a.backend})")
