"""sep-CMA-ES with a vectorised update, for large populations (the ``cmaes`` library's equations).

:class:`VectorSepCMA` is :class:`cmaes.SepCMA` with one method added, :meth:`VectorSepCMA.tell_arrays`,
which takes the generation as two arrays and performs the library's update (``SepCMA.tell``) with
whole-population array operations instead of a Python loop over (solution, value) pairs:
with the population sorted by value (stably), ``y_k = (x_k - m) / sigma``,

.. math::

    y_w &= \\sum_{i=1}^{\\mu} w_i y_{i:\\lambda}, \\qquad m \\leftarrow m + c_m \\sigma y_w \\\\
    p_\\sigma &\\leftarrow (1 - c_\\sigma) p_\\sigma + \\sqrt{c_\\sigma (2 - c_\\sigma) \\mu_{\\rm eff}}\\, y_w / D \\\\
    \\sigma &\\leftarrow \\sigma \\exp\\Big(\\frac{c_\\sigma}{d_\\sigma}\\Big(\\frac{\\|p_\\sigma\\|}{E\\|N(0, I)\\|} - 1\\Big)\\Big) \\\\
    p_c &\\leftarrow (1 - c_c) p_c + h_\\sigma \\sqrt{c_c (2 - c_c) \\mu_{\\rm eff}}\\, y_w \\\\
    C &\\leftarrow (1 + c_1 \\delta(h_\\sigma) - c_1 - c_\\mu \\textstyle\\sum_j w_j) C + c_1 p_c^2
        + c_\\mu \\sum_{i=1}^{\\mu} w_i y_{i:\\lambda}^2

with ``D = sqrt(C)`` (elementwise: C is diagonal) -- sep-CMA-ES, Ros & Hansen (2008), "A Simple
Modification in CMA-ES Achieving Linear Time and Space Complexity", PPSN X, with the constants of
``cmaes.SepCMA``. The same float64 operations in the same order as ``SepCMA.tell``, so the two
agree bit for bit on the same solutions (``tests/test_rows_from_keys.py`` checks it over many
generations). The library's per-member Python loop costs ~20 ms per generation of 1024 at 352
dimensions (the blind LSTM H = 8 study), this update ~3 ms (docs/performance.md).
"""

from __future__ import annotations

import math

import numpy as np
from cmaes import SepCMA
from numba import njit

#: sep-CMA-ES uses :class:`VectorSepCMA` from this population size on (below it the library's loop is cheap)
MIN_POPSIZE = 64


class VectorSepCMA(SepCMA):
    """:class:`cmaes.SepCMA` plus :meth:`tell_arrays`, the whole generation's update in array operations."""

    def tell_arrays(self, xs: np.ndarray, values: np.ndarray) -> None:
        """Tell the generation: solutions ``xs`` (popsize, d) and their values (popsize,)."""
        xs = np.asarray(xs, np.float64)
        values = np.asarray(values, np.float64)
        if xs.shape[0] != self._popsize:
            raise ValueError("Must tell popsize-length solutions.")
        if not np.all(np.abs(xs) < 1e32):  # cmaes' _MEAN_MAX
            raise ValueError("Abs of all param values must be less than 1e32 to avoid overflow errors")
        self._g += 1
        order = np.argsort(values, kind="stable")  # list.sort in SepCMA.tell is stable too
        funhist_idx = 2 * (self.generation % self._funhist_term)
        self._funhist_values[funhist_idx] = values[order[0]]
        self._funhist_values[funhist_idx + 1] = values[order[-1]]

        D = self._eigen_decomposition()
        self._D = None
        # one pass over the mu best (SepCMA.tell computes y_k for all members and uses the first mu)
        y_w, rank_mu = weighted_steps(xs, order[: self._mu], self._mean, self._sigma, self._weights)
        self._mean += self._cm * self._sigma * y_w

        self._p_sigma = (1 - self._c_sigma) * self._p_sigma + math.sqrt(
            self._c_sigma * (2 - self._c_sigma) * self._mu_eff) * (y_w / D)
        norm_p_sigma = np.linalg.norm(self._p_sigma)
        self._sigma *= np.exp((self._c_sigma / self._d_sigma) * (norm_p_sigma / self._chi_n - 1))
        self._sigma = min(self._sigma, 1e32)  # cmaes' _SIGMA_MAX

        h_sigma_cond_left = norm_p_sigma / math.sqrt(1 - (1 - self._c_sigma) ** (2 * (self._g + 1)))
        h_sigma_cond_right = (1.4 + 2 / (self._n_dim + 1)) * self._chi_n
        h_sigma = 1.0 if h_sigma_cond_left < h_sigma_cond_right else 0.0
        self._pc = (1 - self._cc) * self._pc + h_sigma * math.sqrt(self._cc * (2 - self._cc) * self._mu_eff) * y_w
        delta_h_sigma = (1 - h_sigma) * self._cc * (2 - self._cc)

        rank_one = self._pc ** 2
        self._C = ((1 + self._c1 * delta_h_sigma - self._c1 - self._cmu * np.sum(self._weights)) * self._C
                   + self._c1 * rank_one + self._cmu * rank_mu)


@njit(cache=True, nogil=True)
def weighted_steps(xs, best, mean, sigma, weights):
    """``y_w = sum_i w_i y_i`` and ``sum_i w_i y_i^2`` over the mu best members ``best`` (sorted), with
    ``y_i = (x_i - m) / sigma``: the sums of ``SepCMA.tell`` in its order (member by member, from
    the best), so the results are the same floats."""
    d = xs.shape[1]
    y_w = np.empty(d)
    rank_mu = np.empty(d)
    for i in range(best.size):
        w = weights[i]
        row = xs[best[i]]
        for j in range(d):
            y = (row[j] - mean[j]) / sigma
            if i == 0:
                y_w[j] = y * w
                rank_mu[j] = w * (y * y)
            else:
                y_w[j] += y * w
                rank_mu[j] += w * (y * y)
    return y_w, rank_mu


@njit(cache=True, nogil=True)
def sample(y, scale, mean, low, high):
    """``x = clip(m + scale * y, low, high)`` row by row, in place in ``y`` (the population's normal
    matrix, used once); ``scale = sigma * sqrt(diag C)``. Each element is rounded as NumPy's
    ``np.clip(m + scale * y)`` rounds it."""
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            v = mean[j] + scale[j] * y[i, j]
            y[i, j] = min(max(v, low[j]), high[j])
    return y
