"""The gradient-descent baseline: training lowers the loss, and the converted weights score the
same under our evaluator as the torch model does itself (an independent check of the conversion)."""

import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from lstmsearch import make_task  # noqa: E402
from lstmsearch.anchors import gradient  # noqa: E402
from lstmsearch.errors import LstmsearchError  # noqa: E402


def test_short_training_lowers_the_loss():
    task = make_task("recall_first", length=5)
    tr = gradient.train("gru", task, hidden=8, steps=300, batch=64, lr=1e-2, seed=0)
    first, last = np.mean(tr.losses[:10]), np.mean(tr.losses[-30:])
    assert first > 0.7  # torch's small init: about the predict-the-mean error
    assert last < 0.3 * first


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_torch_and_our_evaluate_of_the_converted_weights_agree(kind):
    task = make_task("recall_first", length=12)
    tr = gradient.train(kind, task, hidden=6, steps=60, batch=32, lr=1e-2, seed=1)
    # the converted setting holds exactly the torch parameters
    sd = tr.model.state_dict()
    blocks = tr.cell.unflatten(tr.params)
    np.testing.assert_array_equal(blocks["weight_hh_l0"], sd["rnn.weight_hh_l0"].numpy())
    np.testing.assert_array_equal(blocks["weight_out"], sd["readout.weight"].numpy())
    for f in (1, 10):
        t = task.with_length(task.length * f)
        ours = gradient.score(tr, task, (f,), n_sequences=256)[0]
        theirs = gradient.torch_nmse(tr.model, t, n_sequences=256)
        assert ours == pytest.approx(theirs, rel=1e-4)


def test_missing_torch_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(LstmsearchError, match=r'pip install "lstmsearch\[torch\]"'):
        gradient.train("lstm", make_task("recall_first", length=3), steps=1)


def test_forget_bias_sets_the_lstm_forget_gate_only():
    task = make_task("recall_first", length=3)
    tr = gradient.train("lstm", task, hidden=4, steps=1, batch=4, lr=1e-12, forget_bias=2.5)
    b = tr.cell.unflatten(tr.params)
    rows = tr.cell.gate_rows("f")
    np.testing.assert_allclose(b["bias_ih_l0"][rows], 2.5, atol=1e-6)
    np.testing.assert_allclose(b["bias_hh_l0"][rows], 0.0, atol=1e-6)
    assert np.all(np.abs(b["bias_ih_l0"][tr.cell.gate_rows("i")]) <= 0.5 + 1e-6)  # torch's init elsewhere
    with pytest.raises(LstmsearchError, match="no forget gate"):
        gradient.train("gru", task, hidden=4, steps=1, forget_bias=1.0)
