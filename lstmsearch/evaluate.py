"""Simulation and evaluation: backend dispatch, chunking over the population, metrics.

``simulate`` runs settings over given sequences. ``evaluate`` draws a task's sequences,
simulates a population chunk by chunk (memory stays bounded for any P), applies the
readout (fitted in closed form or the one inside each setting) and returns a per-setting
pyarrow table:

==============  =====================================================================
column          meaning
==============  =====================================================================
setting         index of the setting in ``params``
mse             mean squared error on the held-out sequences (stream 1 of the seed)
nmse            mse / the task's predict-the-mean baseline
max_abs_err     largest absolute error over held-out sequences, steps and outputs
train_mse       (readout="fit") error on the training sequences the readout was fit on
train_nmse      (readout="fit") train_mse / baseline
nmse_by_length  (several-length tasks only) list<float64>: the held-out nmse at each of
                ``task.lengths``, in order
finite          false if the setting produced NaN or inf; its errors are then inf
readout         O*H+O float32: weight_out then bias_out (fitted, or the setting's own)
==============  =====================================================================

Several lengths (``make_task(..., lengths=(n_1, ..., n_k))``): one simulation of the
longest length reads the state at every step n_j - 1; the readout is fitted ONCE on the
stacked states of all k steps (one least-squares problem over k x ``n_sequences`` rows);
the held-out error is computed per length, mse_j = mean over sequences and outputs of
(y_hat - y)^2 at n_j, and aggregated by ``task.aggregate``: ``"worst"`` gives
mse = max_j mse_j (nmse likewise, the baseline being the same at every length),
``"mean"`` gives mse = (1/k) sum_j mse_j. ``train_mse`` is aggregated the same way;
``max_abs_err`` is the largest over every length (a maximum either way).
``"per_sequence"``: sequence b of each stream is scored at ONE length n_(j_b), j_b drawn
uniformly (:meth:`lstmsearch.tasks.Task.drawn_lengths`); the readout is fitted on the
training pairs (h at n_(j_b) - 1 of sequence b, its target) and mse is the mean over the
held-out pairs; ``nmse_by_length`` gives each length's nmse over the held-out sequences that
drew it (NaN for a length none drew).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyarrow as pa

from . import readout as readout_mod
from .cells import Cell
from .errors import LstmsearchError, check_memory, require
from .kernels import get_backend
from .tasks import HELDOUT_STREAM, TRAIN_STREAM, Task

#: Bytes of state/design memory one chunk may use.
CHUNK_BYTES = 256 * 2 ** 20


def _check_cell(cell):
    require(isinstance(cell, Cell), f"cell must be a lstmsearch.Cell, got {type(cell).__name__}")


def _check_task(cell, task):
    require(isinstance(task, Task), f"task must be a lstmsearch task, got {type(task).__name__}")
    require(cell.inputs == task.n_inputs and cell.outputs == task.n_outputs,
            f"task {task.name} has {task.n_inputs} input(s) and {task.n_outputs} output(s); "
            f"the cell has inputs={cell.inputs}, outputs={cell.outputs}")


def _check_x(cell, x) -> np.ndarray:
    require(isinstance(x, np.ndarray), f"x must be a numpy array of shape (T, B, {cell.inputs}), got {type(x).__name__}")
    require(x.ndim == 3, f"x has rank {x.ndim} (shape {x.shape}); expected (T, B, I) time-major with I={cell.inputs}")
    require(x.shape[2] == cell.inputs, f"x has {x.shape[2]} input features (shape {x.shape}); the cell expects I={cell.inputs}")
    require(x.shape[0] >= 1 and x.shape[1] >= 1, f"x has shape {x.shape}; expected T >= 1 and B >= 1")
    require(np.issubdtype(x.dtype, np.floating), f"x must be a float array, got dtype {x.dtype}")
    return x


def _check_state(state, P, B, H, what):
    """Broadcast a state given as (H,), (B, H) or (P, B, H) to (P, B, H) float32."""
    if state is None:
        return None
    s = np.asarray(state, dtype=np.float32)
    require(s.ndim in (1, 2, 3) and s.shape[-1] == H and (s.ndim < 2 or s.shape[-2] == B)
            and (s.ndim < 3 or s.shape[0] in (1, P)),
            f"{what} has shape {s.shape}; expected (H,), (B, H) or (P, B, H) with P={P}, B={B}, H={H}")
    return np.broadcast_to(s, (P, B, H))


def simulate(cell: Cell, params, x, backend: str = "cpu", h0=None, return_sequence: bool = False):
    """Run a population of settings over sequences.

    Parameters
    ----------
    cell : Cell
    params : (P, D) float32 (or (D,)) settings in the flat layout of :mod:`lstmsearch.cells`
    x : (T, B, I) time-major input sequences
    backend : "cpu" or "reference"
    h0 : initial state, (H,), (B, H) or (P, B, H); for the LSTM a pair (h0, c0).
        Zeros if None.
    return_sequence : if True return the states at every step

    Returns
    -------
    The final hidden state (P, B, H) -- for the LSTM a tuple (h, c) -- or, with
    ``return_sequence``, the trajectory (P, T, B, H) (a tuple (h, c) for the LSTM).
    """
    _check_cell(cell)
    params = cell.check_params(params)
    x = _check_x(cell, x)
    P, (T, B, _), H = params.shape[0], x.shape, cell.hidden
    c0 = None
    if h0 is not None and cell.memory:
        require(isinstance(h0, tuple) and len(h0) == 2, f"for the {cell.kind} (it has a memory c), h0 must be a pair (h0, c0)")
        h0, c0 = h0
    h0 = _check_state(h0, P, B, H, "h0")
    c0 = _check_state(c0, P, B, H, "c0")
    steps = np.arange(T) if return_sequence else np.array([T - 1])
    hs, cs = get_backend(backend).run(cell, params, x, steps, h0, c0)
    if not return_sequence:
        hs = hs[:, 0]
        cs = None if cs is None else cs[:, 0]
    return (hs, cs) if cell.memory else hs


def chunk_size_for(cell: Cell, task: Task, n_sequences: int) -> int:
    """Settings per chunk so that states and design matrices stay within CHUNK_BYTES."""
    per_setting = len(task.output_steps()) * n_sequences * (cell.hidden + 1) * 8 * 2
    return int(max(1, min(8192, CHUNK_BYTES // per_setting)))


def _schema(fit: bool, n_readout: int, by_length: bool = False) -> pa.Schema:
    fields = [
        ("setting", pa.int64()),
        ("mse", pa.float64()),
        ("nmse", pa.float64()),
        ("max_abs_err", pa.float64()),
    ]
    if fit:
        fields += [("train_mse", pa.float64()), ("train_nmse", pa.float64())]
    if by_length:
        fields += [("nmse_by_length", pa.list_(pa.float64()))]
    fields += [("finite", pa.bool_()), ("readout", pa.list_(pa.float32(), n_readout))]
    return pa.schema(fields)


def _errors(pred, y):
    """mse (P,), max abs error (P,) of predictions (P, N, O) against y (N, O)."""
    with np.errstate(over="ignore", invalid="ignore"):
        d = pred - y[None]
        return np.mean(d * d, axis=(1, 2)), np.max(np.abs(d), axis=(1, 2))


def length_groups(task: Task):
    """Per scored length, the slice of output steps that belong to it (one slice of all
    steps for a one-length task)."""
    if task.lengths is None:
        return [slice(0, len(task.output_steps()))]
    lens = task.output_lengths()
    return [slice(int(np.searchsorted(lens, n, "left")), int(np.searchsorted(lens, n, "right")))
            for n in task.lengths]


def length_errors(pred, y, groups, n_seq: int):
    """Per-length errors of predictions (P, S*n_seq, O) against y (S*n_seq, O), rows
    step-major: (mse (P, k), max abs error (P, k)) for the k step groups ``groups``."""
    out = [_errors(pred[:, g.start * n_seq:g.stop * n_seq], y[g.start * n_seq:g.stop * n_seq]) for g in groups]
    return np.stack([m for m, _ in out], axis=1), np.stack([a for _, a in out], axis=1)


def aggregate_lengths(values: np.ndarray, aggregate: str) -> np.ndarray:
    """(P, k) per-length errors -> (P,): the worst (max) or the mean over lengths."""
    require(aggregate in ("worst", "mean"), f"per-length errors aggregate as worst or mean, not {aggregate!r}")
    with np.errstate(invalid="ignore"):
        return values.max(axis=1) if aggregate == "worst" else values.mean(axis=1)


def evaluate(
    cell: Cell,
    params,
    task: Task,
    n_sequences: int = 256,
    seed: int = 0,
    backend: str = "cpu",
    readout: str = "fit",
    n_heldout: Optional[int] = None,
    ridge: float = 1e-6,
    chunk_size: Optional[int] = None,
    progress: bool = False,
    readout_fit: str = readout_mod.FIXED_ORDER,
) -> pa.Table:
    """Score a population of settings on a task; one row per setting (see module doc).

    With ``readout="fit"`` the linear readout of every setting is fitted in closed form
    (:mod:`lstmsearch.readout`) on ``n_sequences`` training sequences (stream 0 of
    ``seed``) and scored on ``n_heldout`` (default: ``n_sequences``) held-out sequences
    (stream 1). With ``readout="given"`` the readout inside each setting is scored on
    the held-out sequences. ``readout_fit`` is the fit's method (:data:`lstmsearch.readout.FIT_METHODS`:
    ``"fixed-order"``, bit-identical on every machine, or ``"blas"``, that of releases <= 0.1.0, which
    the studies they made record), used for the fit and for applying the readout.
    """
    _check_cell(cell)
    _check_task(cell, task)
    require(readout in ("fit", "given"), f"readout must be 'fit' or 'given', got {readout!r}")
    require(readout_fit in readout_mod.FIT_METHODS,
            f"readout_fit must be one of {', '.join(readout_mod.FIT_METHODS)}, got {readout_fit!r}")
    params = cell.check_params(params)
    backend_mod = get_backend(backend)
    fit = readout == "fit"
    n_heldout = n_sequences if n_heldout is None else n_heldout
    n_all = (n_sequences if fit else 0) + n_heldout
    n_out = len(task.output_steps())  # steps whose states are kept
    check_memory(f"{n_all} sequences of length {task.length}",
                 16.0 * task.length * n_all * (cell.inputs + cell.outputs) + 4.0 * n_out * n_all * cell.hidden,
                 "use fewer sequences or shorter lengths (--sequences, --factors, --length)")
    x_te, y_te = task.sample(n_heldout, seed, HELDOUT_STREAM)
    if fit:
        x_tr, y_tr = task.sample(n_sequences, seed, TRAIN_STREAM)
        x = np.concatenate([x_tr, x_te], axis=1)
    else:
        x = x_te
    n_train = n_sequences if fit else 0
    steps = task.output_steps()
    O, H = cell.outputs, cell.hidden
    y_te = y_te.reshape(-1, O)
    if fit:
        y_tr = y_tr.reshape(-1, O)

    P = params.shape[0]
    chunk = chunk_size or chunk_size_for(cell, task, x.shape[1])
    groups, several = length_groups(task), task.lengths is not None
    drawn = task.aggregate == "per_sequence"
    if drawn:  # one (step, target) per sequence: its own drawn length
        j_te = task.drawn_lengths(n_heldout, seed, HELDOUT_STREAM)
        y_te = y_te.reshape(len(steps), n_heldout, O)[j_te, np.arange(n_heldout)]
        if fit:
            j_tr = task.drawn_lengths(n_sequences, seed, TRAIN_STREAM)
            y_tr = y_tr.reshape(len(steps), n_train, O)[j_tr, np.arange(n_train)]
    columns = {k: [] for k in _schema(fit, cell.n_readout, several).names}
    bar = _progress(P, progress)

    def apply(states, ro):
        return readout_mod.apply(states, ro, O, readout_fit)

    def apply_steps(states, lo, hi, ro):  # the states of sequences lo..hi-1 where they are (no copy)
        return readout_mod.apply_steps(states, lo, hi, ro, O, readout_fit)

    for start in range(0, P, chunk):
        block = params[start:start + chunk]
        hs, _ = backend_mod.run(cell, block, x, steps)
        Pc = block.shape[0]
        finite = np.isfinite(hs).all(axis=(1, 2, 3))
        if not finite.all():  # (a copy of all states: only when some setting blew up)
            hs = np.where(finite[:, None, None, None], hs, 0.0)
        if fit and drawn:
            tr = hs[:, j_tr, np.arange(n_train)]
            ro = readout_mod.fit(tr, y_tr, ridge, readout_fit)
            tr_mse = _errors(apply(tr, ro), y_tr)[0]
        elif fit:  # once, over the states of every scored length: hs[:, :, :n_train] read in place
            ro = readout_mod.fit_steps(hs, 0, n_train, y_tr, ridge, readout_fit)
            tr_mse = aggregate_lengths(length_errors(apply_steps(hs, 0, n_train, ro), y_tr, groups, n_train)[0],
                                       task.aggregate)
        else:
            ro = block[:, cell.n_recurrent:].copy()
        if drawn:
            pred = apply(hs[:, j_te, n_train + np.arange(n_heldout)], ro)
            mse, mae = _errors(pred, y_te)
            mse_k = np.stack([_errors(pred[:, j_te == j], y_te[j_te == j])[0] if np.any(j_te == j)
                              else np.full(Pc, np.nan) for j in range(len(steps))], axis=1)
        else:
            mse_k, mae_k = length_errors(apply_steps(hs, n_train, n_train + n_heldout, ro), y_te, groups, n_heldout)
            mse, mae = aggregate_lengths(mse_k, task.aggregate), mae_k.max(axis=1)
        finite &= np.isfinite(mse) & np.isfinite(ro).all(axis=1)
        inf = np.full(Pc, np.inf)
        mse = np.where(finite, mse, inf)
        columns["setting"].append(np.arange(start, start + Pc, dtype=np.int64))
        columns["mse"].append(mse)
        columns["nmse"].append(mse / task.baseline)
        columns["max_abs_err"].append(np.where(finite, mae, inf))
        if fit:
            tr_mse = np.where(finite, tr_mse, inf)
            columns["train_mse"].append(tr_mse)
            columns["train_nmse"].append(tr_mse / task.baseline)
        if several:
            columns["nmse_by_length"].append(np.where(finite[:, None], mse_k, np.inf) / task.baseline)
        columns["finite"].append(finite)
        columns["readout"].append(ro.astype(np.float32))
        bar.update(Pc)
    bar.close()
    schema = _schema(fit, cell.n_readout, several)
    arrays = []
    for f in schema:
        data = np.concatenate(columns[f.name]) if P else np.empty(0)
        if f.name == "readout":
            flat = pa.array(data.reshape(-1) if P else np.empty(0, np.float32), pa.float32())
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, cell.n_readout))
        elif f.name == "nmse_by_length":
            k = len(task.lengths)
            flat = pa.array(data.reshape(-1) if P else np.empty(0), pa.float64())
            arrays.append(pa.ListArray.from_arrays(pa.array(np.arange(0, (P + 1) * k, k, dtype=np.int32)), flat))
        else:
            arrays.append(pa.array(data, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def sequence_errors(cell: Cell, params, task: Task, n_sequences: int = 256, seed: int = 0, backend: str = "cpu",
                    stream: int = HELDOUT_STREAM, chunk_size: Optional[int] = None) -> np.ndarray:
    """Per-sequence errors of each setting's own readout, (P, n_sequences) float64.

    Entry (p, b) is max over output steps s and outputs o of ``|y_hat[p, s, b, o] - y[s, b, o]|``
    on sequence b of ``stream`` (default: the held-out stream that ``evaluate`` scores), with
    ``y_hat = W_out h + b_out`` the readout stored in setting p; inf where the setting is not
    finite. ``(errors < tol).mean(axis=1)`` is the share of sequences solved within ``tol``,
    the measure of Hochreiter & Schmidhuber (1997) for the adding problem (tol = 0.04); the
    row maximum is ``evaluate``'s ``max_abs_err``.
    """
    _check_cell(cell)
    _check_task(cell, task)
    params = cell.check_params(params)
    backend_mod = get_backend(backend)
    x, y = task.sample(n_sequences, seed, stream)
    steps = task.output_steps()
    S, O, H = len(steps), cell.outputs, cell.hidden
    P = params.shape[0]
    out = np.empty((P, n_sequences))
    chunk = chunk_size or chunk_size_for(cell, task, n_sequences)
    for start in range(0, P, chunk):
        block = params[start:start + chunk]
        hs, _ = backend_mod.run(cell, block, x, steps)
        Pc = block.shape[0]
        pred = readout_mod.apply(hs.reshape(Pc, -1, H), block[:, cell.n_recurrent:], O)
        with np.errstate(over="ignore", invalid="ignore"):
            err = np.abs(pred.reshape(Pc, S, n_sequences, O) - y[None]).max(axis=(1, 3))
        out[start:start + Pc] = np.where(np.isfinite(err), err, np.inf)
    return out


def _progress(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="settings", unit_scale=True, disable=not enabled, leave=False)


def solutions(table: pa.Table, params: np.ndarray, cell: Cell) -> np.ndarray:
    """Full settings (P, D) with each row's readout (fitted or given) in the readout tail."""
    ro = table.column("readout").combine_chunks().flatten().to_numpy().reshape(-1, cell.n_readout)
    if ro.shape[0] != params.shape[0]:
        raise LstmsearchError(f"table has {ro.shape[0]} rows but params has {params.shape[0]}")
    return cell.with_readout(params, ro)
