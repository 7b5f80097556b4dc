"""FROZEN COPY of lstmsearch/kernels/_codegen.py as of release 0.2 (commit 4ba3e86), before the cell kinds were
defined once (issue 22): the oracle that the generated kernels are bit for bit the old ones
(tests/test_kinds_conformance.py) and the "old" column of benchmarks/kinds_speed.py. Do not edit.

Source generator for the specialised CPU kernels (one per cell kind, H and I).

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

from lstmsearch.kernels._vecsum import vector_lanes

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

GATES = {0: 1, 1: 1, 2: 4, 3: 3}
NAMES = {0: "rnn_tanh", 1: "rnn_relu", 2: "lstm", 3: "gru"}


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


def _row(code, H, g):
    """Row of W_ih / W_hh / biases for accumulator row g of unit j: gate g of unit j, or for
    the one-gate RNN cells unit j + g (they do U units per pass, see :func:`_units`)."""
    if code in (0, 1):
        return f"j + {g}" if g else "j"
    return f"{g * H} + j" if g else "j"


def _units(code, H):
    """Hidden units per pass over h: the RNN cells (one gate) do UNITS at once, so that each
    h vector loaded feeds as many FMAs as for the LSTM; the gated cells one."""
    if code not in (0, 1):
        return 1
    for u in (UNITS, 2):
        if H % u == 0:
            return u
    return 1


def _parts(code, H, registers):
    """Number of sequence parts processed in lockstep (see :func:`_unit_block`): QPARTS with
    32 vector registers (AVX-512), 2 with 16 (AVX2: 4 gates x 2 parts = 8 accumulators; 3
    parts were 1.2x slower there, measured with NUMBA_CPU_NAME=haswell)."""
    return PARTS.get((GATES[code], H > 8), QPARTS if registers >= 32 else 2)


def _unit_block(e, ind, code, H, I, G, Q, th, k0, nk, kbase, first, lanes):
    """Emit the sums of unit j's G accumulator rows over hidden inputs k in
    [kbase + k0, kbase + k0 + nk), for the Q parts of the tile (see :mod:`._vecsum`).

    first (and I <= IMAX): pre = bias + input term + the sum; otherwise pre += the sum
    (bias and input term were put in pre beforehand). kbase is a source expression
    ('' for constant offsets). For the RNN cells G here counts U units (see :func:`_units`).
    """
    init = first and I <= IMAX
    stride = 1 if code in (0, 1) else H
    hh_only = (2,) if code == 3 else ()  # the GRU's candidate row: bhh alone, input added later
    name = f"unit_sum_{nk}_{int(init)}"
    e.defs[name] = (f"{name} = make_unit_sum(G={G}, Q={Q}, nk={nk}, I={I}, th={th}, stride={stride}, "
                    f"H={H}, hh_only={hh_only}, init={init}, lanes={lanes})")
    first_k = f"{kbase} + {k0}" if kbase and k0 else (kbase or f"{k0}")
    e(ind, f"{name}(Wih, Whh, bih, bhh, h, xs, pre, j, {first_k}, nvec)")


def _input_term(e, ind, code, H, I, G, Q, th):
    """pre* = bias + input term of unit j, for I > IMAX (a loop over inputs)."""
    for L in LETTERS[:Q]:
        for g in range(G):
            r = _row(code, H, g)
            e(ind, f"bb = bhh[{r}]" if code == 3 and g == 2 else f"bb = bih[{r}] + bhh[{r}]")
            e(ind, "for s in range(na):")
            e(ind + 1, f"pre[{g}, {_col(L, th)}] = bb")
        e(ind, f"for i in range({I}):")
        for g in range(G - 1 if code == 3 else G):
            r = _row(code, H, g)
            e(ind + 1, f"uu = Wih[{r}, i]")
            e(ind + 1, "for s in range(na):")
            e(ind + 2, f"pre[{g}, {_col(L, th)}] += uu * xs[i, {_col(L, th)}]")


def _gates(e, ind, code, H, I, Q, th, U=1):
    """Nonlinearities of unit j: pre* (G, .) -> hn*[j] (and c*[j])."""
    if code == 3:
        for i in range(I):
            e(ind, f"u_{i} = Wih[{2 * H} + j, {i}]")
        e(ind, f"bx = bih[{2 * H} + j]")
    if code == 2:
        # two loops, each over the Q parts' units: c' (exp, exp, expm1, one division), then
        # h' (exp, expm1 of c', one division); each loop's Q dependency chains are short
        # enough for the out-of-order core to overlap successive iterations
        e(ind, "for s in range(na):")
        for L in LETTERS[:Q]:
            cs = _col(L, th)
            e(ind + 1, f"c[j, {cs}] = lstm_cell(pre[0, {cs}], pre[1, {cs}], pre[2, {cs}], c[j, {cs}])")
        e(ind, "for s in range(na):")
        for L in LETTERS[:Q]:
            cs = _col(L, th)
            e(ind + 1, f"hn[j, {cs}] = lstm_hidden(pre[3, {cs}], c[j, {cs}])")
        return
    if code == 3:
        # the same split: tanh's argument and z first (two independent chains), then
        # n = tanh(a) and h' = n + z (h - n)
        e(ind, "for s in range(na):")
        for L in LETTERS[:Q]:
            cs = _col(L, th)
            xn = _sum(["bx"] + [f"u_{i} * xs[{i}, {cs}]" for i in range(I)])
            e(ind + 1, f"pre[2, {cs}] = {xn} + sigmoid(pre[0, {cs}]) * pre[2, {cs}]")
            e(ind + 1, f"pre[1, {cs}] = sigmoid(pre[1, {cs}])")
        e(ind, "for s in range(na):")
        for L in LETTERS[:Q]:
            cs = _col(L, th)
            e(ind + 1, f"n = tanh(pre[2, {cs}])")
            e(ind + 1, f"hn[j, {cs}] = n + pre[1, {cs}] * (h[j, {cs}] - n)")
        return
    e(ind, "for s in range(na):")
    for L in LETTERS[:Q]:
        cs = _col(L, th)
        b = ind + 1
        if code == 0:
            for u in range(U):
                e(b, f"hn[j + {u}, {cs}] = tanh(pre[{u}, {cs}])")
        elif code == 1:
            for u in range(U):
                e(b, f"v = pre[{u}, {cs}]")
                e(b, "if v < _ZERO:")
                e(b + 1, "v = _ZERO")
                e(b, f"hn[j + {u}, {cs}] = v")


def source(code: int, H: int, I: int, lanes: int = 0) -> str:
    """Python source of the kernel module for cell ``code``, hidden size H, inputs I, with
    vectors of ``lanes`` floats in the recurrent sum (default: the target's, see
    :func:`lstmsearch.kernels._vecsum.vector_lanes`)."""
    lanes = lanes or vector_lanes()
    G = GATES[code]
    GH = G * H
    o1 = GH * I
    o2 = o1 + GH * H
    o3 = o2 + GH
    o4 = o3 + GH
    tb = tile(H)
    Q = _parts(code, H, 32 if lanes == 16 else 16)
    U = _units(code, H)
    GU = G * U  # accumulator rows per pass (gates x units)
    parts = LETTERS[:Q]
    e = _Src()
    e(0, f'"""Generated by lstmsearch.kernels._codegen: {NAMES[code]}, H={H}, I={I}. Do not edit."""')
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
    e(2, f"Wih = w[0:{o1}].reshape(({GH}, {I}))")
    e(2, f"Whh = w[{o1}:{o2}].reshape(({GH}, {H}))")
    e(2, f"bih = w[{o2}:{o3}]")
    e(2, f"bhh = w[{o3}:{o4}]")
    th = -(-tb // Q)  # sequences of each part: ceil(tb / Q) ...
    th = -(-th // lanes) * lanes  # ... rounded up to whole vectors
    # one buffer per quantity; part q of the tile at columns [q * th, q * th + na)
    e(2, f"h = np.zeros(({H}, {Q * th}), np.float32)")
    e(2, f"hn = np.zeros(({H}, {Q * th}), np.float32)")
    e(2, f"c = np.zeros(({H}, {Q * th}), np.float32)")
    e(2, f"pre = np.zeros(({GU}, {Q * th}), np.float32)")
    e(2, f"xs = np.zeros(({I}, {Q * th}), np.float32)")
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
        if code == 2:
            e(5, f"c[k, {_col(L, th)}] = cp[k, {o} + s]")
    e(3, "si = 0")
    e(3, "for t in range(T):")
    for L, n, o in spans:
        e(4, f"for i in range({I}):")  # the tile's inputs at step t, contiguous
        e(5, f"for s in range({n}):")
        e(6, f"xs[i, {_col(L, th)}] = xT[t, i, {o} + s]")
    ind = 4
    e(ind, f"for j in range(0, {H}, {U}):" if U > 1 else f"for j in range({H}):")
    if I > IMAX:
        _input_term(e, ind + 1, code, H, I, GU, Q, th)
    if H <= KB:
        _unit_block(e, ind + 1, code, H, I, GU, Q, th, 0, H, "", True, lanes)
    else:
        nfull, rem = divmod(H, KB)
        _unit_block(e, ind + 1, code, H, I, GU, Q, th, 0, KB, "", True, lanes)
        if nfull > 1:
            e(ind + 1, f"for kb in range({KB}, {KB * nfull}, {KB}):")
            _unit_block(e, ind + 2, code, H, I, GU, Q, th, 0, KB, "kb", False, lanes)
        if rem:
            _unit_block(e, ind + 1, code, H, I, GU, Q, th, KB * nfull, rem, "", False, lanes)
    _gates(e, ind + 1, code, H, I, Q, th, U)
    e(4, "h, hn = hn, h")
    e(4, "while si < S and steps[si] == t:")
    for L, n, o in spans:
        e(5, f"for k in range({H}):")
        e(6, f"for s in range({n}):")
        e(7, f"out_h[p, si, k, {o} + s] = h[k, {_col(L, th)}]")
        if code == 2:
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


def _version_hash() -> str:
    """Hash of the generator and the fast math it inlines, and of the versions of Numba,
    llvmlite and NumPy: a change gives new file names, so Numba never reuses a cached kernel
    compiled from older code, and virtual environments with other versions that share the
    cache folder keep their own kernels instead of recompiling each other's.

    The rest of the key is Numba's own: its index of a kernel holds the Numba version and the
    generated file's time stamp and size, and each compiled entry the CPU name and features
    and the hash of the function's bytecode (a kernel compiled for another CPU is not loaded);
    the Python version is in the index's file name."""
    import llvmlite
    import numba
    import numpy

    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for name in ("_codegen.py", "_fastmath.py", "_vecsum.py"):
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    h.update(f"numba {numba.__version__} llvmlite {llvmlite.__version__} numpy {numpy.__version__}".encode())
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
        lanes = vector_lanes()
        modname = f"lsk_{NAMES[code]}_h{H}_i{I}_v{lanes}_{_version_hash()}"
        path = os.path.join(_cache_dir(), modname + ".py")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(source(code, H, I, lanes))
            os.replace(tmp, path)  # atomic: concurrent processes write the same text
        fn = load_module(path, modname).simulate  # a dispatcher: nothing is compiled before its first call
        _KERNELS[key] = fn
        return fn


def compiled(code: int, H: int, I: int) -> bool:
    """Whether the kernel for (cell code, H, I) is ready without compiling: compiled in this
    process, or held by Numba's disk cache for this CPU, this Numba and this generated source.

    Generates and imports the kernel's module (milliseconds, nothing compiled) and reads
    Numba's index of it, with the key Numba itself would look up (CPU name and features, hash
    of the bytecode; the index is void for another Numba version or a changed file). Where
    Numba's cache internals are not as expected, answers False (the caller may say it
    compiles when it does not, never the reverse)."""
    return in_cache(kernel(code, H, I))


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


def cache_location(code: int, H: int, I: int) -> str:
    """The folder that holds the compiled kernel for (cell code, H, I): the kernels folder
    (``$LSTMSEARCH_CACHE_DIR/kernels``, default ``~/.cache/lstmsearch/kernels``), or Numba's
    own folder where ``NUMBA_CACHE_DIR`` moves it elsewhere."""
    root = _cache_dir()
    try:
        where = kernel(code, H, I)._cache.cache_path
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
