"""Length generalisation: agrees with evaluate(), chunks long sequences, shows the tanh RNN's decay."""

import numpy as np
import pytest

from lstmsearch import Cell, evaluate, make_task
from lstmsearch.analysis.constructions import construct
from lstmsearch.analysis.length import SCHEMA, collect_states, format_length_curve, length_curve
from lstmsearch.errors import LstmsearchError


def test_one_batch_equals_evaluate():
    """With one batch the sequences are evaluate()'s: the same mse for given and refitted readouts."""
    cell = Cell("gru", 5)
    params = cell.init(3, seed=1)
    task = make_task("recall_first", length=8)
    t = length_curve(cell, params, task, factors=(1, 3), n_sequences=40, seed=2).to_pydict()
    assert len(t["setting"]) == 3 * 2 * 2
    for L in (8, 24):
        ev_g = evaluate(cell, params, task.with_length(L), n_sequences=40, seed=2, readout="given")
        ev_f = evaluate(cell, params, task.with_length(L), n_sequences=40, seed=2, readout="fit")
        for mode, ev in (("given", ev_g), ("refit", ev_f)):
            got = [m for m, l, r in zip(t["mse"], t["length"], t["readout"]) if l == L and r == mode]
            np.testing.assert_allclose(got, ev["mse"].to_numpy(), rtol=1e-9)


def test_batches_cover_all_sequences():
    """Batched drawing: N states, distinct batches, the exact construction still exact."""
    cell, p = construct("rnn_relu", 3)
    task = make_task("recall_first", length=50)
    h, y = collect_states(cell, p[None], task, 10, seed=0, train=False, max_elements=50 * 3)
    assert h.shape == (1, 10, 3) and y.shape == (10, 1)
    assert len(np.unique(y)) == 10  # batches use different streams
    # memory unit (2) holds x_1 + 1 exactly (float32 rounding of the sum)
    np.testing.assert_allclose(h[0, :, 2], y[:, 0] + 1.0, atol=2.4e-7)


def test_construction_1000n_with_n_20():
    """n, 2n, 10n, 100n, 1000n for n = 20 (20,000 steps): flat for the LSTM, growing for rnn_tanh."""
    task = make_task("recall_first", length=20)
    cell, p = construct("lstm", 2)
    t = length_curve(cell, p, task, n_sequences=16, max_elements=100_000).to_pydict()
    assert sorted(set(t["length"])) == [20, 40, 200, 2000, 20000]
    assert sorted(set(t["factor"])) == [1, 2, 10, 100, 1000]
    assert max(t["nmse"]) < 1e-7
    cell, p = construct("rnn_tanh", 4, gain=1e-2)
    t = length_curve(cell, p, task, factors=(1, 10, 100), readout="given", n_sequences=64).to_pydict()
    nmse = t["nmse"]
    assert nmse[0] < nmse[1] < nmse[2]
    # 100n: the memory has decayed as the docstring says: error ~ n g^2 x_1^3 / 3, NMSE ~ 3 (n g^2 / 3)^2 / 7
    assert nmse[2] == pytest.approx(3 * (2000 * 1e-4 / 3) ** 2 / 7, rel=0.3)


def test_table_schema_and_text():
    cell, p = construct("gru", 2)
    t = length_curve(cell, p, make_task("recall_first", length=5), lengths=[5, 7], n_sequences=8)
    assert t.schema.equals(SCHEMA)
    text = format_length_curve(t, labels=["gru flag/memory"])
    assert "n=5" in text and "n=7" in text and "gru flag/memory" in text


def test_nonfinite_setting_is_flagged():
    cell = Cell("rnn_relu", 2)
    p = cell.init(2, seed=0)
    p[1, cell.block("weight_hh_l0").start] = np.inf
    t = length_curve(cell, p, make_task("recall_first", length=4), factors=(1,), n_sequences=8).to_pydict()
    assert t["finite"] == [True, False, True, False]
    assert np.isinf(t["nmse"][1]) and np.isinf(t["nmse"][3])


@pytest.mark.parametrize("kwargs,message", [
    ({"readout": "fit"}, "readout must be some of given, refit"),
    ({"factors": (1, -2)}, "factors must be positive"),
    ({"n_sequences": 0}, "n_sequences must be a positive integer"),
])
def test_errors(kwargs, message):
    cell, p = construct("gru", 2)
    with pytest.raises(LstmsearchError, match=message):
        length_curve(cell, p, make_task("recall_first", length=5), **kwargs)
