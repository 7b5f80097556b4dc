r"""Certificates for recall-first: what holds for *all* input sequences in a box.

For a cell (1 input, 1 output, its stored readout ``y = W_out h_n + b_out``) and inputs
x_t in [a, b], :func:`certify` proves one of:

(i)   **all n** -- an inductive invariant: K state boxes B_k, one per slice [a_k, b_k] of x_1
      (the slices cover [a, b]), with ``step(0, [a_k, b_k]) subset B_k`` (the state after step 1)
      and ``step(B_k, [a, b]) subset B_k`` (closed under one step, any x_t). By induction the
      state after every step n >= 1 lies in B_k, so ``|y - x_1| <= eps = max_k sup_{B_k} |y - x_1|``;
(ii)  **n <= N** -- interval propagation B_k(n) = step(B_k(n-1), [a, b]) through the unrolled
      steps: the bound eps(n) at each n, and N, the largest n with eps(m) <= tol for all m <= n;
      if some B_k(n) subset B_k(n-1) the propagation itself has found an invariant (inclusion
      isotonicity: every later box lies inside), and (i) holds; in exact real arithmetic, from the
      boxes after n1 = n0, 2 n0, 4 n0, ..., the linear-growth induction of :mod:`.horizon` (the states
      after n1 + m lie in B + sum_(i<m) L^i D, L a bound of the step's Jacobian) gives N in one
      step of proof, far past ``max_length`` (the note names the method, n1 and D);
With ``min_length`` n0 > 1 the claims are about n >= n0 only (a searched setting trained at
n = 20 need not answer at n = 1): the boxes are propagated through steps 1..n0 first, the
invariant of (i) must contain the boxes after step n0, and (ii) counts eps(n) from n0 on.
:func:`certify_trained` picks n0 for a stored row the one way that ``lstmsearch certify`` and the
report share: n0 = 1 when that proves every n (the stronger claim), else the shortest trained length.

(iii) **not certified** -- with the counterexample search's worst sequence
      (:func:`lstmsearch.analysis.adversary.worst_inputs`) at the first length not certified
      and at max(2 (N + 1) - 1, 20),
      re-simulated on the ``cpu`` backend (float32) or, for a claim in exact real arithmetic, in the
      float64 reference (the error of a real claim is judged in real-like arithmetic, not in the
      kernel's float32); "refuted" when that error exceeds the tolerance. Past a proved N where that
      search finds no failure, a drift probe (:func:`lstmsearch.analysis.adversary.drift_probe`) runs at
      4 N + 3, 8 N + 7, ... (:data:`PROBE_STEPS`): a slow leak fails there first.

The arithmetic is named: ``"real"`` (exact real arithmetic; sound outward-rounded interval
arithmetic, Moore 1966) or ``"float32"`` (the float32 evaluation of the ``cpu`` backend,
operation by operation; Higham 2002 for the rounding model), see :mod:`.steps`.
The dependency between the state and x_1 is lost by interval arithmetic; slicing x_1 finely
recovers it: each slice adds about its width to eps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ..cells import Cell
from ..errors import require
from . import intervals as iv
from .horizon import linear_growth
from .steps import ARITHMETICS, readout_error, step, weights

__all__ = ["Certificate", "certify", "certify_trained", "default_slices", "DEFAULT_MAX_LENGTH", "DEFAULT_TOL",
           "ARITHMETICS"]

#: Largest (slices x gate rows) of the default slicing.
MAX_CELLS = 2 ** 20
#: Longest unrolled propagation.
DEFAULT_MAX_LENGTH = 1000
#: Default tolerance on |y - x_1| (nmse ~ 3 tol^2 for U[-1, 1]: 3e-6).
DEFAULT_TOL = 1e-3
#: eps(n) listed past a linear-growth proof's n1 (``eps_by_length``): at most this many.
LISTED_STEPS = 200
#: Iterations of the invariant search (hull, then epsilon-inflation; Rump 1983).
INVARIANT_ITERATIONS = 24

ARITHMETIC_NAMES = {"real": "exact real arithmetic", "float32": "float32 evaluation of the cpu kernel"}


@dataclass
class Certificate:
    """What :func:`certify` proved. ``kind``: ``"all_n"``, ``"up_to_n"`` or ``"not_certified"``."""
    kind: str
    arithmetic: str
    cell: str
    low: float
    high: float
    tol: float
    eps: float                      # all_n: the bound for every n; up_to_n: max eps(n) over n <= N
    N: int                          # all_n: -1 (every n); else the largest certified n (0: none)
    slices: int
    boxes: int                      # state boxes of the invariant (slices) or propagated per step
    eps_by_length: List[float] = field(default_factory=list)  # eps(n), n = 1, 2, ... as propagated (or proved)
    invariant_found_at: Optional[int] = None   # iterations (or the length) at which the invariant closed
    counterexample: Optional[np.ndarray] = None  # (T,) the worst sequence found past N
    counterexample_error: Optional[float] = None
    counterexample_length: Optional[int] = None
    refuted: bool = False             # the counterexample's error exceeds tol
    notes: List[str] = field(default_factory=list)
    state_boxes: Optional[dict] = None  # all_n: the invariant, {"h": (lo, hi), ("c": ...)} arrays (slices, H)
    slice_edges: Optional[tuple] = None  # (lo, hi) arrays (slices,): the slices of x_1
    min_length: int = 1               # the claims are about n >= min_length

    @property
    def statement(self) -> str:
        """One paragraph, plain words."""
        arith = (f"the float32 cpu kernel's output" if self.arithmetic == "float32"
                 else "the output computed in exact real arithmetic")
        box = f"[{self.low:g}, {self.high:g}]"
        how = ("the unrolled steps, then the linear-growth induction of lstmsearch.certify.horizon"
               if any(n.startswith("proof for n >=") for n in self.notes) else
               "an invariant set of state boxes closed under one step" if self.kind == "all_n" else "the unrolled steps")
        proof = f"(interval arithmetic over {self.slices} slices of x_1, {how})"
        n0 = self.min_length
        if self.kind == "all_n":
            return (f"For every n >= {n0} and every x_1..x_n in {box}, {arith} differs from x_1 by at most "
                    f"{self.eps:.3g} {proof}.")
        if self.kind == "up_to_n":
            s = (f"For every {f'{n0} <= ' if n0 > 1 else ''}n <= {self.N} and every x_1..x_n in {box}, {arith} differs from x_1 by at most "
                 f"{self.eps:.3g} (tolerance {self.tol:g}) {proof}; no invariant was found for all n.")
        else:
            s = (f"Not certified in {ARITHMETIC_NAMES[self.arithmetic]}: the interval bound exceeds the tolerance "
                 f"{self.tol:g} already at n = {n0} ({self.eps_by_length[n0 - 1]:.3g}).") \
                if len(self.eps_by_length) >= n0 else \
                f"Not certified in {ARITHMETIC_NAMES[self.arithmetic]}."
        if self.counterexample_error is not None:
            if self.kind == "up_to_n":  # the search past the proved N brackets the horizon
                verdict = (f"above the tolerance, refuting any claim past n = {self.N}: the horizon lies "
                           f"between n = {self.N} and {self.counterexample_length}" if self.refuted else
                           f"within the tolerance: n = {self.N + 1} on is neither proved nor refuted")
            else:
                verdict = "refuting it" if self.refuted else "within the tolerance, so neither proved nor refuted"
            where = "float64 reference" if self.arithmetic == "real" else "float32 cpu"
            s += (f" The counterexample search at n = {self.counterexample_length} found |y - x_1| = "
                  f"{self.counterexample_error:.3g} ({where}), {verdict}.")
        return s

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("kind", "arithmetic", "cell", "low", "high", "tol", "eps", "N", "slices",
                                           "boxes", "invariant_found_at", "counterexample_error",
                                           "counterexample_length", "refuted", "notes")}
        d["statement"] = self.statement
        return d


def default_slices(cell: Cell, low: float, high: float, tol: float) -> int:
    """Slices of width about tol / 4 (each adds its width to eps), at most
    ``MAX_CELLS / (G H)`` so that a step costs about the same for every cell size."""
    want = int(np.ceil(4.0 * (high - low) / tol))
    cap = max(64, MAX_CELLS // (cell.gates * cell.hidden))
    return int(max(17, min(want, cap))) | 1  # odd: 0 inside a slice, not at an edge


def _slices(low, high, K, arithmetic):
    edges = np.linspace(low, high, K + 1)
    if arithmetic == "float32":  # x_1 is a float32 number: cover [RN(low), RN(high)] with float32 edges
        edges = iv.rn32(edges)
        edges[0], edges[-1] = iv.rn32(low), iv.rn32(high)
    return edges[:-1].reshape(-1, 1), edges[1:].reshape(-1, 1)


def _zero_state(cell, K):
    z = np.zeros((K, cell.hidden))
    st = {"h": (z, z)}
    if cell.memory:
        st["c"] = (z, z)
    return st


def _hull(a, b):
    return {k: iv.hull(a[k], b[k]) for k in a}


def _inside(outer, inner):
    """Per slice: every coordinate of inner inside outer (and finite)."""
    ok = None
    for k in outer:
        c = iv.contains(outer[k], inner[k]).all(axis=1) & np.isfinite(inner[k][0]).all(axis=1) \
            & np.isfinite(inner[k][1]).all(axis=1)
        ok = c if ok is None else ok & c
    return ok


def _inflate(st, r, arithmetic):
    out = {}
    for k, (lo, hi) in st.items():
        w = hi - lo
        lo2, hi2 = iv.dn(lo - r * w - 1e-30), iv.up(hi + r * w + 1e-30)
        if arithmetic == "float32":
            lo2, hi2 = iv.rd32(lo2), iv.ru32(hi2)
        out[k] = (lo2, hi2)
    return out


def _finite(st):
    return all(np.isfinite(v[0]).all() and np.isfinite(v[1]).all() for v in st.values())


def _invariant(cell, w, first, xall, arithmetic, iterations):
    """A closed set of boxes containing ``first``, or None: hull iterations, then
    epsilon-inflation of growing size (Rump 1983)."""
    B = first
    for it in range(1, iterations + 1):
        F = step(cell, w, B, xall, arithmetic)
        if not _finite(F):
            return None, it
        if _inside(B, F).all():
            return B, it
        B = _hull(B, F)
        if it >= 3 and it % 3 == 0:
            B = _inflate(B, 0.01 * 4 ** (it // 3 - 1), arithmetic)
    return None, iterations


def certify(cell: Cell, params, low: float, high: float, arithmetic: str = "float32",
            tol: float = DEFAULT_TOL, slices: Optional[int] = None, max_length: int = DEFAULT_MAX_LENGTH,
            counterexample: bool = True, task=None, budget: int = 640, seed: int = 0,
            min_length: int = 1, horizon: bool = True, max_seconds: Optional[float] = None,
            invariant_iterations: int = INVARIANT_ITERATIONS, search_past: bool = True) -> Certificate:
    """Prove what holds for all recall-first input sequences in [low, high] (see the module doc).

    ``cell`` with 1 input and 1 output; ``params`` one full setting (D,) (recurrent weights and
    the stored readout). ``arithmetic``: ``"float32"`` (the ``cpu`` kernel) or ``"real"``.
    ``tol`` bounds |y - x_1| for (ii); ``slices`` of x_1 (default :func:`default_slices`); ``max_length`` steps of propagation.
    With ``counterexample``, an uncertified length is searched by
    :func:`lstmsearch.analysis.adversary.worst_inputs` (``budget`` sequences, ``seed``) on
    ``task`` (default: recall_first with inputs uniform in [low, high]). ``min_length``: claim
    only n >= min_length (see the module doc). ``horizon``: in exact real arithmetic, try the
    linear-growth invariant of :mod:`.horizon` from n1 = min_length, 2 min_length, 4 min_length, ...
    (one induction can reach millions of steps, beyond ``max_length``). ``max_seconds``: stop the unrolled propagation
    after this long (the claim is then n <= the last length reached). ``invariant_iterations``: of
    the invariant search (i) (0: skip it). ``search_past``: with ``counterexample``, also search past
    an N that the propagation proved up to ``max_length`` (at N + 1 and 2 N + 1), so that a proved
    horizon comes with the worst input found beyond it.
    """
    require(arithmetic in ARITHMETICS, f"arithmetic must be one of {', '.join(ARITHMETICS)}, got {arithmetic!r}")
    require(cell.inputs == 1 and cell.outputs == 1,
            f"certify handles 1 input and 1 output (recall_first), got inputs={cell.inputs}, outputs={cell.outputs}")
    require(np.isfinite(low) and np.isfinite(high) and low < high,
            f"the input box needs finite low < high, got [{low}, {high}]: pass --box LOW HIGH")
    slices = default_slices(cell, low, high, tol) if slices is None else slices
    require(isinstance(slices, (int, np.integer)) and slices >= 1, f"slices must be a positive integer, got {slices!r}")
    require(isinstance(max_length, (int, np.integer)) and max_length >= 1,
            f"max_length must be a positive integer, got {max_length!r}")
    require(np.isfinite(tol) and tol > 0, f"tol must be positive, got {tol!r}")
    require(isinstance(min_length, (int, np.integer)) and 1 <= min_length <= max_length,
            f"min_length must be an integer from 1 to max_length = {max_length}, got {min_length!r}")
    params = cell.check_params(np.asarray(params, np.float32))
    require(params.shape[0] == 1, f"certify takes one setting, got {params.shape[0]}")
    params = params[0]
    require(np.isfinite(params).all(), "the setting has non-finite weights; nothing to certify")
    w = weights(cell, params)
    K = int(slices)
    x1 = _slices(low, high, K, arithmetic)
    lo_all = iv.rn32(low) if arithmetic == "float32" else low
    hi_all = iv.rn32(high) if arithmetic == "float32" else high
    xall = (np.full((K, 1), lo_all), np.full((K, 1), hi_all))
    w_out, b_out = w["weight_out"], w["bias_out"]
    first = step(cell, w, _zero_state(cell, K), x1, arithmetic)
    err = lambda st: float(np.max(readout_error(w_out, b_out, st["h"], (x1[0][:, 0], x1[1][:, 0]))))  # noqa: E731
    cert = dict(arithmetic=arithmetic, cell=f"{cell.kind} H={cell.hidden}", low=float(low), high=float(high),
                tol=float(tol), slices=K, boxes=K, min_length=int(min_length))
    # (i) an invariant by hull iterations and inflation, around the boxes after step min_length
    start, before = first, []
    for _ in range(int(min_length) - 1):
        if not _finite(start):
            break
        before.append(err(start))
        start = step(cell, w, start, xall, arithmetic)
    inv, its = _invariant(cell, w, start, xall, arithmetic, invariant_iterations) if _finite(start) else (None, 0)
    if inv is not None:
        eps = err(inv)
        return Certificate(kind="all_n", eps=eps, N=-1, invariant_found_at=its, eps_by_length=before + [err(start)],
                           state_boxes=inv, slice_edges=(x1[0][:, 0], x1[1][:, 0]), **cert) \
            if eps <= tol else _propagate(cell, w, first, xall, arithmetic, err, tol, max_length, cert, params,
                                          counterexample, task, budget, seed, inv_eps=eps,
                                          horizon=x1 if horizon else None, max_seconds=max_seconds,
                                          resume=(start, before), search_past=search_past)
    return _propagate(cell, w, first, xall, arithmetic, err, tol, max_length, cert, params, counterexample, task,
                      budget, seed, horizon=x1 if horizon else None, max_seconds=max_seconds, resume=(start, before),
                      search_past=search_past)


def certify_trained(cell: Cell, params, low: float, high: float, trained_length: int = 1,
                    min_length: Optional[int] = None, counterexample: bool = True, **kw) -> Certificate:
    """The one certificate of a setting that ``lstmsearch certify`` and the report both state.

    With ``min_length`` given it is :func:`certify` for n >= ``min_length``, as asked. Without
    it, the strongest claim the proof gives: **every n >= 1** when the proof from step 1 on covers
    every n (an invariant; the hand-built constructions, and many searched rows); otherwise the
    claim about n >= ``trained_length`` (the shortest length the study scored the row at: a row
    searched at n = 20 need not answer at n = 1), unless the claim from n = 1 reaches as far (the
    same N: then it is the stronger one, 1 <= n <= N). ``trained_length`` 1 (a construction, an
    ``.npz``) is one :func:`certify` from n = 1. Other keywords are :func:`certify`'s.
    """
    if min_length is not None:
        return certify(cell, params, low, high, counterexample=counterexample, min_length=int(min_length), **kw)
    n0 = int(min(max(int(trained_length), 1), kw.get("max_length", DEFAULT_MAX_LENGTH)))
    if n0 <= 1:
        return certify(cell, params, low, high, counterexample=counterexample, min_length=1, **kw)
    from_1 = certify(cell, params, low, high, counterexample=False, min_length=1, **kw)
    if from_1.kind == "all_n":
        return from_1
    from_n0 = certify(cell, params, low, high, counterexample=counterexample, min_length=n0, **kw)
    if from_1.kind == "up_to_n" and from_n0.kind == "up_to_n" and from_1.N == from_n0.N:
        for k in ("counterexample", "counterexample_error", "counterexample_length", "refuted"):
            setattr(from_1, k, getattr(from_n0, k))  # the same search: at N + 1 either way
        return from_1
    if from_n0.kind != "not_certified":
        from_n0.notes.append(f"from n = 1 the proof gives less ({_short(from_1)}); the claim is about n >= {n0}, "
                             "the shortest length the setting was scored at")
    return from_n0


def _short(c: Certificate) -> str:
    if c.kind == "all_n":
        return f"every n >= {c.min_length}"
    if c.kind == "up_to_n":
        return f"{c.min_length} <= n <= {c.N}"
    return "not certified" + (f" (bound {c.eps_by_length[c.min_length - 1]:.3g} at n = {c.min_length})"
                              if len(c.eps_by_length) >= c.min_length else "")


def _propagate(cell, w, first, xall, arithmetic, err, tol, max_length, cert, params, counterexample, task, budget,
               seed, inv_eps=None, horizon=None, max_seconds=None, resume=None, search_past=True):
    """(ii): unrolled interval propagation (with ``horizon``, the slices of x_1, in exact real arithmetic:
    the linear-growth invariant of :mod:`.horizon` from n1 = n0, 2 n0, 4 n0, ... until one reaches past
    ``max_length``); (iii): the counterexample past N.
    ``resume``: (the boxes after step n0, eps(n) for n < n0) when already propagated that far."""
    notes = []
    if inv_eps is not None:
        notes.append(f"an invariant exists but its bound {inv_eps:.3g} exceeds the tolerance")
    n0 = cert["min_length"]
    eps_n, B, N, first_n = [], first, 0, 1
    if resume is not None and len(resume[1]) == n0 - 1:
        B, eps_n, first_n = resume[0], list(resume[1]), n0
    started = time.perf_counter()
    for n in range(first_n, max_length + 1):
        n1 = n - 1  # the induction from the boxes after n0, 2 n0, 4 n0, ... (a transient may have passed)
        if horizon is not None and arithmetic == "real" and N == n1 >= n0 and (n1 // n0) & (n1 // n0 - 1) == 0 \
                and n1 % n0 == 0:
            lg = linear_growth(cell, w, B, xall, horizon, tol, n1, steps=min(max_length - n1, LISTED_STEPS))
            if lg is not None and (lg.M < 0 or lg.N > max_length):
                return _from_growth(lg, eps_n + lg.eps_by_m, notes, cert, cell, params, counterexample, task, budget,
                                    seed)
        if max_seconds is not None and n > n0 and time.perf_counter() - started > max_seconds:
            notes.append(f"propagation stopped after {max_seconds:g} s (max_seconds) at n = {n - 1}")
            break
        if n > first_n:
            F = step(cell, w, B, xall, arithmetic)
            if n > n0 and _inside(B, F).all() and max(eps_n[n0 - 1:]) <= tol:
                return Certificate(kind="all_n", eps=max(eps_n[n0 - 1:]), N=-1, invariant_found_at=n, eps_by_length=eps_n,
                                   notes=notes + [f"the boxes at n = {n} lie inside those at n = {n - 1}: every later "
                                                  "state lies in the union of the boxes so far"], **cert)
            B = F
        e = err(B) if _finite(B) else float("inf")
        eps_n.append(e)
        if n < n0:
            continue
        if not e <= tol:
            break
        N = n
    kind = "up_to_n" if N >= n0 else "not_certified"
    c = Certificate(kind=kind, eps=max(eps_n[n0 - 1:N]) if N else eps_n[-1], N=N, eps_by_length=eps_n, notes=notes,
                    **cert)
    if N >= max_length:
        c.notes.append(f"propagation stopped at max_length = {max_length} with eps {eps_n[-1]:.3g}")
        if not search_past:
            return c
    if counterexample:
        _counterexample(c, cell, params, task, max(N + 1, n0), budget, seed)
    return c


#: The counterexample search past a proved N simulates at most this many steps in all (sequences x length).
COUNTEREXAMPLE_STEPS = 2 * 10 ** 7
#: ... and never sequences longer than this.
COUNTEREXAMPLE_MAX_LENGTH = 10 ** 6


def _from_growth(lg, eps_n, notes, cert, cell, params, counterexample, task, budget, seed):
    """The certificate of a proved linear-growth invariant (:func:`.horizon.linear_growth`)."""
    n0 = cert["min_length"]
    eps = max(max(eps_n[n0 - 1:]), lg.eps)
    notes = notes + [f"proof for n >= {lg.n1}: {lg.method} (states after step n1 + m lie in B + sum_(i<m) L^i D, "
                     f"L a bound of the step's Jacobian; see lstmsearch.certify.horizon)"]
    if lg.M < 0:
        return Certificate(kind="all_n", eps=eps, N=-1, eps_by_length=eps_n, notes=notes, **cert)
    c = Certificate(kind="up_to_n", eps=eps, N=lg.N, eps_by_length=eps_n, notes=notes, **cert)
    if counterexample:
        if lg.N + 1 > COUNTEREXAMPLE_MAX_LENGTH:
            c.notes.append(f"no counterexample search past N: n = {lg.N + 1} is longer than "
                           f"{COUNTEREXAMPLE_MAX_LENGTH} steps")
        else:
            _counterexample(c, cell, params, task, lg.N + 1, budget, seed)
    return c


def _counterexample(c, cell, params, task, length, budget, seed):
    """The worst sequence found at the first uncertified length and at max(2 length - 1, 20)."""
    from ..analysis.adversary import DEFAULT_REFINE, worst_inputs
    from ..tasks import make_task

    if task is None:
        task = make_task("recall_first", length=max(length, 2), dist={"kind": "uniform", "low": c.low, "high": c.high})
    lengths = sorted({max(length, task.min_length), max(2 * length - 1, 20)})
    lengths = [L for L in lengths if L <= COUNTEREXAMPLE_MAX_LENGTH] or lengths[:1]
    per_length = COUNTEREXAMPLE_STEPS // max(lengths)  # sequences the step cap allows at the longest length
    budget = int(min(budget, max(16, per_length // 2)))
    refine = int(min(DEFAULT_REFINE, max(0, per_length // 2)))  # the local refinement shares the cap
    case = max(worst_inputs(cell, params, task, lengths=lengths, budget=budget, seed=seed, refine=refine),
               key=lambda k: k.worst)
    c.counterexample = np.asarray(case.sequence, np.float32)[:, 0]
    c.counterexample_error = float(case.worst)
    c.counterexample_length = int(case.length)
    if c.arithmetic == "real":  # judge a real-arithmetic claim in the float64 reference
        e64 = _float64_error(cell, params, case.sequence)
        c.notes.append(f"the worst sequence found at n = {case.length}: |y - x_1| = {case.worst:.3g} on the float32 "
                       f"cpu kernel, {e64:.3g} in the float64 reference")
        c.counterexample_error = e64
    c.refuted = bool(c.counterexample_error > c.tol)
    if not c.refuted and c.kind == "up_to_n":
        _probe_further(c, cell, params, c.low, c.high)


def _float64_error(cell, params, sequence):
    from ..analysis.adversary import sequence_errors

    seq = np.asarray(sequence, np.float64).reshape(-1, 1, 1)
    return float(sequence_errors(cell, params, seq, backend="reference")[0])


#: The drift probe past 2 N + 1 simulates at most this many steps (float32 cpu) in all ...
PROBE_STEPS = 4 * 10 ** 7
#: ... and re-simulates its failing sequence in the float64 reference (a real claim) up to this length.
PROBE_FLOAT64_LENGTH = 2 * 10 ** 5


def _probe_further(c, cell, params, low, high):
    """Past a proved N whose search at N + 1 and 2 N + 1 found no failure: the drift probe
    (:func:`lstmsearch.analysis.adversary.drift_probe`) at 4 N + 3, 8 N + 7, ... within
    :data:`PROBE_STEPS`, until an error above the tolerance (in the float64 reference for a real
    claim): that sequence becomes the counterexample, and the horizon lies between N and its length."""
    from ..analysis.adversary import PROBE_X1, drift_probe

    per_step = 5 * PROBE_X1
    L, spent = 4 * (c.N + 1) - 1, 0
    while L <= COUNTEREXAMPLE_MAX_LENGTH and spent + per_step * L <= PROBE_STEPS:
        spent += per_step * L
        e, seq = drift_probe(cell, params, low, high, L)
        if e > c.tol:
            if c.arithmetic == "real":
                if L > PROBE_FLOAT64_LENGTH:
                    c.notes.append(f"the drift probe fails at n = {L:,} on the float32 cpu kernel ({e:.3g}); too long "
                                   "to re-simulate in the float64 reference here")
                    return
                e32, e = e, _float64_error(cell, params, seq)
                c.notes.append(f"the drift probe at n = {L:,}: |y - x_1| = {e32:.3g} on the float32 cpu kernel, "
                               f"{e:.3g} in the float64 reference")
                if not e > c.tol:
                    L = 2 * L + 1
                    continue
            else:
                c.notes.append(f"the drift probe at n = {L:,}: |y - x_1| = {e:.3g} on the float32 cpu kernel")
            c.counterexample = np.asarray(seq, np.float32)
            c.counterexample_error, c.counterexample_length, c.refuted = float(e), int(L), True
            return
        L = 2 * L + 1
    c.notes.append(f"the drift probe found no failure up to n = {(L - 1) // 2:,}")
