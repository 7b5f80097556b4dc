"""``gru``: gated recurrent unit, PyTorch's ``nn.GRU`` (Cho et al. 2014; the reset gate is
applied after the recurrent product, as in PyTorch and cuDNN). Gate order r, z, n."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    r = ops.sigmoid(x.r + hh.r)
    z = ops.sigmoid(x.z + hh.z)
    n = ops.tanh(x.n + r * hh.n)
    return {"r": r, "z": z, "n": n, "h": ops.lerp(z, n, h)}


KIND = CellKind(
    name="gru",
    label="GRU",
    title="GRU, gated recurrent unit (PyTorch's nn.GRU)",
    gates=("r", "z", "n"),
    update=update,
    torch=("GRU", {}),
    extra={"torch_rounding": " (PyTorch's GRU computes h' = (h - n) * z + n, ours n + z (h - n) with the "
                             "multiply-add fused where LLVM contracts it: the two round differently)"},
    citation="Cho et al. 2014, 'Learning Phrase Representations using RNN Encoder-Decoder'",
    equations="""
r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
h_t = (1 - z_t) * n_t + z_t * h_{t-1}
""",
)
