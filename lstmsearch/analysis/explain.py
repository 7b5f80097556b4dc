r"""Explain a setting: gate traces, unit roles, unit ablation and magnitude pruning.

Traces
    :func:`traces` re-runs one setting in float64 with the reference backend's own
    functions (:func:`lstmsearch.kernels.reference.sigmoid` and its affine map) and keeps
    every gate at every step: ``i, f, g, o, c, h`` for the LSTM, ``r, z, n, h`` for the
    GRU, ``h`` for the RNNs; each (T, B, H). Its ``h`` equals
    ``simulate(..., backend="reference", return_sequence=True)``.

Roles
    :func:`unit_roles` names each unit from its trace over example sequences:
    ``silent`` (``|h| < 1e-6`` throughout), ``flag`` (constant from step 1 on, across steps and
    sequences; or constant after step 1 without carrying x_1), ``relay`` (carries x_1 at step 1, constant afterwards), ``memory`` (its
    final value correlates with x_1, ``|r| >= 0.9``), ``input`` (follows x_t, ``|r| >= 0.9``),
    otherwise ``mixed`` with both correlations.

Ablation
    Unit j is *silenced* by zeroing its outgoing weights: column j of ``weight_hh_l0``
    (what every gate of every unit reads from h_j; for an element-wise recurrence, IndRNN, the
    unit's own recurrent weights; a cell without recurrence, minGRU, has none) and column j of
    ``weight_out`` (what the readout reads from it). The unit still computes, but nothing reads it. (Its
    incoming weights and biases are kept; for the LSTM, c_j is internal to unit j and is
    read only through h_j, so it is silenced with it.) :func:`ablate` reports the error of
    every singly-silenced setting, with the given readout or with a readout refitted
    without the unit.

Pruning
    :func:`prune` keeps the k largest-magnitude weights (recurrent weights and biases;
    also the readout when it is given, not refitted) and zeroes the rest. It finds the
    smallest k whose held-out NMSE stays within ``max_nmse`` by bisection on k (error is
    treated as non-increasing in k; the result is verified), then optionally *refines*:
    it tries to drop each kept weight in turn, smallest first, and drops it if the error
    stays within the tolerance. The pruned setting is finally re-scored on fresh sequences
    (another seed). The kept weights are printed with readable names, e.g.
    ``i[memory] <- h[flag]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa

from ..cells import Cell
from ..errors import require
from ..kernels import reference as ref
from ..tasks import Task
from .length import collect_states, fit_readouts, score

SILENT = 1e-6


# --------------------------------------------------------------------- traces
def traces(cell: Cell, params, x) -> Dict[str, np.ndarray]:
    """Gate activations of one setting over sequences x (T, B, I); each array (T, B, H) float64.

    Keys: the values the kind's update returns (:attr:`lstmsearch.kinds.spec.CellKind.traced`):
    LSTM ``i f g o c h``; GRU ``r z n h``; RNN ``h``; MGU ``f n h``; ... h_0 = c_0 = 0.
    """
    params = cell.check_params(np.asarray(params))
    require(params.shape[0] == 1, f"traces takes one setting, got {params.shape[0]}")
    x = np.asarray(x, dtype=np.float64)
    require(x.ndim == 3 and x.shape[2] == cell.inputs,
            f"x has shape {x.shape}; expected (T, B, {cell.inputs})")
    p = cell.unflatten(params.astype(np.float64))
    T, B, _ = x.shape
    H = cell.hidden
    names = cell.spec.traced
    out = {k: np.empty((T, B, H)) for k in names}
    h = np.zeros((1, B, H))
    c = np.zeros((1, B, H))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            values = ref.evaluate(cell, p, x[t], h, c)
            for k in names:
                out[k][t] = np.broadcast_to(values[k], (1, B, H))[0]
            h, c = values["h"], values.get("c", c)
    return out


def _corr(a, b):
    a = a - a.mean()
    b = b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def unit_roles(h: np.ndarray, x: np.ndarray) -> List[str]:
    """A role per unit from its trace h (T, B, H) on inputs x (T, B, I) (see module doc)."""
    T, B, H = h.shape
    roles = []
    for j in range(H):
        u = h[:, :, j]
        scale = float(np.max(np.abs(u))) if np.isfinite(u).all() else np.inf
        if not np.isfinite(scale):
            roles.append("diverges")
            continue
        if scale < SILENT:
            roles.append("silent")
            continue
        r1 = max(abs(_corr(u[-1], x[0, :, k])) for k in range(x.shape[2]))
        rt = max(abs(_corr(u[1:].ravel(), x[1:, :, k].ravel())) for k in range(x.shape[2])) if T > 1 else 0.0
        if T > 1 and np.std(u[1:]) <= 1e-3 * scale:
            const, first = float(np.mean(u[1:])), float(np.mean(u[0]))
            r0 = max(abs(_corr(u[0], x[0, :, k])) for k in range(x.shape[2]))
            if abs(first - const) <= 0.1 * scale:
                roles.append(f"flag: constant {const:.3g} from step 1 on")
            elif r0 >= 0.9:
                roles.append(f"relay: x_1 at step 1 (r={r0:.2f}), then constant {const:.3g}")
            else:
                roles.append(f"flag: {first:.3g} at step 1, then constant {const:.3g}")
        elif r1 >= 0.9:
            roles.append(f"memory: correlates with x_1 (r={r1:.3f})")
        elif rt >= 0.9:
            roles.append(f"input: follows x_t (r={rt:.2f})")
        else:
            roles.append(f"mixed: r(x_1)={r1:.2f}, r(x_t)={rt:.2f}")
    return roles


def role_names(roles: List[str]) -> List[str]:
    """Short unique names for units: ``flag``, ``memory``, ``memory2``, ``u5`` for mixed/silent."""
    names, seen = [], {}
    for j, r in enumerate(roles):
        base = r.split(":")[0]
        if base in ("silent", "mixed", "diverges"):
            names.append(f"u{j}")
            continue
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}{seen[base]}")
    return names


# ------------------------------------------------------------------- ablation
def silence(cell: Cell, params, unit: int) -> np.ndarray:
    """A copy of one setting (D,) with unit ``unit``'s outgoing weights zeroed (see module doc)."""
    p = np.array(cell.check_params(np.asarray(params))[0], copy=True)
    blocks = cell.unflatten(p)  # views into p
    recurrence = cell.spec.recurrence
    if recurrence == "dense":
        blocks["weight_hh_l0"][:, unit] = 0.0
    elif recurrence == "diagonal":  # (G H,): row g H + unit is gate g's weight on the unit's own h
        blocks["weight_hh_l0"][unit::cell.hidden] = 0.0
    blocks["weight_out"][:, unit] = 0.0
    return p


def _errors_of(cell, population, task, n_sequences, seed, backend, readout, state_mask=None, ridge=1e-6):
    """Held-out mse (P,) of a population; state_mask (P, H) zeroes state columns before scoring."""
    h_te, y_te = collect_states(cell, population, task, n_sequences, seed, False, backend)
    if state_mask is not None:
        h_te = h_te * state_mask[:, None, :]
    if readout == "given":
        ro = population[:, cell.n_recurrent:]
    else:
        h_tr, y_tr = collect_states(cell, population, task, n_sequences, seed, True, backend)
        if state_mask is not None:
            h_tr = h_tr * state_mask[:, None, :]
        ro = fit_readouts(cell, h_tr, y_tr, ridge)
    mse, _, _ = score(cell, h_te, y_te, ro, task)
    return mse


def ablate(cell: Cell, params, task: Task, n_sequences: int = 256, seed: int = 0,
           backend: str = "cpu", readout: str = "given") -> pa.Table:
    """Error of the setting with each unit silenced in turn.

    Returns a table with columns unit (-1 = nothing silenced), mse, nmse, delta_nmse
    (increase over the intact setting), readout.
    """
    require(readout in ("given", "fit"), f"readout must be 'given' or 'fit', got {readout!r}")
    p = cell.check_params(np.asarray(params))
    require(p.shape[0] == 1, "ablate takes one setting")
    H = cell.hidden
    pop = np.stack([p[0]] + [silence(cell, p, j) for j in range(H)])
    mask = np.ones((H + 1, H))
    mask[np.arange(1, H + 1), np.arange(H)] = 0.0
    mse = _errors_of(cell, pop, task, n_sequences, seed, backend, readout, mask)
    nmse = mse / task.baseline
    return pa.table({
        "unit": pa.array(np.arange(-1, H), pa.int64()),
        "mse": pa.array(mse, pa.float64()),
        "nmse": pa.array(nmse, pa.float64()),
        "delta_nmse": pa.array(nmse - nmse[0], pa.float64()),
        "readout": pa.array([readout] * (H + 1), pa.string()),
    })


# -------------------------------------------------------------------- pruning
def weight_name(cell: Cell, index: int, names: Optional[List[str]] = None) -> str:
    """A readable name for flat index ``index``: e.g. ``i[memory] <- h[flag]``, ``bias f[flag]``."""
    H = cell.hidden
    names = names or [f"u{j}" for j in range(H)]
    gates = cell.gate_names
    for b in cell.blocks:
        if b.start <= index < b.start + b.size:
            k = index - b.start
            if b.name == "weight_hh_l0" and len(b.shape) == 1:  # element-wise: a unit's own h
                return f"{gates[k // H]}[{names[k % H]}] <- h[{names[k % H]}]"
            if b.name in ("weight_ih_l0", "weight_hh_l0"):
                row, col = divmod(k, b.shape[1])
                src = f"x[{col}]" if b.name == "weight_ih_l0" else f"h[{names[col]}]"
                return f"{gates[row // H]}[{names[row % H]}] <- {src}"
            if b.name in ("bias_ih_l0", "bias_hh_l0"):
                which = "bias_ih" if b.name == "bias_ih_l0" else "bias_hh"
                return f"{which} {gates[k // H]}[{names[k % H]}]"
            if b.name == "weight_out":
                row, col = divmod(k, H)
                return f"y[{row}] <- h[{names[col]}]"
            return f"bias_out y[{k}]"
    raise IndexError(index)


@dataclass
class Pruned:
    """Result of :func:`prune`: the pruned setting and which weights it keeps."""

    params: np.ndarray           # (D,) float32, pruned (readout refitted when readout="fit")
    kept: np.ndarray             # flat indices kept, by decreasing magnitude
    n_candidates: int            # nonzero weights that could be pruned
    base_nmse: float             # held-out nmse of the full setting
    nmse: float                  # held-out nmse of the pruned setting (the sequences used to prune)
    check_nmse: float            # nmse of the pruned setting on fresh sequences (seed + 1)
    max_nmse: float              # the tolerance
    readout: str
    evaluations: int = 0
    names: List[str] = field(default_factory=list)

    def table(self, cell: Cell) -> str:
        """The kept weights as a readable table."""
        lines = [f"pruned to {len(self.kept)} of {self.n_candidates} nonzero weights "
                 f"(readout {self.readout}): nmse {self.base_nmse:.3g} -> {self.nmse:.3g} "
                 f"(tolerance {self.max_nmse:.3g}; fresh sequences {self.check_nmse:.3g})",
                 f"  {'index':>6}  {'weight':<28} {'value':>12}"]
        for k in sorted(self.kept):
            lines.append(f"  {k:>6}  {weight_name(cell, int(k), self.names or None):<28} {self.params[k]:>12.6g}")
        if self.readout == "fit":
            ro = self.params[cell.n_recurrent:]
            nz = np.flatnonzero(np.abs(ro) > 1e-6 * max(np.abs(ro).max(), 1e-30))
            lines.append("  refitted readout: " + ", ".join(
                f"{weight_name(cell, cell.n_recurrent + int(k), self.names or None)} = {ro[k]:.4g}" for k in nz))
        return "\n".join(lines)


def prune(cell: Cell, params, task: Task, max_nmse: Optional[float] = None, n_sequences: int = 256,
          seed: int = 0, backend: str = "cpu", readout: str = "given", refine: bool = True,
          max_refine: Optional[int] = None, names: Optional[List[str]] = None, ridge: float = 1e-6) -> Pruned:
    """Magnitude pruning to the smallest set of weights within ``max_nmse`` (see module doc).

    ``max_nmse`` defaults to max(2 * base, base + 1e-6) where base is the nmse of the full
    setting on the same held-out sequences.
    """
    require(readout in ("given", "fit"), f"readout must be 'given' or 'fit', got {readout!r}")
    p0 = cell.check_params(np.asarray(params))
    require(p0.shape[0] == 1, "prune takes one setting")
    p0 = p0[0]
    limit = cell.n_params if readout == "given" else cell.n_recurrent
    cand = np.flatnonzero(p0[:limit] != 0)
    order = cand[np.argsort(-np.abs(p0[cand]), kind="stable")]  # largest first
    evals = 0

    def with_kept(kept):
        q = np.zeros_like(p0)
        q[limit:] = p0[limit:]
        q[kept] = p0[kept]
        return q

    def nmse_of(pop, s=seed):
        nonlocal evals
        evals += pop.shape[0]
        return _errors_of(cell, pop, task, n_sequences, s, backend, readout, ridge=ridge) / task.baseline

    base = float(nmse_of(p0[None])[0])
    require(np.isfinite(base), "the setting to prune is not finite on the task")
    tol = max(2 * base, base + 1e-6) if max_nmse is None else float(max_nmse)
    require(base <= tol, f"the full setting has nmse {base:.3g}, above the tolerance {tol:.3g}")
    lo, hi = 0, len(order)  # invariant: hi passes; lo is the largest count known to fail (or 0)
    if nmse_of(with_kept(order[:0])[None])[0] <= tol:
        hi = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if nmse_of(with_kept(order[:mid])[None])[0] <= tol:
            hi = mid
        else:
            lo = mid
    kept = list(order[:hi])
    if refine:
        for idx in list(reversed(kept))[:max_refine or len(kept)]:  # smallest magnitude first
            trial = [k for k in kept if k != idx]
            if nmse_of(with_kept(np.array(trial, np.int64))[None])[0] <= tol:
                kept = trial
    kept = np.array(kept, np.int64)
    q = with_kept(kept)
    if readout == "fit":
        h_tr, y_tr = collect_states(cell, q[None], task, n_sequences, seed, True, backend)
        q[cell.n_recurrent:] = fit_readouts(cell, h_tr, y_tr, ridge)[0]
        final = float(nmse_of(q[None])[0])  # refit again inside: the same readout
    else:
        final = float(nmse_of(q[None])[0])
    check = float(nmse_of(q[None], s=seed + 1)[0])
    return Pruned(q.astype(np.float32), kept, len(cand), base, final, check, tol, readout, evals,
                  list(names) if names else [])


# -------------------------------------------------------------------- explain
@dataclass
class Explanation:
    """Everything :func:`explain` finds about one setting."""

    cell: Cell
    task: Task
    roles: List[str]
    names: List[str]
    traces: Dict[str, np.ndarray]
    x: np.ndarray
    ablation: pa.Table
    pruned: Optional[Pruned]

    def format(self) -> str:
        lines = [f"{self.cell.kind} H={self.cell.hidden} on {self.task.describe()}", "", "units:"]
        ab = self.ablation.to_pydict()
        base = ab["nmse"][0]
        lines.append(f"  {'unit':<5} {'name':<9} {'nmse if silenced':>17}  role")
        for j, (role, name) in enumerate(zip(self.roles, self.names)):
            if role == "silent" and abs(ab["nmse"][j + 1] - base) <= 1e-12 + 1e-6 * abs(base):
                continue
            lines.append(f"  {j:<5} {name:<9} {ab['nmse'][j + 1]:>17.3g}  {role}")
        n_silent = sum(r == "silent" for r in self.roles)
        lines.append(f"  ({n_silent} silent unit(s) not shown; intact nmse {base:.3g}, readout {ab['readout'][0]})")
        if self.pruned is not None:
            lines += ["", self.pruned.table(self.cell)]
        return "\n".join(lines)


def explain(cell: Cell, params, task: Task, n_sequences: int = 256, seed: int = 0, backend: str = "cpu",
            readout: str = "given", n_traces: int = 64, do_prune: bool = True,
            max_nmse: Optional[float] = None, max_refine: Optional[int] = None) -> Explanation:
    """Traces (on ``n_traces`` sequences), roles, ablation and (optionally) pruning of one setting.

    ``max_refine`` bounds the one-by-one refinement of :func:`prune` (None: every kept weight).
    """
    require(isinstance(task, Task), f"task must be a lstmsearch task, got {type(task).__name__}")
    p = cell.check_params(np.asarray(params))
    x, _ = task.sample(n_traces, seed, stream=7)
    tr = traces(cell, p, x)
    roles = unit_roles(tr["h"], x)
    names = role_names(roles)
    ab = ablate(cell, p, task, n_sequences, seed, backend, readout)
    pr = prune(cell, p, task, max_nmse, n_sequences, seed, backend, readout, names=names,
               max_refine=max_refine) if do_prune else None
    return Explanation(cell, task, roles, names, tr, x, ab, pr)
