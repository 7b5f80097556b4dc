r"""Horizons: one induction that bounds the state boxes for millions of steps (exact real arithmetic).

Interval propagation (:func:`lstmsearch.certify.certify`, (ii)) costs one step of the boxes per
step of time (about 1 s at H = 32); a found setting whose boxes grow by 1e-7 a step would need
tens of thousands of them. This module proves a *linear invariant* in the manner of RnnVerify
(Jacoby, Barrett and Katz, "Verifying Recurrent Neural Networks using Invariant Inference",
ATVA 2020) from the boxes ``B_k`` after step n1 (one per slice k of x_1):

    the state after step n1 + m lies in  B_k + r_k(m) = [lo_k - r_k(m), hi_k + r_k(m)],  0 <= m <= M,
    r_k(0) = 0,  r_k(m + 1) = D_k + L_g r_k(m),  i.e.  r_k(m) = sum_{i < m} L_g^i D_k

(coordinates: h, then c for a cell with memory), which is ``m D_k`` when L = I: growth linear in m.

**The pieces.** f(s, x) is the exact step (state s, input x in [a, b]); F the interval step
(:func:`.steps.step`, an enclosure of f over boxes). ``D_k = max(0, -s_k)`` where the margin
``s_k = min(F(B_k).lo - lo_k, hi_k - F(B_k).hi)`` is negative where one step grows the box. ``L_g``
(g: a group of consecutive slices, :data:`GROUPS` of them) is an upper bound of |df_i/ds_j| over
``Y_g`` x [a, b], ``Y_g`` the hull of the boxes ``B_k + R_k`` of its slices, for a guessed R
(:func:`jacobian_bound`: interval forward-mode differentiation of the cell's equations,
:mod:`lstmsearch.kinds.graph`; for ReLU the derivative enclosure [0, 1] at the kink).

**The induction on m.** m = 0: the state after n1 lies in B_k (propagation). m -> m + 1 for
m < M, given r_k(M) <= R_k: let p be a reachable state, in B_k + r_k(m) by hypothesis, and q its
projection onto B_k (clip each coordinate): q is in B_k and |p - q| <= r_k(m) coordinate-wise. r is
non-decreasing in m (L, D >= 0), so the segment from q to p lies in B_k + r_k(m), inside B_k + R_k,
inside Y_g; the mean value theorem for each coordinate (f is Lipschitz on the segment) gives, for
every input x in [a, b],

    |f_i(p, x) - f_i(q, x)| <= sum_j (L_g)_ij |p_j - q_j| <= (L_g r_k(m))_i,

and f(q, x) lies in F(B_k) subset B_k + D_k (the definition of D_k). So f(p, x) lies in
B_k + D_k + L_g r_k(m) = B_k + r_k(m + 1). The readout is affine, so eps(n1 + m) <= the bound of
|y - x_1| over B_k + r_k(m) <= the one over B_k + r_k(M) (:func:`.steps.readout_error`), and
eps(n) <= tol for n1 <= n <= N = n1 + M when that is <= tol. If some R has ``D + L R <= R`` (L
bounded on B + R) then r(m) <= R for every m by the same induction, and the claim is **every n >= n1**.

**Computing r(M) for large M.** By doubling: ``P_(2a) = P_a + L^a P_a``, ``L^(2a) = L^a L^a`` with
``P_a = sum_{i < a} L^i``, then M assembled from powers of two from the top (the largest M whose
bound is within tol and whose r(M) <= R, both monotone in M): M < 2^:data:`BITS` costs a few dozen
(S x S) products per group. Every product and sum is rounded upward (non-negative entries: the
float64 sum of S products is within gamma_S of the exact one, Higham 2002, eq. 3.5), so the r used
is an upper bound of the exact one, which is all the proof needs. R is guessed from targets
T = 2^j (R = 1.01 T D, raised to 1.01 r(T) where L couples coordinates); each guess gives a valid
proof (possibly a short one), the longest is kept. ``tests/test_horizon.py`` checks that the
boxes B + r(m) contain the directly propagated boxes at several n.

**float32.** The float32 step is not Lipschitz (RN(x + d) - RN(x) may exceed d by an ulp), and
a bound of the kernel's own activation functions against the real ones is not among the
project's float32 facts (:mod:`.float32_facts` proves monotonicity, not accuracy), so the
induction is not claimed for float32: a float32 horizon is the unrolled propagation's N (within a
time budget) and the counterexample search beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ..cells import Cell
from . import intervals as iv
from .steps import affine_terms, readout_error, step

#: Slices per group of the Jacobian bound (the Jacobian is bounded over the hull of a group's boxes).
GROUPS = 64
#: Entries of the matrix powers are kept in [TINY, HUGE] or inf (:func:`_coarse`).
TINY, HUGE = 1e-100, 1e100
#: M < 2^BITS.
BITS = 36
#: Guesses of R per target T.
INNER = 3


@dataclass
class LinearGrowth:
    """A proved linear-growth invariant: the states after step n1 + m lie in B + r(m),
    r(m) = sum_{i < m} L^i D, for 0 <= m <= M (M = -1: for every m), so eps(n) <= eps for n1 <= n <= N."""
    n1: int
    M: int
    N: int                 # n1 + M: eps(n) <= tol for n1 <= n <= N
    eps: float             # the bound at n = N (the largest over n1..N)
    eps_n1: float          # the bound at n = n1
    max_D: float           # max entry of D, the boxes' growth in the step after n1
    iterations: int        # guesses of the box on which L is bounded
    eps_by_m: List[float] = field(default_factory=list)  # the bound at n1 + m, m = 1, 2, ... (as asked)
    proof: Optional[dict] = field(default=None, repr=False)  # with keep: B, D, L (per slice) for :meth:`box`

    def box(self, m: int):
        """The proved boxes after step n1 + m: ({"h": lo, ...}, {"h": hi, ...}) arrays (K, H); needs ``keep``."""
        p = self.proof
        r = np.zeros_like(p["D"])
        for _ in range(int(m)):
            r = _up_add(p["D"], p["apply"](p["L"], r))
        lo, hi = iv.dn(p["lo"] - r), iv.up(p["hi"] + r)
        H = p["H"]
        keys = ("h", "c")[:lo.shape[1] // H]
        return ({k: lo[:, i * H:(i + 1) * H] for i, k in enumerate(keys)},
                {k: hi[:, i * H:(i + 1) * H] for i, k in enumerate(keys)})

    @property
    def growth(self) -> float:
        """The bound's mean growth a step from n1 to N (0 for every n)."""
        return (self.eps - self.eps_n1) / self.M if self.M > 0 else 0.0

    @property
    def method(self) -> str:
        reach = "every n" if self.M < 0 else f"M = {self.M} steps, eps grows by {self.growth:.3g} a step"
        return f"linear-growth invariant from n1 = {self.n1}, D = max growth {self.max_D:.3g} a step ({reach})"


def _keys(cell: Cell):
    return ("h", "c") if cell.memory else ("h",)


def _stack(cell, st):
    ks = _keys(cell)
    return (np.concatenate([st[k][0] for k in ks], axis=1), np.concatenate([st[k][1] for k in ks], axis=1))


def _unstack(cell, lo, hi):
    H = cell.hidden
    return {k: (lo[:, i * H:(i + 1) * H], hi[:, i * H:(i + 1) * H]) for i, k in enumerate(_keys(cell))}


# ------------------------------------------------------------------ interval forward-mode derivatives
def _dadd(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return iv.r_add(a, b)


def _dneg(a):
    return None if a is None else iv.r_neg(a)


def _scale(v, d):
    """v (G, H) interval times d (G, H, S) interval; None for a zero derivative."""
    if d is None:
        return None
    return iv.r_mul((v[0][..., None], v[1][..., None]), d)


def _dual_table():
    one = (np.float64(1.0), np.float64(1.0))

    def add(a, b):
        return iv.r_add(a[0], b[0]), _dadd(a[1], b[1])

    def sub(a, b):
        return iv.r_sub(a[0], b[0]), _dadd(a[1], _dneg(b[1]))

    def neg(a):
        return iv.r_neg(a[0]), _dneg(a[1])

    def mul(a, b):
        return iv.r_mul(a[0], b[0]), _dadd(_scale(a[0], b[1]), _scale(b[0], a[1]))

    def div(a, b):
        q = iv.r_div(a[0], b[0])
        # d(a/b) = (da - q db) / b
        num = _dadd(a[1], _dneg(_scale(q, b[1])))
        inv = iv.r_div(one, b[0])
        return q, _scale(inv, num)

    def sigmoid(a):
        s = iv.r_sigmoid(a[0])
        return s, _scale(iv.r_mul(s, iv.r_sub(one, s)), a[1])

    def tanh(a):
        t = iv.r_tanh(a[0])
        return t, _scale(iv.r_sub(one, iv.r_mul(t, t)), a[1])

    def relu(a):
        lo, hi = a[0]
        dlo = np.where(lo > 0, 1.0, 0.0)
        dhi = np.where(hi < 0, 0.0, 1.0)
        return iv.r_relu(a[0]), _scale((dlo, dhi), a[1])

    def lerp(z, a, b):
        # (1 - z) a + z b; d = (b - a) dz + (1 - z) da + z db
        v = iv.r_lerp(z[0], b[0], a[0])
        d = _dadd(_dadd(_scale(iv.r_sub(b[0], a[0]), z[1]), _scale(iv.r_sub(one, z[0]), a[1])), _scale(z[0], b[1]))
        return v, d

    return {"add": add, "sub": sub, "neg": neg, "mul": mul, "div": div, "sigmoid": sigmoid, "tanh": tanh,
            "relu": relu, "lerp": lerp}


def jacobian_bound(cell: Cell, w, state, x) -> np.ndarray:
    """(K, S, S): an upper bound of |d s'_i / d s_j| over the state boxes ``state`` (K boxes) and
    inputs ``x`` (K, 1) boxes, in exact real arithmetic; S = H, or 2H (h then c) for a cell with
    memory. Interval forward-mode differentiation of the kind's equations (its interval graph)."""
    K, H = state["h"][0].shape
    keys = _keys(cell)
    S = H * len(keys)
    if not all(np.isfinite(v).all() for k in keys for v in state[k]):
        return np.full((K, S, S), np.inf)
    graph, leaves = affine_terms(cell, w, state, x, "real")
    Whh = np.asarray(w["weight_hh_l0"], np.float64)
    recurrence = cell.spec.recurrence

    def point(M):
        M = np.broadcast_to(M, (K, H, S))
        return M, M

    def leaf(n):
        if n.op == "const":
            return (np.float64(n.key),) * 2, None
        if n.op in ("h", "c"):
            j = keys.index(n.op)
            E = np.zeros((H, S))
            E[np.arange(H), j * H + np.arange(H)] = 1.0
            return state[n.op], point(E)
        value = leaves[n.op, n.key]
        if n.op == "x":
            return value, None
        rows = cell.gate_rows(n.key)
        E = np.zeros((H, S))
        if recurrence == "dense":
            E[:, :H] = Whh[rows]
        else:  # diagonal: u * h + b
            E[np.arange(H), np.arange(H)] = Whh[rows]
        return value, point(E)

    out = graph.evaluate(_dual_table(), leaf, names=list(keys))
    J = np.zeros((K, S, S))
    for i, k in enumerate(keys):
        d = out[k][1]
        if d is not None:
            J[:, i * H:(i + 1) * H, :] = np.maximum(np.abs(d[0]), np.abs(d[1]))
    if not np.isfinite(J).all():
        return np.full((K, S, S), np.inf)
    return J


# ------------------------------------------------------------------ the induction
def _coarse(x):
    """x raised to a value cheap to compute with (an upper bound stays one): entries below
    TINY become TINY (no subnormals, whose arithmetic is slow), above HUGE become inf."""
    return np.where(x > HUGE, np.inf, np.maximum(x, TINY))


def _up_mm(A, B):
    """An upper bound of A @ B for non-negative stacks (G, S, S) @ (G, S, S or 1): each entry of a
    float64 sum of S non-negative products is within gamma_S of the exact one (Higham 2002, eq. 3.5)."""
    S = A.shape[-1]
    return _coarse(iv.up((A @ B) * (1.0 + 4.0 * S * iv.U64)))


def _up_add(a, b):
    return _coarse(iv.up((a + b) * (1.0 + 2.0 * iv.U64)))


class _Powers:
    """Upper bounds of L^(2^j) and P_(2^j) = sum_{i < 2^j} L^i (per group, G stacks) by doubling:
    P_(2a) = P_a + L^a P_a, L^(2a) = L^a L^a; then ``largest``: the largest M < 2^bits that
    passes a monotone test, by adding powers of two from the top (P_(a + b) = P_a + L^a P_b)."""

    def __init__(self, L, bits):
        G, S, _ = L.shape
        A, P = _coarse(L), _coarse(np.broadcast_to(np.eye(S), (G, S, S)))
        self.A, self.P = [A], [P]
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(bits - 1):
                P = _up_add(P, _up_mm(A, P))
                A = _up_mm(A, A)
                self.A.append(A)
                self.P.append(P)

    def largest(self, ok, limit=None):
        """The largest M (at most ``limit``) with ``ok(P_M)`` (``ok`` monotone: true up to some M), and P_M."""
        G, S, _ = self.P[0].shape
        M, P, A = 0, np.zeros((G, S, S)), np.broadcast_to(np.eye(S), (G, S, S)).copy()
        with np.errstate(over="ignore", invalid="ignore"):
            for j in reversed(range(len(self.P))):
                if limit is not None and M + (1 << j) > limit:
                    continue
                P2 = _up_add(P, _up_mm(A, self.P[j]))
                if ok(P2):
                    M, P, A = M + (1 << j), P2, _up_mm(A, self.A[j])
        return M, P


def linear_growth(cell: Cell, w, B, xall, x1, tol: float, n1: int, groups: int = GROUPS,
                  bits: int = BITS, steps: int = 0, keep: bool = False) -> Optional[LinearGrowth]:
    """Prove the invariant ``B + r(m)``, ``r(m) = sum_{i < m} L^i D``, from the boxes ``B`` after
    step ``n1`` (exact real arithmetic; see the module doc), or None. ``xall`` the (K, 1) input
    boxes [a, b], ``x1`` the (K, 1) slices of x_1, ``tol`` the tolerance on |y - x_1|; M < 2^bits;
    ``steps``: also the bound at each n1 + m, m = 1 .. min(steps, M) (``eps_by_m``); ``keep``: keep
    what :meth:`LinearGrowth.box` needs.

    The box ``B + R`` on which L is bounded is guessed from targets T = 2^j (R = 1.01 T D,
    raised to 1.01 r(T) where the coupling in L makes r(T) larger); each guess gives a valid
    proof for the largest M with r(M) <= R and the bound within tol; the best is returned."""
    K = B["h"][0].shape[0]
    F = step(cell, w, B, xall, "real")
    blo, bhi = _stack(cell, B)
    flo, fhi = _stack(cell, F)
    if not all(np.isfinite(a).all() for a in (blo, bhi, flo, fhi)):
        return None
    s = np.minimum(iv.dn(flo - blo), iv.dn(bhi - fhi))  # margin: negative where the boxes grow
    D = np.maximum(-s, 0.0)
    x1v = (x1[0][:, 0], x1[1][:, 0])

    def bound(r):
        with np.errstate(invalid="ignore", over="ignore"):
            e = readout_error(w["weight_out"], w["bias_out"], _unstack(cell, iv.dn(blo - r), iv.up(bhi + r))["h"], x1v)
        return float(e.max()) if np.isfinite(e).all() else np.inf

    eps0 = bound(np.zeros_like(D))
    if not eps0 <= tol:
        return None
    G = int(min(groups, K))
    group_of = np.arange(K) * G // K  # contiguous groups of slices, each non-empty
    starts = np.searchsorted(group_of, np.arange(G + 1))  # the slices of group g: starts[g]:starts[g + 1]
    xg = (np.full((G, 1), xall[0].min()), np.full((G, 1), xall[1].max()))

    def lipschitz(R):
        ylo, yhi = iv.dn(blo - R), iv.up(bhi + R)
        glo, ghi = np.full((G, ylo.shape[1]), np.inf), np.full((G, ylo.shape[1]), -np.inf)
        np.minimum.at(glo, group_of, ylo)
        np.maximum.at(ghi, group_of, yhi)
        return jacobian_bound(cell, w, _unstack(cell, glo, ghi), xg)

    def apply(P, V):
        """P_g V_k for every slice k (rounded up)."""
        r = np.empty_like(V)
        with np.errstate(over="ignore", invalid="ignore"):
            for g in range(G):
                a, b = starts[g], starts[g + 1]
                r[a:b] = V[a:b] @ P[g].T
            return iv.up(r * (1.0 + 4.0 * V.shape[1] * iv.U64))

    r_of = lambda P: apply(P, D)  # noqa: E731

    def make(M, r, it, L, every=False):
        got = LinearGrowth(n1=int(n1), M=-1 if every else int(M), N=-1 if every else int(n1 + M), eps=bound(r),
                           eps_n1=eps0, max_D=float(D.max()), iterations=it)
        rm = np.zeros_like(D)
        for _ in range(min(steps, M) if M >= 0 else steps):  # r(m + 1) = D + L r(m), rounded up
            rm = _up_add(D, apply(L, rm))
            got.eps_by_m.append(bound(rm))
        if keep:
            got.proof = {"lo": blo, "hi": bhi, "D": D, "L": L, "apply": apply, "H": cell.hidden}
        return got

    best, tries = None, 0
    top = max((j for j in range(bits) if bound((1 << j) * D) <= tol), default=0)
    for j in reversed(range(top + 2)):
        T = 1 << j
        if best is not None and best[0] >= 2 * T:
            break
        R = iv.up(1.01 * T * D)
        for _ in range(INNER):
            tries += 1
            L = lipschitz(R)
            if not np.isfinite(L).all():
                break
            # every n: D + L R <= R gives r(m) <= R for all m (induction)
            if np.all(_up_add(D, apply(L, R)) <= R) and bound(R) <= tol:
                return make(-1, R, tries, L, every=True)
            pw = _Powers(L, bits)
            M, P = pw.largest(lambda P: bool(np.all(r_of(P) <= R)) and bound(r_of(P)) <= tol)
            if M >= 1 and (best is None or M > best[0]):
                best = (M, r_of(P), tries, L)
            if M >= T:
                break
            R = np.maximum(R, iv.up(1.01 * r_of(pw.largest(lambda P: True, limit=T)[1])))  # r(T)
    return None if best is None else make(*best)
