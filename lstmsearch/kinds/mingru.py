"""``mingru``: minGRU (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
Needed?"): the update gate and the candidate see only x_t, so the recurrence is linear in h
and can be computed by a parallel scan. Gate order z, n. No recurrent weights."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    z = ops.sigmoid(x.z)
    return {"z": z, "n": x.n, "h": ops.lerp(z, h, x.n)}


KIND = CellKind(
    name="mingru",
    label="minGRU",
    title="minGRU (gates and candidate see only x_t; Feng et al. 2024)",
    gates=("z", "n"),
    update=update,
    recurrence="none",
    citation="Feng et al. 2024, 'Were RNNs All We Needed?', arXiv:2410.01201, sec. 3.1",
    equations="""
z_t = sigma(W_iz x_t + b_iz)
n_t = W_in x_t + b_in
h_t = (1 - z_t) * h_{t-1} + z_t * n_t
""",
)
