"""The cell kinds, one module each, and the registry that finds them by name.

Built in: ``rnn_tanh``, ``rnn_relu``, ``lstm``, ``gru`` (PyTorch's cells) and ``mgu``,
``mingru``, ``minlstm``, ``indrnn``. Each module defines ``KIND``, a
:class:`~lstmsearch.kinds.spec.CellKind`. A researcher's own kind is registered with
:func:`register` (or named in a config as ``"module.path:KIND"``); docs/add_a_cell.md walks
through one.
"""

from __future__ import annotations

import importlib
from typing import Dict, Tuple

from ..errors import LstmsearchError, require
from .spec import CellKind

#: The built-in kinds, in the order the docs and tables list them.
BUILTIN: Tuple[str, ...] = ("lstm", "gru", "rnn_tanh", "rnn_relu", "mgu", "mingru", "minlstm", "indrnn")
#: The four kinds PyTorch has (nn.LSTM, nn.GRU, nn.RNN tanh/relu).
TORCH_KINDS: Tuple[str, ...] = ("lstm", "gru", "rnn_tanh", "rnn_relu")

_REGISTERED: Dict[str, CellKind] = {}


def register(kind: CellKind) -> CellKind:
    """Make ``kind`` known by its name (``ls.Cell(kind.name, ...)``, configs, the CLI). A kind
    registered again under the same name (a notebook cell run twice) replaces the old one;
    compiled kernels are keyed by the generated source, so a changed equation recompiles."""
    require(isinstance(kind, CellKind), f"register takes a CellKind, got {type(kind).__name__}")
    require(kind.name not in BUILTIN, f"{kind.name!r} is a built-in cell kind; give yours another name")
    _REGISTERED[kind.name] = kind
    return kind


def names() -> Tuple[str, ...]:
    """Every kind known now: the built-in ones, then the registered ones."""
    return BUILTIN + tuple(k for k in _REGISTERED if k not in BUILTIN)


def get(name) -> CellKind:
    """The kind called ``name`` (a built-in, a registered one, or ``"module:ATTR"``)."""
    if isinstance(name, CellKind):
        return name
    if name in BUILTIN:
        return importlib.import_module(f"{__name__}.{name}").KIND
    if name in _REGISTERED:
        return _REGISTERED[name]
    if isinstance(name, str) and ":" in name:
        module, _, attr = name.partition(":")
        try:
            kind = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise LstmsearchError(f"cannot load cell kind {name!r} ({err}); give 'module.path:NAME' "
                                  "of a CellKind on the Python path") from None
        return register(kind) if kind.name not in _REGISTERED else _REGISTERED[kind.name]
    raise LstmsearchError(f"unknown cell kind {name!r}; expected one of {', '.join(names())} "
                          "(or register your own: docs/add_a_cell.md)")


def markdown(names=BUILTIN) -> str:
    """The cell kinds as docs/concepts.md shows them (tests/test_kinds.py checks that page)."""
    rows = ["| kind | gates (row blocks) | state | `weight_hh_l0` | PyTorch | from |", "|---|---|---|---|---|---|"]
    hh = {"dense": "(G·H, H)", "diagonal": "(G·H,): one weight per row", "none": "none (nor `bias_hh_l0`)"}
    eqs = []
    for name in names:
        k = get(name)
        rows.append(f"| `{k.name}` | {', '.join(k.gates)} (G = {k.n_gates}) | {', '.join(k.states)} | "
                    f"{hh[k.recurrence]} | {k.torch_name} | {k.citation} |")
        eqs += [f"`{k.name}`: {k.title}", "", "```", k.equations.strip(), "```", ""]
    return "\n".join(rows + [""] + eqs).rstrip() + "\n"
