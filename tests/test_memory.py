"""Memory throughput: the recall_window task, per-output scores, and the delay-line construction."""

import numpy as np
import pytest

from lstmsearch import Cell, evaluate, make_task, simulate
from lstmsearch.anchors import memory
from lstmsearch.analysis.constructions import construct, delay_line_bound
from lstmsearch.config import parse_study
from lstmsearch.errors import LstmsearchError


def test_recall_window_targets_are_the_last_k_inputs():
    task = make_task("recall_window", length=7, k=3)
    x, y = task.sample(5, seed=2)
    assert task.n_outputs == 3 and y.shape == (1, 5, 3)
    np.testing.assert_array_equal(y[0], x[[6, 5, 4], :, 0].T)  # x_n, x_{n-1}, x_{n-2}
    assert task.baseline == pytest.approx(1 / 3)
    with pytest.raises(LstmsearchError, match="1 <= k <= length"):
        make_task("recall_window", length=3, k=4)


def test_fitted_readout_with_several_outputs_matches_least_squares():
    # O > 1: the closed-form readout solves each output's regression (oracle: numpy lstsq on
    # the same states); compared through the fitted predictions, which are well conditioned
    task = make_task("recall_window", length=6, k=3)
    cell = Cell("rnn_tanh", 5, 1, 3)
    p = cell.init(1, seed=4, method="normal", scale=0.7)
    t = evaluate(cell, p, task, n_sequences=200, seed=0, readout="fit", ridge=0.0)
    x, y = task.sample(200, seed=0)
    h = simulate(cell, p, x, backend="cpu")[0].astype(np.float64)
    phi = np.hstack([h, np.ones((200, 1))])
    w, *_ = np.linalg.lstsq(phi, y[0], rcond=None)
    ro = np.asarray(t.column("readout")[0].as_py(), np.float64)
    ours = h @ ro[:15].reshape(3, 5).T + ro[15:]
    np.testing.assert_allclose(ours, phi @ w, atol=1e-3)
    want = np.mean((phi @ w - y[0]) ** 2, axis=0) / task.baseline
    assert np.all(want > 1e-3) and np.all(want < 0.9)  # every output partly explained: a real check
    np.testing.assert_allclose(t.column("train_nmse")[0].as_py(), want.mean(), rtol=1e-3)


@pytest.mark.parametrize("kind", ["rnn_tanh", "gru", "lstm"])
@pytest.mark.parametrize("hidden", [1, 3, 8])
def test_delay_line_recalls_exactly_hidden_lags(kind, hidden):
    k = memory.window(hidden)
    task = make_task("recall_window", length=3 * hidden + 5, k=k)
    cell, p = construct(kind, hidden, "delay_line", outputs=k)
    assert (cell.hidden, cell.outputs) == (hidden, k)
    x, y = task.sample(300, seed=7)
    # the simulator (cpu kernels, float32) against the bound, lag by lag
    h = simulate(cell, p, x, backend="cpu")
    h = (h[0] if kind == "lstm" else h)[0].astype(np.float64)  # (B, H)
    blocks = cell.unflatten(p)
    out = h @ blocks["weight_out"].T.astype(np.float64) + blocks["bias_out"]
    err = np.abs(out - y[0])
    for j in range(hidden):
        assert err[:, j].max() <= delay_line_bound(kind, j) + 1e-6  # + float32 rounding of the states / gain
    assert np.all(out[:, hidden:] == 0.0)  # lags >= H: the mean
    nmse = memory.per_output_nmse(cell, p, task, n_sequences=300, readout="given")[0]
    assert memory.lags_recalled(nmse) == hidden
    assert np.all(nmse[:hidden] < 1e-8) and np.all(nmse[hidden:] > 0.5)
    # the reference backend (float64) agrees with the kernels
    h_ref = simulate(cell, p, x, backend="reference")
    h_ref = (h_ref[0] if kind == "lstm" else h_ref)[0]
    np.testing.assert_allclose(h, h_ref, atol=1e-6)


def test_per_output_nmse_against_numpy():
    task = make_task("recall_window", length=5, k=2)
    cell = Cell("gru", 3, 1, 2)
    p = cell.init(2, seed=1)
    got = memory.per_output_nmse(cell, p, task, n_sequences=64, seed=5, readout="given")
    x, y = task.sample(64, 5, stream=1)
    h = simulate(cell, p, x, backend="reference").astype(np.float64)  # (P, B, H)
    b = cell.unflatten(p.astype(np.float64))
    pred = np.einsum("pbh,poh->pbo", h, b["weight_out"]) + b["bias_out"][:, None, :]
    want = np.mean((pred - y[0][None]) ** 2, axis=1) / task.baseline
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert list(memory.lags_recalled(np.array([[0.001, 0.02, 0.009]]))) == [2]


def test_memory_study_files_parse():
    cfg = parse_study(memory.study_text("lstm", 2))
    assert cfg.task.name == "recall_window" and cfg.task.k == 6 and cfg.cell.outputs == 6
    assert cfg.space_obj.dim == 4 * 2 * (1 + 2 + 1)


def test_capacity_is_summed_explained_variance():
    np.testing.assert_allclose(memory.capacity(np.array([[0.0, 0.25, 1.5, 1.0]])), [1.75])
    # the delay line: capacity H (to 1e-6), the bound of Jaeger (2001) for linear readouts
    task = make_task("recall_window", length=12, k=6)
    cell, p = construct("gru", 3, "delay_line", outputs=6)
    nmse = memory.per_output_nmse(cell, p, task, n_sequences=256, readout="fit")
    assert memory.capacity(nmse)[0] == pytest.approx(3.0, abs=0.05)  # + small chance correlations of lags >= H
