"""Cell-steps per second of the cuda backend, side by side with PyTorch on the same GPU.

A cell-step is one setting advancing one sequence by one time step (settings x sequences
x steps / seconds). For each cell (lstm, gru, rnn_tanh) and H in {4, 32}, with B = 256
sequences of T = 50 steps and I = 1 input, float32 with TF32 off:

- ``cuda kernel``: the lstmsearch kernel alone, on device arrays (CUDA events);
- ``cuda run``:    ``lstmsearch.kernels.cuda.run`` end to end (host arrays in and out);
- ``torch loop``:  one ``nn.LSTM``/``nn.GRU``/``nn.RNN`` call (cuDNN) per setting;
- ``torch bmm``:   the whole population at once, one ``torch.baddbmm`` per step for
  ``W_hh h`` plus the gates' element-wise work (PyTorch's equations).

Ratios are printed against PyTorch's best. Targets (issue 4, one H100): >= 4e9 cell-steps/s
for the LSTM at H = 32 and >= 2x PyTorch's best; >= 10x PyTorch's best at H = 4.

Usage::

    python benchmarks/bench_cuda.py                     # the full table (needs a GPU)
    python benchmarks/bench_cuda.py --cells lstm --hidden 32 --settings 8192
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/bench_cuda.py --smoke   # code path check only
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lstmsearch import Cell
from lstmsearch.kernels import cuda as kcuda

TARGETS = {32: ("absolute >= 4e9 and >= 2x torch", 4e9, 2.0), 4: ("ratio >= 10x torch", 0.0, 10.0)}


def bench_kernel(cell, params, x, repeats):
    """(kernel-only, end-to-end) cell-steps/s of the cuda backend."""
    cuda = kcuda.require_gpu()
    P, (T, B, I) = params.shape[0], x.shape
    H = cell.hidden
    steps = np.array([T - 1], np.int32)
    kernel, layout = kcuda.kernel_for(cell, I)
    d_w = cuda.to_device(layout.pack(params))
    d_x = cuda.to_device(np.ascontiguousarray(x.transpose(0, 2, 1)))
    d_steps = cuda.to_device(steps)
    d_h0 = cuda.to_device(np.zeros((1, H, B), np.float32))
    d_c0 = cuda.to_device(np.zeros((1, H, B), np.float32))
    d_oh = cuda.device_array((P, 1, H, B), np.float32)
    d_oc = cuda.device_array((P, 1, H, B), np.float32) if cell.kind == "lstm" else \
        cuda.device_array((1, 1, 1, 1), np.float32)
    args = (kernel, d_w, d_x, d_steps, d_h0, d_c0, d_oh, d_oc)
    kcuda.launch(*args)  # compile + warm up
    cuda.synchronize()
    best = np.inf
    for _ in range(repeats):
        if kcuda.simulating():  # the simulator's events do not time anything
            t0 = time.perf_counter()
            kcuda.launch(*args)
            cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
            continue
        start, stop = cuda.event(), cuda.event()
        start.record()
        kcuda.launch(*args)
        stop.record()
        stop.synchronize()
        best = min(best, start.elapsed_time(stop) / 1e3)  # ms -> s
    kernel_rate = P * B * T / best
    kcuda.run(cell, params[:2], x, steps)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        kcuda.run(cell, params, x, steps)
        best = min(best, time.perf_counter() - t0)
    return kernel_rate, P * B * T / best


def _torch_setup(device):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch


def _sync(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_torch_loop(cell, params, x, repeats, device, n_loop):
    """cell-steps/s of one torch.nn module call per setting (cuDNN on a GPU)."""
    torch = _torch_setup(device)
    n_loop = min(n_loop, params.shape[0])
    models = [cell.torch_model(params[p]).to(device) for p in range(n_loop)]
    xt = torch.from_numpy(x).to(device)
    T, B, _ = x.shape
    with torch.no_grad():
        for m in models[:2]:
            m(xt)
        _sync(torch, device)
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            for m in models:
                m(xt)
            _sync(torch, device)
            best = min(best, time.perf_counter() - t0)
    return n_loop * B * T / best


def bench_torch_bmm(cell, params, x, repeats, device, check=False):
    """cell-steps/s of the batched population: one baddbmm per step for all settings.

    With ``check``, first assert that its final states equal the cuda backend's."""
    torch = _torch_setup(device)
    P, (T, B, I) = params.shape[0], x.shape
    H, G = cell.hidden, cell.gates
    blocks = cell.unflatten(params)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)
    Wih = t(blocks["weight_ih_l0"]).transpose(1, 2)  # (P, I, GH)
    Whh = t(blocks["weight_hh_l0"]).transpose(1, 2).contiguous()  # (P, H, GH)
    bih = t(blocks["bias_ih_l0"])[:, None, :]
    bhh = t(blocks["bias_hh_l0"])[:, None, :]
    xt = t(x)

    def forward():
        h = torch.zeros(P, B, H, device=device)
        c = torch.zeros(P, B, H, device=device)
        for s in range(T):
            gi = torch.baddbmm(bih, xt[s].expand(P, B, I), Wih)
            gh = torch.baddbmm(bhh, h, Whh)
            if cell.kind == "lstm":
                i, f, g, o = (gi + gh).chunk(4, dim=2)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            elif cell.kind == "gru":
                ir, iz, in_ = gi.chunk(3, dim=2)
                hr, hz, hn = gh.chunk(3, dim=2)
                r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
                h = (1 - z) * torch.tanh(in_ + r * hn) + z * h
            elif cell.kind == "rnn_tanh":
                h = torch.tanh(gi + gh)
            else:
                h = torch.relu(gi + gh)
        return h

    with torch.no_grad():
        h = forward()
        if check:
            want = kcuda.run(cell, params, x, np.array([T - 1]))[0][:, 0]
            np.testing.assert_allclose(h.cpu().numpy(), want, rtol=0, atol=1e-5)
        _sync(torch, device)
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward()
            _sync(torch, device)
            best = min(best, time.perf_counter() - t0)
    return P * B * T / best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default="lstm,gru,rnn_tanh")
    ap.add_argument("--hidden", default="4,32")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--settings", type=int, default=0,
                    help="population size for cuda and bmm (default: 16384 at H<=8, else 4096)")
    ap.add_argument("--loop-settings", type=int, default=64, help="nn.Module calls timed in the torch loop")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny shapes, torch on the CPU: checks the code paths (e.g. under the simulator)")
    a = ap.parse_args(argv)

    ok, where = kcuda.gpu_status()
    if not ok:
        print(f"bench_cuda: nothing measured: {where}")
        return 0
    simulated = kcuda.simulating()
    device = "cpu" if (a.smoke or simulated) else "cuda"
    if a.smoke:
        a.batch, a.steps, a.repeats, a.loop_settings = 4, 3, 1, 2
    print(f"device: {where}; B={a.batch} T={a.steps} I=1 float32, TF32 off")
    if a.smoke:
        print("smoke mode: tiny shapes; the torch bmm population is checked against the cuda backend")
    if simulated:
        print("CUDA SIMULATOR: the figures below are NOT measurements of a GPU")
    if device == "cpu" and not a.no_torch:
        print("torch runs on the CPU here (smoke/simulator mode): its figures are not GPU peers")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (a.steps, a.batch, 1)).astype(np.float32)
    header = f"{'cell':<9}{'H':>3}  {'cuda kernel':>12}{'cuda run':>12}{'torch loop':>12}{'torch bmm':>12}  ratio"
    print(header)
    print("-" * len(header))
    verdicts = []
    for kind in a.cells.split(","):
        for H in (int(h) for h in a.hidden.split(",")):
            P = a.settings or (16384 if H <= 8 else 4096)
            if a.smoke:
                P = 3
            cell = Cell(kind, H)
            params = cell.init(P, seed=1)
            k_rate, run_rate = bench_kernel(cell, params, x, a.repeats)
            loop = bmm = float("nan")
            if not a.no_torch:
                loop = bench_torch_loop(cell, params, x, a.repeats, device, a.loop_settings)
                bmm = bench_torch_bmm(cell, params[:min(P, 4096)], x, a.repeats, device, check=a.smoke)
            best_torch = np.nanmax([loop, bmm]) if not a.no_torch else float("nan")
            ratio = k_rate / best_torch
            print(f"{kind:<9}{H:>3}  {k_rate:12.3g}{run_rate:12.3g}{loop:12.3g}{bmm:12.3g}  {ratio:6.1f}x")
            if kind == "lstm" and H in TARGETS and not simulated and device == "cuda":
                label, absolute, factor = TARGETS[H]
                met = k_rate >= absolute and ratio >= factor
                verdicts.append(f"target lstm H={H} ({label}): {'met' if met else 'NOT met'}")
    for v in verdicts:
        print(v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
