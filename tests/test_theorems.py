"""docs/theorems.md, checked numerically.

The theorem: for minGRU and minLSTM (gates that see only x_t), every setting and inputs a != b,
the sequences A_n = (a, b, ..., b) and B_n = (b, ..., b) of length n have states that differ by
exactly prod_{s=2..n} (1 - z(b)) * (z(a) n(a) - z(b) n(b)) (minLSTM: f'(b) and i'), so
|y(A_n) - y(B_n)| <= C rho^(n-1) and the larger of the two errors is >= (|a - b| - C rho^(n-1)) / 2,
which tends to |a - b| / 2. Here the identity, the bound and the limit are checked on random
settings through the float64 reference backend (it would fail if a kernel let h_{t-1} into the
gates, or mixed the units); the fixed-length fit of the converse is exact at its length and wrong
one step later; and certify refutes the best searched minGRU row."""

from pathlib import Path

import numpy as np
import pytest

from lstmsearch.analysis.constructions import construct
from lstmsearch.cells import Cell
from lstmsearch.certify import certify
from lstmsearch.evaluate import evaluate, simulate
from lstmsearch.query import best_row
from lstmsearch.reproduction import row_setting
from lstmsearch.tasks import make_task

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
LENGTHS = (1, 2, 3, 7, 20, 60, 200, 600)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def gates(cell: Cell, params, x: float):
    """(keep, write, candidate) per unit at input x, float64 from the stored float32 weights:
    h' = keep * h + write * candidate (minGRU: 1 - z, z, n; minLSTM: f', i', n)."""
    p = {k: np.asarray(v, np.float64) for k, v in cell.unflatten(np.asarray(params, np.float32)).items()}
    pre = {g: p["weight_ih_l0"][cell.gate_rows(g), 0] * x + p["bias_ih_l0"][cell.gate_rows(g)]
           for g in cell.gate_names}
    if cell.kind == "mingru":
        z = sigmoid(pre["z"])
        return 1.0 - z, z, pre["n"]
    f, i = sigmoid(pre["f"]), sigmoid(pre["i"])
    return f / (f + i), i / (f + i), pre["n"]


def readout(cell, params):
    p = cell.unflatten(np.asarray(params, np.float32))
    return p["weight_out"][0].astype(np.float64), float(p["bias_out"][0])


def random_settings(kind, hidden, count, seed):
    cell = Cell(kind, hidden)
    rng = np.random.default_rng(seed)
    params = (rng.standard_normal((count, cell.n_params)) * rng.choice([0.5, 2.0, 5.0], (count, 1)))
    return cell, params.astype(np.float32)


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_states_differ_by_the_product_of_keep_gates_and_the_bound_holds(kind):
    cell, settings = random_settings(kind, 5, 12, seed={"mingru": 1, "minlstm": 2}[kind])
    rng = np.random.default_rng(3)
    for params in settings:
        a, b = rng.uniform(-1, 1, 2)
        keep_a, write_a, cand_a = gates(cell, params, a)
        keep_b, write_b, cand_b = gates(cell, params, b)
        w_out, _ = readout(cell, params)
        rho = keep_b.max()
        assert rho < 1.0
        C = float(np.sum(np.abs(w_out) * np.abs(write_a * cand_a - write_b * cand_b)))
        for n in LENGTHS:
            x = np.full((n, 2, 1), b)
            x[0, 0, 0] = a
            h = simulate(cell, params, x, backend="reference")[0]      # (2, H), float64
            want = keep_b ** (n - 1) * (write_a * cand_a - write_b * cand_b)
            np.testing.assert_allclose(h[0] - h[1], want, rtol=1e-9, atol=1e-12 * (1 + np.abs(h).max()))
            y = h @ w_out + readout(cell, params)[1]
            gap = abs(y[0] - y[1])
            assert gap <= C * rho ** (n - 1) * (1 + 1e-9) + 1e-12 * (1 + np.abs(y).max())
            worst = max(abs(y[0] - a), abs(y[1] - b))
            assert worst >= (abs(a - b) - C * rho ** (n - 1)) / 2 - 1e-9 * (1 + np.abs(y).max())


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_the_error_tends_to_at_least_half_the_gap(kind):
    """a = -1, b = 1 (the box's ends): once C rho^(n-1) is tiny, the larger error is >= 1 - tiny,
    the error of predicting the midpoint 0 -- for every random setting, whatever its readout."""
    cell, settings = random_settings(kind, 4, 20, seed=7)
    a, b = -1.0, 1.0
    for params in settings:
        keep_a, write_a, cand_a = gates(cell, params, a)
        keep_b, write_b, cand_b = gates(cell, params, b)
        w_out, b_out = readout(cell, params)
        rho = keep_b.max()
        C = float(np.sum(np.abs(w_out) * np.abs(write_a * cand_a - write_b * cand_b)))
        # the length at which the bound is under 1e-6 (capped: a gate shut near 0 keeps for long)
        n = int(min(20000, 2 + np.ceil(np.log(1e-6 / max(C, 1e-300)) / np.log(rho)))) if C > 1e-6 else 2
        x = np.full((n, 2, 1), b)
        x[0, 0, 0] = a
        y = simulate(cell, params, x, backend="reference")[0] @ w_out + b_out
        bound = C * rho ** (n - 1)
        assert max(abs(y[0] - a), abs(y[1] - b)) >= (2.0 - bound) / 2 - 1e-9 * (1 + np.abs(y).max())
        if bound < 1e-6:
            assert max(abs(y[0] - a), abs(y[1] - b)) >= 1.0 - 1e-6


def test_the_fixed_length_fit_is_exact_at_its_length_and_wrong_one_step_later():
    """The converse at ONE length (constructions.fixed_length_mingru, a Vandermonde readout): exact
    at n (float64 reference: only the float32 rounding of the stored weights), nmse >= 1 at n + 1
    (it recalls x_2), and worse still at 2n + 1."""
    for H in (3, 5):
        cell, params = construct("mingru", H, "fixed_length")
        nmse = {}
        for n in (H, H + 1, 2 * H + 1):
            t = evaluate(cell, params[None], make_task("recall_first", length=n), n_sequences=512, seed=5,
                         backend="reference", readout="given")
            nmse[n] = t.column("nmse")[0].as_py()
        assert nmse[H] < 1e-9, nmse
        assert nmse[H + 1] > 1.0 and nmse[2 * H + 1] > 1.0, nmse
        # exactly what the module says: at n + 1 the output is c_n x_1 + x_2
        x, _ = make_task("recall_first", length=H + 1).sample(64, seed=9)
        w_out, b_out = readout(cell, params)
        y = simulate(cell, params, x, backend="reference")[0] @ w_out + b_out
        A = np.stack([x[0, :, 0], x[1, :, 0]], axis=1).astype(np.float64)
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
        assert abs(coef[1] - 1.0) < 1e-4 and np.abs(A @ coef - y).max() < 1e-4, coef


@pytest.mark.skipif(not (EXAMPLES / "recall_first_mingru32" / "manifest.json").is_file(),
                    reason="no shipped minGRU study")
def test_certify_refutes_the_best_searched_mingru_row():
    """The theorem says no minGRU setting holds for every n; the best searched one (H = 32,
    gate-tied, data/examples) is not certified at its trained length and a counterexample
    refutes it (|y - x_1| > tol on a float32 cpu run)."""
    study = "recall_first_mingru32"
    cfg, _, params = row_setting(study, best_row(study, EXAMPLES), EXAMPLES)
    cert = certify(cfg.cell, params, -1.0, 1.0, arithmetic="float32", slices=33, max_length=21,
                   min_length=20, task=cfg.task, budget=128)
    assert cert.kind == "not_certified" and cert.refuted, cert.statement
    assert cert.counterexample_error > 0.5  # more than half the box: worse than predicting 0
