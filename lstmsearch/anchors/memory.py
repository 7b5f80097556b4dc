r"""Memory throughput: how many of the k most recent inputs a cell of H units recalls.

Collins, Sohl-Dickstein & Sussillo (ICLR 2017, "Capacity and Trainability in Recurrent Neural
Networks") find that a network with n_h units reconstructs a random n_in-dimensional input
almost perfectly if and only if n_h >= n_in: about *one real number per hidden unit*. (For
linear readouts of a reservoir the same count is Jaeger's 2001 bound: the memory capacity of N
units is at most N.)

Here the question is asked of one setting at a time with the task ``recall_window`` (read
x_1..x_n, output x_n, x_{n-1}, ..., x_{n-k+1} at step n; k > H). :func:`per_output_nmse` scores
every output (lag j) on its own,

.. math::  \mathrm{nmse}_j = \mathrm{E}[(y_j - x_{n-j})^2] / \mathrm{Var}(x),

with a linear readout fitted in closed form on training sequences (or the setting's own), on
held-out sequences. :func:`capacity` sums the explained variance over lags (Jaeger's memory
capacity, "how many numbers", counting partial recall). :func:`lags_recalled` counts the lags with nmse_j < ``RECALLED`` = 0.01,
i.e. with more than 99% of the lag's variance explained -- "almost perfect" reconstruction.
(A tighter cut such as 1e-5 would count only float-exact memories; a looser one such as 0.1
would count the fading echoes of many lags that any contracting network keeps.)

:func:`study_text` writes the short search (CMA-ES over every recurrent weight, the readout
fitted) whose best setting is scored; :func:`~lstmsearch.analysis.constructions.delay_line`
is the hand-built shift register that recalls exactly H lags.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..cells import Cell
from ..config import study_toml
from ..errors import require
from ..tasks import Task
from ..analysis.length import collect_states, fit_readouts

#: nmse below which a lag counts as recalled (99% of its variance explained).
RECALLED = 0.01


def per_output_nmse(cell: Cell, params, task: Task, n_sequences: int = 512, seed: int = 1_000_003,
                    readout: str = "fit", backend: str = "cpu", ridge: float = 1e-6) -> np.ndarray:
    """Held-out nmse of every output, (P, O): per-output mse / the task's baseline (Var(x)).

    ``readout="fit"``: a readout fitted on ``n_sequences`` training sequences (stream 0 of
    ``seed``); ``"given"``: the readout inside each setting. Scored on ``n_sequences`` held-out
    sequences (stream 1). Non-finite settings get inf.
    """
    require(readout in ("fit", "given"), f"readout must be 'fit' or 'given', got {readout!r}")
    params = cell.check_params(np.asarray(params))
    require(cell.outputs == task.n_outputs and cell.inputs == task.n_inputs,
            f"task {task.name} has {task.n_inputs} input(s) and {task.n_outputs} output(s); "
            f"the cell has inputs={cell.inputs}, outputs={cell.outputs}")
    if readout == "fit":
        h_tr, y_tr = collect_states(cell, params, task, n_sequences, seed, True, backend)
        ro = fit_readouts(cell, h_tr, y_tr, ridge)
    else:
        ro = params[:, cell.n_recurrent:].astype(np.float64)
    h_te, y_te = collect_states(cell, params, task, n_sequences, seed, False, backend)
    from .. import readout as readout_mod

    finite = np.isfinite(h_te).all(axis=(1, 2)) & np.isfinite(ro).all(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        d = readout_mod.apply(np.where(finite[:, None, None], h_te, 0.0), np.nan_to_num(ro), cell.outputs) - y_te[None]
        nmse = np.mean(d * d, axis=1) / task.baseline  # (P, O)
    nmse[~finite] = np.inf
    return np.where(np.isfinite(nmse), nmse, np.inf)


def lags_recalled(nmse, threshold: float = RECALLED) -> np.ndarray:
    """Number of outputs (lags) with nmse < ``threshold``; (P,) for (P, O) input."""
    return np.sum(np.asarray(nmse) < threshold, axis=-1)


def capacity(nmse) -> np.ndarray:
    r"""Memory capacity (Jaeger 2001): :math:`\sum_j \max(0, 1 - \mathrm{nmse}_j)`, the explained variance
    summed over lags, in "numbers remembered"; (P,) for (P, O). For a fitted linear readout it is at
    most H (Jaeger's bound for linear reservoirs); the mean-nmse search objective is 1 - capacity / k
    whenever every nmse_j <= 1."""
    return np.sum(np.clip(1.0 - np.asarray(nmse, np.float64), 0.0, None), axis=-1)


def window(hidden: int) -> int:
    """k asked of a cell of H units: 2H + 2, so that recalling more than H lags could show."""
    return 2 * hidden + 2


def study_text(kind: str, hidden: int, length: int = 40, budget: int = 20000, sequences: int = 128,
               seed: int = 0, k: Optional[int] = None, name: Optional[str] = None) -> str:
    """A study file: CMA-ES (IPOP) over every weight of weight_ih, weight_hh and bias_ih in [-2, 2]
    (bias_hh fixed at 0, the readout fitted), on ``recall_window`` with k = 2H + 2 by default."""
    k = window(hidden) if k is None else k
    name = name or f"memory_{kind}_h{hidden}"
    return study_toml({
        "study": {"name": name, "description": f"memory throughput: {kind}, H={hidden}, recall the {k} most "
                                               f"recent of {length} numbers"},
        "cell": {"kind": kind, "hidden": hidden},
        "task": {"kind": "recall_window", "length": length, "k": k,
                 "dist": {"kind": "uniform", "low": -1.0, "high": 1.0}},
        "eval": {"sequences": sequences, "heldout": sequences, "seed": seed, "readout": "fit"},
        "space": {"kind": "masked", "default": "fixed",
                  "rule": [{"block": ["weight_ih", "weight_hh", "bias_ih"], "tie": "none", "low": -2.0, "high": 2.0}]},
        "strategy": {"kind": "cmaes", "sigma": 0.15, "popsize": 64, "restarts": "ipop", "seed": seed},
        "budget": {"settings": budget},
        "store": {"keep_weights": 4},
    })
