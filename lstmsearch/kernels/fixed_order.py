"""float64 sums in one fixed order (Numba), bit for bit the same on every x86-64 machine whatever
its BLAS: the readout's normal equations, their solution and its outputs (see
:mod:`lstmsearch.readout`), and the product of a random-subspace search space
(:class:`lstmsearch.search.spaces.RandomSubspace`).

No fused multiply-add and no reassociation (Numba compiles without ``fastmath``): each product is
rounded, then added, in the order the loops state. LLVM may still vectorise the loops over j
(independent entries), which leaves every entry's sequence of roundings as written.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FLAGS = dict(nogil=True, cache=True, error_model="numpy", boundscheck=False)


def accumulate(states, targets, gram, rhs):
    """gram[p] (upper triangle) = Phi^T Phi and rhs[p] = Phi^T Y, Phi = [states[p] | 1], each entry
    summed over n = 0..N-1 in order (four samples a pass: ((g + a0 b0) + a1 b1) + ..., the same
    additions as one sample a pass): :func:`accumulate_steps` on states (P, N, H) read as one step."""
    P, N, H = states.shape
    accumulate_steps(states.reshape(P, 1, N, H), 0, N, targets, gram, rhs)


@njit(**_FLAGS)
def accumulate_steps(states, lo, hi, targets, gram, rhs):  # pragma: no cover - compiled
    """The normal equations of :func:`accumulate` on the samples of step-major states (P, S, B, H) -- any float dtype, any
    strides (a transposed view of the kernels' output) -- sequences ``lo <= b < hi``: sample
    n = s (hi - lo) + (b - lo), as ``states[:, :, lo:hi].reshape(P, -1, H)`` numbers them, each value
    converted to float64 as it is read (exact from float32). The same sums bit for bit, without the
    float64 copy of the design."""
    P, S, _, H = states.shape
    nb = hi - lo
    N = S * nb
    H1 = H + 1
    O = targets.shape[1]
    r = np.empty((4, H1))
    t = np.empty((4, O))
    for p in range(P):
        G = gram[p]
        R = rhs[p]
        G[:, :] = 0.0
        R[:, :] = 0.0
        n = 0
        st = 0  # sample n is sequence b of step st (counted along, no division)
        b = lo
        while n < N:
            m = min(4, N - n)
            for q in range(m):
                for j in range(H):
                    r[q, j] = states[p, st, b, j]
                r[q, H] = 1.0
                for o in range(O):
                    t[q, o] = targets[n + q, o]
                b += 1
                if b == hi:
                    b = lo
                    st += 1
            if m == 4:  # the additions of accumulate, in its order
                for i in range(H1):
                    a0, a1, a2, a3 = r[0, i], r[1, i], r[2, i], r[3, i]
                    for j in range(i, H1):
                        G[i, j] = (((G[i, j] + a0 * r[0, j]) + a1 * r[1, j]) + a2 * r[2, j]) + a3 * r[3, j]
                    for o in range(O):
                        R[i, o] = (((R[i, o] + a0 * t[0, o]) + a1 * t[1, o]) + a2 * t[2, o]) + a3 * t[3, o]
            else:
                for q in range(m):
                    for i in range(H1):
                        a = r[q, i]
                        for j in range(i, H1):
                            G[i, j] = G[i, j] + a * r[q, j]
                        for o in range(O):
                            R[i, o] = R[i, o] + a * t[q, o]
            n += m


@njit(**_FLAGS)
def solve(gram, rhs, ridge, N, out):  # pragma: no cover - compiled
    """out[p] = (gram[p] + reg) \\ rhs[p] for the upper-triangular gram[p] of :func:`accumulate`,
    reg_j = ridge (sum phi_j^2 - N mean_j^2) + 1e-12 (1 + sum phi_j^2) for the units, 0 for the bias
    (mean_j = gram[p, j, H] / N). Cholesky; Gaussian elimination with partial pivoting where a
    pivot is not positive; NaN where that is singular too."""
    P, H1, _ = gram.shape
    H = H1 - 1
    O = rhs.shape[2]
    A = np.empty((H1, H1))
    L = np.empty((H1, H1))
    for p in range(P):
        for i in range(H1):
            for j in range(i, H1):
                A[i, j] = gram[p, i, j]
                A[j, i] = gram[p, i, j]
        for j in range(H):
            d = A[j, j]
            mean = A[j, H] / N
            A[j, j] = d + (ridge * (d - N * mean * mean) + 1e-12 * (1.0 + d))
        ok = True
        for j in range(H1):  # Cholesky, A = L L^T (row-oriented, k summed in order)
            s = A[j, j]
            for k in range(j):
                s = s - L[j, k] * L[j, k]
            if not s > 0.0:
                ok = False
                break
            L[j, j] = np.sqrt(s)
            for i in range(j + 1, H1):
                s = A[i, j]
                for k in range(j):
                    s = s - L[i, k] * L[j, k]
                L[i, j] = s / L[j, j]
        if ok:
            for o in range(O):
                for i in range(H1):  # L z = b
                    s = rhs[p, i, o]
                    for k in range(i):
                        s = s - L[i, k] * out[p, k, o]
                    out[p, i, o] = s / L[i, i]
                for i in range(H1 - 1, -1, -1):  # L^T w = z
                    s = out[p, i, o]
                    for k in range(i + 1, H1):
                        s = s - L[k, i] * out[p, k, o]
                    out[p, i, o] = s / L[i, i]
            continue
        # Gaussian elimination with partial pivoting on [A | b] (L holds A, out[p] holds b)
        for i in range(H1):
            for j in range(H1):
                L[i, j] = A[i, j]
            for o in range(O):
                out[p, i, o] = rhs[p, i, o]
        for k in range(H1):
            piv = k
            for i in range(k + 1, H1):
                if abs(L[i, k]) > abs(L[piv, k]):
                    piv = i
            if not L[piv, k] != 0.0:  # singular (or NaN): no readout
                for i in range(H1):
                    for o in range(O):
                        out[p, i, o] = np.nan
                break
            if piv != k:
                for j in range(H1):
                    L[k, j], L[piv, j] = L[piv, j], L[k, j]
                for o in range(O):
                    out[p, k, o], out[p, piv, o] = out[p, piv, o], out[p, k, o]
            for i in range(k + 1, H1):
                f = L[i, k] / L[k, k]
                for j in range(k + 1, H1):
                    L[i, j] = L[i, j] - f * L[k, j]
                for o in range(O):
                    out[p, i, o] = out[p, i, o] - f * out[p, k, o]
        else:
            for o in range(O):
                for i in range(H1 - 1, -1, -1):
                    s = out[p, i, o]
                    for k in range(i + 1, H1):
                        s = s - L[i, k] * out[p, k, o]
                    out[p, i, o] = s / L[i, i]


@njit(**_FLAGS)
def apply_steps(states, lo, hi, W, b, out):  # pragma: no cover - compiled
    """out[p, n, o] = (sum_h states[p, st, b, h] W[p, o, h], h in order) + b[p, o] on the samples of
    step-major states (P, S, B, H), any float dtype and strides, sequences ``lo <= b < hi`` (sample n = s (hi - lo) + (b - lo)), each value converted to
    float64 as it is read: the same bits as on the float64 copy ``states[:, :, lo:hi].reshape(P, -1, H)``."""
    P, S, _, H = states.shape
    nb = hi - lo
    O = W.shape[1]
    for p in range(P):
        for st in range(S):
            for bb in range(nb):
                n = st * nb + bb
                for o in range(O):
                    s = 0.0
                    for h in range(H):
                        s = s + np.float64(states[p, st, lo + bb, h]) * W[p, o, h]
                    out[p, n, o] = s + b[p, o]




@njit(**_FLAGS)
def matmul(X, BT, out):  # pragma: no cover - compiled
    """out[m, n] = sum_k X[m, k] BT[k, n], k in order from 0.0 (vectorised across n, which keeps every
    entry's additions as written)."""
    M, K = X.shape
    N = BT.shape[1]
    for m in range(M):
        for n in range(N):
            out[m, n] = 0.0
        for k in range(K):
            a = X[m, k]
            for n in range(N):
                out[m, n] = out[m, n] + a * BT[k, n]
