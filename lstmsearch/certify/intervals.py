r"""Sound interval arithmetic on NumPy arrays, in two semantics (Moore 1966; Higham 2002).

An interval is a pair ``(lo, hi)`` of float64 arrays of one shape (elementwise boxes);
every function returns an enclosure of the exact image of its arguments' boxes.

**Real arithmetic** (``r_*``): float64 endpoints rounded outward after every operation
(``np.nextafter`` towards -inf / +inf), so that the exact real result of the operation on
any point of the boxes lies inside (Moore, *Interval Analysis*, 1966, ch. 3). Products take
all four corners; a matrix-vector product over boxes splits the weights by sign,
``lo = W+ lo_h + W- hi_h``, and widens by the summation bound of Higham (2002, eq. 3.5)
``|fl(sum) - sum| <= gamma_m sum |w_k h_k|``, ``gamma_m = m u / (1 - m u)``, u = 2^-53, which
holds for any summation order (BLAS). Monotone functions (sigmoid, tanh) are evaluated at
the endpoints and widened by a relative margin that covers libm's error (< 4 ulp).

**float32 semantics** (``f_*``): the endpoints are float32 numbers (held in float64). One
correctly rounded float32 operation ``RN(a op b)`` is monotone in each argument, so its
image over boxes is ``[RN(op at the lower corner), RN(op at the upper corner)]``: computing
it in float64 and casting is exact, because rounding a float64 result of a float32 ``+ - * /``
to float32 equals rounding the exact result (double rounding is innocuous when
53 >= 2 * 24 + 2; Figueroa 1995). A fused multiply-add ``RN(a b + c)`` rounds once:
``a b`` is exact in float64 and the float64 sum's error is known exactly (TwoSum, Knuth;
Higham 2002 alg. 4.4), which bounds ``RN`` of the exact value from each side. Where the
compiler may or may not fuse (Numba's ``fastmath={"contract"}``), :func:`f_fma_either`
takes the hull of both. This is what keeps a float32 box closed where the real box is
not: ``RN(c - 4e-20) == c``.
"""

from __future__ import annotations

import numpy as np

INF = np.inf
#: Unit roundoff of float64 and float32.
U64 = 2.0 ** -53
U32 = 2.0 ** -24
#: Relative margin for float64 libm exp/tanh (a few ulp, taken generously).
LIBM_MARGIN = 1e-14


def interval(lo, hi=None):
    """``(lo, hi)`` as float64 arrays (``hi`` defaults to ``lo``: a point)."""
    lo = np.asarray(lo, dtype=np.float64)
    return lo, (lo if hi is None else np.asarray(hi, dtype=np.float64))


def hull(a, b):
    """The smallest interval containing both."""
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


def contains(outer, inner) -> np.ndarray:
    """Elementwise ``inner`` inside ``outer``."""
    return (outer[0] <= inner[0]) & (inner[1] <= outer[1])


def dn(x):
    return np.nextafter(x, -INF)


def up(x):
    return np.nextafter(x, INF)


def _corners(products):
    stack = np.stack(products)
    return np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


# ----------------------------------------------------------------- exact real arithmetic
def r_add(a, b):
    return dn(a[0] + b[0]), up(a[1] + b[1])


def r_sub(a, b):
    return dn(a[0] - b[1]), up(a[1] - b[0])


def r_mul(a, b):
    lo, hi = _corners([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])
    return dn(lo), up(hi)


def r_div(a, b):
    """a / b; where the b box contains 0, the whole line."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = _corners([a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1]])
    zero = (b[0] <= 0) & (b[1] >= 0)
    return np.where(zero, -INF, dn(lo)), np.where(zero, INF, up(hi))


def r_neg(a):
    return -a[1], -a[0]


def r_matvec(W, h, bias):
    """Enclosure of ``bias + h @ W.T`` for boxes h (K, n), point weights W (m, n), bias (m,)."""
    W = np.asarray(W, np.float64)
    Wp, Wm = np.maximum(W, 0.0), np.minimum(W, 0.0)
    lo = h[0] @ Wp.T + h[1] @ Wm.T + bias
    hi = h[1] @ Wp.T + h[0] @ Wm.T + bias
    mag = np.maximum(np.abs(h[0]), np.abs(h[1])) @ np.abs(W).T + np.abs(bias)
    m = W.shape[1] + 2
    slack = m * U64 / (1 - m * U64) * mag * (1 + 4 * U64) + m * 1e-300
    return dn(lo - slack), up(hi + slack)


def _widen(lo, hi):
    return dn(lo - LIBM_MARGIN * np.abs(lo)), up(hi + LIBM_MARGIN * np.abs(hi))


def r_sigmoid(a):
    """sigma(x) = 1 / (1 + e^-x): monotone, endpoints with a libm margin, clipped to [0, 1]."""
    def s(x):
        with np.errstate(over="ignore"):
            e = np.exp(-np.abs(x))
            return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    lo, hi = _widen(s(a[0]), s(a[1]))
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def r_tanh(a):
    lo, hi = _widen(np.tanh(a[0]), np.tanh(a[1]))
    return np.clip(lo, -1.0, 1.0), np.clip(hi, -1.0, 1.0)


def r_relu(a):
    return np.maximum(a[0], 0.0), np.maximum(a[1], 0.0)


def r_lerp(z, h, n):
    """Enclosure of ``(1 - z) n + z h`` for z in [0, 1]: non-decreasing in h and n, affine in z,
    so the extremes are at z's ends (no loss to the dependency on n)."""
    cands_lo, cands_hi = [], []
    for zz in (z[0], z[1]):
        cands_lo.append(dn(dn((1.0 - zz) * n[0]) + dn(zz * h[0])))
        cands_hi.append(up(up((1.0 - zz) * n[1]) + up(zz * h[1])))
    return np.minimum(*cands_lo), np.maximum(*cands_hi)


# ----------------------------------------------------------------- float32 semantics
def rn32(x):
    """Round float64 values to the nearest float32 (returned as float64)."""
    with np.errstate(over="ignore"):
        return np.asarray(x, np.float64).astype(np.float32).astype(np.float64)


def _prev32(f):
    return np.nextafter(f.astype(np.float32), np.float32(-INF)).astype(np.float64)


def _next32(f):
    return np.nextafter(f.astype(np.float32), np.float32(INF)).astype(np.float64)


def rd32(x):
    """Round float64 values down to float32."""
    f = rn32(x)
    return np.where(f > x, _prev32(f), f)


def ru32(x):
    """Round float64 values up to float32."""
    f = rn32(x)
    return np.where(f < x, _next32(f), f)


def _two_sum(a, b):
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, err


def _rn_of_sum_lo(p, c):
    """A lower bound of RN32(p + c) (exact sum) for float64 p, c: exact when TwoSum is."""
    s, err = _two_sum(p, c)
    return np.where(err >= 0, rn32(s), rn32(dn(s)))


def _rn_of_sum_hi(p, c):
    s, err = _two_sum(p, c)
    return np.where(err <= 0, rn32(s), rn32(up(s)))


def f_add(a, b):
    return rn32(a[0] + b[0]), rn32(a[1] + b[1])


def f_sub(a, b):
    return rn32(a[0] - b[1]), rn32(a[1] - b[0])


def f_mul(a, b):
    return _corners([rn32(a[0] * b[0]), rn32(a[0] * b[1]), rn32(a[1] * b[0]), rn32(a[1] * b[1])])


def f_div(a, b):
    """a / b; where the b box contains 0, the whole line (the kernel may divide by 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = _corners([rn32(a[0] / b[0]), rn32(a[0] / b[1]), rn32(a[1] / b[0]), rn32(a[1] / b[1])])
    zero = (b[0] <= 0) & (b[1] >= 0)
    return np.where(zero, -INF, lo), np.where(zero, INF, hi)


def f_neg(a):
    return -a[1], -a[0]


def f_abs(a):
    lo = np.where((a[0] <= 0) & (a[1] >= 0), 0.0, np.minimum(np.abs(a[0]), np.abs(a[1])))
    return lo, np.maximum(np.abs(a[0]), np.abs(a[1]))


def _exact_products(a, b):
    """Exact (float64) range of a * b for float32 boxes."""
    return _corners([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])


def f_fma(a, b, c):
    """RN32(a b + c), fused (one rounding)."""
    plo, phi = _exact_products(a, b)
    return _rn_of_sum_lo(plo, c[0]), _rn_of_sum_hi(phi, c[1])


def f_fma_either(a, b, c):
    """a b + c fused or not (the compiler's choice under ``contract``): the hull of both."""
    fused = f_fma(a, b, c)
    return hull(fused, f_add(f_mul(a, b), c))


def f_sum_of_products_either(a, b, c, d):
    """``a b + c d`` as Numba may compile it under ``contract``: unfused, or either product fused."""
    ab, cd = f_mul(a, b), f_mul(c, d)
    return hull(hull(f_add(ab, cd), f_fma(a, b, cd)), f_fma(c, d, ab))


def half_ulp32(v):
    """Half the float32 spacing at magnitude v >= 0 (upper bound of one rounding's error)."""
    v = np.asarray(v, np.float64)
    _, e = np.frexp(v)
    return np.where(v > 0, np.maximum(np.ldexp(1.0, e - 25), 2.0 ** -150), 0.0)


def f_matvec_chain(W, h, start, order=None):
    """The CPU kernel's pre-activation sums: ``acc = start; acc = fma(W[:, k], h_k, acc)`` for
    k = 0, 1, ... (columns of W all zero are skipped: fma(0, h, acc) == acc).

    W (m, n) float32 weights, h boxes (K, n), start boxes (K, m) or (m,); returns (K, m)."""
    W = np.asarray(W, np.float64)
    K = h[0].shape[0]
    acc = (np.broadcast_to(start[0], (K, W.shape[0])).copy(), np.broadcast_to(start[1], (K, W.shape[0])).copy())
    for k in range(W.shape[1]) if order is None else order:
        w = W[:, k]
        if not w.any():
            continue
        p0, p1 = h[0][:, k, None] * w, h[1][:, k, None] * w
        plo, phi = np.minimum(p0, p1), np.maximum(p0, p1)
        acc = (_rn_of_sum_lo(plo, acc[0]), _rn_of_sum_hi(phi, acc[1]))
    return acc
