r"""Time to solution, side by side: lstmsearch against a JAX population and evosax, in one run.

The problem is the blind study of ``studies/blind_{lstm,gru}32.toml`` at H hidden units (default 8):
every recurrent weight free in [-30, 30] (dimension G H (H + 3) for I = 1), the readout fitted in
closed form, recall_first over 128 training + 128 held-out uniform sequences, scored at n = 20 and
21 (the worst of the two), sep-CMA-ES with a population of 1024, mean at the middle of the bounds
and initial step size 0.3 x the bound width (18). Each contender searches until the best member of
a generation has nmse < 1e-5 at n = 20 and 21; that member is then checked by
:func:`lstmsearch.analysis.verdict.verdict` (readout refitted by :func:`lstmsearch.evaluate` on the
study's training sequences, the same refit for every contender; fresh sequences, lengths 20, 21,
22, 43, 213, 2103). The check's time is counted apart. Solved = the check passes; else the search
goes on. Contenders:

``lstmsearch``
    lstmsearch's own run loop (:func:`lstmsearch.run.loop.run_loop`, what ``lstmsearch run``
    runs: Numba kernels, its vectorised sep-CMA-ES with ipop restarts, rows written to a
    Parquet store by the writer thread), stopped when the check passes.
``jax+cmaes``
    the same sep-CMA-ES update from the ``cmaes`` library (``cmaes.SepCMA``, asked one member at
    a time and told on the host, as its documentation shows; no restarts), each generation
    evaluated by one jit-compiled JAX function (below).
``evosax``
    evosax's ``Sep_CMA_ES`` (Lange 2022, "evosax: JAX-based evolution strategies"), ask, clip to
    the bounds, the JAX evaluation and tell in ONE jit-compiled generation step.

The JAX evaluation, float32, jit-compiled, ``lax.scan`` over time, in PyTorch's gate order and
equations (:mod:`lstmsearch.cells`), written the fastest way this run finds (issue 22, "honest
peers"): before the searches of each (cell, H), :func:`pick_plan` times every :class:`Form` -- one
einsum for all gates, one per gate, or (H <= 16) each gate written out as H broadcast
multiply-adds; states (P, H, B), (P, B, H) or ``vmap`` over the population; the sigmoid as
0.5 tanh(a/2) + 0.5 (and the first formulation, a fused einsum on (P, H, B) with 1/(1 + exp(-a)),
as before) -- round-robin with lstmsearch's kernel on the study's workload, then the best two whole
or in ``lax.map`` blocks of 64 or 256 members, on one CPU device or ``shard_map``-ped over N; each is
first checked against lstmsearch's float64 NumPy reference (a formulation off by more than 1e-4 in
any h is rejected); the fastest that agrees evaluates both JAX contenders (``--throughput-only``:
only these timings, with the kernel's GFLOP/s against the FMA peak). The equations:

.. math::
    \text{LSTM:}\quad (i, f, g, o) = W_{ih} x_t + b_{ih} + W_{hh} h + b_{hh},\;
    c' = \sigma(f) c + \sigma(i) \tanh(g),\; h' = \sigma(o) \tanh(c')

    \text{GRU:}\quad r = \sigma(\cdot),\; z = \sigma(\cdot),\;
    n = \tanh(W_{in} x_t + b_{in} + r \odot (W_{hn} h + b_{hn})),\; h' = (1 - z) n + z h

then the ridge readout of :mod:`lstmsearch.readout` in jnp: :math:`W = (\Phi^T\Phi + \lambda
D)^{-1}\Phi^T Y` over the states at both lengths of the training sequences, :math:`D` the units'
variances (bias unpenalised), :math:`\lambda = 10^{-6}`, lstmsearch's floor for constant units
raised from 1e-12 (1 + sum phi_j^2) to 1e-6 (1 + sum phi_j^2) in float32 (else such a unit makes
the system singular), and nmse = max over lengths of the held-out mse / the baseline (1/3).
sep-CMA-ES: Ros & Hansen (2008), "A Simple Modification in CMA-ES Achieving Linear Time and Space
Complexity", PPSN X. All contenders minimise log10(nmse) capped
at 6 (:func:`lstmsearch.search.base.objective`; the updates only use the ranks).

Threads: ``LSTMSEARCH_THREADS`` = ``--threads`` for the kernels and
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=N
--xla_force_host_platform_device_count=N`` plus the process pinned to N cores (``os.sched_setaffinity``) for JAX, set before jax is imported. Every contender
is compiled and warmed up before its clock starts (the compile times are reported apart).

    pip install -e ".[bench]"        # jax[cpu] and evosax, only for this script
    python benchmarks/peers_time_to_solution.py --cells lstm,gru --hidden 8 --seeds 0
    python benchmarks/peers_time_to_solution.py --throughput-only --cells lstm,gru --hidden 32
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("lstmsearch", "jax+cmaes", "evosax")
INSTALL = 'this benchmark needs jax and evosax: pip install -e ".[bench]"'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", default="lstm,gru", help="comma-separated: lstm, gru")
    p.add_argument("--hidden", default="8", help="comma-separated hidden sizes (8, 32)")
    p.add_argument("--seeds", default="0", help="comma-separated strategy seeds")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated, of " + ", ".join(CONTENDERS))
    p.add_argument("--max-settings", type=int, default=400_000, help="budget cap per contender (settings)")
    p.add_argument("--max-seconds", type=float, default=240.0, help="budget cap per contender (wall seconds)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for every contender")
    p.add_argument("--popsize", type=int, default=1024)
    p.add_argument("--pick-rounds", type=int, default=3,
                   help="round-robin rounds (one call of each JAX formulation and of lstmsearch's kernel a round) "
                        "when picking the fastest formulation")
    p.add_argument("--throughput-only", action="store_true",
                   help="only time the formulations and lstmsearch's kernel (no searches)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results-peers.md"))
    a = p.parse_args(argv)
    a.cells = [c.strip() for c in a.cells.split(",") if c.strip()]
    a.hidden = [int(h) for h in a.hidden.split(",")]
    a.seeds = [int(s) for s in a.seeds.split(",")]
    a.contenders = [c.strip() for c in a.contenders.split(",") if c.strip()]
    for c in a.cells:
        if c not in ("lstm", "gru"):
            p.error(f"--cells: {c!r} is not lstm or gru")
    for c in a.contenders:
        if c not in CONTENDERS:
            p.error(f"--contenders: {c!r} is not one of {', '.join(CONTENDERS)}")
    if a.max_settings < a.popsize or a.max_seconds <= 0 or a.threads < 1 or a.pick_rounds < 1:
        p.error("--max-settings must hold one generation, --max-seconds, --threads and --pick-rounds must be "
                "positive")
    return a


def set_threads(n: int) -> str:
    """Pin this process to ``n`` cores and set the kernels' and XLA's thread counts (before jax loads)."""
    os.environ["LSTMSEARCH_THREADS"] = str(n)
    os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={n} "
                               f"--xla_force_host_platform_device_count={n}")
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:n]
        os.sched_setaffinity(0, cpus)
    return f"LSTMSEARCH_THREADS={n}, XLA_FLAGS=\"{os.environ['XLA_FLAGS']}\", affinity {n} core(s)"


# ------------------------------------------------------------------ the shared problem
def study(cell: str, hidden: int, seed: int, popsize: int = 1024):
    """The blind study at ``hidden`` units: studies/blind_{cell}32.toml with H, name, seed and popsize
    replaced in its text (the run loop re-reads the text)."""
    import re

    from lstmsearch.config import parse_study

    src = ROOT / "studies" / f"blind_{cell}32.toml"
    text = src.read_text()
    for key, value in (("hidden", hidden), ("name", f'"peers_{cell}{hidden}_s{seed}"'), ("popsize", popsize),
                       ("settings", 10 ** 9)):
        text, n = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        assert n == 1, key
    head, strategy = text.split("[strategy]")  # the strategy's seed, not the sequences' ([eval] seed)
    text = head + "[strategy]" + re.sub(r"(?m)^seed = \S+", f"seed = {seed}", strategy, count=1)
    return parse_study(text, str(src), src.parent)


def sequences(cfg):
    """(x (T, 256, 1) float32: 128 training then 128 held-out, y_tr (S*128,), y_te (S*128,)): the study's
    own sequences, as :func:`lstmsearch.evaluate` draws them (targets step-major over the lengths)."""
    from lstmsearch.tasks import HELDOUT_STREAM, TRAIN_STREAM

    ev, task = cfg.eval, cfg.task
    x_tr, y_tr = task.sample(ev.sequences, ev.seed, TRAIN_STREAM)
    x_te, y_te = task.sample(ev.heldout, ev.seed, HELDOUT_STREAM)
    return np.concatenate([x_tr, x_te], axis=1), y_tr.reshape(-1), y_te.reshape(-1)


# ------------------------------------------------------------------ the recurrence, several ways
class Form(NamedTuple):
    """One way to write the population's recurrence (the same equations, PyTorch's), in NumPy or jnp.

    ``gates``: "fused" (one product for all G gates, then sliced), "per-gate" (one product per gate)
    or "written-out" (each gate as H broadcast multiply-adds, sum_k W[:, :, k] h[k]: no dot at all,
    XLA fuses it into one loop; for small H). ``layout``: the states (P, H, B) ("PHB", sequences
    innermost), (P, B, H) ("PBH", units innermost) or "vmap" (one member's recurrence on (B, H)
    states, ``h @ W.T``, mapped over the population with ``jax.vmap``). ``sigmoid``: "tanh"
    (0.5 tanh(a / 2) + 0.5) or "exp" (1 / (1 + exp(-a))).
    """

    gates: str
    layout: str
    sigmoid: str = "tanh"

    @property
    def label(self) -> str:
        lay = {"PHB": "(P, H, B)", "PBH": "(P, B, H)", "vmap": "vmap, (B, H)"}[self.layout]
        return f"{self.gates}, {lay}, sigmoid {'0.5 tanh(a/2) + 0.5' if self.sigmoid == 'tanh' else '1/(1 + exp(-a))'}"


BEFORE = Form("fused", "PHB", "exp")        # the JAX population as written before issue 22
BEST_GUESS = Form("per-gate", "PHB")         # the default where nothing was timed (the NumPy path, the tests)
WRITTEN_OUT_MAX_H = 16     # written-out sums only up to this H (G H^2 terms a step; at 32: compiles 7-16 s, no faster)


def forms(H: int) -> list:
    """The formulations tried at H hidden units, :data:`BEFORE` first."""
    out = [BEFORE] + [Form(g, lay) for g in ("fused", "per-gate") for lay in ("PHB", "PBH", "vmap")]
    if H <= WRITTEN_OUT_MAX_H:
        out += [Form("written-out", lay) for lay in ("PHB", "PBH")]
    return out


def recurrence(xp, form, kind, H, params, x, steps, run=None, vmap=None):
    """The states (P, B, H) after each of ``steps`` (0-based) of the recurrent settings ``params``
    (P, G H (H + 3)) on the sequences ``x`` (T, B, 1), from zero states, computed as ``form`` says.

    ``run(step, carry, xs)`` runs ``step`` over ``xs`` (default a Python loop; the JAX path passes
    ``lax.scan``); ``vmap`` maps a one-member function over the population (default a Python loop;
    the JAX path passes ``jax.vmap``). I = 1.
    """
    G = 4 if kind == "lstm" else 3
    GH = G * H
    P = params.shape[0]
    parts = (params[:, :GH], params[:, GH:GH + GH * H].reshape(P, GH, H),
             params[:, GH + GH * H:2 * GH + GH * H], params[:, 2 * GH + GH * H:])
    if form.layout != "vmap":
        return _recurrence(xp, form, kind, H, parts, x, steps, run)
    one = lambda w_ih, w_hh, b_ih, b_hh: xp.stack(  # noqa: E731
        _recurrence(xp, form, kind, H, (w_ih, w_hh, b_ih, b_hh), x, steps, run))
    if vmap is None:
        out = xp.stack([one(*(a[p] for a in parts)) for p in range(P)])
    else:
        out = vmap(one)(*parts)                                   # (P, S, B, H)
    return [out[:, j] for j in range(len(steps))]


def _recurrence(xp, form, kind, H, parts, x, steps, run):
    """:func:`recurrence` on the whole population (layouts PHB, PBH) or on one member (vmap: no
    leading P in ``parts`` and the states)."""
    w_ih, w_hh, b_ih, b_hh = parts
    G = 4 if kind == "lstm" else 3
    lay = form.layout
    if lay == "PHB":                                # (P, n) -> broadcast against the state's layout
        unit = lambda v: v[:, :, None]             # noqa: E731
        seq = lambda x_t: x_t[None, None, :]       # noqa: E731
        col = lambda h, k: h[:, k:k + 1, :]        # noqa: E731
        gax = 1
    elif lay == "PBH":
        unit = lambda v: v[:, None, :]             # noqa: E731
        seq = lambda x_t: x_t[None, :, None]       # noqa: E731
        col = lambda h, k: h[:, :, k:k + 1]        # noqa: E731
        gax = 2
    else:                                           # one member, state (B, H)
        unit = lambda v: v[None, :]                # noqa: E731
        seq = lambda x_t: x_t[:, None]             # noqa: E731
        col = lambda h, k: h[:, k:k + 1]           # noqa: E731
        gax = 1

    def rows(a, g):                                 # gate g's rows of a (..., G H, ...) on the gate axis
        return a[:, g * H:(g + 1) * H] if a.ndim > 1 and lay != "vmap" else a[g * H:(g + 1) * H]

    def matvec(W, h):                               # W (P, R, H) or (R, H) times the states
        if lay == "PHB":
            return xp.einsum("prk,pkb->prb", W, h)
        if lay == "PBH":
            return xp.einsum("pbk,prk->pbr", h, W)
        return h @ W.T

    if form.sigmoid == "tanh":
        def sig(a):
            return 0.5 * xp.tanh(0.5 * a) + 0.5
    else:
        def sig(a):
            return 1.0 / (1.0 + xp.exp(-a))

    # per gate g: the input part x w_ih + bias (both biases but b_hn, which r multiplies in the GRU)
    both = b_ih + b_hh
    in_w = [unit(rows(w_ih, g)) for g in range(G)]
    in_b = [unit(rows(both if (kind == "lstm" or g < 2) else b_ih, g)) for g in range(G)]
    b_hn = unit(rows(b_hh, 2)) if kind == "gru" else None
    W_g = [rows(w_hh, g) for g in range(G)]
    if form.gates == "written-out":
        cols = [[unit(W[..., k]) for k in range(H)] for W in W_g]

    def gates(x_t, h):
        """[x w_ih_g + b_g + W_hh_g h] (b_hn apart: the GRU's n gate gets (ih part, hh part))."""
        xin = seq(x_t)
        ins = [xin * in_w[g] + in_b[g] for g in range(G)]
        if form.gates == "fused":
            m = matvec(w_hh, h)
            hh = [m[:, g * H:(g + 1) * H] if gax == 1 else m[..., g * H:(g + 1) * H] for g in range(G)]
        elif form.gates == "per-gate":
            hh = [matvec(W_g[g], h) for g in range(G)]
        else:
            hh = []
            for g in range(G):
                acc = cols[g][0] * col(h, 0)
                for k in range(1, H):
                    acc = acc + cols[g][k] * col(h, k)
                hh.append(acc)
        return ins, hh

    def step(carry, x_t):
        h = carry[0]
        ins, hh = gates(x_t, h)
        if kind == "lstm":
            i, f, g, o = (ins[j] + hh[j] for j in range(4))
            c = sig(f) * carry[1] + sig(i) * xp.tanh(g)
            return (sig(o) * xp.tanh(c), c), None
        r = sig(ins[0] + hh[0])
        z = sig(ins[1] + hh[1])
        n = xp.tanh(ins[2] + r * (hh[2] + b_hn))
        return ((1.0 - z) * n + z * h,), None

    def loop(f, carry, xs):
        for x_t in xs:
            carry, _ = f(carry, x_t)
        return carry, None

    run = run or loop
    B = x.shape[1]
    shape = {"PHB": (w_ih.shape[0], H, B), "PBH": (w_ih.shape[0], B, H), "vmap": (B, H)}[lay]
    zero = xp.zeros(shape, w_ih.dtype)
    carry = (zero, zero) if kind == "lstm" else (zero,)
    states, t = [], 0
    for s in steps:
        carry, _ = run(step, carry, x[t:s + 1, :, 0])
        t = s + 1
        states.append(xp.swapaxes(carry[0], 1, 2) if lay == "PHB" else carry[0])
    return states


def population_nmse(xp, kind, H, params, x, steps, y_tr, y_te, n_train, baseline, ridge=1e-6, run=None,
                    form=None, vmap=None):
    """Held-out nmse (P,) of recurrent settings ``params`` (P, G H (H + 3)), worst over the lengths.

    ``xp`` is numpy or jax.numpy; the states come from :func:`recurrence` written as ``form``
    (default :data:`BEST_GUESS`), ``run`` and ``vmap`` as there. The equations are in the module
    doc; I = O = 1.
    """
    P, B = params.shape[0], x.shape[1]
    states = recurrence(xp, form or BEST_GUESS, kind, H, params, x, steps, run=run, vmap=vmap)  # (P, B, H) each
    ones = xp.ones((P, B, 1), params.dtype)
    phi = [xp.concatenate([h, ones], axis=2) for h in states]   # (P, B, H + 1) per length
    tr = xp.concatenate([f[:, :n_train] for f in phi], axis=1)  # (P, S n_train, H + 1)
    N = tr.shape[1]
    gram = xp.einsum("pni,pnj->pij", tr, tr)
    diag = xp.einsum("pii->pi", gram)
    mean = tr.mean(axis=1)
    floor = 1e-12 if params.dtype == xp.float64 else 1e-6     # 1e-12 is below float32's resolution
    reg = ridge * (diag - N * mean * mean) + floor * (1.0 + diag)
    reg = reg * (xp.arange(H + 1) < H)                          # the bias is not penalised
    eye = xp.eye(H + 1, dtype=params.dtype)
    rhs = xp.einsum("pni,n->pi", tr, y_tr)[..., None]
    w = xp.linalg.solve(gram + reg[:, :, None] * eye, rhs)[..., 0]   # (P, H + 1)
    n_te = y_te.shape[0] // len(steps)
    mse = [xp.mean((xp.einsum("pni,pi->pn", f[:, n_train:], w) - y_te[j * n_te:(j + 1) * n_te]) ** 2, axis=1)
           for j, f in enumerate(phi)]
    nmse = xp.max(xp.stack(mse, axis=1), axis=1) / baseline
    return xp.where(xp.isfinite(nmse), nmse, xp.inf)


def objective_of(xp, nmse):
    """log10(nmse) capped at 6 (inf -> 6), as :func:`lstmsearch.search.base.objective`."""
    v = xp.log10(xp.maximum(nmse, 1e-30))
    return xp.where(xp.isfinite(v), xp.minimum(v, 6.0), 6.0)


class Checker:
    """The check of a candidate, the same for every contender (its time is kept apart)."""

    def __init__(self, cfg):
        self.cfg, self.seconds, self.calls, self.last = cfg, 0.0, 0, None

    def __call__(self, recurrent) -> bool:
        from lstmsearch import evaluate, solutions
        from lstmsearch.analysis.verdict import verdict

        t0 = time.perf_counter()
        cfg, ev = self.cfg, self.cfg.eval
        z = np.zeros((1, cfg.cell.n_params), np.float32)
        z[0, :cfg.cell.n_recurrent] = np.asarray(recurrent, np.float32).reshape(-1)
        tab = evaluate(cfg.cell, z, cfg.task, n_sequences=ev.sequences, seed=ev.seed, n_heldout=ev.heldout,
                       readout="fit", ridge=ev.ridge)
        self.last = verdict(cfg.cell, solutions(tab, z, cfg.cell)[0], cfg.task, ev.solved)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return self.last.solved


class Contender:
    """One search, run a generation at a time (:meth:`step`) so that the contenders can take turns.

    ``wall`` counts this contender's own generations only, without the checks; ``done`` once
    solved, stopped, or out of budget (``budget`` settings or ``seconds`` of its own wall).
    """

    name = ""

    def __init__(self, cfg, budget, seconds):
        self.cfg, self.budget, self.seconds = cfg, budget, seconds
        self.P = cfg.strategy["popsize"]
        self.check = Checker(cfg)
        self.settings, self.wall, self.best, self.solved, self.done = 0, 0.0, np.inf, False, False
        self.compile_s, self.note = 0.0, ""

    def step(self) -> None:
        if self.done:
            return
        if self.settings + self.P > self.budget or self.wall >= self.seconds:
            self.done = True
            return
        c0 = self.check.seconds
        t0 = time.perf_counter()
        self.generation()
        self.wall += time.perf_counter() - t0 - (self.check.seconds - c0)

    def seen(self, nmse: float, recurrent) -> bool:
        """A generation's best member: checked when under the threshold; True once solved."""
        self.settings += self.P
        self.best = min(self.best, nmse)
        if nmse < self.cfg.eval.solved and self.check(recurrent):
            self.solved = self.done = True
        return self.solved

    def row(self) -> dict:
        c = self.check
        return {"contender": self.name, "settings": self.settings, "wall": self.wall, "solved": self.solved,
                "best": self.best, "check_s": c.seconds, "checks": c.calls, "compile_s": self.compile_s,
                "note": self.note, "verdict": c.last.text if c.last is not None else ""}


# ------------------------------------------------------------------ contender 1: lstmsearch
def run_lstmsearch(cfg, budget, seconds, others=()):
    """lstmsearch's run loop on a fresh store, stopped once a generation's best passes the check.

    After each of its generations the ``others`` take one generation each (their time is not
    counted here), so that a change in the machine's load falls on every contender alike.
    """
    from lstmsearch import evaluate
    from lstmsearch.run.coordinator import Coordinator
    from lstmsearch.run.loop import LocalEvaluator, run_loop, study_config
    from lstmsearch.store import Store
    from lstmsearch.store.manifest import prepare_manifest

    me = Contender(cfg, budget, seconds)
    me.name = "lstmsearch"
    t0 = time.perf_counter()  # warm-up: the kernels compiled (or loaded from the cache) before the clock
    evaluate(cfg.cell, cfg.cell.init(8, seed=0), cfg.task, n_sequences=8, n_heldout=8)
    me.compile_s = time.perf_counter() - t0
    away = [0.0]

    def turns():
        t = time.perf_counter()
        for o in others:
            o.step()
        away[0] += time.perf_counter() - t

    class Stop(Coordinator):
        def stop_requested(self):
            own = time.perf_counter() - t_start - away[0] - me.check.seconds
            return me.solved or own >= seconds or super().stop_requested()

    class Watch(LocalEvaluator):
        def evaluate(self, batch):
            table = super().evaluate(batch)
            nmse = table.column("nmse").to_numpy()
            i = int(np.argmin(nmse))
            me.seen(float(nmse[i]), batch.params[i, :cfg.cell.n_recurrent])
            turns()
            return table

    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        run_cfg = study_config(cfg, budget=budget, out=Path(tmp) / cfg.name)
        t_start = time.perf_counter()
        store = Store(run_cfg.out)
        manifest = prepare_manifest(run_cfg, store)
        messages = store.acquire()
        try:
            rep = run_loop(run_cfg, store, manifest, messages, False, lambda s: None, coordinator=Stop(),
                           evaluator=Watch(run_cfg))
        finally:
            store.release()
        me.wall = time.perf_counter() - t_start - away[0] - me.check.seconds
    own_eval = rep.evaluate_s - away[0] - me.check.seconds  # (the turns and checks ran inside its evaluate)
    me.note = f"outside evaluate {100 * (1 - own_eval / max(me.wall, 1e-9)):.0f}%"
    while any(not o.done for o in others):  # the others go on alone
        turns()
    return me


# ------------------------------------------------------------------ the JAX population
class Plan(NamedTuple):
    """A :class:`Form` and how the population is laid over the machine: ``chunk`` > 0 runs it in
    blocks of that many members (``lax.map``; the block's states stay in cache), ``shards`` > 1
    splits it over that many host devices (``shard_map``; XLA runs one device per core, where one
    jit-compiled computation uses one core)."""

    form: Form
    chunk: int = 0
    shards: int = 1

    @property
    def label(self) -> str:
        return (self.form.label + (f"; lax.map over blocks of {self.chunk}" if self.chunk else "")
                + (f"; shard_map over {self.shards} CPU devices" if self.shards > 1 else ""))


def jax_wrap(plan, fn):
    """``fn`` (a function of the population (P, d) whose outputs all lead with P), run per ``plan``."""
    import jax

    def blocks(p, fn=fn, k=plan.chunk):
        n = p.shape[0]
        if n <= k or n % k:
            return fn(p)
        out = jax.lax.map(fn, p.reshape(n // k, k, p.shape[1]))
        return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

    f = blocks if plan.chunk else fn
    if plan.shards > 1:
        from jax.sharding import Mesh, PartitionSpec

        mesh = Mesh(np.array(jax.devices()[:plan.shards]), ("pop",))
        f = jax.shard_map(f, mesh=mesh, in_specs=PartitionSpec("pop"), out_specs=PartitionSpec("pop"),
                          check_vma=False)
    return f


def flops_per_cell_step(kind: str, H: int, I: int = 1) -> int:
    """Floating-point operations of one cell-step (one setting, one sequence, one time step), counting
    each sigmoid and tanh as 1 and no fused multiply-add as 1: the two affine maps
    2 G H (H + I) + 2 G H (weights and both biases), then LSTM: a = gi + gh 4H, 3 sigmoids and 2 tanh
    5H, c' = f c + i g 3H, h' = o tanh(c') H -- 8 H (H + I) + 21 H in all; GRU: r and z sums 2H,
    2 sigmoids and a tanh 3H, n's gi_n + r gh_n 2H, h' = (1 - z) n + z h 4H -- 6 H (H + I) + 17 H."""
    G = 4 if kind == "lstm" else 3
    return 2 * G * H * (H + I) + 2 * G * H + (13 if kind == "lstm" else 11) * H


def fma_peak(cores: int):
    """(GFLOP/s, how): cores x 2 FMA units x lanes x 2 flops x the clock in /proc/cpuinfo, with the
    lanes of AVX2 (8 float32), the vector width LLVM (Numba, XLA) emits for these CPUs by default."""
    mhz = 0.0
    try:
        mhz = max(float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz"))
    except (OSError, ValueError):
        pass
    if not mhz:
        return float("nan"), "clock unknown"
    return cores * 2 * 8 * 2 * mhz / 1e3, f"{cores} cores x 2 FMA units x 8 float32 lanes (AVX2) x 2 flops x {mhz / 1e3:.2f} GHz"


def workload(kind, H, P, B=256, T=21, seed=0):
    """A population (P, d) float32 (weights uniform in [-1, 1]: gates neither linear nor all saturated),
    sequences x (T, B, 1) uniform in [-1, 1] and the steps recorded, as the study's (20 and 21)."""
    from lstmsearch import Cell

    rng = np.random.default_rng(seed)
    d = Cell(kind, hidden=H).n_recurrent
    return (rng.uniform(-1, 1, (P, d)).astype(np.float32), rng.uniform(-1, 1, (T, B, 1)).astype(np.float32),
            [T - 2, T - 1])


CHECK_TOL = 1e-4    # max |h - reference| accepted (float32 against float64; a wrong equation is off by > 1e-2)


def check_states(kind, H, params, x, steps, states, members):
    """Max |h - reference| over ``members`` of ``states`` (P, S, B, H) against the float64 NumPy reference
    (:func:`lstmsearch.kernels.reference.run`, the oracle of lstmsearch's tests: PyTorch's equations)."""
    from lstmsearch import Cell
    from lstmsearch.kernels import reference

    cell = Cell(kind, hidden=H)
    full = np.zeros((len(members), cell.n_params))
    full[:, :cell.n_recurrent] = params[members]
    ref, _ = reference.run(cell, full, x, steps)
    got = np.asarray(states, np.float64)[members]
    err = np.abs(got - ref)
    return float(np.max(np.where(np.isnan(err), np.inf, err)))


def check_sigmoids():
    """Max |sigmoid - exact| of the two jnp sigmoids over [-100, 100] (the saturated range the
    recurrence check's weights do not reach), float32 against float64."""
    import jax.numpy as jnp

    a = np.linspace(-100, 100, 20001)
    exact = 1.0 / (1.0 + np.exp(-a))
    aj = jnp.asarray(a, jnp.float32)
    out = {"tanh": 0.5 * jnp.tanh(0.5 * aj) + 0.5, "exp": 1.0 / (1.0 + jnp.exp(-aj))}
    return {k: float(np.max(np.abs(np.asarray(v, np.float64) - exact))) for k, v in out.items()}


def lstmsearch_call(kind, H, params, x, steps):
    """(a call of lstmsearch's cpu kernel on the workload, its states (P, S, B, H)), compiled and warm."""
    from lstmsearch import Cell
    from lstmsearch.kernels import cpu

    cell = Cell(kind, hidden=H)
    full = np.zeros((params.shape[0], cell.n_params), np.float32)
    full[:, :cell.n_recurrent] = params
    st = np.asarray(steps)
    states, _ = cpu.run(cell, full, x, st)          # compiled (or loaded from the cache)
    return (lambda: cpu.run(cell, full, x, st)), states


def jax_population_runner(cell, params, x, rounds=1):
    """A call that simulates ``cell``'s population (P, D) on sequences x (T, B, 1) with the fastest
    JAX formulation :func:`pick_plan` finds for it (checked against the reference), for
    benchmarks/kinds_speed.py. Needs JAX's host devices set before JAX starts (``main`` does it;
    kinds_speed.py sets the same flag)."""
    from lstmsearch.kernels import cpu

    plan = pick_plan(cell.kind, cell.hidden, params.shape[0], cpu.n_threads(), rounds=rounds, log=lambda *a: None)[0]
    call, _, _ = plan_call(plan, cell.kind, cell.hidden, np.ascontiguousarray(params[:, :cell.n_recurrent]), x,
                           [x.shape[0] - 1])
    return call


def plan_call(plan, kind, H, params, x, steps):
    """(a call of the JAX recurrence written as ``plan``, compile s, its states (P, S, B, H))."""
    import jax
    import jax.numpy as jnp

    xj = jnp.asarray(x)

    def states(p):
        return jnp.stack(recurrence(jnp, plan.form, kind, H, p, xj, steps, run=jax.lax.scan, vmap=jax.vmap), 1)

    f = jax.jit(jax_wrap(plan, states))
    pj = jnp.asarray(params)
    t0 = time.perf_counter()
    out = np.asarray(f(pj).block_until_ready())
    return (lambda: f(pj).block_until_ready()), time.perf_counter() - t0, out


def race(calls, rounds):
    """Median seconds of each of ``calls`` ({key: call}), timed in ``rounds`` round-robin rounds (one
    call each per round, the order rotated every round), so that a change of the machine's load falls
    on all of them alike."""
    import statistics

    keys = list(calls)
    times = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            t0 = time.perf_counter()
            calls[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def pick_plan(kind, H, P, threads, rounds=3, log=print):
    """Time the ways of writing the JAX population on the study's workload (P settings, 256 sequences,
    21 steps), each checked against the reference first, and return the fastest that agrees.

    Stage 1 races every :func:`forms` (one device, the whole population at once) with lstmsearch's
    cpu kernel; stage 2 races the best two forms in blocks of 0 (whole), 64 and 256 members, on one
    device and sharded over ``threads``, with the kernel again. Returns (best plan, rows, kernel):
    a row per plan (plan, stage, cell-steps/s, the kernel's in the same race, compile s, max
    |h - reference|, accepted, why not); kernel = (cell-steps/s per stage, max |h - reference|).
    """
    params, x, steps = workload(kind, H, P)
    members = np.unique(np.linspace(0, P - 1, 16).astype(int))   # in every block and shard
    work = P * x.shape[1] * x.shape[0]
    ours, ours_states = lstmsearch_call(kind, H, params, x, steps)
    ours_err = check_states(kind, H, params, x, steps, ours_states, members)
    rows, calls, kernel = [], {}, []

    def prepare(plan):
        if plan in calls or any(r["plan"] == plan and not r["ok"] for r in rows):
            return
        try:
            call, comp, states = plan_call(plan, kind, H, params, x, steps)
            err = check_states(kind, H, params, x, steps, states, members)
        except Exception as e:  # noqa: BLE001 -- a plan this JAX cannot run is reported, not fatal
            rows.append({"plan": plan, "stage": 0, "rate": 0.0, "ours": 0.0, "compile_s": 0.0, "err": float("inf"),
                         "ok": False, "why": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"})
            log(f"  {kind} H={H} {plan.label}: {rows[-1]['why']}")
            return
        if err <= CHECK_TOL:
            calls[plan] = call
        rows.append({"plan": plan, "stage": 0, "rate": 0.0, "ours": 0.0, "compile_s": comp, "err": err,
                     "ok": err <= CHECK_TOL,
                     "why": "" if err <= CHECK_TOL else f"rejected: max |h - reference| {err:.1e} > {CHECK_TOL:g}"})

    def stage(n, plans):
        for p in plans:
            prepare(p)
        entries = {p: calls[p] for p in plans if p in calls}
        t = race({"lstmsearch": ours, **entries}, rounds)
        kernel.append(work / t["lstmsearch"])
        log(f"  {kind} H={H} stage {n}: lstmsearch cpu kernel {kernel[-1] / 1e6:.1f} M cell-steps/s "
            f"(max |h - reference| {ours_err:.1e})")
        for i, p in enumerate(entries):
            r = next(r for r in rows if r["plan"] == p)
            if r["stage"]:                       # timed in an earlier stage too: a row per stage
                r = dict(r)
                rows.append(r)
            r.update(stage=n, order=i, rate=work / t[p], ours=kernel[-1])
            log(f"  {kind} H={H} stage {n}: {p.label}: {r['rate'] / 1e6:.1f} M cell-steps/s (compile "
                f"{r['compile_s']:.1f} s, max |h - reference| {r['err']:.1e})")
        return sorted((r for r in rows if r["stage"] == n), key=lambda r: -r["rate"])

    first = stage(1, [Plan(f) for f in forms(H)])
    if not first:
        raise RuntimeError(f"no JAX formulation of {kind} H={H} agrees with the reference")
    shards = (1, threads) if threads > 1 and P % threads == 0 else (1,)
    second = stage(2, [Plan(r["plan"].form, k, s) for r in first[:2] for k in (0, 64, 256)
                       if k == 0 or (k < P and P % k == 0)
                       for s in shards])
    rows.sort(key=lambda r: (r["stage"], r.get("order", 0)))
    return second[0]["plan"], rows, (kernel, ours_err)


def jax_problem(cfg, plan=None):
    """(jitted-ready nmse of a (P, d) float32 population, d, low, high, sigma0) for the study ``cfg``,
    the recurrence written as ``plan`` (default: :data:`BEST_GUESS` on one device)."""
    import jax
    import jax.numpy as jnp
    from functools import partial

    plan = plan or Plan(BEST_GUESS)
    x, y_tr, y_te = sequences(cfg)
    space = cfg.space_obj
    f = partial(population_nmse, jnp, cfg.cell.kind, cfg.cell.hidden, x=jnp.asarray(x),
                steps=[int(s) for s in cfg.task.output_steps()], y_tr=jnp.asarray(y_tr, jnp.float32),
                y_te=jnp.asarray(y_te, jnp.float32), n_train=cfg.eval.sequences, baseline=float(cfg.task.baseline),
                ridge=float(cfg.eval.ridge), run=jax.lax.scan, form=plan.form, vmap=jax.vmap)
    sigma0 = float(cfg.strategy["sigma"] * np.mean(space.high - space.low))
    return jax_wrap(plan, f), space.dim, space.low, space.high, sigma0


class JaxCmaes(Contender):
    """``cmaes.SepCMA`` on the host (ask per member, tell the list), the generation evaluated by JAX."""

    name = "jax+cmaes"

    def __init__(self, cfg, budget, seconds, plan=None):
        import jax
        import jax.numpy as jnp
        from cmaes import SepCMA

        super().__init__(cfg, budget, seconds)
        f, d, low, high, sigma0 = jax_problem(cfg, plan)
        self.nmse_of, self.jnp = jax.jit(f), jnp
        t0 = time.perf_counter()
        self.nmse_of(jnp.zeros((self.P, d), jnp.float32)).block_until_ready()
        self.compile_s = time.perf_counter() - t0
        self.opt = SepCMA(mean=(low + high) / 2, sigma=sigma0, bounds=np.stack([low, high], 1),
                          seed=cfg.strategy["seed"], n_max_resampling=1, population_size=self.P)

    def generation(self):
        from lstmsearch.search.base import objective

        xs = np.stack([self.opt.ask() for _ in range(self.P)])
        nmse = np.asarray(self.nmse_of(self.jnp.asarray(xs, self.jnp.float32)), np.float64)
        i = int(np.argmin(nmse))
        if self.seen(float(nmse[i]), xs[i]):
            return
        self.opt.tell(list(zip(xs, objective(nmse))))
        if self.opt.should_stop():
            self.note, self.done = "sep-CMA stopped (no restarts)", True


class Evosax(Contender):
    """evosax's Sep_CMA_ES: ask, clip, evaluate and tell in one jit-compiled step per generation."""

    name = "evosax"

    def __init__(self, cfg, budget, seconds, plan=None):
        import jax
        import jax.numpy as jnp
        from evosax.algorithms import Sep_CMA_ES

        super().__init__(cfg, budget, seconds)
        f, d, low, high, sigma0 = jax_problem(cfg, plan)
        es = Sep_CMA_ES(population_size=self.P, solution=jnp.zeros(d, jnp.float32))
        params = es.default_params.replace(std_init=jnp.asarray(sigma0, jnp.float32))
        lo, hi = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)

        def generation(key, state):
            k_ask, k_tell = jax.random.split(key)
            pop, state = es.ask(k_ask, state, params)
            pop = jnp.clip(pop, lo, hi)
            nmse = f(pop)
            state, _ = es.tell(k_tell, pop, objective_of(jnp, nmse), state, params)
            i = jnp.argmin(nmse)
            return state, nmse[i], pop[i]

        self.jit_generation, self.jax = jax.jit(generation), jax
        self.key, k0 = jax.random.split(jax.random.key(cfg.strategy["seed"]))
        self.state = es.init(k0, jnp.asarray((low + high) / 2, jnp.float32), params)
        t0 = time.perf_counter()
        jax.block_until_ready(self.jit_generation(self.key, self.state))  # compile (the result is dropped)
        self.compile_s = time.perf_counter() - t0

    def generation(self):
        self.key, k = self.jax.random.split(self.key)
        self.state, b, member = self.jit_generation(k, self.state)
        self.seen(float(b), np.asarray(member))


PEERS = {"jax+cmaes": JaxCmaes, "evosax": Evosax}


# ------------------------------------------------------------------ report
def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return f"{cpu}, {os.cpu_count()} CPU(s), load average {' / '.join(f'{v:.1f}' for v in os.getloadavg())}"


def table(rows) -> str:
    out = ["| problem | seed | contender | settings to solution | wall to solution (s) | settings/s | "
           "wall vs lstmsearch | settings/s vs lstmsearch | check (s) | compile (s) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = next((q for q in rows if q["problem"] == r["problem"] and q["seed"] == r["seed"]
                    and q["contender"] == "lstmsearch"), None)
        rate = r["settings"] / r["wall"] if r["wall"] > 0 else float("nan")
        if r["solved"]:
            settings, wall = f"{r['settings']:,}", f"{r['wall']:.1f}"
        else:
            settings = f"not reached within budget ({r['settings']:,}; best nmse {r['best']:.2g})"
            wall = f"> {r['wall']:.1f}"
        ratio = speed = "1"
        if ref is not None and r is not ref:
            ref_rate = ref["settings"] / ref["wall"]
            speed = f"{rate / ref_rate:.2f}x"
            ratio = f"{r['wall'] / ref['wall']:.2f}x" if r["solved"] and ref["solved"] else "n/a"
        out.append(f"| {r['problem']} | {r['seed']} | {r['contender']} | {settings} | {wall} | {rate:,.0f} | "
                   f"{ratio} | {speed} | {r['check_s']:.2f} ({r['checks']}) | {r['compile_s']:.1f} |")
    return "\n".join(out)


def cpu_counters():
    """(machine jiffies busy, idle, steal from /proc/stat; this process's CPU seconds) or None."""
    import resource

    try:
        v = [int(t) for t in open("/proc/stat").readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = v
    own = resource.getrusage(resource.RUSAGE_SELF)
    return user + nice + system + irq + softirq, idle + iowait, steal, own.ru_utime + own.ru_stime


def machine_state(c0, c1) -> str:
    """What the machine did between two :func:`cpu_counters`: its busy share, this process's, steal."""
    if c0 is None or c1 is None:
        return "CPU shares unknown"
    hz = os.sysconf("SC_CLK_TCK")
    busy, idle, steal = (c1[i] - c0[i] for i in range(3))
    total = max(busy + idle + steal, 1)
    own = 100 * (c1[3] - c0[3]) * hz / total
    return (f"over the run the CPUs were {100 * busy / total:.0f}% busy ({own:.0f}% this benchmark, "
            f"{max(100 * busy / total - own, 0):.0f}% other processes), {100 * idle / total:.0f}% idle, "
            f"{100 * steal / total:.0f}% stolen by the hypervisor")


def throughput_md(kind, H, P, plan, rows, kernel, peak, how) -> str:
    """The timings of :func:`pick_plan` for one cell as Markdown."""
    import statistics

    rates, err = kernel
    fl = flops_per_cell_step(kind, H)
    mid = statistics.median(rates)
    gf = mid * fl / 1e9
    out = [f"### {kind} H = {H}: {P} settings x 256 sequences x 21 steps per call", "",
           f"lstmsearch's cpu kernel: {' and '.join(f'{r / 1e6:.1f}' for r in rates)} M cell-steps/s in stages "
           f"{' and '.join(str(i + 1) for i in range(len(rates)))}; {fl} FLOP per cell-step, so "
           f"{' and '.join(f'{r * fl / 1e9:.1f}' for r in rates)} GFLOP/s, {100 * gf / peak:.0f}% of the FMA peak "
           f"{peak:.0f} GFLOP/s ({how}); max |h - reference| {err:.1e}.", "",
           "| stage | JAX formulation | M cell-steps/s | GFLOP/s | lstmsearch / this | compile (s) | "
           "max abs(h - reference) | |",
           "|---|---|---|---|---|---|---|---|"]
    last = max(r["stage"] for r in rows)
    for r in rows:
        tag = "**picked**" if r["plan"] == plan and r["stage"] == last else ("before issue 22" if r["plan"] == Plan(BEFORE) else "")
        if r["why"]:
            tag = (tag + "; " if tag else "") + r["why"]
        ratio = f"{r['ours'] / r['rate']:.2f}x" if r["rate"] > 0 else "n/a"
        out.append(f"| {r['stage'] or '-'} | {r['plan'].label} | {r['rate'] / 1e6:.1f} | {r['rate'] * fl / 1e9:.1f} | "
                   f"{ratio} | {r['compile_s']:.1f} | {r['err']:.1e} | {tag} |")
    return "\n".join(out)


def main(argv=None) -> int:
    a = parse_args(argv)
    threads = set_threads(a.threads)
    need_jax = a.throughput_only or any(c != "lstmsearch" for c in a.contenders)
    if need_jax:
        try:
            import evosax  # noqa: F401
            import jax
            from importlib.metadata import version
        except ImportError:
            print(INSTALL, file=sys.stderr)
            return 2
        versions = f"jax {jax.__version__}, evosax {version('evosax')}"
    else:
        versions = ""
    import cmaes

    import lstmsearch

    start, c0 = machine(), cpu_counters()
    rows, through = [], []
    peak, how = fma_peak(a.threads)
    for cell in a.cells:
        for H in a.hidden:
            plan = None
            if need_jax:
                print(f"timing the JAX formulations of {cell} H={H} against lstmsearch's kernel", flush=True)
                plan, tried, ours = pick_plan(cell, H, a.popsize, a.threads, a.pick_rounds,
                                              log=lambda m: print(m, flush=True))
                print(f"  picked: {plan.label}", flush=True)
                through.append(throughput_md(cell, H, a.popsize, plan, tried, ours, peak, how))
            if a.throughput_only:
                continue
            for seed in a.seeds:
                cfg = study(cell, H, seed, a.popsize)
                others = [PEERS[n](cfg, a.max_settings, a.max_seconds, plan) for n in a.contenders if n in PEERS]
                if "lstmsearch" in a.contenders:
                    done = [run_lstmsearch(cfg, a.max_settings, a.max_seconds, others)] + others
                else:
                    while any(not o.done for o in others):
                        for o in others:
                            o.step()
                    done = others
                for c in done:
                    r = c.row()
                    r.update(problem=f"{cell} H = {H} (d = {cfg.cell.n_recurrent})", seed=seed)
                    rows.append(r)
                    print(f"{r['problem']} seed {seed} {r['contender']}: {'solved' if r['solved'] else 'not solved'}"
                          f" after {r['settings']:,} settings, {r['wall']:.1f} s (best nmse {r['best']:.3g}; "
                          f"{r['verdict'] or 'no check'}) {r['note']}", flush=True)
    cmd = "python benchmarks/peers_time_to_solution.py " + " ".join(argv if argv is not None else sys.argv[1:])
    head = [
        f"`{cmd.strip()}`", "",
        f"Machine: {start} at start; load average {' / '.join(f'{v:.1f}' for v in os.getloadavg())} at end; "
        f"{machine_state(c0, cpu_counters())}.",
        f"Threads: {threads}. lstmsearch {lstmsearch.__version__}, cmaes {cmaes.__version__}"
        + (f", {versions}" if versions else "") + "."]
    text = ["# Time to solution, side by side" if not a.throughput_only else
            "# The JAX population written every way, against lstmsearch's kernel", ""] + head
    if not a.throughput_only:
        text += [f"Budget per contender: {a.max_settings:,} settings or {a.max_seconds:g} s; population "
                 f"{a.popsize}.", "", table(rows), "",
                 "Solved = held-out nmse < 1e-5 with the stored readout at 20, 21, 22, 43, 213 and 2103 "
                 "(lstmsearch.analysis.verdict, fresh sequences); the wall excludes the checks and the compile. "
                 "'wall vs lstmsearch' > 1: the contender took longer. The JAX contenders evaluate with the "
                 "formulation picked below for each cell."]
    if through:
        sig = check_sigmoids()
        text += ["", "## The JAX formulations tried (each timed, checked, the fastest that agrees used)", "",
                 "Each is the recurrence alone (no readout), jit-compiled, `lax.scan` over time, weights uniform "
                 "in [-1, 1]; M cell-steps/s = settings x sequences x steps / the median call, the calls taken "
                 f"round-robin with lstmsearch's kernel ({a.pick_rounds} rounds a stage; 'lstmsearch / this' "
                 "compares the two in the same rounds). Stage 1: every formulation on the whole population; "
                 "stage 2: the best two of stage 1 whole and in `lax.map` blocks of 64 and 256 members, on one "
                 "CPU device and sharded over the threads' devices (`shard_map`). Checked first: h at "
                 f"steps 20 and 21 of 16 members spread over the population against lstmsearch's float64 "
                 f"reference (`lstmsearch.kernels.reference.run`, PyTorch's equations), accepted when within "
                 f"{CHECK_TOL:g}; the sigmoids over [-100, 100] against the exact one: max error "
                 f"{sig['tanh']:.1e} (0.5 tanh(a/2) + 0.5), {sig['exp']:.1e} (1/(1 + exp(-a))). GFLOP/s count "
                 "FLOP per cell-step as `flops_per_cell_step`: LSTM 8H(H+1) + 21H, GRU 6H(H+1) + 17H "
                 "(sigmoid and tanh as 1 FLOP each)."] + sum(([""] + [t] for t in through), [])
    text = "\n".join(text + [""])
    print(text)
    Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
