"""evaluate(): metrics against an independent NumPy computation, the closed-form readout
against an augmented least-squares oracle, non-finite settings, determinism, chunking."""

import numpy as np
import pyarrow as pa
import pytest

from lstmsearch import Cell, LstmsearchError, evaluate, make_task, simulate, solutions
from lstmsearch.analysis.constructions import recall_first_gru, recall_first_lstm
from lstmsearch.kernels import reference
from lstmsearch.tasks import HELDOUT_STREAM, TRAIN_STREAM


def col(table, name):
    return table.column(name).to_numpy()


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("task_kind,params", [
    ("recall_first", {}), ("next_value", {}), ("copy", {"symbols": 3, "m": 2}), ("adding", {})])
def test_given_readout_metrics_match_numpy(kind, task_kind, params):
    task = make_task(task_kind, length=8, **params)
    cell = Cell(kind, 4, inputs=task.n_inputs, outputs=task.n_outputs)
    p = cell.init(5, seed=1, method="normal", scale=0.8)
    table = evaluate(cell, p, task, n_sequences=30, seed=3, readout="given")
    x, y = task.sample(30, 3, HELDOUT_STREAM)
    hs, _ = reference.run(cell, p, x, task.output_steps())
    blocks = cell.unflatten(p)
    pred = np.einsum("psbh,poh->psbo", hs, blocks["weight_out"]) + blocks["bias_out"][:, None, None, :]
    mse = ((pred - y[None]) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(col(table, "mse"), mse, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(col(table, "nmse"), mse / task.baseline, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(col(table, "max_abs_err"), np.abs(pred - y[None]).max(axis=(1, 2, 3)), rtol=1e-4)
    assert col(table, "finite").all()
    assert table.column("setting").to_pylist() == list(range(5))


def test_fitted_readout_matches_augmented_lstsq():
    """Ridge with per-unit variance scaling, solved as an augmented least-squares problem."""
    task = make_task("recall_lag", length=6, lag=2)
    cell = Cell("gru", 5)
    p = cell.init(3, seed=2, method="normal", scale=1.0)
    ridge = 1e-3
    table = evaluate(cell, p, task, n_sequences=40, seed=0, readout="fit", ridge=ridge, n_heldout=25)
    x, y = task.sample(40, 0, TRAIN_STREAM)
    xt, yt = task.sample(25, 0, HELDOUT_STREAM)
    h = reference.run(cell, p, x, task.output_steps())[0][:, 0]
    ht = reference.run(cell, p, xt, task.output_steps())[0][:, 0]
    for k in range(3):
        phi = np.hstack([h[k], np.ones((40, 1))])
        pen = np.sqrt(ridge * 40 * h[k].var(axis=0))
        A = np.vstack([phi, np.hstack([np.diag(pen), np.zeros((5, 1))])])
        b = np.concatenate([y[0, :, 0], np.zeros(5)])
        w = np.linalg.lstsq(A, b, rcond=None)[0]
        got = np.asarray(table.column("readout")[k].as_py())
        np.testing.assert_allclose(got, w.astype(np.float32), rtol=2e-3, atol=1e-5)
        pred_t = np.hstack([ht[k], np.ones((25, 1))]) @ w
        assert col(table, "mse")[k] == pytest.approx(((pred_t - yt[0, :, 0]) ** 2).mean(), rel=1e-3)
        pred = phi @ w
        assert col(table, "train_mse")[k] == pytest.approx(((pred - y[0, :, 0]) ** 2).mean(), rel=1e-3)


@pytest.mark.parametrize("build,kind", [(recall_first_lstm, "lstm"), (recall_first_gru, "gru")])
@pytest.mark.parametrize("length", [10, 1000])
def test_constructions_solve_recall_first(build, kind, length):
    """A known solution: held-out nmse below 1e-5 at every length, given or fitted readout."""
    cell = Cell(kind, 32)
    p = build(32)[None]
    task = make_task("recall_first", length=length)
    for readout in ("given", "fit"):
        table = evaluate(cell, p, task, n_sequences=100, seed=5, readout=readout)
        assert col(table, "nmse")[0] < 1e-5
    # the fitted readout, put back into the setting, scores the same with readout="given"
    fitted = solutions(table, p, cell)
    again = evaluate(cell, fitted, task, n_sequences=100, seed=5, readout="given")
    assert col(again, "mse")[0] == pytest.approx(col(table, "mse")[0], rel=1e-3, abs=1e-12)


def test_random_settings_do_not_solve_recall_first():
    cell = Cell("lstm", 8)
    table = evaluate(cell, cell.init(20, seed=0), make_task("recall_first", length=30), n_sequences=64)
    assert col(table, "nmse").min() > 0.3


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_extreme_preactivations_and_nan_settings(kind, backend):
    """|pre-activation| 1e4 never gives NaN; a NaN/inf setting is flagged alone."""
    cell = Cell(kind, 3)
    task = make_task("recall_first", length=15)
    p = cell.init(5, seed=0)
    p[1] = cell.init(1, seed=1, method="uniform", scale=1e4)[0]  # pre-activations ~1e4
    p[2, 0] = np.nan
    p[3, cell.block("weight_hh_l0").start] = np.inf
    x, _ = task.sample(8, 0)
    h = simulate(cell, p, x, backend=backend)
    h = h[0] if kind == "lstm" else h
    if kind != "rnn_relu":  # a relu state of size 1e4^T overflows to inf: that is flagged below
        assert np.isfinite(h[1]).all()
    for readout in ("fit", "given"):
        table = evaluate(cell, p, task, n_sequences=8, backend=backend, readout=readout)
        finite = col(table, "finite")
        assert not finite[2] and not finite[3]
        assert finite[0] and finite[4]
        assert np.isinf(col(table, "nmse")[[2, 3]]).all()
        assert np.isfinite(col(table, "nmse")[[0, 4]]).all()
        clean = evaluate(cell, p[[0, 4]], task, n_sequences=8, backend=backend, readout=readout)
        np.testing.assert_array_equal(col(table, "mse")[[0, 4]], col(clean, "mse"))


def test_saturation_values_exact():
    """Bias 1e4 saturates: LSTM gates give exactly c = 1, h = tanh(1)."""
    cell = Cell("lstm", 1)
    blocks = {b.name: np.zeros(b.shape) for b in cell.blocks}
    blocks["bias_ih_l0"][:] = 1e4
    p = cell.flatten(blocks)[None]
    x = np.zeros((3, 2, 1), np.float32)
    for backend in ("cpu", "reference"):
        h, c = simulate(cell, p, x, backend=backend)
        np.testing.assert_allclose(c, 3.0)  # c_t = c_{t-1} + 1
        np.testing.assert_allclose(h, np.tanh(3.0), rtol=1e-6)


def test_same_seed_bit_identical_and_chunking_invariant():
    cell = Cell("lstm", 6)
    task = make_task("recall_first", length=12)
    p = cell.init(37, seed=4, method="normal", scale=1.5)
    a = evaluate(cell, p, task, n_sequences=50, seed=9)
    b = evaluate(cell, p, task, n_sequences=50, seed=9)
    c = evaluate(cell, p, task, n_sequences=50, seed=9, chunk_size=5)
    assert a.equals(b)
    assert a.equals(c)
    d = evaluate(cell, p, task, n_sequences=50, seed=10)
    assert not np.array_equal(col(a, "mse"), col(d, "mse"))


def test_backends_agree_on_evaluate():
    cell = Cell("gru", 4)
    task = make_task("recall_first", length=10)
    p = cell.init(6, seed=1, method="normal", scale=1.0)
    a = evaluate(cell, p, task, n_sequences=40, backend="cpu")
    b = evaluate(cell, p, task, n_sequences=40, backend="reference")
    np.testing.assert_allclose(col(a, "nmse"), col(b, "nmse"), rtol=1e-3, atol=1e-6)


def test_table_schema():
    cell = Cell("rnn_tanh", 3, outputs=1)
    t = evaluate(cell, cell.init(2), make_task("recall_first", length=4), n_sequences=8)
    assert t.schema.field("readout").type == pa.list_(pa.float32(), cell.n_readout)
    assert set(t.column_names) >= {"setting", "mse", "nmse", "max_abs_err", "finite", "train_mse", "train_nmse"}
    g = evaluate(cell, cell.init(2), make_task("recall_first", length=4), n_sequences=8, readout="given")
    assert "train_mse" not in g.column_names


def test_bad_inputs():
    cell = Cell("lstm", 2)
    task = make_task("recall_first", length=5)
    with pytest.raises(LstmsearchError, match="expected \\(T, B, I\\)"):
        simulate(cell, cell.init(1), np.zeros((5, 1), np.float32))
    with pytest.raises(LstmsearchError, match="the cell expects I=1"):
        simulate(cell, cell.init(1), np.zeros((5, 2, 3), np.float32))
    with pytest.raises(LstmsearchError, match="pair \\(h0, c0\\)"):
        simulate(cell, cell.init(1), np.zeros((5, 2, 1), np.float32), h0=np.zeros(2))
    with pytest.raises(LstmsearchError, match="h0 has shape"):
        simulate(Cell("gru", 2), Cell("gru", 2).init(1), np.zeros((5, 2, 1), np.float32), h0=np.zeros(3))
    with pytest.raises(LstmsearchError, match="unknown backend"):
        evaluate(cell, cell.init(1), task, backend="gpu0")
    with pytest.raises(LstmsearchError, match="readout must be"):
        evaluate(cell, cell.init(1), task, readout="learned")
    with pytest.raises(LstmsearchError, match="task copy has 4 input\\(s\\) and 2 output\\(s\\); the cell has inputs=1"):
        evaluate(cell, cell.init(1), make_task("copy", length=5, symbols=2, m=1))
    with pytest.raises(LstmsearchError, match="expected \\(P, "):
        evaluate(cell, np.zeros((2, 7), np.float32), task)
