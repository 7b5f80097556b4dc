r"""A cell of some kind, with its sizes: the flat parameter layout, torch names, initialisers.

What a kind of cell computes (its gates, state, equations and layout) is defined once, in its
module under :mod:`lstmsearch.kinds` (``kinds/lstm.py``, ``kinds/gru.py``, ...); ``lstmsearch
layout --cell KIND`` prints it. The built-in kinds PyTorch has compute exactly PyTorch's
equations (``torch/nn/modules/rnn.py``). The initial state is h_0 = c_0 = 0 unless given. A
linear readout maps the hidden state to the output: ``y_t = W_out h_t + b_out``.

Parameter layout
----------------
One setting is one flat float32 vector: PyTorch's state dict flattened in order,
row-major, then the readout (for a dense recurrence; see :mod:`lstmsearch.kinds.spec`)::

    weight_ih_l0 (G*H, I) | weight_hh_l0 (G*H, H) | bias_ih_l0 (G*H) | bias_hh_l0 (G*H)
    | weight_out (O, H) | bias_out (O)

This one layout is the interchange format everywhere: kernels, Parquet, export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from . import kinds
from .errors import LstmsearchError, check_memory, require
from .kinds.spec import CellKind

RECURRENT_BLOCKS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
READOUT_BLOCKS = ("weight_out", "bias_out")


@dataclass(frozen=True)
class Block:
    """One named block of the flat parameter vector."""

    name: str
    shape: Tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


def _positive_int(value, what: str) -> int:
    require(
        isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1,
        f"{what} must be a positive integer, got {value!r}",
    )
    return int(value)


@dataclass(frozen=True)
class Cell:
    """A one-layer recurrent cell with a linear readout.

    Parameters
    ----------
    kind : str or CellKind
        A built-in kind ("lstm", "gru", "rnn_tanh", "rnn_relu", "mgu", "mingru", "minlstm",
        "indrnn"; see :mod:`lstmsearch.kinds`), a registered one, ``"module.path:NAME"`` of a
        :class:`~lstmsearch.kinds.spec.CellKind`, or the CellKind itself (registered by its name).
    hidden : int
        Hidden size H (>= 1).
    inputs : int
        Input size I (>= 1).
    outputs : int
        Output size O of the linear readout (>= 1).
    """

    kind: str
    hidden: int
    inputs: int = 1
    outputs: int = 1

    def __post_init__(self):
        if isinstance(self.kind, CellKind):
            if self.kind.name not in kinds.BUILTIN:
                kinds.register(self.kind)
            object.__setattr__(self, "kind", self.kind.name)
        require(isinstance(self.kind, str), f"cell kind must be a name or a CellKind, got {type(self.kind).__name__}")
        kinds.get(self.kind)  # an unknown kind fails here, with the known ones listed
        object.__setattr__(self, "hidden", _positive_int(self.hidden, "hidden"))
        object.__setattr__(self, "inputs", _positive_int(self.inputs, "inputs"))
        object.__setattr__(self, "outputs", _positive_int(self.outputs, "outputs"))

    # ----------------------------------------------------------------- layout
    @property
    def spec(self) -> CellKind:
        """The kind's definition: gates, state, layout, equations (:mod:`lstmsearch.kinds`)."""
        return kinds.get(self.kind)

    @property
    def gates(self) -> int:
        """G, the number of gate blocks: 1 for the RNNs, 4 for the LSTM, 3 for the GRU, ..."""
        return self.spec.n_gates

    @property
    def gate_names(self) -> Tuple[str, ...]:
        """The gate blocks in layout order (PyTorch's where PyTorch has the cell)."""
        return self.spec.gates

    @property
    def memory(self) -> bool:
        """Whether the cell carries a second state c (the LSTM's memory cell)."""
        return self.spec.memory

    @property
    def blocks(self) -> List[Block]:
        """Every block of the flat vector, in order, with shape and start offset."""
        out, start = [], 0
        for name, shape in self.spec.block_shapes(self.hidden, self.inputs, self.outputs):
            out.append(Block(name, shape, start))
            start += int(np.prod(shape))
        return out

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise LstmsearchError(
            f"unknown block {name!r}; expected one of {', '.join(b.name for b in self.blocks)}"
        )

    @property
    def n_params(self) -> int:
        """Total length D of one setting (recurrent part and readout)."""
        last = self.blocks[-1]
        return last.start + last.size

    @property
    def n_recurrent(self) -> int:
        """Length of the recurrent part (everything before ``weight_out``)."""
        return self.block("weight_out").start

    @property
    def n_readout(self) -> int:
        """Length of the readout part: O*H + O."""
        return self.n_params - self.n_recurrent

    def gate_rows(self, gate: str) -> slice:
        """Rows of ``weight_ih_l0`` / ``weight_hh_l0`` / biases that belong to ``gate``."""
        names = self.gate_names
        require(gate in names, f"cell {self.kind} has no gate {gate!r}; expected one of {names}")
        k = names.index(gate)
        return slice(k * self.hidden, (k + 1) * self.hidden)

    def describe(self) -> str:
        """A readable table of the parameter layout."""
        lines = [f"{self.spec.name}: I={self.inputs} H={self.hidden} O={self.outputs} "
                 f"G={self.gates} gates={','.join(self.gate_names)} D={self.n_params}"]
        for b in self.blocks:
            lines.append(f"  {b.name:<13} {str(b.shape):<12} [{b.start}:{b.start + b.size}]")
        return "\n".join(lines)

    # ------------------------------------------------------ params validation
    def check_params(self, params, what: str = "params") -> np.ndarray:
        """Return ``params`` as a C-contiguous (P, D) float32 array or raise a clear error."""
        require(isinstance(params, np.ndarray),
                f"{what} must be a numpy array of shape (P, {self.n_params}), got {type(params).__name__}")
        require(params.dtype in (np.float32, np.float64),
                f"{what} must be float32 (or float64), got dtype {params.dtype}")
        if params.ndim == 1:
            params = params[None, :]
        require(params.ndim == 2 and params.shape[1] == self.n_params,
                f"{what} has shape {params.shape}; expected (P, {self.n_params}) for "
                f"{self.kind} with I={self.inputs}, H={self.hidden}, O={self.outputs}")
        return np.ascontiguousarray(params, dtype=np.float32)

    # ------------------------------------------------------ flatten/unflatten
    def unflatten(self, params: np.ndarray) -> Dict[str, np.ndarray]:
        """Split (D,) or (P, D) settings into a dict of torch-named arrays (views).

        Leading dimensions are kept: (P, D) gives ``weight_ih_l0`` of shape (P, G*H, I).
        """
        params = np.asarray(params)
        require(params.shape[-1] == self.n_params,
                f"params have last dimension {params.shape[-1]}; expected {self.n_params}")
        lead = params.shape[:-1]
        return {b.name: params[..., b.slice].reshape(lead + b.shape) for b in self.blocks}

    def flatten(self, blocks: Dict[str, np.ndarray], dtype=np.float32) -> np.ndarray:
        """Inverse of :meth:`unflatten`. Missing readout blocks are filled with zeros."""
        unknown = set(blocks) - {b.name for b in self.blocks}
        require(not unknown, f"unknown blocks {sorted(unknown)}; expected {[b.name for b in self.blocks]}")
        lead = None
        parts = []
        for b in self.blocks:
            if b.name not in blocks:
                require(b.name in READOUT_BLOCKS, f"block {b.name!r} is missing")
                parts.append(None)
                continue
            a = np.asarray(blocks[b.name], dtype=dtype)
            this_lead = a.shape[: a.ndim - len(b.shape)]
            require(a.shape[len(this_lead):] == b.shape,
                    f"block {b.name} has shape {a.shape[len(this_lead):]}; expected {b.shape}")
            lead = this_lead if lead is None else lead
            parts.append(a.reshape(this_lead + (b.size,)))
        lead = lead or ()
        parts = [np.zeros(lead + (b.size,), dtype) if p is None else p
                 for p, b in zip(parts, self.blocks)]
        return np.concatenate(parts, axis=-1)

    def with_readout(self, params: np.ndarray, readout: np.ndarray) -> np.ndarray:
        """Replace the readout tail of (P, D) settings by (P, O*H+O) readout vectors."""
        out = np.array(params, dtype=np.float32, copy=True)
        out[..., self.n_recurrent:] = readout
        return out

    # ------------------------------------------------------------ initialisers
    def init(self, n: int, seed: int = 0, method: str = "torch", scale: float = None) -> np.ndarray:
        """Draw ``n`` settings, (n, D) float32.

        method
            ``"torch"``: every parameter U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default for
            ``nn.RNN/LSTM/GRU`` and for the ``nn.Linear(H, O)`` readout.
            ``"uniform"``: U(-scale, scale) (weight guessing uses scale = 100).
            ``"normal"``: N(0, scale^2).
        """
        n = _positive_int(n, "n")
        check_memory(f"{n} settings of {self.n_params} parameters", 12.0 * n * self.n_params,
                     "draw fewer settings (--n-settings)")
        rng = np.random.Generator(np.random.Philox(seed))
        D = self.n_params
        if method == "torch":
            k = 1.0 / np.sqrt(self.hidden)
            return rng.uniform(-k, k, size=(n, D)).astype(np.float32)
        require(scale is not None and np.isfinite(scale) and scale > 0,
                f"init method {method!r} needs a positive finite scale, got {scale!r}")
        if method == "uniform":
            return rng.uniform(-scale, scale, size=(n, D)).astype(np.float32)
        if method == "normal":
            return (rng.standard_normal(size=(n, D)) * scale).astype(np.float32)
        raise LstmsearchError(f"unknown init method {method!r}; expected torch, uniform or normal")

    # ------------------------------------------------------------------ torch
    def torch_model(self, params: np.ndarray = None):
        """A ``torch.nn.Module`` with ``.rnn`` (nn.RNN/LSTM/GRU, float32) and ``.readout`` (nn.Linear,
        float64: the readout is applied in float64, as every stored error and verdict applies it).

        Its state dict keys are ``rnn.weight_ih_l0``, ..., ``readout.weight``,
        ``readout.bias``; ``forward(x)`` takes time-major (T, B, I) input and returns the
        readout of the final hidden state, (B, O). With ``params`` (D,) the weights are set.
        """
        from .torch_export import build_torch_model

        model = build_torch_model(self)
        if params is not None:
            model.load_state_dict(self.torch_state_dict(params))
        return model

    def torch_state_dict(self, params: np.ndarray):
        """One setting (D,) as a state dict that :meth:`torch_model` loads."""
        import torch

        params = self.check_params(np.asarray(params))
        require(params.shape[0] == 1, f"torch_state_dict takes one setting, got {params.shape[0]}")
        blocks = self.unflatten(params[0])
        names = {"weight_out": "readout.weight", "bias_out": "readout.bias"}
        return {names.get(k, "rnn." + k): torch.from_numpy(v.astype(np.float64) if k in names else v.copy())
                for k, v in blocks.items()}  # the readout in float64, as it is judged

    @classmethod
    def from_torch(cls, rnn, readout=None) -> Tuple["Cell", np.ndarray]:
        """Build (cell, flat setting) from an ``nn.RNN/LSTM/GRU`` and an optional ``nn.Linear``."""
        from .torch_export import cell_and_params_from_torch

        return cell_and_params_from_torch(cls, rnn, readout)
