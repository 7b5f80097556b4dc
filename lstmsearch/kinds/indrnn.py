"""``indrnn``: the independently recurrent network (Li, Li, Cook, Zhu & Gao 2018): each unit
sees only its own past, through one recurrent weight u_j, and ReLU."""

from .spec import CellKind


def update(ops, x, hh, h, c):
    return {"h": ops.relu(x.h + hh.h)}


KIND = CellKind(
    name="indrnn",
    label="IndRNN",
    title="IndRNN (element-wise recurrence u * h_{t-1}, ReLU; Li et al. 2018)",
    gates=("h",),
    update=update,
    recurrence="diagonal",
    citation="Li et al. 2018, 'Independently Recurrent Neural Network (IndRNN)', CVPR",
    equations="h_t = relu(W_ih x_t + b_ih + u * h_{t-1} + b_hh)      (u: one weight per unit)",
)
