"""The adding problem anchor: the hand-built LSTM against its bound and the 1997 criterion."""

import numpy as np
import pytest

from lstmsearch import Cell, LstmsearchError, evaluate, make_task
from lstmsearch.analysis.constructions import adding_error_bound, adding_lstm
from lstmsearch.evaluate import sequence_errors


@pytest.mark.parametrize("length", [100, 500, 1000])
def test_adding_construction_within_its_bound(length):
    cell = Cell("lstm", 1, inputs=2)
    p = adding_lstm()[None]
    task = make_task("adding", length=length, scaled=True)
    bound = adding_error_bound(length)
    ref = sequence_errors(cell, p, task, n_sequences=256, seed=1, backend="reference")
    assert ref.max() <= bound
    cpu = sequence_errors(cell, p, task, n_sequences=2560, seed=0)
    assert cpu.max() <= bound + 1e-6  # float32 rounding of h (~0.02) times the readout weight 25
    assert (cpu < 0.04).mean() == 1.0  # the 1997 criterion, on 2,560 sequences
    # an independent oracle: the target itself, and the construction's first-order value
    x, y = task.sample(256, 1, 1)
    approx = 0.5 + np.tanh(0.01 * (x[:, :, 0] * x[:, :, 1]).sum(axis=0)) / 0.04
    assert np.abs(approx - y[0, :, 0]).max() < 1e-4


def test_adding_bound_shape_and_errors_of_a_worse_gain():
    assert adding_error_bound(1000, gain=0.01) == pytest.approx(5 / 6 * 1e-4 + 3004 * np.exp(-20) / 4, rel=1e-3)
    cell = Cell("lstm", 1, inputs=2)
    task = make_task("adding", length=100, scaled=True)
    big_gain = sequence_errors(cell, adding_lstm(gain=1.5)[None], task, n_sequences=256)
    assert big_gain.max() > 0.04  # tanh saturates: the construction needs a small gain
    with pytest.raises(LstmsearchError, match="hidden"):
        adding_lstm(hidden=0)


def test_sequence_errors_agree_with_evaluate():
    cell = Cell("gru", 3, inputs=2)
    params = cell.init(7, seed=2, method="uniform", scale=3.0)
    task = make_task("adding", length=15, scaled=True)
    e = sequence_errors(cell, params, task, n_sequences=64, seed=5)
    t = evaluate(cell, params, task, n_sequences=64, seed=5, readout="given")
    np.testing.assert_allclose(e.max(axis=1), t.column("max_abs_err").to_numpy(), rtol=1e-12)
    np.testing.assert_allclose((e ** 2).mean(axis=1), t.column("mse").to_numpy(), rtol=1e-9)
    with pytest.raises(LstmsearchError, match="input"):
        sequence_errors(Cell("lstm", 1), params[:, :4], task)
