"""Backends. Each backend module has ``name`` and ``run(cell, params, x, steps, h0, c0)``
returning the states at the requested steps, (P, S, B, H) (and the LSTM cell state).

- ``reference``: NumPy float64, the oracle.
- ``cpu``: Numba ``njit(parallel=True)``, float32.
"""

from __future__ import annotations

import importlib

from ..errors import LstmsearchError

BACKENDS = ("reference", "cpu")


def get_backend(name: str):
    """The backend module for ``name``."""
    if name not in BACKENDS:
        raise LstmsearchError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"{__name__}.{name}")
