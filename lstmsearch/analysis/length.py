r"""Length generalisation: the error of fixed settings against sequence length.

The same weights are applied at every step, however long the sequence: a setting found
(or built) at length n is re-simulated at n, 2n, 10n, 100n, 1000n (``DEFAULT_FACTORS``)
on fresh sequences of the same task, and scored two ways:

``given``
    the readout stored in the setting (for a search result with a fitted readout, the
    one fitted at the original length): does the *whole* setting generalise?
``refit``
    a readout fitted in closed form at each length on that length's training sequences
    (:mod:`lstmsearch.readout`): does the *state* still hold the answer, even if its scale
    or offset drifted?

Sequences are drawn in batches so that one batch holds at most ``max_elements``
input numbers (T * B * I): 1000n with n = 20 is 20,000 steps, and only a batch of
sequences is in memory at a time. When a length needs a single batch, its sequences
are exactly those of :func:`lstmsearch.evaluate` with the same seed (train stream 0,
held-out stream 1); when it needs k > 1 batches, batch j uses streams 2 + 2j (train)
and 3 + 2j (held-out).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import pyarrow as pa

from .. import readout as readout_mod
from ..cells import Cell
from ..errors import require
from ..evaluate import aggregate_lengths
from ..kernels import get_backend
from ..tasks import HELDOUT_STREAM, TRAIN_STREAM, Task

DEFAULT_FACTORS = (1, 2, 10, 100, 1000)
READOUTS = ("given", "refit")

SCHEMA = pa.schema([
    ("setting", pa.int64()),
    ("length", pa.int64()),
    ("factor", pa.float64()),
    ("readout", pa.string()),
    ("mse", pa.float64()),
    ("nmse", pa.float64()),
    ("max_abs_err", pa.float64()),
    ("finite", pa.bool_()),
    ("n_sequences", pa.int64()),
])


def _streams(n_batches: int, j: int, train: bool) -> int:
    if n_batches == 1:
        return TRAIN_STREAM if train else HELDOUT_STREAM
    return 2 + 2 * j + (0 if train else 1)


def collect_states(cell: Cell, params: np.ndarray, task: Task, n_sequences: int, seed: int,
                   train: bool, backend: str = "cpu", max_elements: int = 2 ** 24):
    """States at the task's output steps and targets, drawn in batches.

    Returns ``states`` (P, N, H) float64 (non-finite settings keep their NaN/inf) and
    ``targets`` (N, O) with N = n_sequences * len(task.output_steps()).
    """
    backend_mod = get_backend(backend)
    per_seq = task.length * max(task.n_inputs, 1)
    batch = int(max(1, min(n_sequences, max_elements // per_seq)))
    n_batches = -(-n_sequences // batch)
    steps = task.output_steps()
    hs, ys = [], []
    for j in range(n_batches):
        b = min(batch, n_sequences - j * batch)
        # with one batch draw exactly evaluate()'s sequences; else one stream per batch
        x, y = task.sample(b if n_batches > 1 else n_sequences, seed, _streams(n_batches, j, train))
        h, _ = backend_mod.run(cell, params, x, steps)  # (P, S, b, H)
        hs.append(np.asarray(h, np.float64))
        ys.append(y)
    h = np.concatenate(hs, axis=2)
    y = np.concatenate(ys, axis=1)
    P = params.shape[0]
    return h.reshape(P, -1, cell.hidden), y.reshape(-1, cell.outputs)


def score(cell: Cell, states: np.ndarray, targets: np.ndarray, readouts: np.ndarray, task: Optional[Task] = None):
    """(mse, max_abs_err, finite) per setting for readouts (P, O*H+O) on states (P, N, H).

    With a several-length ``task`` (states in the order of :func:`collect_states`: scored length
    major) the mse is taken per length and aggregated as the task says (its ``aggregate``: the
    worst length by default), as :func:`lstmsearch.evaluate.evaluate` scores it. A task whose
    lengths are drawn per sequence (``aggregate = "per_sequence"``) is scored here with every
    sequence at every length, their mean: the pairs ``evaluate`` scores are a random subset of them."""
    finite = np.isfinite(states).all(axis=(1, 2)) & np.isfinite(readouts).all(axis=1)
    st = np.where(finite[:, None, None], states, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        d = readout_mod.apply(st, readouts, cell.outputs) - targets[None]
        if task is not None and task.lengths is not None:
            k = len(task.lengths)
            per_length = np.mean((d * d).reshape(d.shape[0], k, -1), axis=2)
            mse = aggregate_lengths(per_length, "mean" if task.aggregate == "per_sequence" else task.aggregate)
        else:
            mse = np.mean(d * d, axis=(1, 2))
        mae = np.max(np.abs(d), axis=(1, 2))
    finite &= np.isfinite(mse)
    return np.where(finite, mse, np.inf), np.where(finite, mae, np.inf), finite


def fit_readouts(cell: Cell, states: np.ndarray, targets: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Closed-form readouts (P, O*H+O); non-finite settings get NaN readouts."""
    finite = np.isfinite(states).all(axis=(1, 2))
    ro = readout_mod.fit(np.where(finite[:, None, None], states, 0.0), targets, ridge)
    ro[~finite] = np.nan
    return ro


def length_curve(
    cell: Cell,
    params,
    task: Task,
    factors: Sequence[float] = DEFAULT_FACTORS,
    lengths: Optional[Iterable[int]] = None,
    readout: Sequence[str] = READOUTS,
    n_sequences: int = 256,
    seed: int = 0,
    backend: str = "cpu",
    ridge: float = 1e-6,
    max_elements: int = 2 ** 24,
) -> pa.Table:
    """Error of each setting at each length; one row per (setting, length, readout).

    Parameters
    ----------
    cell, params : the cell and its (P, D) or (D,) settings (the readout tail is used by
        ``readout="given"``)
    task : the task at its base length n = ``task.length``
    factors : lengths n * factor (rounded, at least 1) when ``lengths`` is None
    lengths : explicit lengths instead of factors (``factor`` is then length / n)
    readout : any of "given", "refit" (see module doc)
    n_sequences : held-out sequences per length (and as many training ones for refit)

    Returns
    -------
    pyarrow table with columns setting, length, factor, readout, mse, nmse, max_abs_err,
    finite, n_sequences (:data:`SCHEMA`).
    """
    require(isinstance(cell, Cell), f"cell must be a lstmsearch.Cell, got {type(cell).__name__}")
    require(isinstance(task, Task), f"task must be a lstmsearch task, got {type(task).__name__}")
    params = cell.check_params(np.asarray(params))
    readout = (readout,) if isinstance(readout, str) else tuple(readout)
    require(readout and all(r in READOUTS for r in readout),
            f"readout must be some of {', '.join(READOUTS)}, got {readout!r}")
    require(cell.inputs == task.n_inputs and cell.outputs == task.n_outputs,
            f"task {task.name} has {task.n_inputs} input(s) and {task.n_outputs} output(s); "
            f"the cell has inputs={cell.inputs}, outputs={cell.outputs}")
    require(isinstance(n_sequences, (int, np.integer)) and n_sequences >= 1,
            f"n_sequences must be a positive integer, got {n_sequences!r}")
    n = task.length
    if lengths is None:
        require(all(np.isfinite(f) and f > 0 for f in factors), f"factors must be positive, got {factors!r}")
        lengths = [max(task.min_length, int(round(n * f))) for f in factors]
    lengths = [int(L) for L in lengths]
    require(all(L >= task.min_length for L in lengths),
            f"lengths must be at least {task.min_length} for task {task.name}, got {lengths}")
    P = params.shape[0]
    rows = {name: [] for name in SCHEMA.names}
    for L in lengths:
        t = task.with_length(L)
        h_te, y_te = collect_states(cell, params, t, n_sequences, seed, False, backend, max_elements)
        for mode in readout:
            if mode == "given":
                ro = params[:, cell.n_recurrent:].astype(np.float32)
            else:
                h_tr, y_tr = collect_states(cell, params, t, n_sequences, seed, True, backend, max_elements)
                ro = fit_readouts(cell, h_tr, y_tr, ridge)
            mse, mae, finite = score(cell, h_te, y_te, ro)
            rows["setting"].append(np.arange(P))
            rows["length"].append(np.full(P, L))
            rows["factor"].append(np.full(P, L / n))
            rows["readout"].append(np.full(P, mode, dtype=object))
            rows["mse"].append(mse)
            rows["nmse"].append(mse / t.baseline)
            rows["max_abs_err"].append(mae)
            rows["finite"].append(finite)
            rows["n_sequences"].append(np.full(P, n_sequences))
    return pa.Table.from_arrays(
        [pa.array(np.concatenate(rows[f.name]).tolist() if f.name == "readout" else np.concatenate(rows[f.name]),
                  f.type) for f in SCHEMA],
        schema=SCHEMA,
    )


def format_length_curve(table: pa.Table, labels: Optional[Sequence[str]] = None) -> str:
    """A readable text table: one line per (setting, readout), one column per length."""
    d = table.to_pydict()
    lengths = sorted(set(d["length"]))
    keys = []
    for s, r in zip(d["setting"], d["readout"]):
        if (s, r) not in keys:
            keys.append((s, r))
    cell = {(s, r, L): v for s, r, L, v in zip(d["setting"], d["readout"], d["length"], d["nmse"])}
    head = f"{'setting':<14} {'readout':<7} " + " ".join(f"{'n=' + str(L):>10}" for L in lengths)
    lines = ["nmse by sequence length (the same weights at every step)", head]
    for s, r in keys:
        name = labels[s] if labels is not None else str(s)
        vals = " ".join(f"{cell.get((s, r, L), float('nan')):>10.3g}" for L in lengths)
        lines.append(f"{name:<14} {r:<7} {vals}")
    return "\n".join(lines)
