"""Search meets theory (issue 23): a search that is not given the construction finds a tanh RNN at
H = 32 whose state is quantised into attractors, certified for every n >= 20 in exact arithmetic
with a smaller eps than the gate-tied latch's 0.222.

What makes it possible is two study choices (studies/attractor_rnn32.toml): a space with one input
weight and one bias per unit (so the units can latch at distinct thresholds of x_1: a thermometer
code) and the ``cmaes`` option ``objective = "max_abs_err"``, which ranks settings by their worst
held-out |y - x_1| (a minimax score, the quantity a certificate bounds) instead of the mean square.
The ranking is checked here against an independent float64 simulation written out below.
"""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lstmsearch.cells import Cell
from lstmsearch.certify import certify
from lstmsearch.config import load_study
from lstmsearch.errors import ConfigError
from lstmsearch.query import best_row
from lstmsearch.reproduction import row_setting
from lstmsearch.search.base import objective, told_values

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "attractor_rnn32.toml"
EXAMPLES = ROOT / "data" / "examples"
H = 32
LATCH_EPS = 0.222  # `certify recall_first_rnn32 best --arithmetic real --tol 0.25 --min-length 20`


def _thermometer(W=60.0, u=20.0):
    """A hand-built thermometer code (the test's yardstick; the study is not given it): unit k
    latches [x_1 > t_k] at step 1, t_k spread evenly over [-1, 1], read out as sum_k h_k / 33."""
    cell = Cell("rnn_tanh", H)
    t = -1 + 2 * (np.arange(H) + 1) / (H + 1)
    return cell, cell.flatten({"weight_ih_l0": np.full((H, 1), u), "weight_hh_l0": W * np.eye(H),
                               "bias_ih_l0": -u * t, "bias_hh_l0": np.zeros(H),
                               "weight_out": np.full((1, H), 1.0 / (H + 1)), "bias_out": np.zeros(1)})


def _latch():
    cfg, _, p = row_setting("recall_first_rnn32", best_row("recall_first_rnn32", EXAMPLES), EXAMPLES)
    return cfg.cell, p


def _states64(p, x, steps):
    """Independent float64 simulation of h' = tanh(W_ih x + b_ih + W_hh h + b_hh), h_0 = 0: the
    states after each step in ``steps`` (1-based), (len(steps), B, H)."""
    cell = Cell("rnn_tanh", H)
    w = {k: np.asarray(v, np.float64) for k, v in cell.unflatten(np.asarray(p, np.float32)).items()}
    h = np.zeros((x.shape[1], H))
    out = []
    for t in range(max(steps)):
        h = np.tanh(x[t] @ w["weight_ih_l0"].T + w["bias_ih_l0"] + h @ w["weight_hh_l0"].T + w["bias_hh_l0"])
        if t + 1 in steps:
            out.append(h.copy())
    return np.stack(out)


def _scores64(p, lengths=(20, 21), long=203, n=512, seed=7):
    """Least-squares readout fitted on training sequences at ``lengths`` (float64, numpy lstsq);
    on fresh held-out sequences: (nmse, max |y - x_1|) at ``lengths``, and max |y - x_1| at ``long``."""
    rng = np.random.default_rng(seed)
    x_tr, x_te = rng.uniform(-1, 1, (long, n, 1)), rng.uniform(-1, 1, (long, n, 1))
    steps = tuple(lengths) + (long,)
    s_tr, s_te = _states64(p, x_tr, steps), _states64(p, x_te, steps)
    k = len(lengths)
    A = np.concatenate([np.c_[s, np.ones(n)] for s in s_tr[:k]])
    coef = np.linalg.lstsq(A, np.tile(x_tr[0, :, 0], k), rcond=None)[0]
    err = np.stack([np.c_[s, np.ones(n)] @ coef - x_te[0, :, 0] for s in s_te])
    return float(np.mean(err[:k] ** 2) / (1 / 3)), float(np.abs(err[:k]).max()), float(np.abs(err[k]).max())


def test_the_study_file_searches_per_unit_thresholds_with_the_minimax_objective():
    cfg = load_study(STUDY)
    assert cfg.cell.kind == "rnn_tanh" and cfg.cell.hidden == H
    assert cfg.space_obj.dim == 2 * H + 1  # an input weight and a bias per unit, one shared self-weight
    assert cfg.strategy["kind"] == "cmaes" and cfg.strategy["objective"] == "max_abs_err"
    assert cfg.task.lengths == (20, 21)


def test_the_objective_option_is_validated_and_told_as_log10_of_the_worst_error():
    with pytest.raises(ConfigError, match=r"\[strategy\] objective"):
        load_study(STUDY, overrides={"strategy.objective": "certify"})
    assert load_study(STUDY, overrides={"strategy.objective": "nmse"}).strategy["objective"] == "nmse"
    t = pa.table({"nmse": [1e-3, 1e-2, np.inf], "max_abs_err": [0.5, 0.1, np.inf]})
    assert np.allclose(told_values(t, "max_abs_err"), [np.log10(0.5), -1.0, 6.0])
    assert np.array_equal(told_values(t), objective(t.column("nmse").to_numpy()))  # the default is unchanged


def test_both_objectives_rank_a_thermometer_above_the_gate_tied_latch_in_float64():
    """Independently of lstmsearch's kernels and readout fit: a thermometer code (32 distinct
    thresholds) has a smaller worst error and nmse than the gate-tied latch (identical units up to
    jitter), and keeps it at n = 203: its state sits in attractors."""
    _, thermo = _thermometer()
    _, latch = _latch()
    t_nmse, t_max, t_long = _scores64(thermo)
    l_nmse, l_max, l_long = _scores64(latch)
    assert t_max < l_max and t_nmse < l_nmse
    assert t_max < 0.08 and t_long < 0.08  # about one level (2/33) wide: the same at n = 203
    # lstmsearch's own evaluation (float32 cpu kernel, fixed-order readout fit) ranks them alike
    from lstmsearch import evaluate, make_task

    task = make_task("recall_first", lengths=[20, 21])
    cell = Cell("rnn_tanh", H)
    r = evaluate(cell, np.stack([thermo, latch]), task, n_sequences=128, seed=0)
    assert np.argmin(told_values(r, "max_abs_err")) == 0 and np.argmin(told_values(r)) == 0


def test_the_shipped_row_is_certified_for_every_n_in_exact_arithmetic_below_the_latch():
    cfg, row, p = row_setting("attractor_rnn32", best_row("attractor_rnn32", EXAMPLES), EXAMPLES)
    c = certify(cfg.cell, p, -1.0, 1.0, arithmetic="real", tol=0.25, min_length=20, counterexample=False)
    assert c.kind == "all_n" and c.eps < LATCH_EPS, (c.kind, c.eps)
    lcell, lp = _latch()
    c_latch = certify(lcell, lp, -1.0, 1.0, arithmetic="real", tol=0.25, min_length=20, counterexample=False)
    assert c_latch.kind == "all_n" and c.eps < c_latch.eps
    # its float64 behaviour agrees: the worst error at n = 203 is within the certified bound
    assert _scores64(p, n=256)[2] <= c.eps
