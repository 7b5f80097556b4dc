r"""What a cell kind is: its name, gates, state, parameter layout and equations, written once.

A :class:`CellKind` is everything the project knows of a kind of recurrent cell. Every
executor is derived from it: the float64 reference (:mod:`lstmsearch.kernels.reference`), the
Numba CPU kernels (:mod:`lstmsearch.kernels._codegen`), the CUDA kernels
(:mod:`lstmsearch.kernels.cuda`), explain's traces, certify's interval steps, the PyTorch
export, ``lstmsearch layout`` and the CLI help. The built-in kinds live one per module in
:mod:`lstmsearch.kinds`; a researcher's own is one more module (see docs/add_a_cell.md).

Parameter layout (the flat float32 vector of one setting, PyTorch's state-dict order where
PyTorch has the cell), with G gates, H units, I inputs and O outputs::

    weight_ih_l0 (G*H, I) | weight_hh_l0 | bias_ih_l0 (G*H) | bias_hh_l0 (G*H) | weight_out (O, H) | bias_out (O)

where ``weight_hh_l0`` is (G*H, H) for a ``dense`` recurrence, (G*H,) for a ``diagonal`` one
(each unit sees only its own past, IndRNN), and ``weight_hh_l0`` and ``bias_hh_l0`` are absent
for ``recurrence="none"`` (the gates see only x_t, minGRU/minLSTM). Rows of gate k are
``[k*H, (k+1)*H)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Optional, Tuple

from ..errors import LstmsearchError, require
from .graph import Graph, float32_forms, fuse_rows, trace

RECURRENCES = ("dense", "diagonal", "none")


@dataclass(frozen=True, eq=False)
class CellKind:
    """One kind of recurrent cell.

    Parameters
    ----------
    name : str
        The kind's name in configs, Parquet rows and the CLI (``[a-z][a-z0-9_]*``).
    title : str
        One line for the CLI help and the docs, e.g. ``"LSTM, long short-term memory (PyTorch's nn.LSTM)"``.
    gates : tuple of str
        The gate blocks in layout order (PyTorch's order where PyTorch has the cell).
    update : callable
        ``update(ops, x, hh, h, c) -> dict``: the equations (see :mod:`lstmsearch.kinds.graph`).
    equations : str
        The same equations as text, for the docs and ``lstmsearch layout``.
    recurrence : {"dense", "diagonal", "none"}
        How h_{t-1} enters the gates (see the module doc).
    memory : bool
        Whether the cell carries a second state c (the LSTM's memory cell).
    torch : (str, dict) or None
        PyTorch's module for the cell (``("LSTM", {})``, ``("RNN", {"nonlinearity": "tanh"})``)
        where it has one; otherwise the export builds a module from the equations.
    citation : str
        The paper the equations come from.
    """

    name: str
    title: str
    gates: Tuple[str, ...]
    update: Callable
    equations: str
    recurrence: str = "dense"
    memory: bool = False
    torch: Optional[Tuple[str, dict]] = None
    citation: str = ""
    #: The short name tables and the answer page show ("LSTM", "tanh RNN"); default: the name.
    label: str = ""
    #: Kind-specific sentences for reports, e.g. ``{"torch_rounding": "..."}`` (why PyTorch's
    #: float32 module may round differently from ours).
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        import re

        require(isinstance(self.name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", self.name) is not None,
                f"a cell kind's name must be lower case letters, digits and _, got {self.name!r}")
        require(len(self.gates) >= 1 and len(set(self.gates)) == len(self.gates),
                f"cell kind {self.name}: gates must be distinct names, got {self.gates!r}")
        require(self.recurrence in RECURRENCES,
                f"cell kind {self.name}: recurrence must be one of {', '.join(RECURRENCES)}, got {self.recurrence!r}")
        object.__setattr__(self, "gates", tuple(self.gates))
        object.__setattr__(self, "label", self.label or self.name)
        self.graph  # trace now: a wrong update fails where it is defined

    @property
    def states(self) -> Tuple[str, ...]:
        """The state variables: ("h",) or ("h", "c")."""
        return ("h", "c") if self.memory else ("h",)

    @property
    def n_gates(self) -> int:
        return len(self.gates)

    @property
    def torch_name(self) -> str:
        """What the PyTorch export uses for the cell: ``nn.LSTM``, ``nn.RNN tanh``, or the module
        built from the equations (:func:`lstmsearch.torch_export.build_recurrence`)."""
        if self.torch is None:
            return f"{self.name} module built from its equations"
        module, kwargs = self.torch
        return " ".join([f"nn.{module}"] + [str(v) for v in kwargs.values()])

    @cached_property
    def graph(self) -> Graph:
        """The equations, traced (see :mod:`lstmsearch.kinds.graph`)."""
        try:
            return trace(self.update, self.gates, self.recurrence, self.memory)
        except LstmsearchError as err:
            raise LstmsearchError(f"cell kind {self.name}: {err}") from None

    @cached_property
    def kernel_graph(self) -> Graph:
        """The new state as the float32 kernels compute it: fused rows (dense recurrence),
        fused float32 forms, only ``h`` and ``c``."""
        g = Graph({k: self.graph.outputs[k] for k in self.states})
        return float32_forms(fuse_rows(g) if self.recurrence == "dense" else g)

    @cached_property
    def interval_graph(self) -> Graph:
        """The new state with fused rows, as certify's real-arithmetic step evaluates it."""
        g = Graph({k: self.graph.outputs[k] for k in self.states})
        return fuse_rows(g) if self.recurrence == "dense" else g

    @property
    def traced(self) -> Tuple[str, ...]:
        """The names ``update`` returns (gate values, then states), as explain's traces."""
        return tuple(self.graph.outputs)

    def block_shapes(self, H: int, I: int, O: int):
        """[(name, shape)] of the flat layout (see the module doc)."""
        GH = len(self.gates) * H
        shapes = [("weight_ih_l0", (GH, I))]
        if self.recurrence == "dense":
            shapes.append(("weight_hh_l0", (GH, H)))
        elif self.recurrence == "diagonal":
            shapes.append(("weight_hh_l0", (GH,)))
        shapes.append(("bias_ih_l0", (GH,)))
        if self.recurrence != "none":
            shapes.append(("bias_hh_l0", (GH,)))
        return shapes + [("weight_out", (O, H)), ("bias_out", (O,))]

    def describe(self) -> str:
        """Title, citation and equations, for ``lstmsearch layout`` and the docs."""
        lines = [f"{self.name}: {self.title}"]
        if self.citation:
            lines.append(f"  ({self.citation})")
        lines += ["  " + line for line in self.equations.strip().splitlines()]
        return "\n".join(lines)


def kinds_help(names) -> str:
    """The CLI's help for ``--cell``: the kinds, comma-separated."""
    return ", ".join(names)
