"""sep-CMA-ES cost per generation: the ``cmaes`` library's ask/tell against lstmsearch's path.

For a population of 1024 at 352 dimensions (LSTM H = 8, full space, readout fitted) and 4,480
(LSTM H = 32) it times, in one process, one generation of

- **cmaes**: ``population_size`` calls of ``SepCMA.ask()`` and one ``SepCMA.tell(list)``;
- **lstmsearch**: one normal matrix drawn from the generation's key, ``generation_z`` (sampling
  and clipping in one Numba pass) and ``VectorSepCMA.tell_arrays`` (the same update).

and prints the median of the repetitions in milliseconds. The study loop also draws the next
generation's matrix while the kernels run, which takes the draw off the critical path.

Run:  ``python benchmarks/cma_step.py [--reps 7]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cmaes import SepCMA

from lstmsearch.search.cma import generation_key, generation_z, normals
from lstmsearch.search.sepcma import VectorSepCMA


def median_ms(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--popsize", type=int, default=1024)
    args = ap.parse_args()
    lam = args.popsize
    print(f"one generation of sep-CMA-ES, population {lam} (median of {args.reps}, ms)")
    print("| dim | cmaes ask | cmaes tell | draw | sample | tell_arrays | cmaes / ours (without the draw) |")
    print("|---|---|---|---|---|---|---|")
    for d in (352, 4480):
        bounds = np.stack([-np.ones(d) * 3, np.ones(d) * 3], 1)
        lib = SepCMA(mean=np.zeros(d), sigma=0.9, bounds=bounds, population_size=lam, n_max_resampling=1, seed=1)
        ours = VectorSepCMA(mean=np.zeros(d), sigma=0.9, bounds=bounds, population_size=lam, seed=1)
        values = np.random.default_rng(0).uniform(size=lam)
        xs = np.array([lib.ask() for _ in range(lam)])
        t_ask = median_ms(lambda: [lib.ask() for _ in range(lam)], args.reps)
        t_tell = median_ms(lambda: lib.tell(list(zip(xs, values))), args.reps)
        key = generation_key(0, 0, 0)
        t_draw = median_ms(lambda: normals(key, (lam, d)), args.reps)
        rec = {"mean": ours._mean, "matrix": ours._eigen_decomposition(), "sigma": ours._sigma, "kind": "sep",
               "key": key, "popsize": lam}
        ys = [normals(key, (lam, d)) for _ in range(args.reps + 1)]
        generation_z(rec, bounds[:, 0], bounds[:, 1], y=ys.pop())  # compile
        t_sample = median_ms(lambda: generation_z(rec, bounds[:, 0], bounds[:, 1], y=ys.pop()), args.reps)
        ours.tell_arrays(xs, values)  # compile
        t_ours = median_ms(lambda: ours.tell_arrays(xs, values), args.reps)
        print(f"| {d} | {t_ask:.1f} | {t_tell:.1f} | {t_draw:.1f} | {t_sample:.1f} | {t_ours:.1f} | "
              f"{(t_ask + t_tell) / (t_sample + t_ours):.0f}x |")


if __name__ == "__main__":
    main()
