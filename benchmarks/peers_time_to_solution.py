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

The JAX evaluation, float32: the population's weights (P, G H, H) are batched in an einsum inside
``lax.scan`` over time (state (P, H, B), sequences innermost: the fastest of three layouts tried,
with (P, B, H) and ``vmap`` over settings), in PyTorch's gate order and equations (:mod:`lstmsearch.cells`):

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
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=N`` plus the process
pinned to N cores (``os.sched_setaffinity``) for JAX, set before jax is imported. Every contender
is compiled and warmed up before its clock starts (the compile times are reported apart).

    pip install -e ".[bench]"        # jax[cpu] and evosax, only for this script
    python benchmarks/peers_time_to_solution.py --cells lstm,gru --hidden 8 --seeds 0
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

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
    if a.max_settings < a.popsize or a.max_seconds <= 0 or a.threads < 1:
        p.error("--max-settings must hold one generation, --max-seconds and --threads must be positive")
    return a


def set_threads(n: int) -> str:
    """Pin this process to ``n`` cores and set the kernels' and XLA's thread counts (before jax loads)."""
    os.environ["LSTMSEARCH_THREADS"] = str(n)
    os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={n}"
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


def population_nmse(xp, kind, H, params, x, steps, y_tr, y_te, n_train, baseline, ridge=1e-6, run=None):
    """Held-out nmse (P,) of recurrent settings ``params`` (P, G H (H + 3)), worst over the lengths.

    ``xp`` is numpy or jax.numpy; ``run(step, carry, xs)`` runs ``step`` over ``xs`` (default a Python
    loop; the JAX path passes ``lax.scan``). The equations are in the module doc; I = O = 1.
    """
    G = 4 if kind == "lstm" else 3
    GH = G * H
    P = params.shape[0]
    w_ih = params[:, :GH]                                        # (P, GH)   weight_ih (GH, 1)
    w_hh = params[:, GH:GH + GH * H].reshape(P, GH, H)
    b_ih = params[:, GH + GH * H:2 * GH + GH * H]
    b_hh = params[:, 2 * GH + GH * H:]

    def sig(v):
        return 1.0 / (1.0 + xp.exp(-v))

    def step(carry, x_t):                        # x_t (B,); states (P, H, B): sequences innermost
        h = carry[0]
        gi = x_t[None, None, :] * w_ih[:, :, None] + b_ih[:, :, None]
        gh = xp.einsum("pgk,pkb->pgb", w_hh, h) + b_hh[:, :, None]
        if kind == "lstm":
            a = gi + gh
            c = sig(a[:, H:2 * H]) * carry[1] + sig(a[:, :H]) * xp.tanh(a[:, 2 * H:3 * H])
            return (sig(a[:, 3 * H:]) * xp.tanh(c), c), None
        r = sig(gi[:, :H] + gh[:, :H])
        z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = xp.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return ((1.0 - z) * n + z * h,), None

    def loop(f, carry, xs):
        for x_t in xs:
            carry, _ = f(carry, x_t)
        return carry, None

    run = run or loop
    B = x.shape[1]
    zero = xp.zeros((P, H, B), params.dtype)
    carry = (zero, zero) if kind == "lstm" else (zero,)
    states, t = [], 0
    for s in steps:                                              # the states after steps s (0-based)
        carry, _ = run(step, carry, x[t:s + 1, :, 0])
        t = s + 1
        states.append(xp.swapaxes(carry[0], 1, 2))     # (P, B, H)
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
def jax_problem(cfg):
    """(jitted nmse of a (P, d) float32 population, d, low, high, sigma0) for the study ``cfg``."""
    import jax
    import jax.numpy as jnp
    from functools import partial

    x, y_tr, y_te = sequences(cfg)
    space = cfg.space_obj
    f = partial(population_nmse, jnp, cfg.cell.kind, cfg.cell.hidden, x=jnp.asarray(x),
                steps=[int(s) for s in cfg.task.output_steps()], y_tr=jnp.asarray(y_tr, jnp.float32),
                y_te=jnp.asarray(y_te, jnp.float32), n_train=cfg.eval.sequences, baseline=float(cfg.task.baseline),
                ridge=float(cfg.eval.ridge), run=jax.lax.scan)
    sigma0 = float(cfg.strategy["sigma"] * np.mean(space.high - space.low))
    return f, space.dim, space.low, space.high, sigma0


class JaxCmaes(Contender):
    """``cmaes.SepCMA`` on the host (ask per member, tell the list), the generation evaluated by JAX."""

    name = "jax+cmaes"

    def __init__(self, cfg, budget, seconds):
        import jax
        import jax.numpy as jnp
        from cmaes import SepCMA

        super().__init__(cfg, budget, seconds)
        f, d, low, high, sigma0 = jax_problem(cfg)
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

    def __init__(self, cfg, budget, seconds):
        import jax
        import jax.numpy as jnp
        from evosax.algorithms import Sep_CMA_ES

        super().__init__(cfg, budget, seconds)
        f, d, low, high, sigma0 = jax_problem(cfg)
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


def main(argv=None) -> int:
    a = parse_args(argv)
    threads = set_threads(a.threads)
    if any(c != "lstmsearch" for c in a.contenders):
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

    start = machine()
    rows = []
    for cell in a.cells:
        for H in a.hidden:
            for seed in a.seeds:
                cfg = study(cell, H, seed, a.popsize)
                others = [PEERS[n](cfg, a.max_settings, a.max_seconds) for n in a.contenders if n in PEERS]
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
    text = "\n".join([
        "# Time to solution, side by side", "",
        f"`{cmd.strip()}`", "",
        f"Machine: {start} at start; load average {' / '.join(f'{v:.1f}' for v in os.getloadavg())} at end.",
        f"Threads: {threads}. lstmsearch {lstmsearch.__version__}, cmaes {cmaes.__version__}"
        + (f", {versions}" if versions else "") + ".",
        f"Budget per contender: {a.max_settings:,} settings or {a.max_seconds:g} s; population {a.popsize}.", "",
        table(rows), "",
        "Solved = held-out nmse < 1e-5 with the stored readout at 20, 21, 22, 43, 213 and 2103 "
        "(lstmsearch.analysis.verdict, fresh sequences); the wall excludes the checks and the compile. "
        "'wall vs lstmsearch' > 1: the contender took longer.", ""])
    print(text)
    Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
