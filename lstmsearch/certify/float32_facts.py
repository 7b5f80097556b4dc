"""Facts about the CPU kernel's own float32 activation code, and the interval images they give.

The kernels inline ``exp_neg``, ``expm1_neg``, ``sigmoid`` and ``tanh`` of
:mod:`lstmsearch.kernels._fastmath`, compiled with ``fastmath={"contract"}``. Here the same
functions are compiled with the same flags. A float32 certificate rests on one fact per
function: **it is monotone over every float32 input it is used on** (non-increasing for
``exp_neg(a)`` and ``expm1_neg(a)`` on a >= 0, non-decreasing for ``sigmoid`` and ``tanh`` on all
finite floats), so that its image of a float32 box ``[lo, hi]`` is exactly
``[f(lo), f(hi)]`` (or reversed), computed by calling the function itself at the two ends.
:func:`check_monotone` proves such a fact by an exhaustive loop over the float32 bit patterns
(tests/test_certify_facts.py runs it for all four functions); the saturation thresholds it
reports ("sigmoid(x) == 1.0f for every float32 x >= t") follow from monotonicity and one
evaluation at t, and are the facts that keep a float32 memory exact (Higham 2002, sec. 2.1 for
the floating-point model).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..kernels._fastmath import exp_neg, expm1_neg, sigmoid, tanh

_FLAGS = dict(cache=True, fastmath={"contract"}, error_model="numpy")


@njit(**_FLAGS)
def _apply(code, x):
    out = np.empty_like(x)
    for i in range(x.size):
        v = x.flat[i]
        if code == 0:
            out.flat[i] = exp_neg(v)
        elif code == 1:
            out.flat[i] = expm1_neg(v)
        elif code == 2:
            out.flat[i] = sigmoid(v)
        else:
            out.flat[i] = tanh(v)
    return out


#: The functions by name, with their code, direction and the inputs the fact covers
#: ("nonneg": +0 .. +inf; "all": -inf .. +inf).
FUNCTIONS = {"exp_neg": (0, -1, "nonneg"), "expm1_neg": (1, -1, "nonneg"),
             "sigmoid": (2, 1, "all"), "tanh": (3, 1, "all")}
#: The functions proved monotone (tests/test_certify_facts.py). ``sigmoid`` is NOT: for x < 0 it
#: returns RN(e RN(1 / RN(1 + e))), e = exp_neg(-x), whose two factors move in opposite directions
#: (1.4 million one-ulp reversals in [-32, 0]); :func:`sigmoid_image` encloses it from exp_neg.
MONOTONE = ("exp_neg", "expm1_neg", "tanh")


def evaluate(name: str, x) -> np.ndarray:
    """The kernel's float32 function ``name`` at x (returned as float64)."""
    code = FUNCTIONS[name][0]
    x = np.ascontiguousarray(x, dtype=np.float32)
    return _apply(code, x.reshape(-1)).reshape(x.shape).astype(np.float64)


def image(name: str, box):
    """Exact image of the float32 box ``(lo, hi)`` under the monotone kernel function ``name``
    (``sigmoid``: the enclosure of :func:`sigmoid_image`)."""
    if name == "sigmoid":
        return sigmoid_image(box)
    _, direction, _ = FUNCTIONS[name]
    a, b = evaluate(name, box[0]), evaluate(name, box[1])
    return (a, b) if direction > 0 else (b, a)


def sigmoid_image(box):
    """Enclosure of the kernel's sigmoid over a float32 box, from its operations::

        e = exp_neg(|x|); s = 1 / (1 + e); if x < 0: s = e s

    (exp_neg monotone, each rounded operation monotone; the product of the two factors by
    corners). :func:`sigmoid_model_mismatches` checks that the compiled sigmoid computes exactly this."""
    lo, hi = np.asarray(box[0], np.float64), np.asarray(box[1], np.float64)
    a_lo = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    a_hi = np.maximum(np.abs(lo), np.abs(hi))
    e_lo, e_hi = evaluate("exp_neg", a_hi), evaluate("exp_neg", a_lo)
    rn = lambda v: v.astype(np.float32).astype(np.float64)  # noqa: E731
    s_lo, s_hi = rn(1.0 / rn(1.0 + e_hi)), rn(1.0 / rn(1.0 + e_lo))   # the x >= 0 branch
    prods = np.stack([rn(e_lo * s_lo), rn(e_lo * s_hi), rn(e_hi * s_lo), rn(e_hi * s_hi)])
    n_lo, n_hi = prods.min(axis=0), prods.max(axis=0)                  # the x < 0 branch
    neg, pos = hi < 0, lo >= 0
    return (np.where(pos, s_lo, np.where(neg, n_lo, np.minimum(s_lo, n_lo))),
            np.where(pos, s_hi, np.where(neg, n_hi, np.maximum(s_hi, n_hi))))


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_model_mismatches(start, stop, step):
    """Count float32 inputs (bit patterns start, start+step, .. stop excluded) where the kernel's
    sigmoid differs from the composition of :func:`sigmoid_image` (exp_neg, then 1 / (1 + e),
    then e s for x < 0), each operation rounded to float32."""
    bits = np.empty(1, np.uint32)
    fl = bits.view(np.float32)
    one = np.float32(1.0)
    bad = 0
    i = np.int64(start)
    while i != stop:
        bits[0] = np.uint32(i)
        v = fl[0]
        e = exp_neg(abs(v))
        s = one / (one + e)
        if v < 0:
            s = e * s
        if sigmoid(v) != s:
            bad += 1
        i += step
    return bad


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _monotone_run(code, start, stop, step, direction):
    """Walk the float32 values with bit patterns start, start+step, ..., (stop excluded), which
    are in increasing order of value; return (violations, first bad pattern, NaN count)."""
    bits = np.empty(1, np.uint32)
    fl = bits.view(np.float32)
    bits[0] = start
    prev = np.float32(0.0)
    bad = 0
    first = np.int64(-1)
    nans = 0
    i = np.int64(start)
    have = False
    while i != stop:
        bits[0] = np.uint32(i)
        v = fl[0]
        if code == 0:
            y = exp_neg(v)
        elif code == 1:
            y = expm1_neg(v)
        elif code == 2:
            y = sigmoid(v)
        else:
            y = tanh(v)
        if y != y:
            nans += 1
        elif have and (y - prev) * direction < 0:
            bad += 1
            if first < 0:
                first = i
        prev = y
        have = True
        i += step
    return bad, first, nans


def check_monotone(name: str):
    """Exhaustive check: ``name`` is monotone (in its direction) and NaN-free over every float32
    input it is used on. Returns (violations, NaN results, inputs checked)."""
    code, direction, domain = FUNCTIONS[name]
    bad, nans, n = 0, 0, 0
    # negative floats in increasing order: -inf (0xFF800000) down to -0 (0x80000000)
    runs = [(0x00000000, 0x7F800001, 1)]  # +0 .. +inf
    if domain == "all":
        runs.insert(0, (0xFF800000, 0x7FFFFFFF, -1))  # -inf .. -0
    last = None
    for start, stop, step in runs:
        b, _, nn = _monotone_run(code, start, stop, step, direction)
        bad += b
        nans += nn
        n += abs(stop - start)
        if last is not None:  # the join of the two runs: f(-0) vs f(+0)
            bad += int((evaluate(name, [0.0])[0] - last) * direction < 0)
        last = evaluate(name, [-0.0])[0]
    return bad, nans, n


def threshold_at(name: str, value: float, lo: float = 0.0, hi: float = 1e4) -> float:
    """The least float32 t in [lo, hi] with ``name(t) == value`` (monotone ``name``; bisection on
    the bit patterns of non-negative floats). By monotonicity ``name(x) == value`` for all x >= t
    (for a non-decreasing name whose value is its supremum, as 1.0 for sigmoid and tanh)."""
    a = np.array([lo], np.float32).view(np.uint32)[0].astype(np.int64)
    b = np.array([hi], np.float32).view(np.uint32)[0].astype(np.int64)
    require_end = evaluate(name, [hi])[0] == value
    if not require_end:
        return float("nan")
    while b - a > 1:
        m = (a + b) // 2
        x = np.array([m], np.uint32).view(np.float32)
        if evaluate(name, x)[0] == value:
            b = m
        else:
            a = m
    return float(np.array([b], np.uint32).view(np.float32)[0])
