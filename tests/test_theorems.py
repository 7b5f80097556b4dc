"""docs/theorems.md, checked numerically.

Theorem T1 (LSTM, GRU, MGU, tanh RNN: error 0 is impossible): every hidden state stays in (-1, 1)
whatever the inputs (the LSTM's c does not, its h does), so the readout is a bounded function of
x_1 on all of R; the shipped searched rows, simulated in float64 with fixed later inputs, stay
within M = sum |w| + |b| and their error grows like |x_1| outside the box. Theorem T2 (the ReLU
RNN's construction): error exactly 0.0 in float64 at every length, in float32 fl(x_1 + 1) - 1 at
every length, certified for every n.

Theorem 1: for minGRU and minLSTM (gates that see only x_t), every setting and inputs a != b,
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


# ------------------------------------------------------------------ Theorem T1 and Theorem T2
T1_KINDS = ("lstm", "gru", "mgu", "rnn_tanh")
T1_STUDIES = ("recall_first_lstm32", "recall_first_gru32", "recall_first_mgu32", "recall_first_rnn32")


def outputs(cell, params, x, backend="reference"):
    """y_T (B,) float64: the setting's own readout of its final hidden state on x (T, B, 1)."""
    h = simulate(cell, np.asarray(params, np.float32)[None], x, backend=backend)
    h = h[0] if cell.memory else h
    w, b = readout(cell, params)
    return h[0].astype(np.float64) @ w + b


@pytest.mark.parametrize("kind", T1_KINDS)
def test_T1_every_hidden_state_stays_in_the_open_interval_whatever_the_inputs(kind):
    """Part (a) of T1's proof, on random settings with large weights and inputs far outside the
    box (up to +-50, 300 steps): |h| <= 1 at every step (< 1 in exact arithmetic; float64's tanh
    rounds to 1.0 past 19); the LSTM's c leaves [-1, 1], its h does not."""
    cell, params = random_settings(kind, 5, 8, seed=17)
    x = np.random.default_rng(18).uniform(-50, 50, size=(300, 64, 1))
    out = simulate(cell, params * 3, x, backend="reference", return_sequence=True)
    h = out[0] if cell.memory else out
    assert np.abs(h).max() <= 1.0
    if cell.memory:
        assert np.abs(out[1]).max() > 5.0  # unbounded c: the readout must read h, not c


@pytest.mark.parametrize("study", T1_STUDIES)
def test_T1_a_searched_row_is_a_bounded_function_of_x1_so_it_bends_away_from_x1(study):
    """With x_2..x_20 fixed, y_20 as a function of x_1 (float64 reference): never exactly x_1 on a
    grid of the box, bounded by M = sum |w| + |b| for x_1 up to 100 M, so its error there is at
    least |x_1| - M (0.9 |x_1| at 10 M and 100 M): the function cannot equal x_1 on the box."""
    if not (EXAMPLES / study / "manifest.json").is_file():
        pytest.skip(f"no shipped study {study}")
    cfg, _, params = row_setting(study, best_row(study, EXAMPLES), EXAMPLES)
    w, b = readout(cfg.cell, params)
    M = np.abs(w).sum() + abs(b)
    box = np.linspace(-1, 1, 201)
    far = np.array([10.0, -10.0, 100.0, -100.0, 10 * M, -10 * M, 100 * M, -100 * M])
    u = np.concatenate([box, far])
    x = np.empty((20, u.size, 1))
    x[0, :, 0] = u
    x[1:, :, 0] = np.random.default_rng(4).uniform(-1, 1, size=(19, 1))
    y = outputs(cfg.cell, params, x)
    err = np.abs(y - u)
    assert np.isfinite(y).all() and np.abs(y).max() <= M * (1 + 1e-12)
    assert err[:box.size].min() > 0
    assert np.all(err[box.size:] >= np.abs(far) - M * (1 + 1e-12))
    assert np.all(err[-4:] >= 0.9 * np.abs(far[-4:]))
    if study != "recall_first_rnn32":  # the solved rows recall x_1 on the box
        assert err[:box.size].max() < 1e-3


def test_T2_relu_construction_is_exact_in_float64_and_the_same_float_at_every_length_in_float32():
    """T2: the ReLU RNN's construction returns x_1 with error 0.0 in float64 (float32 inputs with
    |x_1| >= 2^-29, for which x_1 + 1 is exact in float64) at lengths 1 to 1,001 with random later
    inputs in the box; in float32 it returns fl(x_1 + 1) - 1 bit for bit at every length: 0.0 on
    dyadic inputs (multiples of 2^-23) and on x_1 <= -1/2, at most 2^-24 elsewhere."""
    cell, params = construct("rnn_relu", 3)
    rng = np.random.default_rng(23)
    x1 = rng.uniform(-1, 1, 1024).astype(np.float32)
    x1 = x1[np.abs(x1) >= 2.0 ** -29]
    dyadic = (np.round(rng.uniform(-1, 1, 256) * 2 ** 23) / 2 ** 23).astype(np.float32)
    u = np.concatenate([x1, dyadic, np.float32([-1, -0.5, 0, 1])])
    rounded = (u + np.float32(1)).astype(np.float32).astype(np.float64) - 1.0
    assert (rounded != u).sum() > 500  # float32 does round x_1 + 1 for most inputs
    first = None
    for T in (1, 2, 7, 1001):
        x = rng.uniform(-1, 1, size=(T, u.size, 1)).astype(np.float32)
        x[0, :, 0] = u
        assert np.array_equal(outputs(cell, params, x, "reference"), u.astype(np.float64))
        y32 = outputs(cell, params, x, "cpu")
        first = y32 if first is None else first
        assert np.array_equal(y32, first) and np.array_equal(y32, rounded)
    err = np.abs(first - u)
    assert err.max() <= 2.0 ** -24 and err[x1.size:].max() == 0.0 and err[u <= -0.5].max() == 0.0


def test_T2_relu_construction_is_certified_for_every_n_in_float32():
    """``lstmsearch certify --cell rnn_relu --hidden 3``: every n >= 1 in float32, eps the width of
    one of the 8,001 slices of x_1 (2.5e-4), and the bound holds on a simulation at n = 3,001."""
    cell, params = construct("rnn_relu", 3)
    cert = certify(cell, params, -1.0, 1.0, arithmetic="float32")
    assert cert.kind == "all_n" and cert.min_length == 1 and cert.eps <= 2.0 / 8000 * 1.01, cert.statement
    x = np.random.default_rng(8).uniform(-1, 1, size=(3001, 256, 1)).astype(np.float32)
    assert np.abs(outputs(cell, params, x, "cpu") - x[0, :, 0]).max() <= cert.eps
