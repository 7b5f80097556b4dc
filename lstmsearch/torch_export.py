"""Conversion between flat settings and PyTorch modules (torch is imported only here).

The exported model is the model that was judged: the cell runs in float32 (PyTorch's
nn.LSTM/GRU/RNN) and the readout in float64 (``nn.Linear`` with ``dtype=torch.float64`` on the
float32 hidden state, converted exactly), as :func:`lstmsearch.readout.apply` applies it for every
stored error and verdict."""

from __future__ import annotations


from .errors import LstmsearchError, import_optional, require


def _torch():
    return import_optional("torch", "torch", "export to PyTorch")


def torch_table(torch):
    """The operations of a cell's equations in torch (see :mod:`lstmsearch.kinds.graph`)."""
    return {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "neg": torch.neg,
            "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
            "lerp": lambda z, a, b: (1.0 - z) * a + z * b}


def build_recurrence(cell):
    """An ``nn.Module`` for a kind PyTorch lacks, from its equations: parameters named as the
    flat layout's blocks (``weight_ih_l0``, ...), ``forward(x)`` on (T, B, I) returns
    ``(output (T, B, H), h_T (1, B, H))`` as ``nn.RNN`` does."""
    torch = _torch()
    nn = torch.nn
    spec, H = cell.spec, cell.hidden
    table = torch_table(torch)

    class Recurrence(nn.Module):
        __doc__ = spec.describe()
        kind = spec.name

        def __init__(self):
            super().__init__()
            self.hidden_size, self.input_size = H, cell.inputs
            for b in cell.blocks[:-2]:
                self.register_parameter(b.name, nn.Parameter(torch.zeros(b.shape)))

        def forward(self, x):
            T, B = x.shape[0], x.shape[1]
            h = x.new_zeros((B, H))
            c = x.new_zeros((B, H))
            rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(spec.gates)}
            seq = []
            for t in range(T):
                xi = x[t] @ self.weight_ih_l0.T + self.bias_ih_l0
                if spec.recurrence == "dense":
                    hh = h @ self.weight_hh_l0.T + self.bias_hh_l0
                elif spec.recurrence == "diagonal":
                    hh = h.repeat(1, len(spec.gates)) * self.weight_hh_l0 + self.bias_hh_l0

                def leaf(n):
                    if n.op == "const":
                        return n.key
                    if n.op in ("x", "hh"):
                        return (xi if n.op == "x" else hh)[:, rows[n.key]]
                    return h if n.op == "h" else c

                new = spec.graph.evaluate(table, leaf, spec.states)
                h, c = new["h"], new.get("c", c)
                seq.append(h)
            return torch.stack(seq), h[None]

    return Recurrence()


def build_torch_model(cell):
    """An ``nn.Module`` holding ``rnn`` (the cell, float32: PyTorch's module where PyTorch has
    the kind, else :func:`build_recurrence`) and ``readout`` (``nn.Linear(H, O)``, float64)."""
    torch = _torch()
    nn = torch.nn

    class RecurrentReadout(nn.Module):
        """``y = readout(h_T)`` (float64) where h_T is the final hidden state of ``rnn`` on (T, B, I)."""

        def __init__(self):
            super().__init__()
            H, I = cell.hidden, cell.inputs
            if cell.spec.torch is not None:
                module, kwargs = cell.spec.torch
                self.rnn = getattr(nn, module)(I, H, **kwargs)
            else:
                self.rnn = build_recurrence(cell)
            self.readout = nn.Linear(H, cell.outputs, dtype=torch.float64)

        def forward(self, x):
            seq, _ = self.rnn(x)
            return self.readout(seq[-1].to(torch.float64))

    return RecurrentReadout()


def torch_kind(nn, rnn) -> str:
    """The kind whose ``torch`` entry is ``rnn``'s class (and nonlinearity), checked to be a
    one-layer, unidirectional cell with biases."""
    from . import kinds

    require(isinstance(rnn, (nn.RNN, nn.LSTM, nn.GRU)),
            f"expected nn.RNN, nn.LSTM or nn.GRU, got {type(rnn).__name__}")
    require(rnn.num_layers == 1 and not rnn.bidirectional and rnn.bias,
            "only one-layer, unidirectional cells with biases are supported")
    require(getattr(rnn, "proj_size", 0) == 0, "LSTM with proj_size is not supported")
    for name in kinds.TORCH_KINDS:
        module, kwargs = kinds.get(name).torch
        if type(rnn).__name__ == module and all(getattr(rnn, k) == v for k, v in kwargs.items()):
            return name
    raise LstmsearchError(f"no cell kind is PyTorch's {type(rnn).__name__}")


def cell_and_params_from_torch(cell_cls, rnn, readout=None):
    """(Cell, flat float32 setting) from a one-layer unidirectional torch RNN/LSTM/GRU, or a
    module of :func:`build_recurrence`."""
    torch = _torch()
    nn = torch.nn
    kind = getattr(rnn, "kind", None)  # a module of build_recurrence
    if kind is None:
        kind = torch_kind(nn, rnn)
    outputs = readout.out_features if readout is not None else 1
    cell = cell_cls(kind, rnn.hidden_size, rnn.input_size, outputs)
    blocks = {k: v.detach().cpu().numpy() for k, v in rnn.state_dict().items()}
    if readout is not None:
        if readout.in_features != cell.hidden:
            raise LstmsearchError(
                f"readout takes {readout.in_features} features; expected hidden size {cell.hidden}")
        blocks["weight_out"] = readout.weight.detach().cpu().numpy()
        blocks["bias_out"] = readout.bias.detach().cpu().numpy()
    return cell, cell.flatten(blocks)
