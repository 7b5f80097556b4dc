"""Source generator for the specialised CPU kernels (one per cell kind, H and I).

Why generate source: the recurrent product is fastest when, for one hidden unit j and a
vector of sequences, all G gate pre-activations are summed over k in registers and the gate
nonlinearities are applied at once (no round trip through memory). That needs the k loop
fully unrolled with the weights of unit j in scalar locals, which LLVM does not do on its
own. So for each (cell, H, I) we write out a small Python module with that loop unrolled,
import it, and let Numba compile and cache it (``cache=True``: the module lives in a cache
folder, see :func:`kernel`).

Loop nest of the generated ``simulate`` (state kept (H, TB): sequences innermost)::

    for p in range(P):                        # settings (threads take slices of P)
      for s0 in range(0, B, TB):              # a tile of TB sequences, state stays in L1
        for t in range(T):
          for j in range(H):                  # hidden unit
            w = weights of unit j, all gates   # scalars, kept in registers / L1
            for s in range(nb):               # vectorised across sequences
              a_g = b_g + sum_i U[g,j,i] x[t,i,s] + sum_k W[g,j,k] h[k,s]   (unrolled)
              h_new[j, s] = gates(a_0 .. a_{G-1})
          swap(h, h_new); record states at the requested steps

For H > KB the k sum is split into blocks of KB (the partial sums go through a small
scratch array); for I > IMAX the input term is summed in a loop first.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

#: Largest H whose k loop is fully unrolled; above, blocks of KB.
KB = 32
#: Largest I whose input term is unrolled.
IMAX = 8
#: Independent partial sums per gate in the unrolled k sum (instruction-level parallelism).
NSPLIT = 2

GATES = {0: 1, 1: 1, 2: 4, 3: 3}
NAMES = {0: "rnn_tanh", 1: "rnn_relu", 2: "lstm", 3: "gru"}


def _sum(terms):
    """Python source of a left-to-right sum of ``terms``."""
    return " + ".join(terms) if terms else "_ZERO"


class _Src:
    def __init__(self):
        self.lines = []

    def __call__(self, indent, text):
        self.lines.append("    " * indent + text)


def _unit_block(e, ind, code, H, I, G, k0, nk, kbase, first):
    """Emit the partial sums of unit j over hidden inputs k in [kbase + k0, kbase + k0 + nk).

    first (and I <= IMAX): pre = bias + input term + the sum; otherwise pre += the sum
    (bias and input term were put in pre beforehand). kbase is a source expression
    ('' for constant offsets).

    The tile's nb sequences are split in two halves, A = [0, na) and B = [na, nb) with
    na = nb - nb // 2; each iteration of the sequence loop does one sequence of each half,
    so that each weight loaded from memory feeds two vector FMAs. The halves' sums go to
    separate arrays preA, preB (indexed from 0) so that LLVM sees no overlap.
    """
    gru = code == 3
    init = first and I <= IMAX
    kk = (lambda k: f"{kbase} + {k}") if kbase else (lambda k: f"{k}")
    for g in range(G):
        r = f"{g * H} + j" if g else "j"
        for k in range(nk):
            e(ind, f"w{g}_{k} = Whh[{r}, {kk(k0 + k)}]")
        if init:
            e(ind, f"b{g} = bhh[{r}]" if gru and g == 2 else f"b{g} = bih[{r}] + bhh[{r}]")
            if not (gru and g == 2):
                for i in range(I):
                    e(ind, f"u{g}_{i} = Wih[{r}, {i}]")
    # na >= nb - na: when nb is odd the last B lane computed is junk that nothing reads
    # (the buffers hold tile // 2 >= na sequences), which saves a remainder loop.
    e(ind, "for s in range(na):")
    b = ind + 1
    if init:
        for L in "AB":
            for i in range(I):
                e(b, f"x{L}_{i} = xs{L}[{i}, s]")
    nsplit = min(NSPLIT, max(nk, 1))
    # accumulators: gate g, half L, partial sum m (terms k = m mod nsplit); k-major order
    # so that each h value is loaded once, used G times and dropped (few live registers)
    for g in range(G):
        for L in "AB":
            for m in range(nsplit):
                if m == 0:
                    if init:
                        head = [f"b{g}"]
                        if not (gru and g == 2):
                            head += [f"u{g}_{i} * x{L}_{i}" for i in range(I)]
                    else:
                        head = [f"pre{L}[{g}, s]"]
                    e(b, f"a{L}{g}_{m} = {_sum(head)}")
    started = set()
    for k in range(nk):
        for L in "AB":
            e(b, f"v{L} = h{L}[{kk(k0 + k)}, s]")
            m = k % nsplit
            for g in range(G):
                acc = f"a{L}{g}_{m}"
                if m == 0 or (L, g, m) in started:
                    e(b, f"{acc} = {acc} + w{g}_{k} * v{L}")
                else:
                    e(b, f"{acc} = w{g}_{k} * v{L}")
                    started.add((L, g, m))
    for g in range(G):
        for L in "AB":
            parts = [f"a{L}{g}_{m}" for m in range(nsplit) if m == 0 or (L, g, m) in started]
            e(b, f"pre{L}[{g}, s] = {_sum(parts)}")


def _input_term(e, ind, code, H, I, G):
    """preA/preB = bias + input term of unit j, for I > IMAX (a loop over inputs)."""
    for L, n in (("A", "na"), ("B", "nb - na")):
        for g in range(G):
            r = f"{g * H} + j" if g else "j"
            e(ind, f"bb = bhh[{r}]" if code == 3 and g == 2 else f"bb = bih[{r}] + bhh[{r}]")
            e(ind, f"for s in range({n}):")
            e(ind + 1, f"pre{L}[{g}, s] = bb")
        e(ind, f"for i in range({I}):")
        for g in range(G - 1 if code == 3 else G):
            r = f"{g * H} + j" if g else "j"
            e(ind + 1, f"uu = Wih[{r}, i]")
            e(ind + 1, f"for s in range({n}):")
            e(ind + 2, f"pre{L}[{g}, s] += uu * xs{L}[i, s]")


def _gates(e, ind, code, H, I):
    """Nonlinearities of unit j: preA, preB (G, .) -> hn[j] (and c[j])."""
    if code == 3:
        for i in range(I):
            e(ind, f"u_{i} = Wih[{2 * H} + j, {i}]")
        e(ind, f"bx = bih[{2 * H} + j]")
    for L, n in (("A", "na"), ("B", "nb - na")):
        pre = f"pre{L}"
        e(ind, f"for s in range({n}):")
        b = ind + 1
        if code == 0:
            e(b, f"hn{L}[j, s] = tanh({pre}[0, s])")
        elif code == 1:
            e(b, f"v = {pre}[0, s]")
            e(b, "if v < _ZERO:")
            e(b + 1, "v = _ZERO")
            e(b, f"hn{L}[j, s] = v")
        elif code == 2:
            # sigmoid(i) * tanh(g) and sigmoid(o) * tanh(c) with one division each
            e(b, f"cn = sigmoid({pre}[1, s]) * c{L}[j, s] + sigmoid_times_tanh({pre}[0, s], {pre}[2, s])")
            e(b, f"c{L}[j, s] = cn")
            e(b, f"hn{L}[j, s] = sigmoid_times_tanh({pre}[3, s], cn)")
        else:
            e(b, f"xn = {_sum(['bx'] + [f'u_{i} * xs{L}[{i}, s]' for i in range(I)])}")
            e(b, f"n = tanh(xn + sigmoid({pre}[0, s]) * {pre}[2, s])")
            e(b, f"hv = h{L}[j, s]")
            e(b, f"hn{L}[j, s] = n + sigmoid({pre}[1, s]) * (hv - n)")


def source(code: int, H: int, I: int) -> str:
    """Python source of the kernel module for cell ``code``, hidden size H, inputs I."""
    G = GATES[code]
    GH = G * H
    o1 = GH * I
    o2 = o1 + GH * H
    o3 = o2 + GH
    o4 = o3 + GH
    tb = tile(H)
    e = _Src()
    e(0, f'"""Generated by lstmsearch.kernels._codegen: {NAMES[code]}, H={H}, I={I}. Do not edit."""')
    e(0, "import numpy as np")
    e(0, "from numba import njit")
    e(0, "from lstmsearch.kernels._fastmath import prefer_wide_vectors, sigmoid, sigmoid_times_tanh, tanh")
    e(0, "_ZERO = np.float32(0.0)")
    e(0, "")
    e(0, "")
    e(0, '@njit(nogil=True, cache=True, fastmath={"contract"}, error_model="numpy", boundscheck=False)')
    e(0, "def simulate(params, xT, steps, h0, c0, out_h, out_c):")
    e(1, "prefer_wide_vectors()")
    e(1, "P = params.shape[0]")
    e(1, "T = xT.shape[0]")
    e(1, "B = xT.shape[2]")
    e(1, "S = steps.shape[0]")
    e(1, "n_h0 = h0.shape[0]")
    e(1, "n_c0 = c0.shape[0]")
    e(1, "for p in range(P):")
    e(2, "w = params[p]")
    e(2, f"Wih = w[0:{o1}].reshape(({GH}, {I}))")
    e(2, f"Whh = w[{o1}:{o2}].reshape(({GH}, {H}))")
    e(2, f"bih = w[{o2}:{o3}]")
    e(2, f"bhh = w[{o3}:{o4}]")
    th = tb // 2  # each half-tile
    for L in "AB":
        e(2, f"h{L} = np.zeros(({H}, {th}), np.float32)")
        e(2, f"hn{L} = np.zeros(({H}, {th}), np.float32)")
        e(2, f"c{L} = np.zeros(({H}, {th}), np.float32)")
        e(2, f"pre{L} = np.zeros(({G}, {th}), np.float32)")
        e(2, f"xs{L} = np.zeros(({I}, {th}), np.float32)")
    e(2, "hp = h0[p % n_h0]")
    e(2, "cp = c0[p % n_c0]")
    e(2, f"for s0 in range(0, B, {tb}):")
    e(3, f"nb = min({tb}, B - s0)")
    e(3, "na = nb - nb // 2")
    e(3, "s1 = s0 + na")
    for L, n, o in (("A", "na", "s0"), ("B", "nb - na", "s1")):
        e(3, f"for k in range({H}):")
        e(4, f"for s in range({n}):")
        e(5, f"h{L}[k, s] = hp[k, {o} + s]")
        if code == 2:
            e(5, f"c{L}[k, s] = cp[k, {o} + s]")
    e(3, "si = 0")
    e(3, "for t in range(T):")
    for L, n, o in (("A", "na", "s0"), ("B", "nb - na", "s1")):
        e(4, f"for i in range({I}):")  # the tile's inputs at step t, contiguous
        e(5, f"for s in range({n}):")
        e(6, f"xs{L}[i, s] = xT[t, i, {o} + s]")
    ind = 4
    e(ind, f"for j in range({H}):")
    if I > IMAX:
        _input_term(e, ind + 1, code, H, I, G)
    if H <= KB:
        _unit_block(e, ind + 1, code, H, I, G, 0, H, "", True)
    else:
        nfull, rem = divmod(H, KB)
        _unit_block(e, ind + 1, code, H, I, G, 0, KB, "", True)
        if nfull > 1:
            e(ind + 1, f"for kb in range({KB}, {KB * nfull}, {KB}):")
            _unit_block(e, ind + 2, code, H, I, G, 0, KB, "kb", False)
        if rem:
            _unit_block(e, ind + 1, code, H, I, G, KB * nfull, rem, "", False)
    _gates(e, ind + 1, code, H, I)
    e(4, "hA, hnA = hnA, hA")
    e(4, "hB, hnB = hnB, hB")
    e(4, "while si < S and steps[si] == t:")
    for L, n, o in (("A", "na", "s0"), ("B", "nb - na", "s1")):
        e(5, f"for k in range({H}):")
        e(6, f"for s in range({n}):")
        e(7, f"out_h[p, si, k, {o} + s] = h{L}[k, s]")
        if code == 2:
            e(7, f"out_c[p, si, k, {o} + s] = c{L}[k, s]")
    e(5, "si += 1")
    return "\n".join(e.lines) + "\n"


def tile(H: int) -> int:
    """Sequences per tile: all of a typical batch (the weights of a unit are loaded once
    per step for the whole tile); h of the tile (H x tile floats) stays in L1/L2."""
    return int(min(512, max(64, (65536 // (4 * H)) // 16 * 16)))


def _cache_dir() -> str:
    root = os.environ.get("LSTMSEARCH_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "lstmsearch")
    path = os.path.join(root, "kernels")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".probe{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError:
        path = os.path.join(tempfile.gettempdir(), f"lstmsearch-{os.getuid() if hasattr(os, 'getuid') else 0}",
                            "kernels")
        os.makedirs(path, exist_ok=True)
    return path


def _version_hash() -> str:
    """Hash of the generator and the fast math it inlines: a change gives new file names,
    so Numba never reuses a cached kernel compiled from older code."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for name in ("_codegen.py", "_fastmath.py"):
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:12]


_LOCK = threading.Lock()
_KERNELS = {}


def kernel(code: int, H: int, I: int):
    """The compiled ``simulate`` for (cell code, H, I), generated and imported once."""
    key = (code, H, I)
    fn = _KERNELS.get(key)
    if fn is not None:
        return fn
    with _LOCK:
        fn = _KERNELS.get(key)
        if fn is not None:
            return fn
        modname = f"lsk_{NAMES[code]}_h{H}_i{I}_{_version_hash()}"
        path = os.path.join(_cache_dir(), modname + ".py")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(source(code, H, I))
            os.replace(tmp, path)  # atomic: concurrent processes write the same text
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
        fn = mod.simulate
        _KERNELS[key] = fn
        return fn
