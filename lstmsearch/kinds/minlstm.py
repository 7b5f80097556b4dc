"""``minlstm``: minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
Needed?"): forget and input gates that see only x_t, normalised to sum to one, and a linear
candidate. Gate order f, i, n. No recurrent weights.

In float32, where both gates' pre-activations are below about -88 both sigmoids are exactly 0
and f / (f + i) is 0 / 0: the state is NaN and the setting is reported non-finite (the paper's
log-space form avoids this; these are its sequential equations)."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    f = ops.sigmoid(x.f)
    i = ops.sigmoid(x.i)
    s = f + i
    f, i = f / s, i / s
    return {"f": f, "i": i, "n": x.n, "h": f * h + i * x.n}


KIND = CellKind(
    name="minlstm",
    label="minLSTM",
    title="minLSTM (normalised gates that see only x_t; Feng et al. 2024)",
    gates=("f", "i", "n"),
    update=update,
    recurrence="none",
    citation="Feng et al. 2024, 'Were RNNs All We Needed?', arXiv:2410.01201, sec. 3.2",
    equations="""
f_t = sigma(W_if x_t + b_if),  i_t = sigma(W_ii x_t + b_ii)
f'_t = f_t / (f_t + i_t),      i'_t = i_t / (f_t + i_t)
n_t = W_in x_t + b_in
h_t = f'_t * h_{t-1} + i'_t * n_t
""",
)
