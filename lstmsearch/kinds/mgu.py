"""``mgu``: the minimal gated unit (Zhou, Wu, Zhang & Zhou 2016), a GRU with one gate: the
forget gate f both resets the recurrent term and mixes old and new state. Gate order f, n.

As for PyTorch's GRU, the gate is applied after the recurrent product
(``f * (W_hn h + b_hn)``, the cuDNN form), so that all of a step's recurrent products are
one matrix-vector product; the paper writes ``W_hn (f * h)``. Both forms have the same
fixed points when f saturates at 0 or 1."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    f = ops.sigmoid(x.f + hh.f)
    n = ops.tanh(x.n + f * hh.n)
    return {"f": f, "n": n, "h": ops.lerp(f, h, n)}


KIND = CellKind(
    name="mgu",
    label="MGU",
    title="MGU, minimal gated unit (one gate; reset after the product, as PyTorch's GRU)",
    gates=("f", "n"),
    update=update,
    citation="Zhou, Wu, Zhang & Zhou 2016, 'Minimal Gated Unit for Recurrent Neural Networks'",
    equations="""
f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
n_t = tanh (W_in x_t + b_in + f_t * (W_hn h_{t-1} + b_hn))
h_t = (1 - f_t) * h_{t-1} + f_t * n_t
""",
)
