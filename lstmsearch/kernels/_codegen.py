"""Source generator for the specialised CPU kernels (one per cell kind, H and I).

Why generate source: the recurrent product is fastest when, for one hidden unit j and a
vector of sequences, all G gate pre-activations are summed over k in registers, each weight
broadcast once per pass and each h vector loaded once for G FMAs. That sum is written as
explicit vector code (:mod:`lstmsearch.kernels._vecsum`, one intrinsic per (G, parts, nk));
the gate nonlinearities and the copies around it are plain Numba loops that LLVM
vectorises across sequences. So for each (cell, H, I) we write out a small Python module
with those pieces, import it, and let Numba compile and cache it (``cache=True``: the
module lives in a cache folder, see :func:`kernel`).

Loop nest of the generated ``simulate`` (state kept (H, TB): sequences innermost)::

    for p in range(P):                        # settings (threads take slices of P)
      for s0 in range(0, B, TB):              # a tile of TB sequences, state stays in L1
        for t in range(T):
          for j in range(H):                  # hidden unit
            for each vector of 16 (AVX-512; else 8) sequences of each of the Q parts: (_vecsum)
              pre_g = b_g + sum_i U[g,j,i] x[t,i,s] + sum_k W[g,j,k] h[k,s]   (unrolled)
            for s in range(na):               # vectorised across sequences
              h_new[j, s] = gates(pre_0 .. pre_{G-1})
          swap(h, h_new); record states at the requested steps

A tile's nb sequences are split in Q parts of na = ceil(nb / Q) sequences, part q at column
offset q * th of one buffer per quantity (h, hn, c, pre, xs); every loop does the Q parts in
lockstep, so that each weight broadcast feeds Q FMAs. Lanes past a part's sequences compute
values that nothing reads.

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

from ..kinds.graph import LEAVES, Graph
from ._vecsum import vector_lanes

#: Largest H whose k loop is fully unrolled; above, blocks of KB.
KB = 32
#: Largest I whose input term is unrolled.
IMAX = 8
#: Most sequence parts in lockstep (see _unit_block, _parts): 4 parts x 4 LSTM gates = 16
#: accumulators, each h vector loaded feeds G FMAs and each weight Q FMAs (5 or 6: slower).
QPARTS = 4
#: Hidden units per pass for the one-gate RNN cells (see _units).
UNITS = 4
#: Overrides by (gates, H > 8).
PARTS = {}
LETTERS = "ABCDEFGH"

#: Source of each operation of a cell's float32 equations (see :mod:`lstmsearch.kinds.graph`;
#: ``fma`` is written as a multiply-add that the ``contract`` flag lets LLVM fuse).
OPS = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}", "neg": "-{0}",
    "sigmoid": "sigmoid({0})", "tanh": "tanh({0})", "relu": "_ZERO if {0} < _ZERO else {0}",
    "lerp": "{1} + {0} * ({2} - {1})", "fma": "{2} + {0} * {1}", "sum_of_products": "{0} * {1} + {2} * {3}",
    "sigmoid_tanh": "lstm_hidden({0}, {1})", "lstm_cell": "lstm_cell({0}, {1}, {2}, {3})",
}


def _sum(terms):
    """Python source of a left-to-right sum of ``terms``."""
    return " + ".join(terms) if terms else "_ZERO"


class _Src:
    def __init__(self):
        self.lines = []
        self.defs = {}  # module-level definitions the body needs, by name

    def __call__(self, indent, text):
        self.lines.append("    " * indent + text)


def _col(L, th):
    """Column of sequence s of part L in the tile buffers (parts th columns apart)."""
    q = LETTERS.index(L)
    return f"{q * th} + s" if q else "s"


def _row(H, g, u=0):
    """Row of W_ih / W_hh / biases for gate g of unit j + u (the one-gate cells do U units per
    pass, see :func:`_units`; the gated ones one)."""
    r = [f"{g * H}"] if g else []
    r += ["j"] + ([f"{u}"] if u else [])
    return " + ".join(r)


def _units(G, H, dense=True):
    """Hidden units per pass over h: a one-gate cell with a dense recurrence (the RNNs) does
    UNITS at once, so that each h vector loaded feeds as many FMAs as for the LSTM; the gated
    ones one."""
    if G != 1 or not dense:
        return 1
    for u in (UNITS, 2):
        if H % u == 0:
            return u
    return 1


def _parts(G, H, registers):
    """Number of sequence parts processed in lockstep (see :func:`_unit_block`): QPARTS with
    32 vector registers (AVX-512), 2 with 16 (AVX2: 4 gates x 2 parts = 8 accumulators; 3
    parts were 1.2x slower there, measured with NUMBA_CPU_NAME=haswell)."""
    return PARTS.get((G, H > 8), QPARTS if registers >= 32 else 2)


def _unit_block(e, ind, H, I, GU, U, Q, th, k0, nk, kbase, first, lanes, hh_only):
    """Emit the sums of unit j's GU accumulator rows over hidden inputs k in
    [kbase + k0, kbase + k0 + nk), for the Q parts of the tile (see :mod:`._vecsum`).

    first (and I <= IMAX): pre = bias + input term + the sum; otherwise pre += the sum
    (bias and input term were put in pre beforehand). kbase is a source expression
    ('' for constant offsets). Rows in hh_only take b_hh alone and no input term.
    """
    init = first and I <= IMAX
    stride = 1 if U > 1 or GU == 1 else H
    name = f"unit_sum_{nk}_{int(init)}"
    e.defs[name] = (f"{name} = make_unit_sum(G={GU}, Q={Q}, nk={nk}, I={I}, th={th}, stride={stride}, "
                    f"H={H}, hh_only={hh_only}, init={init}, lanes={lanes})")
    first_k = f"{kbase} + {k0}" if kbase and k0 else (kbase or f"{k0}")
    e(ind, f"{name}(Wih, Whh, bih, bhh, h, xs, pre, j, {first_k}, nvec)")


def _input_term(e, ind, H, I, G, U, Q, th, hh_only):
    """pre* = bias + input term of unit j, for I > IMAX (a loop over inputs)."""
    rows = [(g * U + u, _row(H, g, u)) for g in range(G) for u in range(U)]
    for L in LETTERS[:Q]:
        for a, r in rows:
            e(ind, f"bb = bhh[{r}]" if a in hh_only else f"bb = bih[{r}] + bhh[{r}]")
            e(ind, "for s in range(na):")
            e(ind + 1, f"pre[{a}, {_col(L, th)}] = bb")
        e(ind, f"for i in range({I}):")
        for a, r in rows:
            if a in hh_only:
                continue
            e(ind + 1, f"uu = Wih[{r}, i]")
            e(ind + 1, "for s in range(na):")
            e(ind + 2, f"pre[{a}, {_col(L, th)}] += uu * xs[i, {_col(L, th)}]")


def _constant(e, value):
    """A module-level float32 constant for ``value``."""
    if value == 0.0:
        return "_ZERO"
    name = f"_C{len([k for k in e.defs if k.startswith('_C')])}"
    for k, v in e.defs.items():
        if v == f"{k} = np.float32({value!r})":
            return k
    e.defs[name] = f"{name} = np.float32({value!r})"
    return name


def _phases(spec):
    """The loops of the gate code, as (values a first loop stores, graph of the second loop).

    Two short loops run faster than one long one: each loop's dependency chains, over the Q
    parts, are short enough for the out-of-order core to overlap successive iterations (the
    0.2 kernels' LSTM and GRU loops, derived here). A cell with a memory c stores c' first and
    computes h' from it (where h' reads no old c); otherwise the first loop stores the operands
    of h's last operation (of a sigmoid or tanh there, its argument): for the GRU, z and the
    candidate's argument, then n = tanh(.) and h' = n + z (h - n). A cell with nothing to store
    (the RNNs: h' = tanh(pre)) has one loop."""
    graph = spec.kernel_graph
    if spec.memory:
        second = graph.stored({"c": graph.outputs["c"]}, ["h"])
        if not second.reads("c"):
            return {"c": graph.outputs["c"]}, second
        return {}, graph
    first = {}
    for d in graph.outputs["h"].args:
        if d.op in ("sigmoid", "tanh") and d.args[0].op not in LEAVES:
            d = d.args[0]
        if d.op not in LEAVES and all(d is not v for v in first.values()):
            first[f"m{len(first)}"] = d
    return first, (graph.stored(first, ["h"]) if first else graph)


def _gates(e, ind, spec, phases, H, I, Q, th, U):
    """The new state of unit j (and j + 1 .. j + U - 1) from its pre-activations, as the kind's
    float32 equations say (:attr:`lstmsearch.kinds.spec.CellKind.kernel_graph`):
    hn*[j] (and c*[j]), in the loops of :func:`_phases` over the sequences of the Q parts."""
    graph, dense = spec.kernel_graph, spec.recurrence == "dense"
    index = {g: k for k, g in enumerate(spec.gates)}
    for g in sorted(graph.leaves("x"), key=index.get):  # input terms summed here
        for u in range(U):
            e(ind, f"bx{index[g]}_{u} = bih[{_row(H, index[g], u)}]")
            for i in range(I):
                e(ind, f"u{index[g]}_{u}_{i} = Wih[{_row(H, index[g], u)}, {i}]")
    if not dense:
        for g in sorted(graph.leaves("hh"), key=index.get):
            e(ind, f"bh{index[g]} = bhh[{_row(H, index[g])}]")
            e(ind, f"wh{index[g]} = Whh[{_row(H, index[g])}]")
    table = {op: (lambda *a, _f=f: _f.format(*a)) for op, f in OPS.items()}
    first, second = phases
    parts = ([Graph(first)] if first else []) + [second]
    for phase, part in enumerate(parts):
        e(ind, "for s in range(na):")
        for L in LETTERS[:Q]:
            cs = _col(L, th)
            for u in range(U):
                unit = f"j + {u}" if u else "j"

                def leaf(n):
                    k = index.get(n.key)
                    if n.op == "pre" or (n.op == "hh" and dense):
                        return f"pre[{k * U + u}, {cs}]"
                    if n.op == "x":
                        return "(" + _sum([f"bx{k}_{u}"] + [f"u{k}_{u}_{i} * xs[{i}, {cs}]" for i in range(I)]) + ")"
                    if n.op == "hh":
                        return f"(bh{k} + wh{k} * h[{unit}, {cs}])"
                    if n.op == "const":
                        return _constant(e, n.key)
                    if n.op == "new":  # a value the first loop stored
                        return _stored(n.key, unit, cs, u, U)
                    return f"{n.op}[{unit}, {cs}]"

                temps = []

                def name(n, expr):
                    temps.append(f"t{phase}_{len(temps)}{L}{u}")
                    e(ind + 1, f"{temps[-1]} = {expr}")
                    return temps[-1]

                new = part.evaluate(table, leaf, visit=name)
                for out, value in new.items():
                    e(ind + 1, f"{_stored(out, unit, cs, u, U)} = {value}")


def _stored(key, unit, cs, u, U):
    """Where a loop stores ``key``: h' in hn, c' in c, the first loop's m0, m1, ... in ``mid``."""
    if key in ("h", "c"):
        return f"{'hn' if key == 'h' else 'c'}[{unit}, {cs}]"
    return f"mid[{int(key[1:]) * U + u}, {cs}]"


def source(kind, H: int, I: int, lanes: int = 0) -> str:
    """Python source of the kernel module for cell kind ``kind`` (a name or a
    :class:`~lstmsearch.kinds.spec.CellKind`), hidden size H, inputs I, with vectors of
    ``lanes`` floats in the recurrent sum (default: the target's, see
    :func:`lstmsearch.kernels._vecsum.vector_lanes`)."""
    from .. import kinds
    from ..cells import Cell

    spec = kinds.get(kind)
    lanes = lanes or vector_lanes()
    G = spec.n_gates
    dense = spec.recurrence == "dense"
    blocks = {b.name: b for b in Cell(spec, H, I).blocks}
    tb = tile(H)
    Q = _parts(G, H, 32 if lanes == 16 else 16)
    U = _units(G, H, dense)
    GU = G * U  # accumulator rows per pass (gates x units)
    fused = spec.kernel_graph.leaves("pre")
    hh_only = tuple(k * U + u for k, g in enumerate(spec.gates) if g not in fused for u in range(U))
    phases = _phases(spec)
    parts = LETTERS[:Q]
    e = _Src()
    e(0, f'"""Generated by lstmsearch.kernels._codegen: {spec.name}, H={H}, I={I}. Do not edit."""')
    e(0, "import numpy as np")
    e(0, "from numba import njit")
    e(0, "from lstmsearch.kernels._fastmath import lstm_cell, lstm_hidden, prefer_wide_vectors, sigmoid, tanh")
    e(0, "from lstmsearch.kernels._vecsum import make_unit_sum")
    e(0, "_ZERO = np.float32(0.0)")
    defs_at = len(e.lines)
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
    for var, block in (("Wih", "weight_ih_l0"), ("Whh", "weight_hh_l0"), ("bih", "bias_ih_l0"), ("bhh", "bias_hh_l0")):
        b = blocks.get(block)
        if b is not None:
            shape = f".reshape({b.shape})" if len(b.shape) == 2 else ""
            e(2, f"{var} = w[{b.start}:{b.start + b.size}]{shape}")
    th = -(-tb // Q)  # sequences of each part: ceil(tb / Q) ...
    th = -(-th // lanes) * lanes  # ... rounded up to whole vectors
    # one buffer per quantity; part q of the tile at columns [q * th, q * th + na)
    e(2, f"h = np.zeros(({H}, {Q * th}), np.float32)")
    e(2, f"hn = np.zeros(({H}, {Q * th}), np.float32)")
    e(2, f"c = np.zeros(({H}, {Q * th}), np.float32)")
    e(2, f"pre = np.zeros(({GU}, {Q * th}), np.float32)")
    e(2, f"xs = np.zeros(({I}, {Q * th}), np.float32)")
    e(2, f"mid = np.zeros(({max(1, len(phases[0])) * U}, {Q * th}), np.float32)")
    e(2, "hp = h0[p % n_h0]")
    e(2, "cp = c0[p % n_c0]")
    e(2, f"for s0 in range(0, B, {tb}):")
    e(3, f"nb = min({tb}, B - s0)")
    e(3, f"na = (nb + {Q - 1}) // {Q}")
    e(3, f"nvec = (na + {lanes - 1}) // {lanes}")
    # part q: sequences s0 + q * na + [0, n_q), n_q = min(na, nb - q * na) (may be <= 0)
    spans = [(L, f"min(na, nb - {q} * na)" if q else "na", f"s0 + {q} * na" if q else "s0")
             for q, L in enumerate(parts)]
    for L, n, o in spans:
        e(3, f"for k in range({H}):")
        e(4, f"for s in range({n}):")
        e(5, f"h[k, {_col(L, th)}] = hp[k, {o} + s]")
        if spec.memory:
            e(5, f"c[k, {_col(L, th)}] = cp[k, {o} + s]")
    e(3, "si = 0")
    e(3, "for t in range(T):")
    for L, n, o in spans:
        e(4, f"for i in range({I}):")  # the tile's inputs at step t, contiguous
        e(5, f"for s in range({n}):")
        e(6, f"xs[i, {_col(L, th)}] = xT[t, i, {o} + s]")
    ind = 4
    e(ind, f"for j in range(0, {H}, {U}):" if U > 1 else f"for j in range({H}):")
    if dense:
        if I > IMAX:
            _input_term(e, ind + 1, H, I, G, U, Q, th, hh_only)
        if H <= KB:
            _unit_block(e, ind + 1, H, I, GU, U, Q, th, 0, H, "", True, lanes, hh_only)
        else:
            nfull, rem = divmod(H, KB)
            _unit_block(e, ind + 1, H, I, GU, U, Q, th, 0, KB, "", True, lanes, hh_only)
            if nfull > 1:
                e(ind + 1, f"for kb in range({KB}, {KB * nfull}, {KB}):")
                _unit_block(e, ind + 2, H, I, GU, U, Q, th, 0, KB, "kb", False, lanes, hh_only)
            if rem:
                _unit_block(e, ind + 1, H, I, GU, U, Q, th, KB * nfull, rem, "", False, lanes, hh_only)
    _gates(e, ind + 1, spec, phases, H, I, Q, th, U)
    e(4, "h, hn = hn, h")
    e(4, "while si < S and steps[si] == t:")
    for L, n, o in spans:
        e(5, f"for k in range({H}):")
        e(6, f"for s in range({n}):")
        e(7, f"out_h[p, si, k, {o} + s] = h[k, {_col(L, th)}]")
        if spec.memory:
            e(7, f"out_c[p, si, k, {o} + s] = c[k, {_col(L, th)}]")
    e(5, "si += 1")
    e.lines[defs_at:defs_at] = list(e.defs.values())
    return "\n".join(e.lines) + "\n"


def tile(H: int) -> int:
    """Sequences per tile: h of the tile (H x tile floats, 32 KiB at most) stays in L1 while
    every unit reads all of it; the weights of a unit are loaded once per step and tile."""
    return int(min(512, max(64, (32768 // (4 * H)) // 64 * 64)))


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


def _version_hash(src: str) -> str:
    """Hash of the generated source ``src`` (it holds the cell's equations), of the fast math
    and vector sums it calls, and of the versions of Numba, llvmlite and NumPy: a change gives
    new file names, so Numba never reuses a cached kernel compiled from older code or other
    equations (a researcher's edited cell recompiles), and virtual environments with other
    versions that share the cache folder keep their own kernels instead of recompiling each
    other's.

    The rest of the key is Numba's own: its index of a kernel holds the Numba version and the
    generated file's time stamp and size, and each compiled entry the CPU name and features
    and the hash of the function's bytecode (a kernel compiled for another CPU is not loaded);
    the Python version is in the index's file name."""
    import llvmlite
    import numba
    import numpy

    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256(src.encode())
    for name in ("_fastmath.py", "_vecsum.py"):
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    h.update(f"numba {numba.__version__} llvmlite {llvmlite.__version__} numpy {numpy.__version__}".encode())
    return h.hexdigest()[:12]


_LOCK = threading.Lock()
_KERNELS = {}


def kernel(kind, H: int, I: int):
    """The compiled ``simulate`` for (cell kind, H, I), generated and imported once (per
    definition of the kind: a kind registered again with other equations gets its own)."""
    from .. import kinds

    spec = kinds.get(kind)
    key = (id(spec), H, I)
    fn = _KERNELS.get(key)
    if fn is not None:
        return fn[1]
    with _LOCK:
        fn = _KERNELS.get(key)
        if fn is not None:
            return fn[1]
        lanes = vector_lanes()
        src = source(spec, H, I, lanes)
        modname = f"lsk_{spec.name}_h{H}_i{I}_v{lanes}_{_version_hash(src)}"
        path = os.path.join(_cache_dir(), modname + ".py")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(src)
            os.replace(tmp, path)  # atomic: concurrent processes write the same text
        fn = load_module(path, modname).simulate  # a dispatcher: nothing is compiled before its first call
        _KERNELS[key] = (spec, fn)  # the spec is kept alive, so its id is not reused
        return fn


def compiled(kind, H: int, I: int) -> bool:
    """Whether the kernel for (cell kind, H, I) is ready without compiling: compiled in this
    process, or held by Numba's disk cache for this CPU, this Numba and this generated source.

    Generates and imports the kernel's module (milliseconds, nothing compiled) and reads
    Numba's index of it, with the key Numba itself would look up (CPU name and features, hash
    of the bytecode; the index is void for another Numba version or a changed file). Where
    Numba's cache internals are not as expected, answers False (the caller may say it
    compiles when it does not, never the reverse)."""
    return in_cache(kernel(kind, H, I))


def in_cache(fn) -> bool:
    """Whether the Numba dispatcher ``fn`` (``cache=True``) is compiled in this process or held
    by Numba's disk cache for this CPU and this bytecode (see :func:`compiled`)."""
    if fn.overloads:
        return True
    try:
        cache = fn._cache
        want = cache._index_key(None, fn.targetctx.codegen())[1:]  # all but the signature
        return any(tuple(k[1:]) == want for k in cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - a private Numba API: any failure means "not known to be cached"
        return False


def cache_location(kind, H: int, I: int) -> str:
    """The folder that holds the compiled kernel for (cell kind, H, I): the kernels folder
    (``$LSTMSEARCH_CACHE_DIR/kernels``, default ``~/.cache/lstmsearch/kernels``), or Numba's
    own folder where ``NUMBA_CACHE_DIR`` moves it elsewhere."""
    root = _cache_dir()
    try:
        where = kernel(kind, H, I)._cache.cache_path
    except Exception:  # noqa: BLE001 - a private Numba API
        return root
    root, where = os.path.abspath(root), os.path.abspath(where)
    return root if os.path.commonpath([root, where]) == root else where


def load_module(path, name: str):
    """Import the Python file ``path`` as module ``name`` (registered in ``sys.modules``,
    which Numba's cache needs to find a kernel's module again)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_uncached(src: str, folder, name: str):
    """The ``simulate`` of kernel source ``src`` (from :func:`source`, possibly edited),
    compiled with Numba's cache off from ``folder/name.py``: for A/B timings and tests that
    build kernels the cache must not keep."""
    path = os.path.join(folder, name + ".py")
    with open(path, "w") as f:
        f.write(src.replace("cache=True", "cache=False"))
    return load_module(path, name).simulate
