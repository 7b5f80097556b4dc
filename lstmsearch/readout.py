r"""Closed-form linear readout (the reservoir-computing trick).

For one setting with states :math:`\Phi` (N samples x H, plus a column of ones for the
bias) and targets :math:`Y` (N x O), the readout solves ridge regression

.. math::  \hat W = \arg\min_W \|\Phi W - Y\|^2 + \lambda \|W_{1:H}\|^2
           = (\Phi^\top \Phi + \lambda D)^{-1} \Phi^\top Y,

with :math:`D = \mathrm{diag}(v_1, \dots, v_H, 0)`: each unit's penalty is scaled by
its variance :math:`v_j` over the N samples (ridge on standardised units, so the fit does
not depend on a unit's scale: a memory unit holding 0.01 x_1 is read as well as one
holding x_1), the bias is not penalised, and :math:`\lambda = \text{ridge} \cdot N`. A
floor of 1e-12 (1 + sum phi_j^2) keeps constant units (variance 0) solvable. It is solved for a whole population at once in
float64 (batched normal equations). This removes the O*(H+1) readout parameters from the
search: only the recurrent weights are searched, and each setting gets its best readout.
"""

from __future__ import annotations

import numpy as np


def design(states: np.ndarray) -> np.ndarray:
    """(P, N, H) states -> (P, N, H+1) float64 design matrix with a trailing ones column."""
    P, N, H = states.shape
    phi = np.empty((P, N, H + 1))
    phi[..., :H] = states
    phi[..., H] = 1.0
    return phi


def fit(states: np.ndarray, targets: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Fit readouts for a population.

    Parameters
    ----------
    states : (P, N, H) hidden states, all finite
    targets : (N, O) targets shared by the population
    ridge : relative ridge on standardised units (see module doc)

    Returns
    -------
    (P, O*H + O) float32: ``weight_out`` (O, H) row-major then ``bias_out`` (O), the
    layout of the readout tail of a setting.
    """
    P, N, H = states.shape
    phi = design(states)
    phi_t = np.swapaxes(phi, 1, 2)
    gram = phi_t @ phi  # batched BLAS
    diag = np.einsum("pii->pi", gram)  # sum of phi_j^2
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
    weight_out = np.swapaxes(w[:, :H, :], 1, 2).reshape(P, -1)  # (P, O*H)
    bias_out = w[:, H, :]  # (P, O)
    return np.concatenate([weight_out, bias_out], axis=1).astype(np.float32)


def apply(states: np.ndarray, readout: np.ndarray, outputs: int) -> np.ndarray:
    """Outputs (P, N, O) of readouts (P, O*H+O) on states (P, N, H), in float64."""
    P, N, H = states.shape
    W = readout[:, : outputs * H].reshape(P, outputs, H).astype(np.float64)
    b = readout[:, outputs * H:].astype(np.float64)
    return states.astype(np.float64) @ np.swapaxes(W, 1, 2) + b[:, None, :]
