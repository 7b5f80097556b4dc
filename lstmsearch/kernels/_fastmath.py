"""Vectorisable float32 exp / sigmoid / tanh for the Numba kernels.

Numba's pip build has no SVML, so ``math.exp``/``math.tanh`` stay scalar libm calls that
block LLVM's loop vectoriser. These versions are branch-free straight-line code (selects
only) that LLVM vectorises across sequences. They follow Cephes ``expf``/``tanhf``:

- ``exp_neg(a)`` = exp(-a) for a >= 0: Cody-Waite reduction by ln 2 (round-to-nearest by
  the 1.5*2^23 trick), a degree-6 polynomial, and 2^n built from the exponent bits;
  exp(-a) below the smallest normal float (a > 87.33654) is exactly 0.
- ``sigmoid(x)`` = 1/(1+e) or e/(1+e) with e = exp(-|x|): no overflow anywhere, exact 0 and
  1 for |x| >= 88 (so |x| = 1e4 and +-inf saturate), relative error a few ulp.
- ``tanh(x)`` = -m / (2 + m) with m = expm1(-2|x|) (same reduction; expm1 keeps the
  relative accuracy for small |x|), sign restored; exact +-1 for |x| >= 44.

Accuracy (tests/test_fastmath.py checks against float64 NumPy): within 3 ulp relative for
sigmoid and tanh and 2 ulp for exp over the whole float32 range. NaN in gives NaN out
(clamps are written ``if x < lo: x = lo`` so that a NaN passes through), so a setting that
produces NaN is still flagged. The functions assume the caller compiles with at most the
``contract`` fast-math flag (fused multiply-add): no 'nnan'/'ninf'/'reassoc', which would
break the rounding trick and the NaN/inf propagation.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

F32 = np.float32

_MAGIC = F32(12582912.0)  # 1.5 * 2**23: x + MAGIC rounds x to an integer (|x| < 2**22)
_LOG2E = F32(1.44269504088896341)
_C1 = F32(0.693359375)  # ln 2, high part (exact in few bits)
_C2 = F32(-2.12194440e-4)  # ln 2 - C1
_LO = F32(-87.33654)  # log of the smallest normal float32: below, exp(x) -> 0
_P0 = F32(1.9875691500e-4)
_P1 = F32(1.3981999507e-3)
_P2 = F32(8.3334519073e-3)
_P3 = F32(4.1665795894e-2)
_P4 = F32(1.6666665459e-1)
_P5 = F32(5.0000001201e-1)
_ONE = F32(1.0)
_ZERO = F32(0.0)
_TWO = F32(2.0)
_T0 = F32(-5.70498872745e-3)
_T1 = F32(2.06390887954e-2)
_T2 = F32(-5.37397155531e-2)
_T3 = F32(1.33314422036e-1)
_T4 = F32(-3.33332819422e-1)
_TANH_SMALL = F32(0.625)


@intrinsic
def pow2_from_magic(typingctx, kf):
    """2**n as float32, where kf = n + 1.5*2**23 (a float32 holding n in its low bits).

    Integer work in int32 inside LLVM (Numba would widen int32 arithmetic to int64):
    bits(kf) - bits(1.5*2**23) = n, and ((n + 127) << 23) are the bits of 2**n.
    """
    if kf != types.float32:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        n = builder.bitcast(args[0], i32)
        n = builder.add(n, ir.Constant(i32, 127 - 0x4B400000))
        n = builder.shl(n, ir.Constant(i32, 23))
        return builder.bitcast(n, ir.FloatType())

    return types.float32(types.float32), codegen


@intrinsic
def prefer_wide_vectors(typingctx):
    """Mark the calling function ``"prefer-vector-width"="512"`` (a no-op at run time).

    LLVM's tuning for most AVX-512 CPUs prefers 256-bit vectors (to avoid the frequency
    penalty of older parts); for these kernels, which are FMA-bound, 512-bit vectors double
    the work per instruction. Only the function that calls this is affected. On CPUs
    without AVX-512 the attribute changes nothing.
    """

    def codegen(context, builder, sig, args):
        # llvmlite only accepts its list of known attributes; a string attribute is
        # written out verbatim in the function definition.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


@njit(inline="always", cache=True)
def _exp_parts(yc):
    """Cody-Waite reduction shared by the exps: (2**n, q) with exp(yc) = 2**n (1 + q).

    n = round(yc / ln 2) by the 1.5*2^23 trick, r = yc - n ln 2 in two parts, and
    q = exp(r) - 1 = r + r^2 P(r) with the degree-5 Cephes polynomial P.
    """
    kf = yc * _LOG2E + _MAGIC  # holds n = round(yc / ln 2)
    scale = pow2_from_magic(kf)  # 2**n
    kf = kf - _MAGIC
    r = yc - kf * _C1
    r = r - kf * _C2
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    return scale, p * (r * r) + r


@njit(inline="always", cache=True)
def exp_neg(a):
    """exp(-a) for float32 a >= 0 (or +inf / NaN)."""
    y = -a
    yc = y
    if yc < _LO:
        yc = _LO
    scale, q = _exp_parts(yc)  # n in [-126, 0]
    e = q * scale + scale  # = (q + 1) * scale exactly (scale = 2**n, normal): one FMA
    if y < _LO:
        e = _ZERO
    return e


@njit(inline="always", cache=True)
def sigmoid(x):
    """1 / (1 + exp(-x)) in float32, stable for any x."""
    e = exp_neg(abs(x))
    s = _ONE / (_ONE + e)
    if x < _ZERO:
        s = e * s
    return s


@njit(inline="always", cache=True)
def expm1_neg(a):
    """exp(-a) - 1 for float32 a >= 0 (or +inf / NaN), accurate also for small a."""
    y = -a
    yc = y
    if yc < _LO:
        yc = _LO
    scale, q = _exp_parts(yc)
    em = scale * q + (scale - _ONE)  # 2**n exp(r) - 1
    if y < _LO:
        em = -_ONE
    return em


@njit(inline="always", cache=True)
def tanh(x):
    """tanh(x) in float32, stable for any x: tanh|x| = -m / (2 + m), m = exp(-2|x|) - 1."""
    m = expm1_neg(abs(x) * _TWO)
    t = abs(m / (_TWO + m))  # abs: tanh(+0) = +0
    if x < _ZERO:
        t = -t
    return t


_HI = F32(88.7)  # exp(88.7) > largest float32 after the 2**n scaling: inf


@njit(inline="always", cache=True)
def exp_full(y):
    """exp(y) for any float32 y: 0 below the normal range, inf above about 88.4."""
    yc = y
    if yc < _LO:
        yc = _LO
    if yc > _HI:
        yc = _HI
    scale, q = _exp_parts(yc)  # n in [-126, 128]; 2**128 -> inf bits
    e = (q + _ONE) * scale
    if y < _LO:
        e = _ZERO
    return e


@njit(inline="always", cache=True)
def sigmoid_times_tanh(a, b):
    """sigmoid(a) * tanh(b) with one division: -m / ((1 + exp(-a)) (2 + m)), m = expm1(-2|b|).

    For the LSTM's i*g and o*tanh(c). exp(-a) = inf for a < -88.4 gives exactly 0."""
    e = exp_full(-a)
    m = expm1_neg(abs(b) * _TWO)
    t = abs(m / ((_ONE + e) * (_TWO + m)))
    if b < _ZERO:
        t = -t
    return t


# Array versions, for tests and for NumPy-side use.
@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_array(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out.flat[i] = sigmoid(x.flat[i])
    return out


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def tanh_array(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out.flat[i] = tanh(x.flat[i])
    return out


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_times_tanh_array(a, b):
    out = np.empty_like(a)
    for i in range(a.size):
        out.flat[i] = sigmoid_times_tanh(a.flat[i], b.flat[i])
    return out


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def exp_neg_array(a):
    out = np.empty_like(a)
    for i in range(a.size):
        out.flat[i] = exp_neg(a.flat[i])
    return out


@njit(inline="always", cache=True)
def lstm_update(ai, af, ag, ao, c):
    """One LSTM unit: c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c'),
    with two divisions instead of three.

    Each factor is a quotient with a denominator in [1, 2]: sigmoid(x) = n / (1 + e) with
    e = exp(-|x|) and n = 1 (x >= 0) or e (x < 0); tanh|x| = -m / (2 + m), m = expm1(-2|x|).
    The c update goes over one common denominator D = (1 + e_f)(1 + e_i)(2 + m_g) in [1, 8]:

        f >= 0:  c' = c + (-e_f c (1 + e_i)(2 + m_g) + n_i t_g (1 + e_f)) / D
        f <  0:  c' =     ( e_f c (1 + e_i)(2 + m_g) + n_i t_g (1 + e_f)) / D

    (t_g = -m_g with the sign of g), so a saturated forget gate keeps c exactly (f = 1e4:
    e_f = 0, and with i = -1e4 also n_i = 0, so c' = c + 0) and a closed one gives exactly
    sigmoid(i) tanh(g) (e.g. +-1 or 0 when those saturate). The error is a few ulp of
    |sigmoid(f) c| + |sigmoid(i) tanh(g)|, like the sum of the separately rounded terms.
    NaN in any input gives NaN in c' and h'. No overflow: every exp is of a non-positive
    number.
    """
    cn = lstm_cell(ai, af, ag, c)
    return cn, lstm_hidden(ao, cn)


@njit(inline="always", cache=True)
def lstm_cell(ai, af, ag, c):
    """c' of :func:`lstm_update` (one division)."""
    ei = exp_neg(abs(ai))
    ni = ei
    if ai >= _ZERO:
        ni = _ONE
    ef = exp_neg(abs(af))
    mg = expm1_neg(abs(ag) * _TWO)  # in [-1, 0]
    tg = math.copysign(ni * mg, ag)  # n_i |tanh num| with the sign of g (one instruction)
    df = _ONE + ef
    x = (_ONE + ei) * (_TWO + mg)
    u = -ef
    base = c
    if af < _ZERO:
        u = ef
        base = _ZERO
    return base + (c * u * x + tg * df) / (df * x)


@njit(inline="always", cache=True)
def lstm_hidden(ao, cn):
    """h' = sigmoid(o) tanh(c') of :func:`lstm_update` (one division)."""
    eo = exp_neg(abs(ao))
    no = eo
    if ao >= _ZERO:
        no = _ONE
    mc = expm1_neg(abs(cn) * _TWO)
    return math.copysign((no * mc) / ((_ONE + eo) * (_TWO + mc)), cn)


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def lstm_update_array(ai, af, ag, ao, c):
    cn = np.empty_like(c)
    hn = np.empty_like(c)
    for k in range(c.size):
        cn.flat[k], hn.flat[k] = lstm_update(ai.flat[k], af.flat[k], ag.flat[k], ao.flat[k], c.flat[k])
    return cn, hn
