"""Does a signed-log weight scale let a blind search find the tanh RNN's relay construction?

The relay construction (:func:`lstmsearch.analysis.constructions.recall_first_rnn_tanh`) needs
weights of size 8 beside weights that are zero to about 1e-4 (``rnn_construction_basin.py``).
In the linear full space (weights in [-10, 10]) a weight within 1e-4 of zero is a 1e-5 sliver of
its range. Here every recurrent weight is ``w = delta * sinh(u)`` with u searched in
``[-asinh(10 / delta), asinh(10 / delta)]`` (biases: 30 in place of 10): both |w| < delta and
|w| ~ 10 are a fair share of the range. The space is a ``template`` space (the study file names
``asinh_space.py:make``, written beside it), so the run is an ordinary study: full CMA-ES, BIPOP restarts, population 256,
lengths 20 and 21, as in the "what it takes" table of ``docs/results.md``.

    NUMBA_NUM_THREADS=1 python benchmarks/rnn_asinh_space.py --hidden 4 --budget 1000000
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lstmsearch.cells import Cell

TEMPLATE = '''"""The template space: searched u -> settings, w = DELTA * sinh(u); the readout is fitted."""
import numpy as np

DELTA = {delta!r}


def make(z, cell):
    out = np.zeros((z.shape[0], cell.n_params), np.float32)
    out[:, :z.shape[1]] = DELTA * np.sinh(z)
    return out
'''


def study_text(hidden: int, delta: float, budget: int, seed: int) -> str:
    cell = Cell("rnn_tanh", hidden)
    zw, zb = math.asinh(10 / delta), math.asinh(30 / delta)
    low = [-zw] * (hidden + hidden * hidden) + [-zb] * (2 * hidden)  # weight_ih, weight_hh, the two biases
    assert len(low) == cell.n_recurrent
    return f'''[study]
name = "rnn_asinh_h{hidden}"
description = "rnn_tanh H={hidden}, weights delta*sinh(u), delta {delta}, full CMA-ES, BIPOP"

[cell]
kind = "rnn_tanh"
hidden = {hidden}

[task]
kind = "recall_first"
lengths = [20, 21]
dist = {{ kind = "uniform", low = -1.0, high = 1.0 }}

[eval]
sequences = 128
heldout = 128
seed = 0
readout = "fit"

[space]
kind = "template"
function = "asinh_space.py:make"
dim = {cell.n_recurrent}
low = {low}
high = {[-v for v in low]}

[strategy]
kind = "cmaes"
variant = "full"
popsize = 256
sigma = 0.2
restarts = "bipop"
seed = {seed}

[budget]
settings = {budget}
'''


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=4)
    ap.add_argument("--delta", type=float, default=1e-4)
    ap.add_argument("--budget", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "asinh_space.py").write_text(TEMPLATE.format(delta=a.delta))
        path = Path(tmp) / "study.toml"
        path.write_text(study_text(a.hidden, a.delta, a.budget, a.seed))
        t0 = time.perf_counter()
        for cmd in (["run", str(path), "--out", f"{tmp}/out", "--quiet"], ["reproduce", f"{tmp}/out", "best"]):
            r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", *cmd], capture_output=True, text=True)
            print(r.stdout, r.stderr, sep="", end="")
            if r.returncode:
                return r.returncode
        print(f"H = {a.hidden}, delta {a.delta:g}, {a.budget:,} settings: {time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
