r"""One step of a cell over boxes of states and inputs, in real or in float32-cpu arithmetic.

A state box is a dict of intervals ``{"h": (lo, hi), "c": (lo, hi)}`` over K boxes (arrays
(K, H)); the input box is (K, 1) (one input). :func:`step` returns an enclosure of every state
that one step of the cell can reach from a state in the box with an input in the input box
(Moore 1966: the natural interval extension of the cell's equations; inclusion-isotone, so
``B' subset B`` implies ``step(B') subset step(B)``).

Equations: each kind's, from its module in :mod:`lstmsearch.kinds`, evaluated over boxes
(:meth:`lstmsearch.kinds.graph.Graph.evaluate`), e.g.

- rnn:  h' = act(W_ih x + b_ih + W_hh h + b_hh)
- lstm: c' = sigma(f) c + sigma(i) tanh(g),  h' = sigma(o) tanh(c')
- gru:  n = tanh(W_in x + b_in + sigma(r) (W_hn h + b_hn)),  h' = (1 - z) n + z h

``arithmetic="real"``: exact real arithmetic (outward float64, :mod:`.intervals`).

``arithmetic="float32"``: the float32 evaluation of the ``cpu`` backend, operation by
operation as :mod:`lstmsearch.kernels._codegen` and :mod:`lstmsearch.kernels._vecsum` write
it: pre-activations ``acc = b_ih + b_hh`` then ``acc = fma(w, v, acc)`` over the input and
h_0, h_1, ... (explicit fused multiply-adds, in that order); the LSTM's c' and h' by the
one-division formulas of :func:`lstmsearch.kernels._fastmath.lstm_cell` /
``lstm_hidden``; the GRU's ``n = tanh((b_in + w x) + sigma(r) pre_n)`` and
``h' = n + z (h - n)`` (any ``u v + w`` as either a fused or a rounded multiply-add, as the
``contract`` flag lets LLVM choose). Every activation is the kernel's own float32 function, applied at the
box's ends (monotone: proved exhaustively, :mod:`.float32_facts`). For the GRU update the
dependency on n is kept by bounding the real lerp and adding the two roundings
(|RN(h - n) - (h - n)| <= half an ulp of max|h - n|, and the product's), except where z is
exactly 1.0f and Sterbenz's lemma makes the update return h bit for bit (:func:`gru_update32`).
"""

from __future__ import annotations

import numpy as np

from ..cells import Cell
from . import float32_facts as facts
from . import intervals as iv

ARITHMETICS = ("real", "float32")


def weights(cell: Cell, params):
    p = cell.unflatten(np.asarray(params, np.float32).reshape(1, -1))
    return {k: np.asarray(v[0], np.float64) for k, v in p.items()}


def _rows(lohi, rows):
    return lohi[0][:, rows], lohi[1][:, rows]


def _hstack(a, b):
    """A box over (state, input) columns."""
    return np.concatenate([a[0], b[0]], axis=1), np.concatenate([a[1], b[1]], axis=1)


def pre_activations(cell: Cell, w, h, x, arithmetic: str, rows=None, hh_only=None):
    """Boxes (K, G*H) of b_ih + b_hh + W_ih x + W_hh h (rows ``rows``; rows in ``hh_only``, a
    gate whose terms the equations use apart like the GRU's n, get b_hh + W_hh h only: its
    input term is added later). A dense recurrence only."""
    Wih, Whh = w["weight_ih_l0"], w["weight_hh_l0"]
    bih, bhh = w["bias_ih_l0"], w["bias_hh_l0"]
    GH = Whh.shape[0]
    rows = np.arange(GH) if rows is None else rows
    apart = np.zeros(GH, bool)
    for g in (separate_gates(cell) if hh_only is None else hh_only):
        apart[cell.gate_rows(g)] = True
    apart = apart[rows]
    Wih = np.where(apart[:, None], 0.0, Wih[rows])
    if arithmetic == "real":
        bias = np.where(apart, bhh[rows], bih[rows] + bhh[rows])  # float32 + float32: exact in float64
        return iv.r_matvec(np.concatenate([Whh[rows], Wih], axis=1), _hstack(h, x), bias)
    b = np.where(apart, bhh[rows], iv.rn32(bih[rows] + bhh[rows]))
    # inputs first, then h_0 .. h_{H-1}: the kernel's order
    W = np.concatenate([Wih, Whh[rows]], axis=1)
    return iv.f_matvec_chain(W, _hstack(x, h), (b, b))


def separate_gates(cell: Cell):
    """The gates whose input and recurrent terms the equations use apart (not fused rows)."""
    return [g for g in cell.gate_names if g not in cell.spec.interval_graph.leaves("pre")]


#: The operations of a cell's equations over boxes, in exact real arithmetic.
REAL = {"add": iv.r_add, "sub": iv.r_sub, "mul": iv.r_mul, "div": iv.r_div, "neg": iv.r_neg,
        "sigmoid": iv.r_sigmoid, "tanh": iv.r_tanh, "relu": iv.r_relu,
        "lerp": lambda z, a, b: iv.r_lerp(z, b, a)}


def float32_table():
    """The operations over boxes in the ``cpu`` kernels' float32 arithmetic (their fused forms,
    :func:`lstmsearch.kinds.graph.float32_forms`; each activation the kernel's own function)."""
    return {"add": iv.f_add, "sub": iv.f_sub, "mul": iv.f_mul, "div": iv.f_div, "neg": iv.f_neg,
            "sigmoid": lambda a: facts.image("sigmoid", a), "tanh": lambda a: facts.image("tanh", a),
            "relu": iv.r_relu, "fma": iv.f_fma_either, "sum_of_products": iv.f_sum_of_products_either,
            "lerp": lambda z, a, b: gru_update32(z, b, a),
            "sigmoid_tanh": lstm_hidden32, "lstm_cell": lstm_cell32}


def affine_terms(cell: Cell, w, state, x, arithmetic: str):
    """Leaf boxes of one step: x.g = b_ih + u x (one input), hh.g for an element-wise or a
    dense recurrence, pre.g for the fused rows (:func:`pre_activations`)."""
    spec, H = cell.spec, cell.hidden
    graph = spec.interval_graph if arithmetic == "real" else spec.kernel_graph
    K = len(x[0])
    xb = (np.broadcast_to(x[0], (K, H)), np.broadcast_to(x[1], (K, H)))

    def affine(weight, bias, v):
        u = np.broadcast_to(weight, (K, H))
        if arithmetic == "real":
            return iv.r_add(iv.r_mul((u, u), v), (bias, bias))
        return iv.f_fma_either((u, u), v, (bias, bias))

    leaves = {}
    for g in graph.leaves("x"):
        r = cell.gate_rows(g)
        leaves["x", g] = affine(w["weight_ih_l0"][r, 0], w["bias_ih_l0"][r], xb)
    if spec.recurrence == "diagonal":
        for g in graph.leaves("hh"):
            r = cell.gate_rows(g)
            leaves["hh", g] = affine(w["weight_hh_l0"][r], w["bias_hh_l0"][r], state["h"])
    elif spec.recurrence == "dense":
        pre = pre_activations(cell, w, state["h"], x, arithmetic)
        for g in cell.gate_names:
            for op in ("pre", "hh"):
                leaves[op, g] = _rows(pre, cell.gate_rows(g))
    return graph, leaves


def step(cell: Cell, w, state, x, arithmetic: str):
    """The box of states after one step from ``state`` with inputs in ``x`` (see module doc):
    the kind's equations evaluated over boxes (:mod:`lstmsearch.kinds.graph`)."""
    graph, leaves = affine_terms(cell, w, state, x, arithmetic)

    def leaf(n):
        if n.op == "const":
            return (np.float64(n.key),) * 2
        if n.op in ("h", "c"):
            return state[n.op]
        return leaves[n.op, n.key]

    return graph.evaluate(REAL if arithmetic == "real" else float32_table(), leaf)


def gru_update32(z, h, n):
    """Enclosure of the kernel's ``n + z (h - n)`` in float32.

    Generally: the real lerp over the boxes, widened by the two roundings (of h - n, and of
    the product when not fused), then the final rounding (monotone) at the ends.

    **Exact case (a latched unit keeps its state bit for bit).** Sterbenz's lemma (Sterbenz,
    *Floating-Point Computation*, 1974, thm. 4.3.1; Higham 2002, thm. 2.5): for floating-point
    h, n with n/2 <= h <= 2n, h - n is a floating-point number, so RN(h - n) = h - n exactly
    (subnormals included). With z = 1.0f, z (h - n) = h - n is exact too, whether the
    multiply-add is fused (fma(z, d, n) rounds z d + n once) or not (RN(z d) = d, then
    RN(d + n)); and n + (h - n) = h is a float32 number, so its rounding is h. Hence, for every
    point of the boxes, the kernel returns h itself, and the image is the h box, not widened.
    PyTorch's ``(h - n) * z + n`` (``aten::gru_cell``) is the same three operations in the same
    order, and the ``cuda`` kernel's ``(1 - z) n + z h`` is 0 n + h = h at z = 1.0f for any
    finite n. Elementwise, this applies where

    - the z box is exactly [1, 1] (any z < 1 rounds differently: the lerp moves h towards n);
    - the boxes have one strict sign (h_lo > 0 and n_lo > 0, or h_hi < 0 and n_hi < 0): the
      lemma is about h and n of the same sign (implied by the next condition; checked so that
      each branch states its own case);
    - h_lo >= n_hi / 2 and h_hi <= 2 n_lo (positive boxes; for negative ones the mirror,
      h_hi <= n_lo / 2 and h_lo >= 2 n_hi): then n/2 <= n_hi/2 <= h_lo <= h <= h_hi <= 2 n_lo
      <= 2 n for every pair of points, i.e. the lemma's condition holds for all of them, not
      just at the corners. (Halving and doubling are exact in binary, so these tests in float64
      are exact for float32 ends.)

    **Exact case 2 (z == 0.0f: the result is n bit for bit).** With z = +0 and h - n finite,
    RN(h - n) is finite, z (h - n) is +-0 (fused or not) and n + (+-0) == n. The MGU's update
    is ``lerp(f, h, n) = h + f (n - h)``, i.e. this function with the roles of h and n swapped: a
    forget gate shut to 0.0f in float32 (the kernel's sigmoid gives 0.0f from about -87.3 down) keeps
    the state bit for bit.
    Applies where the z box is exactly [0, 0] and max |h - n| < 3e38 (no overflow).

    **Exact case 3 (z == 1.0f and h == 0: the result is 0).** A unit held shut at 0 (a GRU unit
    whose update gate keeps it at h_0 = 0 until its step, whatever its candidate): 0 - n = -n is
    exact (a negation), 1 * (-n) = -n exactly (fused or not) and n + (-n) = +0, for every finite n;
    the ``cuda`` kernel's 0 n + 1 * 0 = 0 as well. Applies where the z box is exactly [1, 1], the h
    box exactly [0, 0] and n finite.
    """
    L = iv.r_lerp(z, h, n)
    D = np.maximum(np.abs(h[1] - n[0]), np.abs(h[0] - n[1]))
    # z exactly 0.0f (a gate shut in float32, the MGU's and minGRU's order h + f (n - h)): h - n is
    # finite (D below float32's largest number), z (h - n) = +-0 exactly, and n + (+-0) = n
    held = (z[0] == 0.0) & (z[1] == 0.0) & (D < 3.0e38)
    e1 = z[1] * iv.half_ulp32(D)
    exact_z = (z[0] == z[1]) & ((z[0] == 1.0) | (z[0] == 0.0))
    e2 = np.where(exact_z, 0.0, iv.half_ulp32(z[1] * (D + iv.half_ulp32(D))))
    E = iv.up(e1 + e2)
    lo, hi = iv.rd32(iv.dn(L[0] - E)), iv.ru32(iv.up(L[1] + E))
    kept = (z[0] == 1.0) & (z[1] == 1.0) & (
        ((h[0] > 0) & (n[0] > 0) & (h[0] >= 0.5 * n[1]) & (h[1] <= 2.0 * n[0]))
        | ((h[1] < 0) & (n[1] < 0) & (h[1] <= 0.5 * n[0]) & (h[0] >= 2.0 * n[1])))
    lo, hi = np.where(held, n[0], lo), np.where(held, n[1], hi)
    zero = (z[0] == 1.0) & (z[1] == 1.0) & (h[0] == 0.0) & (h[1] == 0.0) & np.isfinite(n[0]) & np.isfinite(n[1])
    kept = kept | zero  # h itself, which is 0
    return np.where(kept, h[0], lo), np.where(kept, h[1], hi)


_ONE, _TWO, _ZERO = (np.float64(1.0),) * 2, (np.float64(2.0),) * 2, (np.float64(0.0),) * 2


def _signed_where(cond_pos, cond_neg, pos, neg):
    """Per-element case split on a sign: pos where cond_pos, neg where cond_neg, else the hull."""
    both = iv.hull(pos, neg)
    lo = np.where(cond_pos, pos[0], np.where(cond_neg, neg[0], both[0]))
    hi = np.where(cond_pos, pos[1], np.where(cond_neg, neg[1], both[1]))
    return lo, hi


def _copysign(mag, s):
    """copysign over boxes: |mag| with the sign of s (an s box touching 0 gives both signs)."""
    m = iv.f_abs(mag)
    return _signed_where(s[0] > 0, s[1] < 0, m, iv.f_neg(m))


def _odd(magnitude, a):
    """Enclosure of copysign(M(|a|), a) over the box a, for a magnitude M(|a|) >= 0 that is
    non-decreasing in |a| (``magnitude`` maps a box of |a| to an enclosure of M over it). A box
    across 0 gives [-M(|a_lo|), M(a_hi)], not the symmetric +-M(max |a|) of :func:`_copysign`
    (which doubled the width of every unit whose pre-activation is a box around 0)."""
    lo, hi = np.asarray(a[0], np.float64), np.asarray(a[1], np.float64)
    across = (lo < 0) & (hi > 0)
    abs_lo, abs_hi = iv.f_abs(a)
    first = magnitude((abs_lo, np.where(across, np.abs(lo), abs_hi)))  # across 0: M over |a| in [0, |a_lo|]
    whole = _copysign(first, a)
    if not across.any():
        return whole
    pos = magnitude((np.zeros_like(hi), np.where(across, hi, 0.0)))  # M over [0, a_hi] (0 elsewhere: unused)
    return np.where(across, -np.abs(first[1]), whole[0]), np.where(across, np.abs(pos[1]), whole[1])


def lstm_cell32(ai, af, ag, c):
    """Enclosure of :func:`lstmsearch.kernels._fastmath.lstm_cell` (float32, ``contract``)::

        ei = exp_neg(|ai|); ni = 1 if ai >= 0 else ei; ef = exp_neg(|af|)
        mg = expm1_neg(2 |ag|); tg = copysign(ni mg, ag); df = 1 + ef; x = (1 + ei)(2 + mg)
        u, base = (-ef, c) if af >= 0 else (ef, 0)
        c' = base + (c u x + tg df) / (df x)
    """
    ei = facts.image("exp_neg", iv.f_abs(ai))
    ni = _signed_where(ai[0] >= 0, ai[1] < 0, _ONE, ei)
    ef = facts.image("exp_neg", iv.f_abs(af))
    def tg_magnitude(a2):  # |ni mg|, mg = expm1_neg(2 |ag|) in [-1, 0], non-decreasing in |ag|
        return iv.f_abs(iv.f_mul(ni, facts.image("expm1_neg", (iv.rn32(2 * a2[0]), iv.rn32(2 * a2[1])))))

    a2 = iv.f_abs(ag)
    mg = facts.image("expm1_neg", (iv.rn32(2 * a2[0]), iv.rn32(2 * a2[1])))
    tg = _odd(tg_magnitude, ag)
    df = iv.f_add(_ONE, ef)
    x = iv.f_mul(iv.f_add(_ONE, ei), iv.f_add(_TWO, mg))
    den = iv.f_mul(df, x)

    def branch(u, base):
        num = iv.f_sum_of_products_either(iv.f_mul(c, u), x, tg, df)
        return iv.f_add(base, iv.f_div(num, den))

    return _signed_where(af[0] >= 0, af[1] < 0, branch(iv.f_neg(ef), c), branch(ef, _ZERO))


def lstm_hidden32(ao, cn):
    """Enclosure of ``lstm_hidden``: copysign(no mc / ((1 + eo)(2 + mc)), c'), mc = expm1_neg(2|c'|)."""
    eo = facts.image("exp_neg", iv.f_abs(ao))
    no = _signed_where(ao[0] >= 0, ao[1] < 0, _ONE, eo)

    def magnitude(a2):  # |no mc| / ((1 + eo)(2 + mc)), mc = expm1_neg(2 |c'|) <= 0, monotone in mc
        mc = facts.image("expm1_neg", (iv.rn32(2 * a2[0]), iv.rn32(2 * a2[1])))
        num_lo, num_hi = iv.f_mul(no, (mc[1], mc[1])), iv.f_mul(no, (mc[0], mc[0]))  # take each end of mc
        den_at = lambda m: iv.f_mul(iv.f_add(_ONE, eo), iv.f_add(_TWO, (m, m)))  # noqa: E731
        small = iv.f_div(iv.f_abs(num_lo), den_at(mc[1]))
        large = iv.f_div(iv.f_abs(num_hi), den_at(mc[0]))
        mag = (np.minimum(small[0], large[0]), np.maximum(small[1], large[1]))
        return _open_gate_magnitude(ao, eo, mc, mag)

    return _odd(magnitude, cn)


def _open_gate_magnitude(ao, eo, mc, mag):
    """Where ao < 0, tighten ``mag``, the enclosure of no |mc| / ((1 + eo)(2 + mc)) with no = eo.

    eo appears in the numerator and in the denominator, and the box enclosure above takes the two
    independently (a box of sigma(ao) near 1/2 comes out about 3x too wide, so that a sign decided in
    exact arithmetic is not in float32). The real value is (eo / (1 + eo)) (m / (2 - m)), m = -mc in
    [0, 1], non-decreasing in eo and in m; the kernel's five rounded operations (the product, the two
    sums, the product of the sums, the quotient) each multiply it by (1 + d), |d| <= u = 2^-24, so the
    float32 result lies within a factor (1 +- 6u) of the real value at the same eo and mc (normal
    numbers only: used where every operand and the result are above 2^-100)."""
    m_lo, m_hi = -np.asarray(mc[1], np.float64), -np.asarray(mc[0], np.float64)
    e_lo, e_hi = np.asarray(eo[0], np.float64), np.asarray(eo[1], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = iv.dn(iv.dn(e_lo / iv.up(1.0 + e_lo)) * iv.dn(m_lo / iv.up(2.0 - m_lo)) * (1.0 - 6.0 * iv.U32))
        hi = iv.up(iv.up(e_hi / iv.dn(1.0 + e_hi)) * iv.up(m_hi / iv.dn(2.0 - m_hi)) * (1.0 + 6.0 * iv.U32))
    tiny = 2.0 ** -100
    ok = (np.asarray(ao[1]) < 0) & (e_lo > tiny) & (m_lo > tiny) & (lo > tiny) & np.isfinite(hi)
    return np.where(ok, np.maximum(mag[0], lo), mag[0]), np.where(ok, np.minimum(mag[1], hi), mag[1])


def readout_error(w_out, b_out, h, x1):
    """Upper bound of |W_out h + b_out - x_1| (exact real readout) over boxes h (K, H) and x1 (K,)."""
    W = np.asarray(w_out, np.float64).reshape(1, -1)
    b = np.asarray(b_out, np.float64).reshape(1)
    y = iv.r_matvec(W, h, b)
    return np.maximum(iv.up(y[1][:, 0] - x1[0]), iv.up(x1[1] - y[0][:, 0]))
