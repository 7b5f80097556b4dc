"""The CUDA backend: numba-cuda kernels, float32, one thread per (setting, sequence).

Same equations as :mod:`lstmsearch.kernels.cpu`: each kind's, from its module in :mod:`lstmsearch.kinds`,
and the same order of summation as the cpu backend (``b_ih + W_ih x`` and ``b_hh + W_hh h``
summed term by term, then added), so the two agree to float32 rounding.

Kernel shape
------------
- Grid ``(settings in the chunk, ceil(B / threads))``, one block per setting and tile of
  sequences, one thread per (setting, sequence).
- The block stages its setting's recurrent weights in shared memory (PyTorch's blocks,
  re-laid out so that every row of ``W_hh`` starts on a 16-byte boundary); all threads of a
  warp read the same weight at the same time (a broadcast).
- The hidden state lives in registers: the kernel is generated per (cell kind, H, I), and
  for H <= :data:`UNROLL_MAX_H` every product ``W_hh h`` is written out term by term over
  named scalars ``h_0 .. h_{H-1}``. Larger H use loops over a per-thread local array.
  Settings whose weights do not fit in shared memory read them from global memory.
- The sequences are made once on the host (the tasks' Philox generator), copied to the
  device once per call and shared by all settings; the settings are streamed to the device
  in chunks sized to the free device memory.

numba.cuda is imported lazily: importing lstmsearch never needs CUDA. Without a GPU,
:func:`run` raises :class:`~lstmsearch.errors.LstmsearchError` with one line saying so.
Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before numba.cuda is first
imported) the same kernels run in Python: slow, for tests.
"""

from __future__ import annotations

import functools
import importlib.util
import math

import numpy as np

from ..errors import LstmsearchError, install_hint

name = "cuda"

#: Largest H whose recurrent products are unrolled over register-held state.
UNROLL_MAX_H = 64
#: Largest static shared-memory block per setting (bytes); above it weights stay in global.
SHARED_MAX_BYTES = 48 * 1024
#: Threads per block (at most; fewer when there are fewer sequences).
THREADS = 256
#: Share of the free device memory a chunk of settings may use.
MEMORY_SHARE = 0.5

INSTALL_HINT = install_hint("cuda")


# ----------------------------------------------------------------------------------------
# Availability
# ----------------------------------------------------------------------------------------

def numba_cuda_installed() -> bool:
    """True when the numba-cuda package is installed.

    ``import numba.cuda`` alone proves nothing: numba itself still ships its old built-in
    ``numba.cuda`` (deprecated since numba 0.61), which imports without numba-cuda and lacks
    what this backend uses (``numba.cuda.core``). numba-cuda installs the ``numba_cuda``
    package and redirects ``numba.cuda`` to it.
    """
    return importlib.util.find_spec("numba_cuda") is not None


def _cuda():
    """numba.cuda, imported on first use; LstmsearchError if numba-cuda is missing."""
    missing = f"backend 'cuda' needs numba-cuda, which is not installed; install it with: {INSTALL_HINT}"
    if not numba_cuda_installed():
        raise LstmsearchError(missing)
    try:
        from numba import cuda
        from numba.cuda.core import config  # noqa: F401  (numba-cuda's, not numba's built-in)
    except ImportError as err:  # a broken numba-cuda, or its CUDA Python bindings are missing
        raise LstmsearchError(f"{missing} ({type(err).__name__}: {err})") from None
    return cuda


def simulating() -> bool:
    """True when numba.cuda runs under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    _cuda()
    from numba.cuda.core import config

    return bool(config.ENABLE_CUDASIM)


def gpu_status(allow_simulator: bool = True):
    """``(usable, description)``: whether kernels can run, and on what (or why not)."""
    try:
        cuda = _cuda()
    except LstmsearchError as err:
        return False, str(err)
    if simulating():
        if allow_simulator:
            return True, "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
        return False, "only the CUDA simulator is enabled (NUMBA_ENABLE_CUDASIM=1)"
    try:
        if not cuda.is_available():
            return False, "no GPU is present (no CUDA driver or no CUDA device found)"
        dev = cuda.get_current_device()
        name_ = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        return True, f"{name_} (compute capability {dev.compute_capability[0]}.{dev.compute_capability[1]})"
    except Exception as err:  # a driver that loads but cannot open a device
        return False, f"no usable GPU ({type(err).__name__}: {err})"


def require_gpu():
    """numba.cuda, or LstmsearchError with one line saying plainly that no GPU is present."""
    ok, why = gpu_status()
    if not ok:
        if "not installed" in why:
            raise LstmsearchError(why)
        raise LstmsearchError(
            f"backend 'cuda' needs an NVIDIA GPU, but {why}; use backend 'cpu' or 'auto' "
            f"(CUDA support installs with: {INSTALL_HINT})")
    return _cuda()


# ----------------------------------------------------------------------------------------
# Weight layout on the device
# ----------------------------------------------------------------------------------------

class Layout:
    """The staged recurrent weights of one setting: one row per gate row r (G*H rows).

    Row r holds ``W_hh[r, :H]`` (zero-padded to HP = H rounded up to a multiple of 4; for an
    element-wise recurrence u_r alone, in column 0; nothing without a recurrence), then
    ``W_ih[r, :I]``, ``b_ih[r]``, ``b_hh[r]`` (0 without a recurrence), zero-padded to a width
    RW that is a multiple of 4. Rows start on 16-byte boundaries and a row is read at constant
    offsets, which lets the compiler load four weights per (broadcast) shared-memory
    instruction.
    """

    def __init__(self, cell, I: int):
        from ..cells import Cell

        self.cell = Cell(cell.spec, cell.hidden, I, cell.outputs)
        self.G, self.H, self.I = cell.gates, cell.hidden, I
        self.rows = self.G * self.H
        self.HP = {"dense": -(-self.H // 4) * 4, "diagonal": 4, "none": 0}[cell.spec.recurrence]
        self.WIH = self.HP
        self.BIH = self.HP + I
        self.BHH = self.BIH + 1
        self.RW = -(-(self.BHH + 1) // 4) * 4

    @property
    def size(self) -> int:
        """Floats per setting."""
        return self.rows * self.RW

    def pack(self, params: np.ndarray) -> np.ndarray:
        """(P, D) flat PyTorch-layout settings -> (P, rows, RW) staged layout."""
        GH, I = self.rows, self.I
        P = params.shape[0]
        blocks = self.cell.unflatten(params)
        out = np.zeros((P, GH, self.RW), np.float32)
        if "weight_hh_l0" in blocks:
            whh = blocks["weight_hh_l0"]
            out[:, :, :whh.shape[2] if whh.ndim == 3 else 1] = whh if whh.ndim == 3 else whh[..., None]
            out[:, :, self.BHH] = blocks["bias_hh_l0"]
        out[:, :, self.WIH:self.BIH] = blocks["weight_ih_l0"].reshape(P, GH, I)
        out[:, :, self.BIH] = blocks["bias_ih_l0"]
        return out


# ----------------------------------------------------------------------------------------
# Kernel generation
# ----------------------------------------------------------------------------------------

class _Src:
    """A tiny indented-source builder."""

    def __init__(self):
        self.lines, self.depth = [], 0

    def __call__(self, line):
        self.lines.append("    " * self.depth + line)

    def indent(self):
        self.depth += 1

    def dedent(self):
        self.depth -= 1

    def text(self):
        return "\n".join(self.lines) + "\n"


def _dot(src, acc, row, bias, off, vec, n, unrolled):
    """acc = row[bias]; acc += row[off + k] * vec_k for k < n, in the cpu backend's order."""
    src(f"{acc} = {row}[{bias}]")
    if unrolled:
        for k in range(n):
            src(f"{acc} += {row}[{off + k}] * {vec}_{k}")
    else:
        src(f"for k in range({n}):")
        src(f"    {acc} += {row}[{off} + k] * {vec}[k]")


#: Source of each operation of a cell's equations in the CUDA kernels (see
#: :mod:`lstmsearch.kinds.graph`; fused rows, no fused float32 forms: CUDA's own tanh).
OPS = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}", "neg": "-{0}",
    "sigmoid": "sigmoid({0})", "tanh": "np.float32(math.tanh({0}))",
    "relu": "np.float32(0.0) if {0} < np.float32(0.0) else {0}",  # NaN stays NaN
    "lerp": "{1} + {0} * ({2} - {1})",
}


def kernel_source(cell, I: int, staged: bool, unrolled: bool, aligned: bool) -> str:
    """Python source of the kernel for one (cell kind, H, I); see the module docstring. The
    gate code is the kind's equations (:attr:`lstmsearch.kinds.spec.CellKind.interval_graph`).

    Arguments of the generated ``kernel(wg, x, steps, h0, c0, out_h, out_c)``:
    wg (P, rows, RW) staged weights (:class:`Layout`), x (T, I, B), steps (S,) int32, h0/c0 (1 or P, H, B),
    out_h/out_c (P, S, H, B) (out_c (1, 1, 1, 1) unless the cell has a memory c).
    """
    spec, H = cell.spec, cell.hidden
    L = Layout(cell, I)
    graph = spec.interval_graph
    index = {g: k for k, g in enumerate(spec.gates)}
    xs = graph.leaves("x") | graph.leaves("pre")
    hhs = graph.leaves("hh") | graph.leaves("pre")
    lstm = spec.memory
    s = _Src()
    s("def kernel(wg, x, steps, h0, c0, out_h, out_c):")
    s.indent()
    s("p = cuda.blockIdx.x")
    s("b = cuda.blockIdx.y * cuda.blockDim.x + cuda.threadIdx.x")
    s("B = x.shape[2]")
    if staged:
        align = ", alignment=16" if aligned else ""
        s(f"w = cuda.shared.array(({L.rows}, {L.RW}), float32{align})")
        s(f"for q in range(cuda.threadIdx.x, {L.size}, cuda.blockDim.x):")
        s(f"    w[q // {L.RW}, q % {L.RW}] = wg[p, q // {L.RW}, q % {L.RW}]")
        s("cuda.syncthreads()")
    else:
        s("w = wg[p]")
    s("if b >= B:")
    s("    return")
    s("ph = p % h0.shape[0]")
    # state: h_k scalars (unrolled) or the local array h; new values go to hn
    if unrolled:
        for k in range(H):
            s(f"h_{k} = h0[ph, {k}, b]")
    else:
        s(f"h = cuda.local.array({H}, float32)")
        s(f"for k in range({H}):")
        s("    h[k] = h0[ph, k, b]")
    s(f"hn = cuda.local.array({H}, float32)")
    # unit j's own h_{t-1}[j] at a runtime j: a copy of the unrolled scalars
    copy = unrolled and (graph.reads("h") or spec.recurrence == "diagonal")
    if copy:
        s(f"hprev = cuda.local.array({H}, float32)")
    if lstm:
        s("pc = p % c0.shape[0]")
        s(f"c = cuda.local.array({H}, float32)")
        s(f"for k in range({H}):")
        s("    c[k] = c0[pc, k, b]")
    s("S = steps.shape[0]")
    s("si = 0")
    s("for t in range(x.shape[0]):")
    s.indent()
    if unrolled:
        for i in range(I):
            s(f"x_{i} = x[t, {i}, b]")
    else:
        s(f"xv = cuda.local.array({I}, float32)")
        s(f"for i in range({I}):")
        s("    xv[i] = x[t, i, b]")
    if copy:
        for k in range(H):
            s(f"hprev[{k}] = h_{k}")
    xname = "x" if unrolled else "xv"
    hj = "hprev[j]" if copy else "h[j]"
    s(f"for j in range({H}):")
    s.indent()
    for g, k in index.items():
        if g not in xs and g not in hhs:
            continue
        s(f"w{k} = w[{k * H} + j]")
        if g in xs:
            _dot(s, f"ai{k}", f"w{k}", L.BIH, L.WIH, xname, I, unrolled)
        if g in hhs and spec.recurrence == "dense":
            _dot(s, f"ah{k}", f"w{k}", L.BHH, 0, "h", H, unrolled)
        elif g in hhs:
            s(f"ah{k} = w{k}[{L.BHH}] + w{k}[0] * {hj}")

    def leaf(n):
        if n.op == "const":
            return f"np.float32({n.key!r})"
        if n.op in ("x", "hh", "pre"):
            k = index[n.key]
            return {"x": f"ai{k}", "hh": f"ah{k}", "pre": f"(ai{k} + ah{k})"}[n.op]
        return hj if n.op == "h" else "c[j]"

    temps = []

    def name(n, expr):
        temps.append(f"v{len(temps)}")
        s(f"{temps[-1]} = {expr}")
        return temps[-1]

    new = graph.evaluate({op: (lambda *a, _f=f: _f.format(*a)) for op, f in OPS.items()}, leaf, visit=name)
    if lstm:
        s(f"c[j] = {new['c']}")
    s(f"hn[j] = {new['h']}")
    s.dedent()
    if unrolled:
        for k in range(H):
            s(f"h_{k} = hn[{k}]")
    else:
        s(f"for k in range({H}):")
        s("    h[k] = hn[k]")
    s("while si < S and steps[si] == t:")
    s.indent()
    if unrolled:
        for k in range(H):
            s(f"out_h[p, si, {k}, b] = h_{k}")
    else:
        s(f"for k in range({H}):")
        s("    out_h[p, si, k, b] = h[k]")
    if lstm:
        s(f"for k in range({H}):")
        s("    out_c[p, si, k, b] = c[k]")
    s("si += 1")
    s.dedent()
    s.dedent()
    return s.text()


def _kernel(cell, I: int, staged: bool, unrolled: bool):
    """The compiled (lazily, per signature) kernel for one specialisation: cached per kind
    object as well as per name, so that a kind registered again under its name (an edited
    cell of one's own) compiles anew."""
    return _compiled(cell, cell.spec, I, staged, unrolled)


@functools.lru_cache(maxsize=None)
def _compiled(cell, spec, I: int, staged: bool, unrolled: bool):  # spec: hashed by identity
    cuda = _cuda()
    from numba import float32

    sim = simulating()

    @cuda.jit(device=True)
    def sigmoid(a):
        # exp is only taken of -|a| <= 0: never overflows; NaN stays NaN.
        e = np.float32(math.exp(-abs(a)))
        d = np.float32(1.0) / (np.float32(1.0) + e)
        return d if a >= np.float32(0.0) else e * d

    src = kernel_source(cell, I, staged, unrolled, aligned=not sim)
    scope = {"cuda": cuda, "float32": float32, "math": math, "np": np, "sigmoid": sigmoid}
    code = compile(src, f"<lstmsearch.kernels.cuda kind={cell.kind} H={cell.hidden} I={I}>", "exec")
    exec(code, scope)
    return cuda.jit(scope["kernel"])


# ----------------------------------------------------------------------------------------
# Host side
# ----------------------------------------------------------------------------------------

def _state_hb(state, P, B, H):
    """(P, B, H) or None -> contiguous float32 (P or 1, H, B); a broadcast state stays 1."""
    if state is None:
        return np.zeros((1, H, B), np.float32)
    s = np.asarray(state, np.float32)
    if s.ndim == 3 and s.shape[0] > 1 and s.strides[0] == 0:
        s = s[:1]
    return np.ascontiguousarray(s.transpose(0, 2, 1))


def _free_bytes(cuda) -> int:
    try:
        free, _total = cuda.current_context().get_memory_info()
        return int(free)
    except Exception:
        return 1 << 30


def chunk_settings(P, per_setting_bytes, free_bytes) -> int:
    """Settings per launch so that one chunk uses at most MEMORY_SHARE of free memory."""
    return int(max(1, min(P, (free_bytes * MEMORY_SHARE) // max(1, per_setting_bytes), 65535 * 32)))


def kernel_for(cell, I: int):
    """``(kernel, layout)`` for ``cell`` with I inputs: compiled on first launch, cached."""
    layout = Layout(cell, I)
    staged = layout.size * 4 <= SHARED_MAX_BYTES
    unrolled = cell.hidden <= UNROLL_MAX_H
    try:
        return _kernel(cell, I, staged, unrolled), layout
    except Exception as err:  # e.g. NVVM/NVRTC libraries missing
        raise LstmsearchError(f"cannot build the CUDA kernel ({type(err).__name__}: {err}); "
                              f"reinstall CUDA support with: {INSTALL_HINT}") from None


def launch(kernel, d_w, d_x, d_steps, d_h0, d_c0, d_out_h, d_out_c, stream=0):
    """Launch ``kernel`` on device arrays (shapes in :func:`kernel_source`), asynchronously."""
    n, B = d_w.shape[0], d_x.shape[2]
    threads = min(THREADS, B if simulating() else -(-B // 32) * 32)
    kernel[(n, -(-B // threads)), threads, stream](d_w, d_x, d_steps, d_h0, d_c0, d_out_h, d_out_c)


def run(cell, params, x, steps, h0=None, c0=None):
    """Simulate ``cell`` on the GPU; same contract as :func:`lstmsearch.kernels.cpu.run`.

    Parameters
    ----------
    params : (P, D) float32 settings in the flat layout
    x : (T, B, I) time-major sequences
    steps : (S,) increasing time indices at which the state is recorded
    h0, c0 : (P, B, H) initial states or None (zeros)

    Returns
    -------
    hs, cs : (P, S, B, H) float32 arrays (cs is None unless the cell has a memory c)
    """
    cuda = require_gpu()
    params = np.ascontiguousarray(params, dtype=np.float32)
    P = params.shape[0]
    T, B, I = x.shape
    H = cell.hidden
    lstm = cell.memory
    steps = np.ascontiguousarray(steps, dtype=np.int32)
    S = steps.shape[0]
    kernel, layout = kernel_for(cell, I)

    out_h = np.empty((P, S, H, B), np.float32)
    out_c = np.empty((P, S, H, B), np.float32) if lstm else None
    if P == 0:
        return out_h.transpose(0, 1, 3, 2), (out_c.transpose(0, 1, 3, 2) if lstm else None)

    h0_hb = _state_hb(h0, P, B, H)
    c0_hb = _state_hb(c0 if lstm else None, P, B, H)
    per_h0 = h0_hb.shape[0] > 1
    per_c0 = c0_hb.shape[0] > 1

    per_setting = 4 * (layout.size + S * H * B * (2 if lstm else 1)
                       + (H * B if per_h0 else 0) + (H * B if per_c0 else 0))
    chunk = chunk_settings(P, per_setting, _free_bytes(cuda))

    stream = cuda.stream()
    d_x = cuda.to_device(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 2, 1)), stream=stream)
    d_steps = cuda.to_device(steps, stream=stream)
    d_h0 = None if per_h0 else cuda.to_device(h0_hb, stream=stream)
    d_c0 = None if per_c0 else cuda.to_device(c0_hb, stream=stream)
    d_dummy_c = None if lstm else cuda.to_device(np.zeros((1, 1, 1, 1), np.float32), stream=stream)
    for start in range(0, P, chunk):
        stop = min(P, start + chunk)
        n = stop - start
        d_w = cuda.to_device(layout.pack(params[start:stop]), stream=stream)
        dh = cuda.to_device(h0_hb[start:stop], stream=stream) if per_h0 else d_h0
        dc = cuda.to_device(c0_hb[start:stop], stream=stream) if per_c0 else d_c0
        d_oh = cuda.device_array((n, S, H, B), np.float32, stream=stream)
        d_oc = cuda.device_array((n, S, H, B), np.float32, stream=stream) if lstm else d_dummy_c
        launch(kernel, d_w, d_x, d_steps, dh, dc, d_oh, d_oc, stream)
        d_oh.copy_to_host(out_h[start:stop], stream=stream)
        if lstm:
            d_oc.copy_to_host(out_c[start:stop], stream=stream)
    stream.synchronize()
    hs = out_h.transpose(0, 1, 3, 2)
    return hs, (out_c.transpose(0, 1, 3, 2) if lstm else None)
