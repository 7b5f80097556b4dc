"""Weight guessing on the latch, variant II, in plain NumPy: an independent check of
``lstmsearch guess --cell rnn_tanh --hidden 1 --task latch --mode unit:abs`` and of how the
count depends on the noise scale.

The net of Schmidhuber, Hochreiter & Bengio (2001), latch variant II: one tanh unit,
h_t = tanh(a h_{t-1} + w x_t + b), h_0 = 0, with a, w, b drawn uniform in [-100, 100] (one bias,
as theirs). Sequences: x_1 = +1 (class 1, target +1) or -1 (class 2, target -1), then Gaussian
noise; lengths uniform in 500..600; 100 training sequences, 50 per class. A draw solves when
|h_T - target| < 0.1 on all 100. This script uses float64 NumPy and nothing from lstmsearch.

For each noise standard deviation it draws ``--draws`` weight triples, simulates all of them
on one training set and prints draws per solve (= draws / solving draws, the mean number of
draws until a solve) with its standard error. The published figure is about 22; "variance
0.2" is a standard deviation of 0.447.

Run:  ``python studies/latch_numpy_check.py [--draws 30000] [--seed 123]``  (about 1 minute)
"""

from __future__ import annotations

import argparse
import math

import numpy as np


def draws_per_solve(noise_std: float, draws: int, seed: int):
    """(solving draws, draws per solve, its standard error) for one noise scale."""
    rng = np.random.default_rng(seed)
    a, w, b = (rng.uniform(-100, 100, draws) for _ in range(3))
    lengths = rng.integers(500, 601, 100)
    target = np.repeat([1.0, -1.0], 50)
    x = rng.normal(0.0, noise_std, (lengths.max(), 100))
    x[0] = target
    h = np.zeros((draws, 100))
    out = np.zeros((draws, 100))
    for t in range(lengths.max()):
        h = np.tanh(a[:, None] * h + w[:, None] * x[t][None, :] + b[:, None])
        ends = lengths - 1 == t
        out[:, ends] = h[:, ends]
    k = int((np.abs(out - target) < 0.1).all(axis=1).sum())
    if k == 0:
        return 0, math.inf, math.inf
    p = k / draws
    return k, 1 / p, math.sqrt((1 - p) / k) / p  # delta method: s.e. of 1/p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--std", default="0.447,0.3,0.2,0.1")
    args = ap.parse_args(argv)
    print("| noise std | solving draws | draws per solve |")
    print("|---|---|---|")
    for s in (float(v) for v in args.std.split(",")):
        k, m, se = draws_per_solve(s, args.draws, args.seed)
        print(f"| {s:g} | {k} of {args.draws} | {m:.0f} ± {se:.0f} |")


if __name__ == "__main__":
    main()
