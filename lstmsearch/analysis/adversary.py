"""Worst inputs: an adversarial search over input sequences for recall-first.

The verdict (:mod:`.verdict`) scores a setting on *random* sequences. :func:`worst_inputs` asks
for the *worst* ones: at each length T it searches, among sequences x_1..x_T with every entry in
the task's input box [low, high], for one that maximises

    err(x) = max over outputs abs(y_T(x) - x_1)

where y_T is the setting's own (stored) readout applied to its hidden state after step T,
simulated in float32 on the ``cpu`` backend (what users run); a non-finite state or output
counts as ``err = inf``.

Method, per length (everything seeded by ``seed``):

1. **structured candidates**, all simulated in one batch: constant sequences (the box's ends, 0,
   its quarter points), alternating extremes (both phases), x_1 at one extreme with the rest at
   the other, x_1 at several levels (0 included) with the rest constant at an extreme or
   alternating, ramps up and down, and a few uniform random sequences;
2. **a random sample** of the task's own input distribution (fresh seed), as many sequences as
   steps 1 and 3 simulate together: its max and rms error are reported beside the search's, and
   its worst sequence joins the starting points;
3. **a (mu + lambda) evolution** from the ``keep`` worst sequences so far: each generation makes
   ``population`` children (Gaussian steps over the whole sequence at scales from 30 % to 0.3 %
   of the box's width, or a few entries set to an extreme), clipped to the box, simulates them
   in one batch and keeps the ``keep`` worst of parents and children; ``budget`` children in all;
4. **a local refinement** (``refine`` sequences in all): a coarse grid over four structured
   families with three parameters each -- x_1 followed by a constant a, by alternating a, b, by a
   for the first half and b for the second (two-level), or by a ramp from a to b -- then a compass
   (pattern) search on (x_1, a, b) from the worst grid points (and the worst of each family), and a line search on
   x_1 alone from the ``keep`` worst sequences of the evolution (the rest held fixed). Each search
   tries +-step along every parameter and along two random directions, moves to the worst neighbour
   that beats it (doubling the step), and halves the step when none does. The evolution's random steps are too coarse for an
   error that is a smooth function of x_1 and of a constant tail: at n = 2,103 the GRU row
   ``recall_first_gru32`` 18559 gives 5.6e-5 at x_1 = -0.834 with the rest 0.975, which the
   evolution alone missed (4.9e-5-5.1e-5).

The result is the worst error *found*: a lower bound on the true worst case over the box, not a
proof that no sequence does worse (for that, a certificate is needed). Because the random
sample's worst sequence is a starting point and the elite only ever grows worse, the reported
worst is at least every structured candidate's error and at least the random sample's max.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .. import readout as readout_mod
from ..cells import Cell
from ..errors import require
from ..evaluate import simulate
from ..tasks import Task
from .verdict import FRESH_SEED, task_check_lengths

__all__ = ["WorstCase", "worst_inputs", "sequence_errors", "structured_candidates", "format_worst",
           "family_sequence", "drift_probe", "DEFAULT_BUDGET", "DEFAULT_POPULATION", "DEFAULT_REFINE"]

#: Children simulated by the search per length (generations x population).
DEFAULT_BUDGET = 1280
#: Children per generation.
DEFAULT_POPULATION = 64
#: Step sizes of the Gaussian mutations, as fractions of the box's width.
_SCALES = (0.3, 0.1, 0.03, 0.01, 0.003)
#: Held-out stream of the random sample (the verdict's fresh seed, stream 1).
_RANDOM_STREAM = 1
#: Sequences simulated by the local refinement per length (grid and pattern search).
DEFAULT_REFINE = 2048
#: The refinement's families: x_1 followed by ... (parameters x_1, a, b).
_FAMILIES = ("constant", "alternating", "two-level", "ramp")
#: Grid levels of x_1 in the refinement's grid (a, b: the box's ends and middle; the constant: and its
#: quarter points).
_GRID_X1 = 17
#: Pattern searches started from the worst grid points (and from the worst point of each family).
_STARTS = 6
#: Random directions tried by each pattern search per step, beside the axes.
_RANDOM_DIRECTIONS = 2
#: The pattern search's first step and smallest step, as fractions of the box's width.
_STEP0, _STEP_MIN = 1.0 / 32, 1e-5


@dataclass
class WorstCase:
    """The worst sequence found at one length."""

    length: int
    worst: float                  # worst |err| found (structured, random sample and search)
    sequence: np.ndarray          # (T, I) float32: the sequence that gives it
    family: str                   # the candidate family it came from (+search when the search improved it)
    structured: float             # worst |err| among the structured candidates
    structured_family: str
    random_max: float             # max |err| over the random sample
    random_rms: float             # rms |err| over the random sample
    n_random: int                 # sequences in the random sample (= structured + searched)
    n_structured: int
    n_searched: int
    families: Dict[str, float] = field(default_factory=dict)  # worst |err| per structured family
    n_refined: int = 0            # sequences simulated by the local refinement

    def as_dict(self) -> Dict:
        return {"length": self.length, "worst": self.worst, "family": self.family, "structured": self.structured,
                "structured_family": self.structured_family, "random_max": self.random_max,
                "random_rms": self.random_rms, "n_random": self.n_random, "n_structured": self.n_structured,
                "n_searched": self.n_searched, "n_refined": self.n_refined, "families": dict(self.families)}


def _box(task: Task):
    require(task.name == "recall_first", f"worst inputs are defined for recall_first, got task {task.name}")
    dist = task.dist
    require(hasattr(dist, "low") and hasattr(dist, "high"),
            f"worst inputs need an input box [low, high]; the {dist.kind} distribution has none")
    return float(dist.low), float(dist.high)


def sequence_errors(cell: Cell, setting, x, backend: str = "cpu") -> np.ndarray:
    """``|err|`` (B,) float64 of one full setting (D,) on sequences x (T, B, I): max over outputs of
    ``|readout(h_T) - x_1|``, with the setting's own readout; inf where the state or output is not finite."""
    setting = np.asarray(setting, dtype=np.float32).reshape(1, -1)
    x = np.ascontiguousarray(x, dtype=np.float32)
    h = simulate(cell, setting, x, backend=backend)
    if cell.memory:
        h = h[0]
    y = readout_mod.apply(h, setting[:, cell.n_recurrent:], cell.outputs)[0]  # (B, O)
    err = np.abs(y - x[0].astype(np.float64)).max(axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def structured_candidates(T: int, I: int, low: float, high: float, rng: np.random.Generator, n_random: int = 8):
    """(x (T, B, I) float32, families (B,) list of str): the structured candidates of step 1."""
    mid = 0.5 * (low + high)
    zero = min(max(0.0, low), high)
    levels = sorted({low, high, mid, zero, low + 0.25 * (high - low), low + 0.75 * (high - low)})
    t = np.arange(T)
    alt = np.where(t % 2 == 0, high, low)
    seqs, fams = [], []

    def add(s, fam):
        seqs.append(np.asarray(s, dtype=np.float64))
        fams.append(fam)

    for v in levels:
        add(np.full(T, v), f"constant {v:g}")
    add(alt, "alternating high first")
    add(high + low - alt, "alternating low first")
    for a, b in ((high, low), (low, high)):
        s = np.full(T, b)
        s[0] = a
        add(s, f"x1 = {a:g}, rest {b:g}")
    for v in levels:
        for rest in (low, high):
            s = np.full(T, rest)
            s[0] = v
            add(s, f"x1 = {v:g}, rest {rest:g}")
        for phase in (alt, high + low - alt):
            s = phase.copy()
            s[0] = v
            add(s, f"x1 = {v:g}, rest alternating from {s[min(1, T - 1)]:g}")
    ramp = np.linspace(low, high, T) if T > 1 else np.array([high])
    add(ramp, "ramp up")
    add(ramp[::-1], "ramp down")
    for v in (low, high, zero):
        s = ramp.copy()
        s[0] = v
        add(s, f"x1 = {v:g}, rest ramp up")
        s = ramp[::-1].copy()
        s[0] = v
        add(s, f"x1 = {v:g}, rest ramp down")
    x = np.stack(seqs, axis=1)[:, :, None].repeat(I, axis=2)
    r = rng.uniform(low, high, size=(T, n_random, I))
    x = np.concatenate([x, r], axis=1)
    fams += ["random"] * n_random
    return np.ascontiguousarray(x, dtype=np.float32), fams


def _mutate(parents, low, high, rng, population):
    """``population`` children (T, population, I) of parents (T, k, I)."""
    T, k, I = parents.shape
    pick = np.arange(population) % k
    kids = parents[:, pick].astype(np.float64)
    width = high - low
    for j in range(population):
        mode = j % (len(_SCALES) + 1)
        if mode < len(_SCALES):
            kids[:, j] += rng.normal(0.0, _SCALES[mode] * width, size=(T, I))
        else:  # a few entries set to an extreme
            m = max(1, int(rng.integers(1, max(2, T // 4 + 1))))
            idx = rng.choice(T, size=min(m, T), replace=False)
            kids[idx, j] = rng.choice([low, high], size=(len(idx), I))
    return np.ascontiguousarray(np.clip(kids, low, high), dtype=np.float32), pick


def family_sequence(family: str, x1: float, a: float, b: float, T: int) -> np.ndarray:
    """(T,) float64: x_1 followed by the refinement's ``family`` with levels a, b (see the module doc):
    ``constant`` (a), ``alternating`` (a, b, a, ...), ``two-level`` (a for the first half of x_2..x_T,
    then b) or ``ramp`` (linear from a at step 2 to b at step T)."""
    t = np.arange(T)
    if family == "constant":
        s = np.full(T, float(a))
    elif family == "alternating":
        s = np.where(t % 2 == 1, float(a), float(b))
    elif family == "two-level":
        s = np.where(t <= T // 2, float(a), float(b))
    elif family == "ramp":
        s = a + (b - a) * (t - 1) / max(T - 2, 1)
    else:
        raise ValueError(f"unknown family {family!r}; one of {_FAMILIES}")
    s = np.asarray(s, dtype=np.float64)
    s[0] = x1
    return s


def _refine(cell, setting, T, I, low, high, elite_x, elite_e, refine, backend, rng):
    """(worst |err|, (T, I) sequence, family, sequences simulated) of the local refinement (module
    doc, step 4): a grid over :data:`_FAMILIES`, then compass searches from its worst point per
    family and on x_1 alone from the elite sequences (T, k, I) with errors (k,)."""
    if refine <= 0:
        return -np.inf, None, "", 0
    width = high - low
    x1s = np.linspace(low, high, _GRID_X1)
    points = [("constant", (x1, a, a)) for x1 in x1s for a in np.linspace(low, high, 5)]
    levels = np.linspace(low, high, 3)
    points += [(f, (x1, a, b)) for f in _FAMILIES[1:] for x1 in x1s for a in levels for b in levels]

    def build(cands):
        """cands: [(family or elite index, params)] -> (T, B, I) float32, clipped to the box."""
        seqs = []
        for f, p in cands:
            if isinstance(f, str):
                s = family_sequence(f, *p, T)
            else:
                s = elite_x[:, f, 0].astype(np.float64).copy()
                s[0] = p[0]
            seqs.append(s)
        x = np.clip(np.stack(seqs, axis=1), low, high)[:, :, None].repeat(I, axis=2)
        return np.ascontiguousarray(x, dtype=np.float32)

    points = points[:refine]
    err = sequence_errors(cell, setting, build(points), backend)
    used = len(points)
    order = [int(i) for i in np.argsort(-err, kind="stable")]
    starts = order[:_STARTS] + [next(i for i in order if points[i][0] == f) for f in _FAMILIES
                                if any(points[i][0] == f for i in order)]
    walkers = []  # [family or elite index, params, step, err]
    for i in dict.fromkeys(starts):
        walkers.append([points[i][0], np.array(points[i][1], np.float64), _STEP0 * width, float(err[i])])
    for k in np.argsort(-elite_e, kind="stable"):
        walkers.append([int(k), np.array([float(elite_x[0, k, 0])]), _STEP0 * width, float(elite_e[k])])
    best = max(walkers, key=lambda w: w[3])
    best = (best[3], best[0], best[1].copy())
    while True:
        active = [w for w in walkers if w[2] >= _STEP_MIN * width and np.isfinite(w[3])]
        cands, owner = [], []
        for w in active:
            dim = 2 if w[0] == "constant" else len(w[1])  # b is not used by the constant family
            dirs = list(np.eye(dim))
            if dim > 1:  # and random directions, which follow a ridge the axes cannot
                u = rng.normal(size=(_RANDOM_DIRECTIONS, dim))
                dirs += list(u / np.linalg.norm(u, axis=1, keepdims=True))
            for d in dirs:
                for sign in (1.0, -1.0):
                    p = w[1].copy()
                    p[:dim] = np.clip(p[:dim] + sign * w[2] * d, low, high)
                    cands.append((w[0], p))
                    owner.append(w)
        if not cands or used + len(cands) > refine:
            break
        e = sequence_errors(cell, setting, build(cands), backend)
        used += len(cands)
        for w in active:
            mine = [i for i, o in enumerate(owner) if o is w]
            i = max(mine, key=lambda j: e[j])
            if e[i] > w[3]:
                w[1], w[3], w[2] = cands[i][1], float(e[i]), min(2 * w[2], 0.25 * width)
            else:
                w[2] /= 2
            if w[3] > best[0]:
                best = (w[3], w[0], w[1].copy())
    e, f, p = best
    seq = build([(f, p)])[:, 0]
    if isinstance(f, str):
        rest = f"constant {p[1]:.6g}" if f == "constant" else f"{f} {p[1]:.6g}, {p[2]:.6g}"
    else:
        rest = "the rest of a searched sequence"
    return float(e), seq, f"x1 = {float(seq[0, 0]):.8g}, rest {rest} (refined)", used


def _worst_at(cell, setting, task, T, budget, population, keep, rng, backend, random_seed, refine=0):
    low, high = _box(task)
    I = task.n_inputs
    x, fams = structured_candidates(T, I, low, high, rng)
    err = sequence_errors(cell, setting, x, backend)
    families: Dict[str, float] = {}
    for f, e in zip(fams, err):
        key = f.split(",")[0] if f.startswith("x1") else f
        key = "constant" if key.startswith("constant") else key
        families[key] = max(families.get(key, 0.0), float(e))
    i0 = int(np.argmax(err))
    structured, structured_family = float(err[i0]), fams[i0]
    generations = max(0, int(budget) // int(population))
    n_searched = generations * int(population)
    n_random = x.shape[1] + n_searched
    xr, _ = task.with_length(T).sample(n_random, random_seed, _RANDOM_STREAM)
    er = sequence_errors(cell, setting, xr, backend)
    random_max = float(er.max())
    random_rms = float(np.sqrt(np.mean(er ** 2))) if np.isfinite(er).all() else float("inf")
    # the starting points: the worst structured candidates and the random sample's worst
    order = np.argsort(-err, kind="stable")[:keep]
    ir = int(np.argmax(er))
    elite_x = np.concatenate([x[:, order], xr[:, ir:ir + 1]], axis=1)
    elite_e = np.concatenate([err[order], er[ir:ir + 1]])
    elite_f = [fams[i] for i in order] + ["random sample"]
    start = float(elite_e.max())
    for _ in range(generations):
        if np.isinf(elite_e.max()):
            break
        kids, pick = _mutate(elite_x, low, high, rng, population)
        ek = sequence_errors(cell, setting, kids, backend)
        all_x = np.concatenate([elite_x, kids], axis=1)
        all_e = np.concatenate([elite_e, ek])
        all_f = elite_f + [elite_f[p] if elite_f[p].endswith("+search") else elite_f[p] + " +search" for p in pick]
        best = np.argsort(-all_e, kind="stable")[:keep + 1]
        elite_x, elite_e, elite_f = all_x[:, best], all_e[best], [all_f[i] for i in best]
    b = int(np.argmax(elite_e))
    worst, sequence = float(elite_e[b]), np.ascontiguousarray(elite_x[:, b])
    family = elite_f[b] if worst > start else elite_f[b].replace(" +search", "")
    r_err, r_seq, r_family, n_refined = _refine(cell, setting, T, I, low, high, elite_x, elite_e, refine, backend,
                                                rng)
    if r_err > worst:
        worst, sequence, family = r_err, np.ascontiguousarray(r_seq), r_family
    return WorstCase(length=int(T), worst=worst, sequence=sequence, family=family,
                     structured=structured, structured_family=structured_family, random_max=random_max,
                     random_rms=random_rms, n_random=int(n_random), n_structured=int(x.shape[1]),
                     n_searched=int(n_searched), families=families, n_refined=int(n_refined))


def worst_inputs(cell: Cell, setting, task: Task, lengths: Optional[Sequence[int]] = None,
                 budget: int = DEFAULT_BUDGET, population: int = DEFAULT_POPULATION, keep: int = 4,
                 seed: int = 0, backend: str = "cpu", random_seed: int = FRESH_SEED,
                 refine: int = DEFAULT_REFINE) -> List[WorstCase]:
    """The worst recall-first inputs found for one full setting (D,) (recurrent weights and readout).

    Maximises ``|y_T - x_1|`` over sequences in the task's input box [low, high] at each length T
    (default: the verdict's checked lengths :func:`~.verdict.task_check_lengths` for the task) by
    structured candidates, then a seeded (mu + lambda) evolution of ``budget`` children in
    generations of ``population``, then a local refinement of ``refine`` sequences (grid and
    pattern search over structured families; 0: none) (see the module doc). float32 simulation on ``backend``
    (default ``cpu``); the setting's stored readout, never refitted. A search: the worst found is a
    lower bound on the true worst case, not a proof. Returns one :class:`WorstCase` per length.
    """
    _box(task)
    params = cell.check_params(np.asarray(setting, dtype=np.float32))
    require(params.shape[0] == 1, f"worst_inputs takes one setting, got {params.shape[0]}")
    require(cell.inputs == task.n_inputs and cell.outputs == task.n_outputs,
            f"task {task.name} has {task.n_inputs} input(s) and {task.n_outputs} output(s); "
            f"the cell has inputs={cell.inputs}, outputs={cell.outputs}")
    for name, v, least in (("budget", budget, 0), ("population", population, 1), ("keep", keep, 1),
                           ("refine", refine, 0)):
        require(isinstance(v, (int, np.integer)) and v >= least, f"{name} must be an integer >= {least}, got {v!r}")
    lengths = task_check_lengths(task) if lengths is None else [int(L) for L in lengths]
    require(lengths and all(L >= task.min_length for L in lengths),
            f"lengths must be at least {task.min_length}, got {lengths}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    return [_worst_at(cell, params[0], task, L, int(budget), int(population), int(keep), rng, backend, random_seed,
                      int(refine)) for L in lengths]


#: x_1 values of :func:`drift_probe` (on [-1, 1], scaled to the box).
PROBE_X1 = 41


def drift_probe(cell: Cell, setting, low: float, high: float, length: int, backend: str = "cpu"):
    """(worst ``|y_T - x_1|``, its sequence (T,)) over x_1 on a grid of :data:`PROBE_X1` values of
    [low, high] followed by T - 1 inputs constant at low, high or the middle, or alternating
    (both phases): the tails that push a slowly leaking memory the same way at every step, so that
    its error grows linearly with T. Cheap enough (5 x 41 sequences) for lengths up to 10^5-10^6,
    where the evolution of :func:`worst_inputs` is not: a probe for the length at which a setting
    proved up to some N first fails."""
    T = int(length)
    x1 = np.linspace(low, high, PROBE_X1)
    t = np.arange(T)
    alt = np.where(t % 2 == 0, high, low)
    tails = [np.full(T, low), np.full(T, high), np.full(T, 0.5 * (low + high)), alt, high + low - alt]
    x = np.empty((T, len(tails) * x1.size, 1), np.float32)
    for j, tail in enumerate(tails):
        x[:, j * x1.size:(j + 1) * x1.size, 0] = tail[:, None]
    x[0, :, 0] = np.tile(x1, len(tails))
    err = sequence_errors(cell, setting, x, backend)
    i = int(np.argmax(err))
    return float(err[i]), x[:, i, 0].astype(np.float64)


def format_worst(cases: Sequence[WorstCase]) -> List[str]:
    """A text table: one line per length."""
    lines = [f"  {'length':>7} {'structured':>11} {'searched':>11} {'random max':>11} {'random rms':>11}  family"]
    for c in cases:
        lines.append(f"  {c.length:>7} {c.structured:>11.3g} {c.worst:>11.3g} {c.random_max:>11.3g} "
                     f"{c.random_rms:>11.3g}  {c.family}")
    return lines
