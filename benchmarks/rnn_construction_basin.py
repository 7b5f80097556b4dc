"""How narrow the tanh RNN's relay construction is: why a blind search does not find it.

The construction (``flag_memory`` for ``rnn_tanh``, :mod:`lstmsearch.analysis.constructions`)
solves recall-first at n = 20 and 21 with 4 units. This benchmark (1) scores it for several
values of ``big`` (its largest weight) and ``gain`` (its input weight), and (2) adds Gaussian
noise of a given size to every recurrent weight of it (200 draws per size; readout fitted) and
prints the median nmse and the share of draws still under 1e-5 and under 0.04 (the latches a
blind search finds score 6e-3 to 2e-2).

    python benchmarks/rnn_construction_basin.py
"""

from __future__ import annotations

import numpy as np

from lstmsearch.analysis.constructions import recall_first_rnn_tanh
from lstmsearch.cells import Cell
from lstmsearch.evaluate import evaluate
from lstmsearch.tasks import make_task


def main():
    task = make_task("recall_first", lengths=[20, 21])
    cell = Cell("rnn_tanh", 4)
    print("the construction, readout fitted, nmse at n = 20 and 21 (worst):")
    grid = [(b, g) for b in (3, 5, 8, 20) for g in (1e-3, 1e-2, 0.1)]
    t = evaluate(cell, np.stack([recall_first_rnn_tanh(4, gain=g, big=b) for b, g in grid]), task,
                 n_sequences=128, n_heldout=128)
    for (b, g), v in zip(grid, t.column("nmse").to_pylist()):
        print(f"  big {b:>4g}  gain {g:<6g} nmse {v:.3g}")
    p0 = recall_first_rnn_tanh(4, gain=0.01, big=8.0)
    R = cell.n_recurrent
    rng = np.random.default_rng(0)
    print("Gaussian noise on every recurrent weight (big 8, gain 0.01; 200 draws each):")
    for s in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1):
        P = np.tile(p0, (200, 1))
        P[:, :R] += (s * rng.standard_normal((200, R))).astype(np.float32)
        v = evaluate(cell, P, task, n_sequences=128, n_heldout=128).column("nmse").to_numpy()
        print(f"  noise {s:<7g} median nmse {np.median(v):.3g}  under 1e-5: {np.mean(v < 1e-5):.0%}  "
              f"under 0.04: {np.mean(v < 0.04):.0%}")


if __name__ == "__main__":
    main()
