"""Facts about the CPU kernel's own float32 activation code, and the interval images they give.

The kernels inline ``exp_neg``, ``expm1_neg``, ``sigmoid`` and ``tanh`` of
:mod:`lstmsearch.kernels._fastmath` (the scalar ``inline="always"`` functions, not the ``*_array``
helpers) into loops that LLVM vectorises, compiled with ``fastmath={"contract"}`` and marked
``prefer_wide_vectors``. Here the same functions are inlined into such a loop with the same flags
(:func:`_eval_into`); every value below, the exhaustive checks' and :func:`evaluate`'s, comes from
that loop. A float32 certificate rests on one fact per function: **it is monotone over every
float32 input it is used on** (non-increasing for ``exp_neg(a)`` and ``expm1_neg(a)`` on every
float32 a from +0 to +inf, non-decreasing for ``tanh`` on every float32 from -inf to +inf) **and
never NaN there**, so that its image of a float32 box ``[lo, hi]`` is exactly ``[f(lo), f(hi)]``
(or reversed), computed by calling the function itself at the two ends. :func:`check_monotone`
proves such a fact by an exhaustive check of every float32 bit pattern in the range (no
sampling; tests/test_certify_facts.py runs it for the three). ``sigmoid`` is not monotone; its
image is built from ``exp_neg`` (:func:`sigmoid_image`), and :func:`sigmoid_model_mismatches`
proves, again for every non-NaN float32, that the compiled sigmoid is exactly that composition.
The saturation thresholds reported ("tanh(x) == 1.0f for every float32 x >= t"; likewise for
sigmoid, which on x >= 0 is 1 / (1 + exp_neg(x)) and so monotone there) follow from
monotonicity and one evaluation at t, and are the facts that keep a float32 memory exact
(Higham 2002, sec. 2.1 for the floating-point model).

The checks walk the bit patterns in chunks of :data:`CHUNK` consecutive patterns, in parallel
over blocks of chunks (``numba.prange``; ``NUMBA_NUM_THREADS`` threads), with a few buffers of
CHUNK floats per block: each chunk also evaluates the last pattern of the chunk before it, so the
step across every chunk (and block) boundary is checked too.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..kernels._fastmath import exp_neg, expm1_neg, prefer_wide_vectors, sigmoid, tanh

#: Bit patterns per chunk of the exhaustive checks (three float32 buffers of this size per block).
CHUNK = 1 << 14
_BLOCKS = 256  # blocks of chunks, the units of the parallel loop
_KERNEL_FLAGS = dict(nogil=True, cache=True, fastmath={"contract"}, error_model="numpy", boundscheck=False)


@njit(**_KERNEL_FLAGS)
def _eval_into(code, x, out, n):
    """out[:n] = f(x[:n]) for the function of ``code`` (4: exp_neg(|x|), sigmoid's e): the scalar
    kernel function inlined into a loop LLVM vectorises, with the kernel's flags and vector width."""
    prefer_wide_vectors()
    if code == 0:
        for j in range(n):
            out[j] = exp_neg(x[j])
    elif code == 1:
        for j in range(n):
            out[j] = expm1_neg(x[j])
    elif code == 2:
        for j in range(n):
            out[j] = sigmoid(x[j])
    elif code == 3:
        for j in range(n):
            out[j] = tanh(x[j])
    else:
        for j in range(n):
            out[j] = exp_neg(abs(x[j]))


def _apply(code, x):
    out = np.empty_like(x)
    _eval_into(code, x, out, x.size)
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


@njit(cache=True)
def _fill(bits, lo, n, sign):
    """bits[:n] = the patterns (lo + j) | sign."""
    for j in range(n):
        bits[j] = (lo + j) | sign


@njit(cache=True)
def _steps(y, n):
    """Over y[:n]: (# j with y[j] < y[j-1], # j with y[j] > y[j-1])."""
    down = 0
    up = 0
    for j in range(1, n):
        down += y[j] < y[j - 1]
        up += y[j] > y[j - 1]
    return down, up


@njit(cache=True)
def _nans(y, start, n):
    """# NaN in y[start:n]."""
    k = 0
    for j in range(start, n):
        k += y[j] != y[j]
    return k


@njit(cache=True, parallel=True)
def _monotone_scan(code, stop, sign, decreasing):
    """Evaluate ``code`` at the floats with bit patterns p | sign, p = 0 .. stop - 1 (for sign 0
    these are increasing in value, for sign 0x80000000 decreasing); count the steps p - 1 -> p
    where the values go the wrong way (up if ``decreasing``, else down) and the NaN results.
    Returns (wrong steps, NaNs, least p ending a wrong step or -1)."""
    nchunks = (stop + CHUNK - 1) // CHUNK
    nb = min(_BLOCKS, nchunks)
    bad = np.zeros(nb, np.int64)
    nans = np.zeros(nb, np.int64)
    first = np.full(nb, -1, np.int64)
    for b in prange(nb):
        bits = np.empty(CHUNK + 1, np.uint32)
        x = bits.view(np.float32)
        y = np.empty(CHUNK + 1, np.float32)
        for c in range(b * nchunks // nb, (b + 1) * nchunks // nb):
            lo = c * CHUNK
            off = 1 if lo > 0 else 0  # also the pattern before the chunk: the step into it
            m = min(lo + CHUNK, stop) - lo + off
            _fill(bits, lo - off, m, sign)
            _eval_into(code, x, y, m)
            down, up = _steps(y, m)
            wrong = up if decreasing else down
            nans[b] += _nans(y, off, m)
            if wrong > 0:
                bad[b] += wrong
                if first[b] < 0:
                    for j in range(1, m):
                        if (y[j] > y[j - 1]) if decreasing else (y[j] < y[j - 1]):
                            first[b] = lo - off + j
                            break
    least = -1
    for b in range(nb):
        if first[b] >= 0:
            least = first[b]
            break
    return bad.sum(), nans.sum(), least


@njit(cache=True, error_model="numpy", boundscheck=False)
def _model_mismatches(x, e, y, n):
    """# j < n where y[j] != the composition (1 / (1 + e), times e for x < 0) of e[j], each
    operation rounded to float32 (no fast-math flag here: nothing is fused)."""
    one = np.float32(1.0)
    bad = 0
    for j in range(n):
        s = one / (one + e[j])
        if x[j] < 0:
            s = e[j] * s
        bad += y[j] != s
    return bad


@njit(cache=True, parallel=True)
def _sigmoid_scan(stop, sign):
    """Over the floats with bit patterns p | sign, p = 0 .. stop - 1: (# where the kernel's sigmoid
    differs from the composition of its exp_neg, # NaN sigmoid values)."""
    nchunks = (stop + CHUNK - 1) // CHUNK
    nb = min(_BLOCKS, nchunks)
    bad = np.zeros(nb, np.int64)
    nans = np.zeros(nb, np.int64)
    for b in prange(nb):
        bits = np.empty(CHUNK, np.uint32)
        x = bits.view(np.float32)
        e = np.empty(CHUNK, np.float32)
        y = np.empty(CHUNK, np.float32)
        for c in range(b * nchunks // nb, (b + 1) * nchunks // nb):
            lo = c * CHUNK
            m = min(lo + CHUNK, stop) - lo
            _fill(bits, lo, m, sign)
            _eval_into(2, x, y, m)
            _eval_into(4, x, e, m)
            bad[b] += _model_mismatches(x, e, y, m)
            nans[b] += _nans(y, 0, m)
    return bad.sum(), nans.sum()


_POS_STOP = 0x7F800001  # patterns 0 .. 0x7F800000: +0 .. +inf (with the sign bit: -0 .. -inf)
_SIGN = 0x80000000


def sigmoid_model_mismatches():
    """Exhaustive check over every non-NaN float32 x (-inf .. -0 and +0 .. +inf): count the x
    where the kernel's sigmoid differs from the composition of :func:`sigmoid_image`::

        e = exp_neg(|x|); s = 1 / (1 + e); if x < 0: s = e s

    (the kernel's compiled exp_neg, then each operation rounded to float32), and the x where
    sigmoid is NaN. Returns (mismatches, NaN results, inputs checked)."""
    bad, nans = 0, 0
    for sign in (_SIGN, 0):
        b, nn = _sigmoid_scan(_POS_STOP, sign)
        bad += int(b)
        nans += int(nn)
    return bad, nans, 2 * _POS_STOP


def check_monotone(name: str):
    """Exhaustive check: ``name`` is monotone (in its direction) and NaN-free over every float32
    input it is used on: each pair of adjacent floats in the range (every float32 between +0 and
    +inf for exp_neg / expm1_neg; between -inf and +inf, -0 and +0 adjacent, for sigmoid / tanh)
    is in order. Returns (wrong steps, NaN results, inputs checked, example) where example is
    NaN, or a float32 x whose value is out of order with that of the float next to x towards 0
    (the one nearest 0 found)."""
    code, direction, domain = FUNCTIONS[name]
    bad, nans, n = 0, 0, 0
    examples = []
    halves = [(0, direction < 0)]  # +0 .. +inf, increasing values
    if domain == "all":
        halves.insert(0, (_SIGN, direction > 0))  # -0 .. -inf, decreasing values
    for sign, decreasing in halves:
        b, nn, p = _monotone_scan(code, _POS_STOP, sign, decreasing)
        bad += int(b)
        nans += int(nn)
        n += _POS_STOP
        if p >= 0:
            examples.append(np.array([p | sign], np.uint32).view(np.float32)[0])
    if domain == "all":  # the join of the two halves: f(-0) vs f(+0)
        y0 = evaluate(name, [-0.0, 0.0])
        if (y0[1] - y0[0]) * direction < 0:
            bad += 1
            examples.append(np.float32(0.0))
    example = float(min(examples, key=abs)) if examples else float("nan")
    return bad, nans, n, example


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
