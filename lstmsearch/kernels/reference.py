"""The NumPy reference backend: float64, written for clarity, the oracle of the tests.

It evaluates each cell kind's equations as its module in :mod:`lstmsearch.kinds` writes them
(for PyTorch's cells: PyTorch's), vectorised over the population P and the sequences B, one
time step at a time.
"""

from __future__ import annotations

import numpy as np

name = "reference"


def sigmoid(a):
    """Stable logistic function: exp is only taken of non-positive numbers."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


#: The operations of a cell's equations in float64 NumPy (see :mod:`lstmsearch.kinds.graph`).
TABLE = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "neg": np.negative,
    "sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0),
    "lerp": lambda z, a, b: (1.0 - z) * a + z * b,
}


def affine(W, b, v):
    """W (P, R, K) applied to v (P or 1, B, K), plus b (P, R): (P, B, R)."""
    return np.einsum("prk,pbk->pbr", W, np.broadcast_to(v, (W.shape[0],) + v.shape[1:])) + b[:, None, :]


def terms(cell, p, x_t, h):
    """The per-gate input and recurrent terms of one step: ``x.g = W_ih x_t + b_ih`` and
    ``hh.g = W_hh h + b_hh`` (``u * h + b_hh`` element-wise; none without a recurrence),
    dicts gate -> (P, B, H)."""
    H, spec = cell.hidden, cell.spec
    gi = affine(p["weight_ih_l0"], p["bias_ih_l0"], x_t[None])
    if spec.recurrence == "dense":
        gh = affine(p["weight_hh_l0"], p["bias_hh_l0"], h)
    elif spec.recurrence == "diagonal":
        gh = p["weight_hh_l0"][:, None, :] * np.tile(h, (1, 1, spec.n_gates)) + p["bias_hh_l0"][:, None, :]
    else:
        gh = None
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(spec.gates)}
    return ({g: gi[..., r] for g, r in rows.items()},
            None if gh is None else {g: gh[..., r] for g, r in rows.items()})


def evaluate(cell, p, x_t, h, c, names=None):
    """The values ``names`` (default: every value the kind's update returns) after one step."""
    xi, hh = terms(cell, p, x_t, h)

    def leaf(n):
        if n.op == "x":
            return xi[n.key]
        if n.op == "hh":
            return hh[n.key]
        if n.op == "const":
            return n.key
        return h if n.op == "h" else c

    return cell.spec.graph.evaluate(TABLE, leaf, names)


def step(cell, p, x_t, h, c):
    """One step of ``cell`` for all settings: x_t (B, I), h and c (P, B, H) -> (h', c')."""
    out = evaluate(cell, p, x_t, h, c, cell.spec.states)
    return out["h"], out.get("c", c)


def run(cell, params, x, steps, h0=None, c0=None):
    """Simulate ``cell`` and return the states at ``steps``.

    Parameters
    ----------
    params : (P, D) array, computed in float64
    x : (T, B, I) array
    steps : (S,) increasing time indices to record
    h0, c0 : (P, B, H) initial states or None (zeros)

    Returns
    -------
    hs, cs : (P, S, B, H) float64 arrays (cs is None unless the cell has a memory c)
    """
    params = np.asarray(params, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    P, (T, B, _) = params.shape[0], x.shape
    H = cell.hidden
    p = cell.unflatten(params)
    h = np.zeros((P, B, H)) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros((P, B, H)) if c0 is None else np.array(c0, dtype=np.float64)
    steps = list(np.asarray(steps))
    hs = np.empty((P, len(steps), B, H))
    cs = np.empty((P, len(steps), B, H)) if cell.memory else None
    with np.errstate(over="ignore", invalid="ignore"):
        s = 0
        for t in range(T):
            h, c = step(cell, p, x[t], h, c)
            while s < len(steps) and steps[s] == t:
                hs[:, s] = h
                if cs is not None:
                    cs[:, s] = c
                s += 1
    return hs, cs
