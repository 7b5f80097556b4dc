"""Source generator for the specialised CPU kernels (one per cell kind, H and I).

Why generate source: the recurrent product is fastest when, for one hidden unit j and a
vector of sequences, all G gate pre-activations are summed over k in registers and the gate
nonlinearities are applied at once (no round trip through memory). That needs the k loop
fully unrolled with the weights of unit j in scalar locals, which LLVM does not do on its
own. So for each (cell, H, I) we write out a small Python module with that loop unrolled,
import it, and let Numba compile and cache it (``cache=True``: the module lives in a cache
folder, see :func:`kernel`).

Loop nest of the generated ``simulate`` (state kept (H, TB): sequences innermost)::

    for p in prange(P):                       # settings, one per thread at a time
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
#: Sequences per tile (state (H, TB) of one tile stays in L1).
TB = 64
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


def _unit_block(e, ind, code, H, I, G, k0, nk, kbase, first, last):
    """Emit the code for unit j and hidden inputs k in [kbase + k0, kbase + k0 + nk).

    first: the sum starts from bias + input term (else from scratch acc);
    last: apply the nonlinearity and write h_new (else store the partial sums to acc).
    kbase is a source expression ('' for constant offsets).
    """
    gru = code == 3
    xin = I <= IMAX
    kk = (lambda k: f"{kbase} + {k}") if kbase else (lambda k: f"{k}")
    # weights of unit j for this block
    for g in range(G):
        r = f"{g * H} + j" if g else "j"
        for k in range(nk):
            e(ind, f"w{g}_{k} = Whh[{r}, {kk(k0 + k)}]")
        if first:
            if gru and g == 2:
                e(ind, f"b{g} = bhh[{r}]")
            else:
                e(ind, f"b{g} = bih[{r}] + bhh[{r}]")
    if (first and xin) or (last and gru and xin):
        for g in range(G):
            r = f"{g * H} + j" if g else "j"
            if first or g == 2:
                for i in range(I):
                    e(ind, f"u{g}_{i} = Wih[{r}, {i}]")
        if last and gru:
            e(ind, f"bx2 = bih[{2 * H} + j]")
    e(ind, "for s in range(nb):")
    ind += 1
    for k in range(nk):
        e(ind, f"h_{k} = h[{kk(k0 + k)}, s]")
    if xin and (first or (last and gru)):
        for i in range(I):
            e(ind, f"x_{i} = xt[{i}, s0 + s]")
    for g in range(G):
        parts = []
        for m in range(min(NSPLIT, max(nk, 1))):
            terms = [f"w{g}_{k} * h_{k}" for k in range(m, nk, NSPLIT)]
            if m == 0:
                if first:
                    head = [f"b{g}"]
                    if xin and not (gru and g == 2):
                        head += [f"u{g}_{i} * x_{i}" for i in range(I)]
                    elif not xin and not (gru and g == 2):
                        head = [f"acc[{g}, s]"]  # bias + input term summed beforehand
                    terms = head + terms
                else:
                    terms = [f"acc[{g}, s]"] + terms
            e(ind, f"a{g}_{m} = {_sum(terms)}")
            parts.append(f"a{g}_{m}")
        e(ind, f"a{g} = {_sum(parts)}")
    if not last:
        for g in range(G):
            e(ind, f"acc[{g}, s] = a{g}")
        return
    if code == 0:
        e(ind, "hn[j, s] = tanh(a0)")
    elif code == 1:
        e(ind, "v = a0")
        e(ind, "if v < _ZERO:")
        e(ind + 1, "v = _ZERO")
        e(ind, "hn[j, s] = v")
    elif code == 2:
        e(ind, "cn = sigmoid(a1) * c[j, s] + sigmoid(a0) * tanh(a2)")
        e(ind, "c[j, s] = cn")
        e(ind, "hn[j, s] = sigmoid(a3) * tanh(cn)")
    else:
        if xin:
            e(ind, f"xn = {_sum(['bx2'] + [f'u2_{i} * x_{i}' for i in range(I)])}")
        else:
            e(ind, f"xn = acc[{G}, s]")
        e(ind, "n = tanh(xn + sigmoid(a0) * a2)")
        e(ind, "hv = h[j, s]")
        e(ind, "hn[j, s] = n + sigmoid(a1) * (hv - n)")


def source(code: int, H: int, I: int) -> str:
    """Python source of the kernel module for cell ``code``, hidden size H, inputs I."""
    G = GATES[code]
    GH = G * H
    o1 = GH * I
    o2 = o1 + GH * H
    o3 = o2 + GH
    o4 = o3 + GH
    e = _Src()
    e(0, f'"""Generated by lstmsearch.kernels._codegen: {NAMES[code]}, H={H}, I={I}. Do not edit."""')
    e(0, "import numpy as np")
    e(0, "from numba import njit, prange")
    e(0, "from lstmsearch.kernels._fastmath import sigmoid, tanh")
    e(0, "_ZERO = np.float32(0.0)")
    e(0, "")
    e(0, "")
    e(0, '@njit(parallel=True, cache=True, fastmath={"contract"}, error_model="numpy", boundscheck=False)')
    e(0, "def simulate(params, xT, steps, h0, c0, out_h, out_c):")
    e(1, "P = params.shape[0]")
    e(1, "T = xT.shape[0]")
    e(1, "B = xT.shape[2]")
    e(1, "S = steps.shape[0]")
    e(1, "n_h0 = h0.shape[0]")
    e(1, "n_c0 = c0.shape[0]")
    e(1, "for p in prange(P):")
    e(2, "w = params[p]")
    e(2, f"Wih = w[0:{o1}].reshape(({GH}, {I}))")
    e(2, f"Whh = w[{o1}:{o2}].reshape(({GH}, {H}))")
    e(2, f"bih = w[{o2}:{o3}]")
    e(2, f"bhh = w[{o3}:{o4}]")
    e(2, f"h = np.zeros(({H}, {TB}), np.float32)")
    e(2, f"hn = np.zeros(({H}, {TB}), np.float32)")
    e(2, f"c = np.zeros(({H}, {TB}), np.float32)")
    e(2, f"acc = np.zeros(({G + 1}, {TB}), np.float32)")
    e(2, "hp = h0[p % n_h0]")
    e(2, "cp = c0[p % n_c0]")
    e(2, f"for s0 in range(0, B, {TB}):")
    e(3, f"nb = min({TB}, B - s0)")
    e(3, f"for k in range({H}):")
    e(4, "for s in range(nb):")
    e(5, "h[k, s] = hp[k, s0 + s]")
    if code == 2:
        e(5, "c[k, s] = cp[k, s0 + s]")
    e(3, "si = 0")
    e(3, "for t in range(T):")
    e(4, "xt = xT[t]")
    e(4, f"for j in range({H}):")
    ind = 5
    if I > IMAX:  # input term (and bias) summed in a loop first
        for g in range(G):
            r = f"{g * H} + j" if g else "j"
            dst = G if (code == 3 and g == 2) else g
            bias = f"bih[{r}]" if (code == 3 and g == 2) else f"bih[{r}] + bhh[{r}]"
            e(ind, f"bb = {bias}")
            e(ind, "for s in range(nb):")
            e(ind + 1, f"acc[{dst}, s] = bb")
        e(ind, f"for i in range({I}):")
        for g in range(G):
            r = f"{g * H} + j" if g else "j"
            dst = G if (code == 3 and g == 2) else g
            e(ind + 1, f"uu = Wih[{r}, i]")
            e(ind + 1, "for s in range(nb):")
            e(ind + 2, f"acc[{dst}, s] += uu * xt[i, s0 + s]")
    if H <= KB:
        _unit_block(e, ind, code, H, I, G, 0, H, "", True, True)
    else:
        nfull = H // KB
        rem = H % KB
        last_n = rem if rem else KB
        n_mid = (nfull - 1) if rem else (nfull - 2)  # full blocks between first and last
        _unit_block(e, ind, code, H, I, G, 0, KB, "", True, False)
        if n_mid > 0:
            e(ind, f"for kb in range({KB}, {KB * (1 + n_mid)}, {KB}):")
            _unit_block(e, ind + 1, code, H, I, G, 0, KB, "kb", False, False)
        _unit_block(e, ind, code, H, I, G, H - last_n, last_n, "", False, True)
    e(4, "h, hn = hn, h")
    e(4, "while si < S and steps[si] == t:")
    e(5, f"for k in range({H}):")
    e(6, "for s in range(nb):")
    e(7, "out_h[p, si, k, s0 + s] = h[k, s]")
    if code == 2:
        e(7, "out_c[p, si, k, s0 + s] = c[k, s]")
    e(5, "si += 1")
    return "\n".join(e.lines) + "\n"


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
