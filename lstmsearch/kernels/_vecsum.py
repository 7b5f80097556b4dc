"""The recurrent sum of the CPU kernels written as explicit vector code (LLVM IR).

For hidden unit j, its G accumulator rows r_g = j + g * stride (the gates of unit j, or U
units of a one-gate cell) and Q parts of a tile of sequences (columns q * th + s), one call
computes, for every vector of ``lanes`` sequences of each part::

    pre[g, col] = b_g + sum_i Wih[r_g, i] xs[i, col] + sum_k Whh[r_g, kbase + k] h[kbase + k, col]

with b_g = bih[r_g] + bhh[r_g] (or, when not ``init``, pre[g, col] + the k sum), summed left
to right (inputs, then k = 0, 1, ...) with fused multiply-adds: each sequence's sum is
rounded the same way whatever the vector width, and bit for bit as the unrolled Numba loop
that :mod:`lstmsearch.kernels._codegen` wrote before this module existed.

Why by hand: written as a Numba loop over sequences, LLVM vectorises it but first hoists the
G x nk weight broadcasts out of the sequence loop (they are loop invariant) and, having only
32 vector registers, writes them to the stack and reads them back in the loop: 128 stores
per unit and step at H = 32, plus a reload per weight and part of the tile. Here each weight
is broadcast from ``Whh`` itself inside the loop, through a pointer that the optimiser
cannot see through (an empty ``asm`` that returns it), so it stays a single
``vbroadcastss`` load that feeds Q FMAs, and nothing goes to the stack.

Layout assumed (what the generated kernels allocate): ``h``, ``xs`` and ``pre`` C-contiguous
with Q * th columns, th a multiple of ``lanes``; ``Wih`` (rows, I), ``Whh`` (rows, H)
C-contiguous.

Vector width: 16 floats (one zmm register) where the target has AVX-512, else 8 (one ymm
register with AVX2, two NEON registers); see :func:`vector_lanes`.
Lanes past the part's sequences compute values that nothing reads.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def target_features() -> str:
    """The CPU features Numba compiles for ($NUMBA_CPU_FEATURES, else the host's)."""
    from numba.core import config

    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_features().flatten()


def vector_lanes() -> int:
    """float32 lanes of the sum's vectors: 16 with AVX-512 (32 zmm registers), else 8."""
    return 16 if "+avx512f" in target_features().split(",") else 8


def make_unit_sum(G: int, Q: int, nk: int, I: int, th: int, stride: int, H: int,
                  hh_only=(), init: bool = True, lanes: int = 16):
    """An intrinsic ``unit_sum(Wih, Whh, bih, bhh, h, xs, pre, j, kbase, nvec)`` for G rows,
    Q parts, nk hidden inputs from kbase, nvec vectors of ``lanes`` sequences per part.

    Rows in ``hh_only`` take bhh alone as bias and no input term (the GRU's candidate gate,
    whose input term is added later). With ``init`` False the sums start from ``pre``.
    """
    if th % lanes:
        raise ValueError(f"th = {th} is not a multiple of {lanes}")
    ncol = Q * th

    @intrinsic
    def unit_sum(typingctx, Wih, Whh, bih, bhh, h, xs, pre, j, kbase, nvec):
        sig = types.none(Wih, Whh, bih, bhh, h, xs, pre, j, kbase, nvec)

        def codegen(context, builder, sig, args):
            f32 = ir.FloatType()
            i64 = ir.IntType(64)
            vec = ir.VectorType(f32, lanes)
            vptr = vec.as_pointer()
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                                 f"llvm.fma.v{lanes}f32")
            data = [context.make_array(sig.args[a])(context, builder, args[a]).data for a in range(7)]
            wih, whh, bih_, bhh_, hp, xsp, prep = data
            jv, kb, nv = (builder.sext(a, i64) if a.type.width < 64 else a for a in args[7:10])
            c = lambda n: ir.Constant(i64, n)  # noqa: E731
            zero_mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)

            def splat(x):
                v = builder.insert_element(ir.Constant(vec, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
                return builder.shuffle_vector(v, ir.Constant(vec, ir.Undefined), zero_mask)

            def vload(base, idx):
                p = builder.bitcast(builder.gep(base, [idx]), vptr)
                return builder.load(p, align=4)

            def vstore(val, base, idx):
                p = builder.bitcast(builder.gep(base, [idx]), vptr)
                builder.store(val, p, align=4)

            rows = [builder.add(jv, c(g * stride)) for g in range(G)]
            bias, uin, wrow = [], [], []
            for g, r in enumerate(rows):
                if init:
                    bh = builder.load(builder.gep(bhh_, [r]))
                    if g in hh_only:
                        bias.append(splat(bh))
                        uin.append([])
                    else:
                        bias.append(splat(builder.fadd(builder.load(builder.gep(bih_, [r])), bh)))
                        uin.append([splat(builder.load(builder.gep(wih, [builder.add(builder.mul(r, c(I)), c(i))])))
                                    for i in range(I)])
                wrow.append(builder.gep(whh, [builder.add(builder.mul(r, c(H)), kb)]))

            start = builder.basic_block
            fn = builder.function
            loop = fn.append_basic_block("unit_sum.loop")
            done = fn.append_basic_block("unit_sum.done")
            builder.cbranch(builder.icmp_signed(">", nv, c(0)), loop, done)
            builder.position_at_end(loop)
            v = builder.phi(i64)
            v.add_incoming(c(0), start)
            col0 = builder.mul(v, c(lanes))
            cols = [builder.add(col0, c(q * th)) for q in range(Q)]
            # opaque copies of the weight rows: loads through them cannot leave the loop
            opaque = ir.FunctionType(wrow[0].type, [wrow[0].type])
            wr = [builder.asm(opaque, "", "=r,0", [w], side_effect=True) for w in wrow]
            acc = {}
            for q in range(Q):
                xv = [vload(xsp, builder.add(cols[q], c(i * ncol))) for i in range(I)] if init else []
                for g in range(G):
                    if init:
                        a = bias[g]
                        for i in range(len(uin[g])):
                            a = builder.call(fma, [uin[g][i], xv[i], a])
                    else:
                        a = vload(prep, builder.add(cols[q], c(g * ncol)))
                    acc[g, q] = a
            for k in range(nk):
                hrow = builder.mul(builder.add(kb, c(k)), c(ncol))
                hv = [vload(hp, builder.add(hrow, cols[q])) for q in range(Q)]
                for g in range(G):
                    w = splat(builder.load(builder.gep(wr[g], [c(k)]), align=4))
                    for q in range(Q):
                        acc[g, q] = builder.call(fma, [w, hv[q], acc[g, q]])
            for g in range(G):
                for q in range(Q):
                    vstore(acc[g, q], prep, builder.add(cols[q], c(g * ncol)))
            v1 = builder.add(v, c(1))
            v.add_incoming(v1, builder.basic_block)
            builder.cbranch(builder.icmp_signed("<", v1, nv), loop, done)
            builder.position_at_end(done)
            return context.get_dummy_value()

        return sig, codegen

    return unit_sum
