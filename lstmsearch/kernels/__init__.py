"""Backends. Each backend module has ``name`` and ``run(cell, params, x, steps, h0, c0)``
returning the states at the requested steps, (P, S, B, H) (and the LSTM cell state).

- ``reference``: NumPy float64, the oracle.
- ``cpu``: Numba ``njit(parallel=True)``, float32.
- ``cuda``: numba-cuda kernels, float32, on an NVIDIA GPU (``pip install lstmsearch[cuda]``).
- ``auto``: ``cuda`` when a usable GPU is present, else ``cpu``. The choice and its reason
  are logged (logger ``lstmsearch``, level INFO) and kept in :data:`AUTO_CHOICE`;
  :func:`describe_auto` gives the line to show a user.
"""

from __future__ import annotations

import importlib
import logging

from ..errors import LstmsearchError

BACKENDS = ("reference", "cpu", "cuda", "auto")

log = logging.getLogger("lstmsearch")

#: ``(backend name, reason)`` of the last resolution of "auto", or None before the first.
AUTO_CHOICE = None


def resolve_backend(name: str) -> str:
    """The concrete backend name for ``name`` ("auto" -> "cuda" or "cpu")."""
    global AUTO_CHOICE
    if name not in BACKENDS:
        raise LstmsearchError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    from . import cuda

    # The CUDA simulator is never chosen automatically: it is for tests, and very slow.
    ok, why = cuda.gpu_status(allow_simulator=False)
    choice = ("cuda", f"GPU found: {why}") if ok else ("cpu", f"no usable GPU: {why}")
    if choice != AUTO_CHOICE:
        log.info("backend 'auto' chose %s (%s)", *choice)
    AUTO_CHOICE = choice
    return choice[0]


def describe_auto() -> str:
    """One line saying which backend "auto" takes here, and why."""
    resolve_backend("auto")
    return f"backend 'auto' uses {AUTO_CHOICE[0]} ({AUTO_CHOICE[1]})"


def check_backend(name: str) -> str:
    """Refuse, before any work, a backend that cannot run here; return the concrete name.

    ``"cuda"`` without numba-cuda, or without a GPU, raises
    :class:`~lstmsearch.errors.LstmsearchError` with one line naming the fix; ``"auto"``
    resolves (to ``cpu`` when no GPU is usable: :func:`describe_auto` says why).
    """
    concrete = resolve_backend(name)
    if concrete == "cuda":
        from . import cuda

        cuda.require_gpu()
    return concrete


def compile_notice(cell, backend: str):
    """One line to show before ``cell`` is first simulated on ``backend`` when that compiles a
    kernel that is not cached yet (the ``cpu`` kernels: Numba's disk cache, see
    :func:`lstmsearch.kernels.cpu.compile_notice`), else None. The library prints nothing: a
    caller shows the line (the run loop hands it to its ``echo``)."""
    if resolve_backend(backend) != "cpu":
        return None
    from . import cpu

    return cpu.compile_notice(cell)


def get_backend(name: str):
    """The backend module for ``name`` ("auto" resolves to cuda or cpu)."""
    return importlib.import_module(f"{__name__}.{resolve_backend(name)}")
