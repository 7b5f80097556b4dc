"""Where the LSTM kernel's time goes: the recurrent sum against the gate update, one thread.

Builds three variants of the generated LSTM kernel (I = 1) and times them alternately in one
process on the same inputs (B = 256, T = 50, best of the repetitions):

- ``full``: the kernel as shipped;
- ``sum only``: the gate functions replaced by copies of a pre-activation (the recurrent sum,
  the copies and the loop structure remain);
- ``gates only``: the recurrent sum left out (the gates run on whatever ``pre`` holds).

and measures this core's peak rate of 512-bit fused multiply-adds (16 independent chains of
``llvm.fma.v16f32``), which gives the floor of the sum: G H (H + I) / 16 FMAs per cell-step.
It also counts the instructions of the kernel's hot loops from its assembly.

Run:  ``python benchmarks/profile_phases.py [--hidden 32] [--reps 9]``
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from lstmsearch import Cell  # noqa: E402
from lstmsearch.kernels import _codegen  # noqa: E402
from lstmsearch.kernels._fastmath import prefer_wide_vectors  # noqa: E402

T, B, I = 50, 256, 1
CHAINS = 16


@intrinsic
def _fma_chains(typingctx, n):
    """n rounds of 16 independent 512-bit FMAs (a = a * m + b per chain); returns a lane."""
    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        vec = ir.VectorType(f32, 16)
        i64 = ir.IntType(64)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), "llvm.fma.v16f32")
        m = ir.Constant(vec, [0.999] * 16)
        b = ir.Constant(vec, [0.001] * 16)
        start = builder.basic_block
        loop = builder.append_basic_block("chains.loop")
        done = builder.append_basic_block("chains.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        i = builder.phi(i64)
        i.add_incoming(ir.Constant(i64, 0), start)
        accs = []
        for c in range(CHAINS):
            a = builder.phi(vec)
            a.add_incoming(ir.Constant(vec, [float(c)] * 16), start)
            accs.append(a)
        new = [builder.call(fma, [a, m, b]) for a in accs]
        for a, v in zip(accs, new):
            a.add_incoming(v, loop)
        i1 = builder.add(i, ir.Constant(i64, 1))
        i.add_incoming(i1, loop)
        builder.cbranch(builder.icmp_signed("<", i1, args[0]), loop, done)
        builder.position_at_end(done)
        total = new[0]
        for v in new[1:]:
            total = builder.fadd(total, v)
        return builder.extract_element(total, ir.Constant(ir.IntType(32), 0))

    return types.float32(types.int64), codegen


@njit
def fma_peak_loop(n):
    prefer_wide_vectors()
    return _fma_chains(n)


def fma_peak(rounds=50_000_000):
    """512-bit FMAs per ns on one thread (best of 3)."""
    fma_peak_loop(10)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        fma_peak_loop(rounds)
        best = min(best, time.perf_counter() - t0)
    return CHAINS * rounds / best / 1e9


VARIANTS = {
    "full": lambda s: s,
    "sum only": lambda s: re.sub(r"lstm_hidden\(pre\[3, ([^\]]*)\][^)]*\)", r"pre[3, \1]",
                                 re.sub(r"lstm_cell\(pre\[0, ([^\]]*)\][^)]*\)", r"pre[0, \1]", s)),
    "gates only": lambda s: re.sub(r"\n(\s+)unit_sum_\w+\(.*\)", r"\n\1pass", s),
}


def hot_loops(asm, min_len=200):
    """(instructions, opcode counts) of each innermost vector loop of at least min_len
    instructions (scalar remainder loops left out)."""
    lines = asm.split("\n")
    labels = {m.group(1): i for i, line in enumerate(lines) if (m := re.match(r"^(\.LBB\d+_\d+):", line))}
    loops = []
    for i, line in enumerate(lines):
        m = re.match(r"\s+j\w+\s+(\.LBB\d+_\d+)", line)
        if m and labels.get(m.group(1), i) < i:
            body = [x.split()[0] for x in lines[labels[m.group(1)]:i + 1]
                    if x.startswith("\t") and not x.strip().startswith((".", "#"))]
            if len(body) >= min_len:
                loops.append((labels[m.group(1)], i, body))
    # innermost: no other listed loop inside
    inner = [lp for lp in loops if not any(o is not lp and lp[0] <= o[0] and o[1] <= lp[1] for o in loops)]
    out = []
    for _, _, body in inner:
        ops = collections.Counter(body)
        packed = sum(c for op, c in ops.items() if op.startswith("vf") and op.endswith("ps"))
        scalar = sum(c for op, c in ops.items() if op.startswith("vf") and op.endswith("ss"))
        if packed > max(scalar, 10):
            out.append((len(body), ops))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--settings", type=int, default=24)
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args(argv)
    H, P = args.hidden, args.settings
    cell = Cell("lstm", H)
    params = np.ascontiguousarray(cell.init(P, seed=1), np.float32)
    xT = np.random.default_rng(0).uniform(-1, 1, (T, I, B)).astype(np.float32)
    steps = np.array([T - 1], np.int64)
    z = np.zeros((1, H, B), np.float32)
    out_h, out_c = np.empty((P, 1, H, B), np.float32), np.empty((P, 1, H, B), np.float32)
    src = _codegen.source(cell.kind, H, I)
    with tempfile.TemporaryDirectory() as folder:
        fns = {}
        for k, (tag, edit) in enumerate(VARIANTS.items()):
            variant = edit(src)
            if tag != "full" and variant == src:
                raise SystemExit(f"variant {tag!r} changed nothing: update VARIANTS for the generator")
            fns[tag] = _codegen.load_uncached(variant, folder, f"profile_{k}_{H}")
            fns[tag](params, xT, steps, z, z, out_h, out_c)
        best = dict.fromkeys(fns, np.inf)
        for _ in range(args.reps):
            for tag, fn in fns.items():
                t0 = time.perf_counter()
                fn(params, xT, steps, z, z, out_h, out_c)
                best[tag] = min(best[tag], time.perf_counter() - t0)
        asm = next(iter(fns["full"].inspect_asm().values()))
    work = P * B * T
    peak = fma_peak()
    fmas = cell.gates * H * (H + I) / 16
    print(f"LSTM H={H}, one thread, ns per cell-step (best of {args.reps}):")
    for tag, b in best.items():
        print(f"  {tag:11s} {1e9 * b / work:6.1f}")
    print(f"512-bit FMA peak: {peak:.2f} per ns; the sum's {fmas:.0f} FMAs per cell-step need at least "
          f"{fmas / peak:.1f} ns (sum at {fmas / peak / (1e9 * best['sum only'] / work):.0%} of it)")
    print("hot loops of the full kernel (instructions; most frequent opcodes):")
    for n, ops in hot_loops(asm):
        print(f"  {n:4d}: " + ", ".join(f"{op} {c}" for op, c in ops.most_common(8)))


if __name__ == "__main__":
    main()
