"""Constructions for recall_first: errors within their stated bounds at n = 10, 1000, 100000,
checked with the simulator against closed forms (float64 reference and float32 cpu)."""

import numpy as np
import pytest

from lstmsearch import Cell, evaluate, make_task, simulate
from lstmsearch.analysis.constructions import (
    CONSTRUCTIONS, construct, error_bound, integrator_rnn, recall_first_rnn_relu)
from lstmsearch.errors import LstmsearchError

MIN_H = {"lstm": 2, "gru": 2, "mgu": 2, "rnn_relu": 3, "rnn_tanh": 4}
KINDS = list(MIN_H)
F32_SLACK = 2e-6  # float32 rounding of the first step, in units of x


def outputs(cell, p, x, backend):
    h = simulate(cell, p[None], x, backend=backend)
    h = h[0] if cell.kind == "lstm" else h
    b = cell.unflatten(p)
    return h[0].astype(np.float64) @ b["weight_out"][0].astype(np.float64) + float(b["bias_out"][0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,backend", [(10, "reference"), (10, "cpu"), (1000, "reference"), (1000, "cpu"),
                                       (1, "reference")])
def test_error_within_bound(kind, n, backend):
    cell, p = construct(kind, 8)
    x, y = make_task("recall_first", length=n).sample(64 if n > 10 else 256, seed=3)
    err = np.abs(outputs(cell, p, x, backend) - y[0, :, 0])
    slack = 1e-12 if backend == "reference" else F32_SLACK
    assert err.max() <= error_bound(kind, n) + slack
    # the same through evaluate(readout="given"): a solution at every length
    t = evaluate(cell, p[None], make_task("recall_first", length=n), n_sequences=32, seed=1,
                 backend=backend, readout="given")
    assert t["nmse"][0].as_py() < 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_n_100000_cpu(kind):
    """n = 100000 with tiny B and H, float32 cpu backend."""
    cell, p = construct(kind, MIN_H[kind])
    x, y = make_task("recall_first", length=100000).sample(4, seed=11)
    err = np.abs(outputs(cell, p, x, "cpu") - y[0, :, 0])
    assert err.max() <= error_bound(kind, 100000) + F32_SLACK


def test_tanh_rnn_is_n_fold_tanh_and_error_grows_with_n():
    """rnn_tanh: y = tanh^(n)(g x_1) / g (float64 oracle), and the error grows like n g^2 x^3."""
    g, n = 1e-3, 100000
    cell, p = construct("rnn_tanh", 4, gain=g)
    x, y = make_task("recall_first", length=n).sample(6, seed=2)
    x1 = y[0, :, 0]
    s = g * x1
    for _ in range(n):
        s = np.tanh(s)
    oracle = s / g
    # closed-form sandwich: s / sqrt(1 + n s^2) <= tanh^(n)(s) <= s / sqrt(1 + 2 n s^2 / 3)
    s0 = g * np.abs(x1)
    assert np.all(np.abs(oracle) >= np.abs(x1) / np.sqrt(1 + n * s0 ** 2) - 1e-12)
    assert np.all(np.abs(oracle) <= np.abs(x1) / np.sqrt(1 + 2 * n * s0 ** 2 / 3) + 1e-12)
    got = outputs(cell, p, x, "cpu")
    assert np.abs(got - oracle).max() < 0.01 * np.abs(x1).max()  # float32 rounding over 1e5 steps
    # the reference backend at n = 1000 follows the oracle to float64 precision
    # (with the float32-stored gain and readout weight, as the simulator sees them)
    xs = x[:1000]
    g32, w32 = float(np.float32(g)), float(np.float32(1 / g))
    s32 = g32 * x1
    for _ in range(1000):
        s32 = np.tanh(s32)
    np.testing.assert_allclose(outputs(cell, p, xs, "reference"), s32 * w32, rtol=1e-9, atol=1e-12)
    s = g * x1
    for _ in range(1000):
        s = np.tanh(s)
    # error at 1e5 is ~100 x the error at 1e3 (linear in n) in every sequence
    e_long = np.abs(oracle - x1)
    e_short = np.abs(s / g - x1)
    assert np.all(e_long > 50 * e_short)


def test_relu_rnn_exact_formula_with_leaks():
    """y - x_1 = relu(-R - x_1) + sum_{t>=2} relu(x_t + R - big), also when inputs break the range."""
    R, big, n = 1.0, 6.0, 50
    cell = Cell("rnn_relu", 3)
    p = recall_first_rnn_relu(3, input_range=R, big=big)
    x, y = make_task("recall_first", length=n, dist={"kind": "normal", "std": 3.0}).sample(200, seed=4)
    x64 = x[:, :, 0].astype(np.float64)
    expect = x64[0] + np.maximum(-R - x64[0], 0) + np.maximum(x64[1:] + R - big, 0).sum(axis=0)
    assert (np.maximum(x64[1:] + R - big, 0).sum(axis=0) > 0).mean() > 0.3  # leaks do happen
    np.testing.assert_allclose(outputs(cell, p, x, "reference"), expect, rtol=0, atol=1e-12)
    np.testing.assert_allclose(outputs(cell, p, x, "cpu"), expect, rtol=1e-6, atol=1e-5)


def test_lstm_and_gru_follow_their_closed_forms():
    """LSTM: y = tanh(tanh(g x_1)) / g; GRU: y = (tanh(beta + g x_1) - tanh(beta)) / (g (1 - tanh(beta)^2))
    (float64, up to e^-big leaks)."""
    g = 0.05
    x, y = make_task("recall_first", length=30).sample(100, seed=6)
    x1 = y[0, :, 0]
    cell, p = construct("lstm", 3, gain=g)
    np.testing.assert_allclose(outputs(cell, p, x, "reference"), np.tanh(np.tanh(g * x1)) / g, atol=1e-6)
    cell, p = construct("gru", 3, gain=g)
    beta, t = 4 * g, np.tanh(4 * g)  # the default offset 4 gain R, R = 1
    gru = (np.tanh(beta + g * x1) - t) / (g * (1 - t * t))
    # the weights as stored (float32): the readout's bias -t / (g (1 - t^2)) ~ -4 rounds by ~2e-7
    b = {k: v.astype(np.float64) for k, v in cell.unflatten(p).items()}
    assert b["bias_ih_l0"][cell.gate_rows("n").start + 1] == np.float32(beta)
    stored = b["weight_out"][0, 1] * np.tanh(b["bias_ih_l0"][cell.gate_rows("n").start + 1]
                                             + b["weight_ih_l0"][cell.gate_rows("n").start + 1, 0] * x1) \
        + b["bias_out"][0]
    np.testing.assert_allclose(outputs(cell, p, x, "reference"), stored, atol=1e-6)
    np.testing.assert_allclose(stored, gru, atol=1e-6)
    # and the cubic (LSTM) and quadratic (GRU: -tanh(beta) g x_1^2) errors are what the bounds say
    # they are, not smaller by accident
    assert np.abs(np.tanh(np.tanh(g * x1)) / g - x1).max() > 0.5 * error_bound("lstm", 30, gain=g)
    assert np.abs(gru - x1).max() > 0.5 * error_bound("gru", 30, gain=g)
    np.testing.assert_allclose(gru - x1, -t * g * x1 ** 2, atol=g * g / (3 * (1 - t * t)))


def test_gru_offset_is_refused_below_sterbenz_range():
    with pytest.raises(LstmsearchError, match="offset >= 3 gain input_range") as exc:
        construct("gru", 2, offset=0.02, gain=0.01)
    assert "\n" not in str(exc.value)
    with pytest.raises(LstmsearchError, match="offset >= 3 gain input_range"):
        construct("gru", 2, input_range=2.0, offset=0.04)
    # the default scales with R, and the bound at n = 1 is ~ tanh(4 gain R) gain R^2
    cell, p = construct("gru", 2, input_range=2.0)
    assert cell.unflatten(p)["bias_ih_l0"][cell.gate_rows("n").start + 1] == np.float32(0.08)
    assert error_bound("gru", 1, input_range=2.0) == pytest.approx(np.tanh(0.08) * 0.01 * 4, rel=0.1)


def test_integrator_cannot_shut_out_later_inputs():
    """The ungated self-weight-1 unit sums every input: NMSE = n - 1 for U[-1, 1] inputs."""
    n = 10
    cell = Cell("rnn_tanh", 1)
    t = evaluate(cell, integrator_rnn(1, gain=1e-3)[None], make_task("recall_first", length=n),
                 n_sequences=4000, seed=0, readout="given")
    assert t["nmse"][0].as_py() == pytest.approx(n - 1, rel=0.1)


def test_only_named_units_are_used():
    for (name, kind), build in CONSTRUCTIONS.items():
        if name != "flag_memory":
            continue
        cell, p = construct(kind, 16)
        b = cell.unflatten(p)
        used = np.flatnonzero(np.abs(b["weight_hh_l0"]).sum(axis=0) + np.abs(b["weight_out"]).sum(axis=0))
        assert used.max() < MIN_H[kind]


@pytest.mark.parametrize("args,message", [
    (("lstm", 1), "needs hidden >= 2"),
    (("rnn_tanh", 3), "needs hidden >= 4"),
    (("lstm", 4, "integrator"), "not for 'lstm'"),
    (("lstm", 4, "nope"), "unknown construction 'nope'"),
])
def test_construct_errors(args, message):
    with pytest.raises(LstmsearchError, match=message):
        construct(*args)
