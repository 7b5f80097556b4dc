r"""Hand-built settings that solve ``recall_first``: a "flag" unit and a "memory" unit.

Both constructions use h_0 = c_0 = 0, 1-D input x_t in [-1, 1] and any H >= 2 (units
beyond the first two are silent: all their weights are 0). Unit 0 is the flag, unit 1
the memory. ``gain`` is the input weight of the memory (small, so the cell stays in
the linear range of tanh), ``big`` the bias scale that saturates gates.

LSTM (gates i, f, g, o)
    flag:   i = f = o = sigma(big), g = tanh(big), so c_flag = 1 from step 1 on and
            h_flag = tanh(1) ~ 0.762 from step 1 on (h_flag = 0 before step 1).
    memory: i = sigma(big - 2 big h_flag / tanh(1)): open (~1) at step 1, where
            h_flag = 0, shut (sigma(-big)) afterwards; f = o = sigma(big);
            g = tanh(gain x_t). So c_mem = tanh(gain x_1) and h_mem = tanh(tanh(gain x_1)).
    readout: y = h_mem / gain.

    Error bound: with float32 sigma(big) = 1 exactly for big >= 17, the memory keeps
    c exactly; the leak per step is sigma(-big) |tanh(gain x)| <= e^{-big} gain, so
    after n steps |c_n - c_1| <= n e^{-big} gain. The readout error of the linear
    readout is the curvature of tanh(tanh(u)) ~ u - 2u^3/3: |y - x_1| <= (2/3) gain^2 |x_1|^3
    + n e^{-big}, i.e. NMSE <= 3 ((2/3) gain^2)^2 / 7 + O(n e^{-big}) for x ~ U[-1, 1]
    (a fitted readout removes part of the cubic term).

GRU (gates r, z, n; h' = (1 - z) n + z h)
    flag:   z = sigma(-big) ~ 0, n = tanh(big) ~ 1: h_flag = 1 from step 1 on.
    memory: z = sigma(-big + 2 big h_flag): ~0 at step 1, sigma(big) ~ 1 afterwards;
            n = tanh(gain x_t). So h_mem = tanh(gain x_1) from step 1 on.
    readout: y = h_mem / gain.  Error bound: |y - x_1| <= gain^2 |x_1|^3 / 3 + n e^{-big}.
"""

from __future__ import annotations

import numpy as np

from ..cells import Cell
from ..errors import require


def _blank(cell):
    return {b.name: np.zeros(b.shape, np.float64) for b in cell.blocks}


def recall_first_lstm(hidden: int = 2, gain: float = 0.01, big: float = 20.0) -> np.ndarray:
    """The LSTM flag/memory construction (see module doc); (D,) float32 for Cell('lstm', hidden)."""
    require(hidden >= 2, f"the construction needs hidden >= 2, got {hidden}")
    cell = Cell("lstm", hidden)
    p = _blank(cell)
    H = hidden
    i, f, g, o = (cell.gate_rows(k) for k in "ifgo")
    flag, mem = 0, 1
    b = p["bias_ih_l0"]
    for gate in (i, f, o):
        b[gate.start + flag] = big
    b[g.start + flag] = big
    b[i.start + mem] = big
    p["weight_hh_l0"][i.start + mem, flag] = -2 * big / np.tanh(1.0)
    b[f.start + mem] = big
    b[o.start + mem] = big
    p["weight_ih_l0"][g.start + mem, 0] = gain
    p["weight_out"][0, mem] = 1.0 / gain
    assert H >= 2
    return cell.flatten(p)


def recall_first_gru(hidden: int = 2, gain: float = 0.01, big: float = 20.0) -> np.ndarray:
    """The GRU flag/memory construction (see module doc); (D,) float32 for Cell('gru', hidden)."""
    require(hidden >= 2, f"the construction needs hidden >= 2, got {hidden}")
    cell = Cell("gru", hidden)
    p = _blank(cell)
    r, z, n = (cell.gate_rows(k) for k in "rzn")
    flag, mem = 0, 1
    b = p["bias_ih_l0"]
    b[z.start + flag] = -big
    b[n.start + flag] = big
    b[z.start + mem] = -big
    p["weight_hh_l0"][z.start + mem, flag] = 2 * big
    p["weight_ih_l0"][n.start + mem, 0] = gain
    p["weight_out"][0, mem] = 1.0 / gain
    return cell.flatten(p)
