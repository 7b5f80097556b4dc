"""What the lazy eigendecomposition of a full CMA-ES costs in evaluations.

lstmsearch's full CMA-ES (:class:`lstmsearch.search.cma.LazyCMA`) refreshes ``C = B D^2 B^T``
every :func:`~lstmsearch.search.cma.eigen_gap` generations, so that its d x d sampling matrix is
stored once per refresh (at most ~128 bytes a row), not once per generation. This benchmark runs
the same CMA-ES (the ``cmaes`` library's equations, default population, same seeds) with a refresh
every generation (gap 1, the library's own behaviour) and with lstmsearch's gap, on standard test
functions with a non-separable, ill-conditioned Hessian, and prints the evaluations each needs to
reach f <= 1e-8 (median over the seeds' runs that reach it, with how many did), and their ratio
(lazy / every generation; 1.00 = no cost).

    python benchmarks/bench_lazy_cma.py [--dims 10,28,60] [--seeds 3]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from lstmsearch.search.cma import LazyCMA, eigen_gap


def rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def ellipsoid(d, seed):
    """Rotated ellipsoid, condition number 1e6: f(x) = sum_i 1e6^(i/(d-1)) (R x)_i^2."""
    R, w = rotation(d, seed), 1e6 ** (np.arange(d) / max(d - 1, 1))
    return lambda x: float(np.sum(w * (R @ x) ** 2))


def rosenbrock(d, seed):
    """Rotated Rosenbrock: f(x) = sum 100 (y_{i+1} - y_i^2)^2 + (1 - y_i)^2, y = R x + 1 (minimum 0 at x = 0)."""
    R = rotation(d, seed)

    def f(x):
        y = R @ x + 1.0
        return float(np.sum(100 * (y[1:] - y[:-1] ** 2) ** 2 + (1 - y[:-1]) ** 2))
    return f


def evaluations_to_target(fun, d, gap, seed, target=1e-8, max_evals=400_000) -> int:
    rng = np.random.default_rng(seed)
    opt = LazyCMA(mean=rng.uniform(-2, 2, d), sigma=1.0, seed=seed, eigen_gap=gap)
    evals = 0
    while evals < max_evals:
        sols = []
        for _ in range(opt.population_size):
            x = opt.ask()
            v = fun(x)
            evals += 1
            if v <= target:
                return evals
            sols.append((x, v))
        opt.tell(sols)
    return -1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="10,28,60")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{'function':<11}{'d':>4}{'pop':>5}{'gap':>5}  {'evals, gap 1 (hits)':>22}  {'evals, lazy (hits)':>22}  ratio")
    for d in (int(v) for v in args.dims.split(",")):
        pop = 4 + int(3 * math.log(d))
        gap = eigen_gap(d, pop)
        for name, make in (("ellipsoid", ellipsoid), ("rosenbrock", rosenbrock)):
            every = [evaluations_to_target(make(d, s), d, 1, s) for s in range(args.seeds)]
            lazy = [evaluations_to_target(make(d, s), d, gap, s) for s in range(args.seeds)]
            # median evaluations over the runs that reached the target (Rosenbrock has a local minimum)
            a, b = ([v for v in runs if v > 0] for runs in (every, lazy))
            cols = [f"{int(np.median(r)) if r else 0:>15,} ({len(r)}/{args.seeds})" for r in (a, b)]
            ratio = f"{np.median(b) / np.median(a):.2f}" if a and b else "n/a"
            print(f"{name:<11}{d:>4}{pop:>5}{gap:>5}  {cols[0]:>22}  {cols[1]:>22}  {ratio}", flush=True)


if __name__ == "__main__":
    main()
