"""``rnn_tanh``: the Elman network with tanh, PyTorch's ``nn.RNN`` (Elman 1990)."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    return {"h": ops.tanh(x.h + hh.h)}


KIND = CellKind(
    name="rnn_tanh",
    label="tanh RNN",
    title="tanh RNN, the Elman network (PyTorch's nn.RNN, nonlinearity='tanh')",
    gates=("h",),
    update=update,
    torch=("RNN", {"nonlinearity": "tanh"}),
    citation="Elman 1990, 'Finding Structure in Time'",
    equations="h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)",
)
