"""Speed of the kernels generated from the cell kinds' definitions (issue 22) beside the 0.2
kernels (the frozen old generator, benchmarks/legacy_codegen.py), PyTorch and JAX, in one run.

Every contender simulates the same population (P settings, PyTorch's init) over the same
sequences (B sequences of T steps, I = 1) on all the machine's cores and is timed alternately
with the others; the best of ``--reps`` repetitions is kept (what a shared machine allows).
Reported: M cell-steps/s (one cell-step = one setting, one sequence, one step), the ratio
generated / old (1.00 = as fast), GFLOP/s of the gate pre-activations (2 G H (H + I) flops per
cell-step: the multiply-adds; the nonlinearities not counted) beside the machine's float32
FMA peak (cores x 2 FMA units x lanes x 2 flops x clock), and the peers' ratios.

Peers at their best: PyTorch with the population as a batch of matrix products
(``torch.baddbmm`` per step over (P, B, H) states, one fused gate matrix per setting, its own
``sigmoid``/``tanh``), the fastest formulation we know for a population in PyTorch; JAX (if
installed: ``pip install -e .[bench]``) with ``benchmarks/peers_time_to_solution.py``'s
contender, which picks its fastest formulation per cell.

Run:  ``python benchmarks/kinds_speed.py [--cells lstm,gru,rnn_tanh] [--hidden 4,32] [--reps 5]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from lstmsearch import Cell  # noqa: E402
from lstmsearch.kernels import _codegen, cpu  # noqa: E402
from lstmsearch.kernels._vecsum import vector_lanes  # noqa: E402

OLD_CODES = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru": 3}


def legacy():
    spec = importlib.util.spec_from_file_location("lstmsearch_legacy_codegen", os.path.join(HERE, "legacy_codegen.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fma_peak_gflops() -> float:
    """cores x 2 FMA units x float32 lanes x 2 flops x clock (GHz, from /proc/cpuinfo)."""
    ghz = 0.0
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        m = re.search(r"model name\s*:.*@\s*([\d.]+)GHz", text) or re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
        ghz = float(m.group(1)) / (1 if "GHz" in m.group(0) else 1000.0)
    except (OSError, AttributeError):
        pass
    return cpu.n_threads() * 2 * vector_lanes() * 2 * ghz


def timed(fn, reps):
    fn()  # warm (compiles)
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def runner(fn, cell, params, x):
    """Run a ``simulate`` over the population on the worker threads, as cpu.run does."""
    P, (T, B, I), H = params.shape[0], x.shape, cell.hidden
    xT = np.ascontiguousarray(x.transpose(0, 2, 1))
    steps = np.array([T - 1], np.int64)
    out_h = np.empty((P, 1, H, B), np.float32)
    out_c = np.empty((P, 1, H, B) if cell.memory else (1, 1, 1, 1), np.float32)
    z = np.zeros((1, H, B), np.float32)

    def go():
        cpu.over_population(fn, P, lambda a, b: (params[a:b], xT, steps, z, z, out_h[a:b],
                                                 out_c[a:b] if cell.memory else out_c), work=1e9)
        return out_h
    return go


def torch_runner(cell, params, x):
    import torch

    torch.set_num_threads(cpu.n_threads())
    P, (T, B, I), H, G = params.shape[0], x.shape, cell.hidden, cell.gates
    p = cell.unflatten(params)
    Wih = torch.from_numpy(np.ascontiguousarray(p["weight_ih_l0"].transpose(0, 2, 1)))  # (P, I, GH)
    Whh = torch.from_numpy(np.ascontiguousarray(p["weight_hh_l0"].transpose(0, 2, 1)))  # (P, H, GH)
    b = torch.from_numpy(p["bias_ih_l0"] + p["bias_hh_l0"])[:, None, :]
    bhh_n = torch.from_numpy(p["bias_hh_l0"][:, 2 * H:])[:, None, :] if cell.kind == "gru" else None
    xs = torch.from_numpy(x)

    @torch.no_grad()
    def go():
        h = torch.zeros(P, B, H)
        c = torch.zeros(P, B, H)
        for t in range(T):
            xi = torch.baddbmm(b, xs[t].expand(P, B, I), Wih)
            if cell.kind == "gru":
                hh = torch.bmm(h, Whh)
                r = torch.sigmoid(xi[..., :H] + hh[..., :H])
                z = torch.sigmoid(xi[..., H:2 * H] + hh[..., H:2 * H])
                n = torch.tanh(xi[..., 2 * H:] - bhh_n + r * (hh[..., 2 * H:] + bhh_n))
                h = torch.lerp(n, h, z)
            else:
                a = xi + torch.bmm(h, Whh)
                if cell.kind == "lstm":
                    i, f, g, o = a.chunk(4, dim=-1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                else:
                    h = torch.tanh(a) if cell.kind == "rnn_tanh" else torch.relu(a)
        return h
    return go


def jax_runner(cell, params, x):
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={cpu.n_threads()}")
    spec = importlib.util.spec_from_file_location("peers_tts", os.path.join(HERE, "peers_time_to_solution.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    make = getattr(mod, "jax_population_runner", None)
    if make is None:
        raise ImportError("peers_time_to_solution.py has no jax_population_runner")
    return make(cell, params, x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default="lstm,gru,rnn_tanh")
    ap.add_argument("--hidden", default="4,32")
    ap.add_argument("--settings", type=int, default=64)
    ap.add_argument("--sequences", type=int, default=512)
    ap.add_argument("--length", type=int, default=50)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--peers", default="torch,jax")
    args = ap.parse_args(argv)
    old = legacy()
    peak = fma_peak_gflops()
    print(f"{cpu.n_threads()} threads, {vector_lanes()} float32 lanes; FMA peak {peak:.0f} GFLOP/s")
    print(f"{'cell':<9} {'H':>3} {'old M/s':>9} {'new M/s':>9} {'new/old':>8} {'GFLOP/s':>8} {'% peak':>7}"
          f" {'torch M/s':>10} {'us/torch':>9} {'jax M/s':>9} {'us/jax':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.cells.split(","):
            for H in map(int, args.hidden.split(",")):
                cell = Cell(kind, H)
                P, B, T = args.settings, args.sequences, args.length
                params = np.ascontiguousarray(cell.init(P, seed=1), np.float32)
                x = np.random.default_rng(0).uniform(-1, 1, (T, B, 1)).astype(np.float32)
                fns = {"old": runner(old.load_uncached(old.source(OLD_CODES[kind], H, 1), folder,
                                                       f"speed_old_{kind}_{H}"), cell, params, x),
                       "new": runner(_codegen.kernel(kind, H, 1), cell, params, x)}
                for peer, make in (("torch", torch_runner), ("jax", jax_runner)):
                    if peer in args.peers.split(","):
                        try:
                            fns[peer] = make(cell, params, x)
                        except (ImportError, RuntimeError) as err:
                            print(f"  ({peer} left out: {err})")
                for f in fns.values():
                    f()
                best = dict.fromkeys(fns, np.inf)
                for _ in range(args.reps):  # alternate: each contender sees the same machine state
                    for k, f in fns.items():
                        t0 = time.perf_counter()
                        f()
                        best[k] = min(best[k], time.perf_counter() - t0)
                rate = {k: P * B * T / v / 1e6 for k, v in best.items()}
                gflops = rate["new"] * 1e6 * 2 * cell.gates * H * (H + 1) / 1e9
                peer = {k: (f"{rate[k]:10.2f} {rate['new'] / rate[k]:8.2f}x" if k in rate else f"{'-':>10} {'-':>9}")
                        for k in ("torch", "jax")}
                print(f"{kind:<9} {H:>3} {rate['old']:9.2f} {rate['new']:9.2f} {rate['new'] / rate['old']:8.3f}"
                      f" {gflops:8.1f} {100 * gflops / peak:6.1f}% {peer['torch']} {peer['jax']}", flush=True)


if __name__ == "__main__":
    main()
