"""``lstm``: long short-term memory, PyTorch's ``nn.LSTM`` (Hochreiter & Schmidhuber 1997, with
the forget gate of Gers, Schmidhuber & Cummins 2000). Gate order i, f, g, o."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    i = ops.sigmoid(x.i + hh.i)
    f = ops.sigmoid(x.f + hh.f)
    g = ops.tanh(x.g + hh.g)
    o = ops.sigmoid(x.o + hh.o)
    c = f * c + i * g
    return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": o * ops.tanh(c)}


KIND = CellKind(
    name="lstm",
    label="LSTM",
    title="LSTM, long short-term memory (PyTorch's nn.LSTM)",
    gates=("i", "f", "g", "o"),
    update=update,
    memory=True,
    torch=("LSTM", {}),
    citation="Hochreiter & Schmidhuber 1997; forget gate: Gers, Schmidhuber & Cummins 2000",
    equations="""
i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
g_t = tanh (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
c_t = f_t * c_{t-1} + i_t * g_t
h_t = o_t * tanh(c_t)
""",
)
