r"""Closed-form linear readout (the reservoir-computing trick).

For one setting with states :math:`\Phi` (N samples x H, plus a column of ones for the
bias) and targets :math:`Y` (N x O), the readout solves ridge regression

.. math::  \hat W = \arg\min_W \|\Phi W - Y\|^2 + \lambda \|W_{1:H}\|^2
           = (\Phi^\top \Phi + \lambda D)^{-1} \Phi^\top Y,

with :math:`D = \mathrm{diag}(v_1, \dots, v_H, 0)`: each unit's penalty is scaled by
its variance :math:`v_j` over the N samples (ridge on standardised units, so the fit does
not depend on a unit's scale: a memory unit holding 0.01 x_1 is read as well as one
holding x_1), the bias is not penalised, and :math:`\lambda = \text{ridge} \cdot N`. A
floor of 1e-12 (1 + sum phi_j^2) keeps constant units (variance 0) solvable. This removes the
O*(H+1) readout parameters from the search: only the recurrent weights are searched, and each
setting gets its best readout.

Bit for bit on any machine (``method="fixed-order"``, the default): the normal equations are
accumulated in float64 by a Numba kernel (:mod:`lstmsearch.kernels.fixed_order`) in one fixed
order -- for each entry, the sum over samples n = 0, 1, ..., N-1, each product rounded, then
added (no fused multiply-add, no reassociation) -- and solved by a Cholesky factorisation :math:`A = L L^\top` and two
triangular solves written out in the same way (Golub & Van Loan, *Matrix Computations*, 4th ed.,
Alg. 4.2.2); a matrix that is not numerically positive definite is solved by Gaussian elimination
with partial pivoting instead (Alg. 3.4.1), and a singular one gives a non-finite readout. IEEE
754 float64 with round-to-nearest then gives the same bits whatever the CPU, its vector width, the
BLAS library, its kernel (``OPENBLAS_CORETYPE``) or the number of threads. :func:`apply` sums
``b + sum_h W[o, h] h_h`` in the same fixed way.

``method="blas"`` is the fit of releases up to 0.1.0 (NumPy's batched matmul and LAPACK's
``gesv``): its last bits depend on the BLAS kernel the CPU selects. Studies whose manifest records
no ``readout_fit`` were fitted that way and are re-fitted that way, so that their rows reproduce
as identical on a machine like the one that ran them.
"""

from __future__ import annotations

import numpy as np

#: The readout fit of this release: fixed summation order, bit-identical on every machine.
FIXED_ORDER = "fixed-order"
#: The fit of releases up to 0.1.0 (BLAS/LAPACK; its last bits depend on the CPU's BLAS kernel).
BLAS = "blas"
FIT_METHODS = (FIXED_ORDER, BLAS)

def design(states: np.ndarray) -> np.ndarray:
    """(P, N, H) states -> (P, N, H+1) float64 design matrix with a trailing ones column."""
    P, N, H = states.shape
    phi = np.empty((P, N, H + 1))
    phi[..., :H] = states
    phi[..., H] = 1.0
    return phi


def _as_readout(w: np.ndarray, H: int) -> np.ndarray:
    """(P, H+1, O) solutions -> (P, O*H + O) float32: weight_out (O, H) row-major, then bias_out."""
    P = w.shape[0]
    weight_out = np.swapaxes(w[:, :H, :], 1, 2).reshape(P, -1)
    return np.concatenate([weight_out, w[:, H, :]], axis=1).astype(np.float32)


def fit(states: np.ndarray, targets: np.ndarray, ridge: float = 1e-6, method: str = FIXED_ORDER) -> np.ndarray:
    """Fit readouts for a population.

    Parameters
    ----------
    states : (P, N, H) hidden states, all finite
    targets : (N, O) targets shared by the population
    ridge : relative ridge on standardised units (see module doc)
    method : ``"fixed-order"`` (bit-identical on every machine) or ``"blas"`` (releases <= 0.1.0)

    Returns
    -------
    (P, O*H + O) float32: ``weight_out`` (O, H) row-major then ``bias_out`` (O), the
    layout of the readout tail of a setting.
    """
    if method == BLAS:
        return _fit_blas(states, targets, ridge)
    check_method(method)
    states = np.asarray(states)
    return fit_steps(states[:, None], 0, states.shape[1], targets, ridge, method)


def fit_steps(states: np.ndarray, lo: int, hi: int, targets: np.ndarray, ridge: float = 1e-6,
              method: str = FIXED_ORDER) -> np.ndarray:
    """:func:`fit` on the samples ``states[:, :, lo:hi]`` of step-major states (P, S, B, H) (what a
    backend's ``run`` returns), numbered step-major as ``states[:, :, lo:hi].reshape(P, -1, H)``
    numbers them, ``targets`` (S (hi - lo), O) in that order: the same readouts bit for bit. The
    fixed-order fit reads the states where they are (any strides, float32 or float64), on the
    worker threads; no copy of them is made."""
    P, S, B, H = states.shape
    if method == BLAS:
        return _fit_blas(states[:, :, lo:hi].reshape(P, -1, H), targets, ridge)
    check_method(method)
    N = S * (hi - lo)
    y = np.ascontiguousarray(targets, np.float64).reshape(N, -1)
    O = y.shape[1]
    gram = np.empty((P, H + 1, H + 1))
    rhs = np.empty((P, H + 1, O))
    w = np.empty((P, H + 1, O))
    if P:
        from .kernels.cpu import over_population
        from .kernels.fixed_order import accumulate_steps, solve

        st = _readable(states)

        def sums(a, b):  # each setting's sums alone, in their fixed order: the threads change nothing but the time
            accumulate_steps(st[a:b], lo, hi, y, gram[a:b], rhs[a:b])
            solve(gram[a:b], rhs[a:b], float(ridge), float(N), w[a:b])

        over_population(sums, P, lambda a, b: (a, b), work=P * N * (H + 1) ** 2)
    return _as_readout(w, H)


def check_method(method: str) -> None:
    """Refuse a readout fit that is not one of :data:`FIT_METHODS`."""
    if method not in FIT_METHODS:
        raise ValueError(f"unknown readout fit {method!r}; expected one of {', '.join(FIT_METHODS)}")


def _readable(states: np.ndarray) -> np.ndarray:
    """``states`` as the fixed-order kernels read them: float32 or float64 as they are (converted to
    float64 exactly as each value is read), any other dtype converted to float64 first."""
    return states if states.dtype in (np.float32, np.float64) else states.astype(np.float64)


def _fit_blas(states: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    """The fit of releases <= 0.1.0: batched BLAS normal equations, LAPACK solve (lstsq if singular)."""
    P, N, H = states.shape
    phi = design(states)
    phi_t = np.swapaxes(phi, 1, 2)
    gram = phi_t @ phi
    diag = np.einsum("pii->pi", gram)
    mean = phi.mean(axis=1)
    reg = ridge * (diag - N * mean * mean) + 1e-12 * (1.0 + diag)
    reg[:, H] = 0.0
    idx = np.arange(H + 1)
    gram[:, idx, idx] += reg
    rhs = phi_t @ np.asarray(targets, np.float64)
    try:
        w = np.linalg.solve(gram, rhs)  # (P, H+1, O)
    except np.linalg.LinAlgError:
        w = np.stack([np.linalg.lstsq(g, r, rcond=None)[0] for g, r in zip(gram, rhs)])
    return _as_readout(w, H)


def apply(states: np.ndarray, readout: np.ndarray, outputs: int, method: str = FIXED_ORDER) -> np.ndarray:
    """Outputs (P, N, O) of readouts (P, O*H+O) on states (P, N, H), in float64: summed in a fixed
    order (the same bits on every machine), or with ``method="blas"`` by NumPy's batched matmul
    (releases <= 0.1.0)."""
    states = np.asarray(states)
    if method == BLAS:
        P, N, H = states.shape
        W, b = _weights(readout, outputs, H)
        return states.astype(np.float64) @ np.swapaxes(W, 1, 2) + b[:, None, :]
    return apply_steps(states[:, None], 0, states.shape[1], readout, outputs, method)


def apply_steps(states: np.ndarray, lo: int, hi: int, readout: np.ndarray, outputs: int,
                method: str = FIXED_ORDER) -> np.ndarray:
    """:func:`apply` on the samples ``states[:, :, lo:hi]`` of step-major states (P, S, B, H), in the
    order of ``states[:, :, lo:hi].reshape(P, -1, H)``: outputs (P, S (hi - lo), O), the same bits.
    The fixed-order sums read the states where they are, on the worker threads."""
    P, S, B, H = states.shape
    if method == BLAS:
        return apply(states[:, :, lo:hi].reshape(P, -1, H), readout, outputs, method)
    W, b = _weights(readout, outputs, H)
    N = S * (hi - lo)
    out = np.empty((P, N, outputs))
    if P and N:
        from .kernels.cpu import over_population
        from .kernels.fixed_order import apply_steps as sums

        st = _readable(states)
        over_population(sums, P, lambda a, c: (st[a:c], lo, hi, W[a:c], b[a:c], out[a:c]), work=P * N * outputs * H)
    return out


def _weights(readout: np.ndarray, outputs: int, H: int):
    """(W (P, O, H), b (P, O)) float64 of readouts (P, O*H+O)."""
    P = readout.shape[0]
    W = np.ascontiguousarray(readout[:, : outputs * H].reshape(P, outputs, H), np.float64)
    b = np.ascontiguousarray(readout[:, outputs * H:], np.float64)
    return W, b
