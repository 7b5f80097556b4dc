"""Cell-steps per second of the ``cpu`` backend side by side with PyTorch peers.

cell-steps/s = settings x sequences x steps / seconds.  Workload: I = 1, B = 256, T = 50,
the whole population in one call.  Peers (torch threads = number of cores):

- ``torch loop``: one ``nn.LSTM``/``nn.GRU``/``nn.RNN`` call per setting (weights copied in
  first, as a search must do), batch of B sequences each;
- ``torch bmm``: the population batched: all settings' W_hh stacked, one ``torch.baddbmm``
  per step plus elementwise gates.

Run:  ``python benchmarks/bench_cells.py [--quick] [--out benchmarks/results-cpu.md]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import lstmsearch  # noqa: E402
from lstmsearch import Cell  # noqa: E402
from lstmsearch.kernels import cpu  # noqa: E402

T, B, I = 50, 256, 1


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        flags = "avx512f" if " avx512f" in txt else ("avx2" if " avx2" in txt else "")
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {flags}, {platform.system()} {platform.machine()}"


def median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def sized(impl, cell, x, repeats, budget):
    """Rate of impl with the population sized so that one timed call takes about budget s."""
    P0 = 8
    rate0 = impl(cell, P0, x, 1)
    P = int(min(65536, max(P0, rate0 * budget / (B * T))))
    return impl(cell, P, x, repeats)


def ours(cell, P, x, repeats):
    params = cell.init(P, seed=1)
    steps = np.array([T - 1])
    cpu.run(cell, params[:2], x, steps)  # compile / load cache
    cpu.run(cell, params, x, steps)  # warm
    return P * B * T / median_time(lambda: cpu.run(cell, params, x, steps), repeats)


def _torch_mod(cell):
    import torch

    if cell.kind == "lstm":
        return torch.nn.LSTM(I, cell.hidden)
    if cell.kind == "gru":
        return torch.nn.GRU(I, cell.hidden)
    return torch.nn.RNN(I, cell.hidden, nonlinearity="tanh" if cell.kind == "rnn_tanh" else "relu")


def torch_loop(cell, P, x, repeats):
    import torch

    params = cell.init(P, seed=1)
    mod = _torch_mod(cell)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    blocks = [torch.from_numpy(np.ascontiguousarray(params[:, cell.block(n).slice])) for n in names]
    plist = [getattr(mod, n) for n in names]
    xt = torch.from_numpy(x)

    def go():
        with torch.no_grad():
            for p in range(P):
                for dst, src in zip(plist, blocks):
                    dst.data.copy_(src[p].view(dst.shape))
                mod(xt)

    go()
    go()  # oneDNN primitives are created lazily: warm twice
    return P * B * T / median_time(go, repeats)


def torch_bmm(cell, P, x, repeats):
    import torch

    H, G = cell.hidden, cell.gates
    params = cell.init(P, seed=1)
    blk = lambda n: torch.from_numpy(np.ascontiguousarray(params[:, cell.block(n).slice]))  # noqa: E731
    Wih = blk("weight_ih_l0").view(P, G * H, I)
    Whh = blk("weight_hh_l0").view(P, G * H, H)
    bih = blk("bias_ih_l0").view(P, G * H, 1)
    bhh = blk("bias_hh_l0").view(P, G * H, 1)
    xs = torch.from_numpy(np.ascontiguousarray(x[:, :, 0]))  # (T, B)
    kind = cell.kind

    def go():
        with torch.no_grad():
            h = torch.zeros(P, H, B)
            c = torch.zeros(P, H, B)
            b = bih + bhh
            for t in range(T):
                xi = Wih * xs[t].view(1, 1, B)  # (P, GH, B) for I = 1
                if kind == "lstm":
                    g = torch.baddbmm(xi + b, Whh, h)
                    i, f, gg, o = g.chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
                    h = torch.sigmoid(o) * torch.tanh(c)
                elif kind == "gru":
                    gi = xi + bih
                    gh = torch.baddbmm(bhh, Whh, h)
                    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
                    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
                    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                    h = n + z * (h - n)
                else:
                    h = torch.tanh(torch.baddbmm(xi + b, Whh, h))
            return h

    go()
    return P * B * T / median_time(go, repeats)


def evaluate_line(P, repeats):
    """evaluate(readout="fit") against plain simulate of the same sequences (train + held-out)."""
    from lstmsearch.evaluate import evaluate
    from lstmsearch.tasks import HELDOUT_STREAM, TRAIN_STREAM, make_task

    task = make_task("recall_first", length=T)
    cell = Cell("lstm", 32)
    params = cell.init(P, seed=1)
    n = B // 2  # 128 training + 128 held-out sequences: B = 256 per setting, as above
    x = np.concatenate([task.sample(n, 0, TRAIN_STREAM)[0], task.sample(n, 0, HELDOUT_STREAM)[0]], axis=1)
    steps = task.output_steps()
    evaluate(cell, params[:4], task, n_sequences=n)
    sim = median_time(lambda: cpu.run(cell, params, x, steps), repeats)
    ev = median_time(lambda: evaluate(cell, params, task, n_sequences=n, readout="fit"), repeats)
    return sim, ev


def linearity(repeats):
    """Throughput at P and 4P settings, T and 4T steps (LSTM H=32): should be flat."""
    cell = Cell("lstm", 32)
    out = []
    for P, TT in ((64, T), (256, T), (64, 4 * T)):
        params = cell.init(P, seed=1)
        x = np.random.default_rng(0).uniform(-1, 1, (TT, B, I)).astype(np.float32)
        steps = np.array([TT - 1])
        cpu.run(cell, params[:2], x, steps)
        out.append((P, TT, P * B * TT / median_time(lambda: cpu.run(cell, params, x, steps), repeats)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller populations, 3 repeats")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-cpu.md"))
    ap.add_argument("--cells", default="lstm,gru,rnn_tanh")
    ap.add_argument("--hidden", default="4,32")
    args = ap.parse_args(argv)

    import torch

    torch_threads = os.cpu_count() or 1
    torch.set_num_threads(torch_threads)
    repeats = 3
    budget = 0.1 if args.quick else 0.25  # seconds per timed call
    scale = 0.25 if args.quick else 1.0
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(T, B, I)).astype(np.float32)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    lines = [
        f"Machine: {machine()}; torch {torch.__version__} (best of {torch_threads} and 1 threads); "
        f"numba {__import__('numba').__version__}; load avg at start {load:.2f}",
        f"Workload: I={I}, B={B}, T={T}, whole population per call; M cell-steps/s "
        f"(settings x sequences x steps / s), median of {repeats}.",
        "",
        "| cell | H | MAC/step | ours | torch loop | torch bmm | ours / best torch | ours G MAC/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for kind in args.cells.split(","):
        for H in (int(h) for h in args.hidden.split(",")):
            cell = Cell(kind, H)
            G = cell.gates
            mac = G * H * (H + I)
            a = sized(ours, cell, x, repeats, budget)
            # PyTorch's best: 2 threads as asked, and 1 thread (on a shared 2-core machine
            # torch's OpenMP threads can lose a lot when one core is busy): keep the better.
            b = c = 0.0
            for nt in sorted({torch_threads, 1}, reverse=True):
                torch.set_num_threads(nt)
                b = max(b, sized(torch_loop, cell, x, repeats, budget))
                c = max(c, sized(torch_bmm, cell, x, repeats, budget))
            torch.set_num_threads(torch_threads)
            row = (f"| {kind} | {H} | {mac} | {a / 1e6:.1f} M | {b / 1e6:.1f} M | {c / 1e6:.1f} M | "
                   f"{a / max(b, c):.2f}x | {a * mac / 1e9:.1f} |")
            print(row, flush=True)
            lines.append(row)
    sim, ev = evaluate_line(max(32, int(256 * scale)), repeats)
    lines.append("")
    row = (f"evaluate(readout='fit'), LSTM H=32, recall_first T={T}, 128 train + 128 held-out sequences: "
           f"{ev:.3f} s vs simulate {sim:.3f} s ({ev / sim:.2f}x)")
    print(row, flush=True)
    lines.append(row)
    lin = linearity(repeats)
    row = "linearity (LSTM H=32): " + ", ".join(f"P={P} T={TT}: {r / 1e6:.1f} M" for P, TT, r in lin)
    print(row, flush=True)
    lines.append(row)
    try:
        load = os.getloadavg()[0]
    except OSError:
        pass
    lines.append("")
    lines.append(f"load avg at end {load:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
