"""The NumPy reference backend: float64, written for clarity, the oracle of the tests.

It computes exactly the equations in :mod:`lstmsearch.cells` (PyTorch's), vectorised over
the population P and the sequences B, one time step at a time.
"""

from __future__ import annotations

import numpy as np

name = "reference"


def sigmoid(a):
    """Stable logistic function: exp is only taken of non-positive numbers."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _affine(W, b, v):
    """W (P, R, K) applied to v (P or 1, B, K), plus b (P, R): (P, B, R)."""
    return np.einsum("prk,pbk->pbr", W, np.broadcast_to(v, (W.shape[0],) + v.shape[1:])) + b[:, None, :]


def step(cell, p, x_t, h, c):
    """One step of ``cell`` for all settings: x_t (B, I), h and c (P, B, H) -> (h', c')."""
    H = cell.hidden
    gi = _affine(p["weight_ih_l0"], p["bias_ih_l0"], x_t[None])
    gh = _affine(p["weight_hh_l0"], p["bias_hh_l0"], h)
    if cell.kind == "rnn_tanh":
        return np.tanh(gi + gh), c
    if cell.kind == "rnn_relu":
        return np.maximum(gi + gh, 0.0), c
    if cell.kind == "lstm":
        a = gi + gh
        i = sigmoid(a[..., 0:H])
        f = sigmoid(a[..., H:2 * H])
        g = np.tanh(a[..., 2 * H:3 * H])
        o = sigmoid(a[..., 3 * H:4 * H])
        c = f * c + i * g
        return o * np.tanh(c), c
    # gru
    r = sigmoid(gi[..., 0:H] + gh[..., 0:H])
    z = sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
    n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
    return (1.0 - z) * n + z * h, c


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
    hs, cs : (P, S, B, H) float64 arrays (cs is None unless the cell is an LSTM)
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
    cs = np.empty((P, len(steps), B, H)) if cell.kind == "lstm" else None
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
