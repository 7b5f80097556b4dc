"""The Numba CPU backend: float32, ``njit(parallel=True)`` over the population.

Same equations as :mod:`lstmsearch.cells` / :mod:`lstmsearch.kernels.reference`. Inside a
setting the state is kept as (H, B), sequences innermost and contiguous, so that the
recurrent product ``W_hh h`` is a sum of rows scaled by weights, vectorised across the
B sequences.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

name = "cpu"

F32_ONE = np.float32(1.0)
F32_ZERO = np.float32(0.0)


@njit(inline="always", cache=True)
def _sigmoid(a):
    # 1 / (1 + exp(-a)); exp overflows to inf for a < -88, giving exactly 0: no NaN.
    return F32_ONE / (F32_ONE + math.exp(-a))


@njit(cache=True)
def _affine_rows(pre, W, b, v, r0, r1):
    """pre[j, :] = b[j] + sum_k W[j, k] v[k, :] for rows j in [r0, r1)."""
    K = W.shape[1]
    B = v.shape[1]
    for j in range(r0, r1):
        bj = b[j]
        for s in range(B):
            pre[j, s] = bj
        for k in range(K):
            w = W[j, k]
            for s in range(B):
                pre[j, s] += w * v[k, s]


@njit(cache=True)
def _simulate_one(kind, H, I, w, xT, steps, h, c, out_h, out_c, pre_i, pre_h):
    """Run one setting over all T steps; writes states at ``steps`` into out_h/out_c."""
    G = 1 if kind <= 1 else (4 if kind == 2 else 3)
    GH = G * H
    T = xT.shape[0]
    B = xT.shape[2]
    o1 = GH * I
    o2 = o1 + GH * H
    o3 = o2 + GH
    o4 = o3 + GH
    Wih = w[0:o1].reshape((GH, I))
    Whh = w[o1:o2].reshape((GH, H))
    bih = w[o2:o3]
    bhh = w[o3:o4]
    S = steps.shape[0]
    si = 0
    for t in range(T):
        _affine_rows(pre_i, Wih, bih, xT[t], 0, GH)
        _affine_rows(pre_h, Whh, bhh, h, 0, GH)
        if kind == 0:  # rnn_tanh
            for j in range(H):
                for s in range(B):
                    h[j, s] = math.tanh(pre_i[j, s] + pre_h[j, s])
        elif kind == 1:  # rnn_relu
            for j in range(H):
                for s in range(B):
                    h[j, s] = max(pre_i[j, s] + pre_h[j, s], F32_ZERO)
        elif kind == 2:  # lstm: gates i, f, g, o
            for j in range(H):
                for s in range(B):
                    ig = _sigmoid(pre_i[j, s] + pre_h[j, s])
                    fg = _sigmoid(pre_i[H + j, s] + pre_h[H + j, s])
                    gg = math.tanh(pre_i[2 * H + j, s] + pre_h[2 * H + j, s])
                    og = _sigmoid(pre_i[3 * H + j, s] + pre_h[3 * H + j, s])
                    cn = fg * c[j, s] + ig * gg
                    c[j, s] = cn
                    h[j, s] = og * math.tanh(cn)
        else:  # gru: gates r, z, n
            for j in range(H):
                for s in range(B):
                    r = _sigmoid(pre_i[j, s] + pre_h[j, s])
                    z = _sigmoid(pre_i[H + j, s] + pre_h[H + j, s])
                    n = math.tanh(pre_i[2 * H + j, s] + r * pre_h[2 * H + j, s])
                    h[j, s] = (F32_ONE - z) * n + z * h[j, s]
        while si < S and steps[si] == t:
            out_h[si] = h
            if kind == 2:
                out_c[si] = c
            si += 1


@njit(parallel=True, cache=True)
def _simulate_population(kind, H, I, params, xT, steps, h0, c0, out_h, out_c):
    P = params.shape[0]
    B = xT.shape[2]
    G = 1 if kind <= 1 else (4 if kind == 2 else 3)
    for p in prange(P):
        h = h0[p % h0.shape[0]].copy()  # shared (1, H, B) or per setting
        c = c0[p % c0.shape[0]].copy()
        pre_i = np.empty((G * H, B), np.float32)
        pre_h = np.empty((G * H, B), np.float32)
        _simulate_one(kind, H, I, params[p], xT, steps, h, c, out_h[p], out_c[p % out_c.shape[0]],
                      pre_i, pre_h)


def _state_hb(state, P, B, H):
    """(P, B, H) or None -> contiguous float32 (P or 1, H, B)."""
    if state is None:
        return np.zeros((1, H, B), np.float32)
    return np.ascontiguousarray(np.asarray(state, np.float32).transpose(0, 2, 1))


def run(cell, params, x, steps, h0=None, c0=None):
    """Simulate ``cell``; see :func:`lstmsearch.kernels.reference.run` for the contract.

    Returns float32 arrays hs, cs of shape (P, S, B, H) (cs None unless LSTM).
    """
    params = np.ascontiguousarray(params, dtype=np.float32)
    P = params.shape[0]
    T, B, I = x.shape
    H = cell.hidden
    steps = np.ascontiguousarray(steps, dtype=np.int64)
    S = steps.shape[0]
    xT = np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 2, 1))
    out_h = np.empty((P, S, H, B), np.float32)
    lstm = cell.kind == "lstm"
    out_c = np.empty((P, S, H, B) if lstm else (1, S, H, B), np.float32)
    _simulate_population(cell.code, H, I, params, xT, steps, _state_hb(h0, P, B, H),
                         _state_hb(c0, P, B, H), out_h, out_c)
    hs = out_h.transpose(0, 1, 3, 2)
    return hs, (out_c.transpose(0, 1, 3, 2) if lstm else None)
