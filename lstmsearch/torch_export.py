"""Conversion between flat settings and PyTorch modules (torch is imported only here).

The exported model is the model that was judged: the cell runs in float32 (PyTorch's
nn.LSTM/GRU/RNN) and the readout in float64 (``nn.Linear`` with ``dtype=torch.float64`` on the
float32 hidden state, converted exactly), as :func:`lstmsearch.readout.apply` applies it for every
stored error and verdict."""

from __future__ import annotations


from .errors import LstmsearchError, import_optional, require


def _torch():
    return import_optional("torch", "torch", "export to PyTorch")


def build_torch_model(cell):
    """An ``nn.Module`` holding ``rnn`` (the cell, float32) and ``readout`` (``nn.Linear(H, O)``, float64)."""
    torch = _torch()
    nn = torch.nn

    class RecurrentReadout(nn.Module):
        """``y = readout(h_T)`` (float64) where h_T is the final hidden state of ``rnn`` on (T, B, I)."""

        def __init__(self):
            super().__init__()
            H, I = cell.hidden, cell.inputs
            if cell.kind == "lstm":
                self.rnn = nn.LSTM(I, H)
            elif cell.kind == "gru":
                self.rnn = nn.GRU(I, H)
            else:
                self.rnn = nn.RNN(I, H, nonlinearity=cell.kind.split("_")[1])
            self.readout = nn.Linear(H, cell.outputs, dtype=torch.float64)

        def forward(self, x):
            seq, _ = self.rnn(x)
            return self.readout(seq[-1].to(torch.float64))

    return RecurrentReadout()


def cell_and_params_from_torch(cell_cls, rnn, readout=None):
    """(Cell, flat float32 setting) from a one-layer unidirectional torch RNN/LSTM/GRU."""
    torch = _torch()
    nn = torch.nn
    require(isinstance(rnn, (nn.RNN, nn.LSTM, nn.GRU)),
            f"expected nn.RNN, nn.LSTM or nn.GRU, got {type(rnn).__name__}")
    require(rnn.num_layers == 1 and not rnn.bidirectional and rnn.bias,
            "only one-layer, unidirectional cells with biases are supported")
    require(getattr(rnn, "proj_size", 0) == 0, "LSTM with proj_size is not supported")
    if isinstance(rnn, nn.LSTM):
        kind = "lstm"
    elif isinstance(rnn, nn.GRU):
        kind = "gru"
    else:
        kind = "rnn_" + rnn.nonlinearity
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
