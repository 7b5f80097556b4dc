"""``rnn_relu``: the Elman network with ReLU, PyTorch's ``nn.RNN(nonlinearity="relu")``."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    return {"h": ops.relu(x.h + hh.h)}


KIND = CellKind(
    name="rnn_relu",
    label="ReLU RNN",
    title="ReLU RNN (PyTorch's nn.RNN, nonlinearity='relu')",
    gates=("h",),
    update=update,
    torch=("RNN", {"nonlinearity": "relu"}),
    citation="Elman 1990; ReLU recurrence: Le, Jaitly & Hinton 2015",
    equations="h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)",
)
