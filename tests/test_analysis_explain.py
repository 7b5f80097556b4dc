"""Explain: traces equal the reference simulator; roles, ablation and pruning find flag and memory."""

import numpy as np
import pytest

from lstmsearch import Cell, evaluate, make_task, simulate
from lstmsearch.analysis.constructions import construct
from lstmsearch.analysis.explain import ablate, explain, prune, silence, traces, unit_roles, weight_name
from lstmsearch.kernels.reference import sigmoid


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_traces_equal_reference_simulate(kind):
    cell = Cell(kind, 3)
    p = cell.init(1, seed=4, method="normal", scale=1.0)
    x, _ = make_task("recall_first", length=7).sample(5, seed=0)
    tr = traces(cell, p[0], x)
    want = simulate(cell, p, x, backend="reference", return_sequence=True)
    if kind == "lstm":
        np.testing.assert_allclose(tr["h"], want[0][0], rtol=0, atol=1e-13)
        np.testing.assert_allclose(tr["c"], want[1][0], rtol=0, atol=1e-13)
        assert set(tr) == set("ifgoch")
    else:
        np.testing.assert_allclose(tr["h"], want[0], rtol=0, atol=1e-13)
        assert set(tr) == ({"r", "z", "n", "h"} if kind == "gru" else {"h"})


def test_gate_values_by_hand():
    """LSTM i gate at step 1 and GRU z gate at step 2 computed from the weights directly."""
    x, _ = make_task("recall_first", length=3).sample(4, seed=1)
    x64 = x[:, :, 0].astype(np.float64)
    cell = Cell("lstm", 2)
    p = cell.init(1, seed=0, method="normal", scale=1.0)[0]
    b = {k: v.astype(np.float64) for k, v in cell.unflatten(p).items()}
    i1 = sigmoid(b["weight_ih_l0"][0, 0] * x64[0] + b["bias_ih_l0"][0] + b["bias_hh_l0"][0])
    np.testing.assert_allclose(traces(cell, p, x)["i"][0, :, 0], i1, atol=1e-14)
    cell = Cell("gru", 2)
    p = cell.init(1, seed=0, method="normal", scale=1.0)[0]
    b = {k: v.astype(np.float64) for k, v in cell.unflatten(p).items()}
    tr = traces(cell, p, x)
    pre = b["weight_ih_l0"][2:4, 0][None] * x64[1][:, None] + b["bias_ih_l0"][2:4] \
        + tr["h"][0] @ b["weight_hh_l0"][2:4].T + b["bias_hh_l0"][2:4]
    np.testing.assert_allclose(tr["z"][1], sigmoid(pre), atol=1e-14)


@pytest.mark.parametrize("kind,expect", [
    ("lstm", ["flag", "memory"]),
    ("gru", ["flag", "memory"]),
    ("rnn_relu", ["flag", "relay", "memory"]),
    ("rnn_tanh", ["flag", "relay", "flag", "memory"]),
])
def test_roles_of_constructions(kind, expect):
    cell, p = construct(kind, 6)
    x, _ = make_task("recall_first", length=12).sample(50, seed=0)
    roles = unit_roles(traces(cell, p, x)["h"], x)
    assert [r.split(":")[0] for r in roles[:len(expect)]] == expect
    assert all(r == "silent" for r in roles[len(expect):])


def test_silence_and_ablation_match_evaluate():
    cell, p = construct("gru", 4)
    q = silence(cell, p, 1)
    b = cell.unflatten(q)
    assert not b["weight_hh_l0"][:, 1].any() and not b["weight_out"][:, 1].any()
    # the memory is read only by the readout; the flag only by the memory's update gate
    assert np.flatnonzero(q != p).tolist() == [cell.block("weight_out").start + 1]
    assert np.flatnonzero(silence(cell, p, 0) != p).tolist() == [cell.block("weight_hh_l0").start + (4 + 1) * 4 + 0]  # row z[1], column 0
    task = make_task("recall_first", length=10)
    t = ablate(cell, p, task, n_sequences=64, seed=3).to_pydict()
    assert t["unit"] == [-1, 0, 1, 2, 3]
    for j in range(4):
        ev = evaluate(cell, silence(cell, p, j)[None], task, n_sequences=64, seed=3, readout="given")
        assert t["nmse"][j + 1] == pytest.approx(ev["nmse"][0].as_py(), rel=1e-9, abs=1e-15)
    assert t["nmse"][1] > 0.5 and t["nmse"][2] > 0.5  # flag and memory both needed
    assert t["delta_nmse"][3] == 0 and t["delta_nmse"][4] == 0  # silent units
    # refitted readout without the memory cannot recall either
    tf = ablate(cell, p, task, n_sequences=64, seed=3, readout="fit").to_pydict()
    assert tf["nmse"][0] < 1e-6 and tf["nmse"][2] > 0.5


def test_prune_recovers_the_construction_from_noise():
    """Tiny noise on every weight: pruning keeps exactly the construction's weights."""
    # gain 1e-3: the construction's own nmse (~9.6 gain^4, module doc) is 1e-11, far under max_nmse
    cell, p = construct("gru", 4, gain=1e-3)
    rng = np.random.default_rng(0)
    noisy = (p + rng.uniform(-1e-7, 1e-7, p.shape) * (p == 0)).astype(np.float32)
    task = make_task("recall_first", length=15)
    r = prune(cell, noisy, task, n_sequences=64, seed=1, max_nmse=1e-8)
    assert set(r.kept.tolist()) == set(np.flatnonzero(p).tolist())
    assert r.nmse <= 1e-8 and r.check_nmse < 1e-8 and r.n_candidates == cell.n_params
    text = r.table(cell)
    assert "z[u1] <- h[u0]" in text


def test_prune_with_refit_readout():
    cell, p = construct("lstm", 3)
    task = make_task("recall_first", length=10)
    r = prune(cell, p, task, n_sequences=64, readout="fit", max_nmse=1e-4)
    assert r.nmse <= 1e-4
    assert r.n_candidates == np.count_nonzero(p[:cell.n_recurrent])
    ev = evaluate(cell, r.params[None], task, n_sequences=64, seed=0, readout="given")
    assert ev["nmse"][0].as_py() == pytest.approx(r.nmse, rel=1e-3)


def test_weight_names():
    cell = Cell("lstm", 2)
    names = ["flag", "memory"]
    assert weight_name(cell, cell.block("weight_hh_l0").start + 1 * 0 + 0, names) == "i[flag] <- h[flag]"
    assert weight_name(cell, cell.block("weight_hh_l0").start + 1, names) == "i[flag] <- h[memory]"
    assert weight_name(cell, cell.block("weight_ih_l0").start + 5, names) == "g[memory] <- x[0]"
    assert weight_name(cell, cell.block("bias_hh_l0").start + 2, names) == "bias_hh f[flag]"
    assert weight_name(cell, cell.block("weight_out").start + 1, names) == "y[0] <- h[memory]"
    assert weight_name(cell, cell.block("bias_out").start, names) == "bias_out y[0]"


def test_explain_text_names_flag_and_memory():
    cell, p = construct("lstm", 8)
    e = explain(cell, p, make_task("recall_first", length=10), n_sequences=64)
    text = e.format()
    assert "flag: constant 0.762 from step 1 on" in text
    assert "memory: correlates with x_1" in text
    assert "i[memory] <- h[flag]" in text
    assert "6 silent unit(s)" in text


@pytest.mark.parametrize("kind", ["mingru", "minlstm", "indrnn", "mgu"])
def test_silence_and_weight_names_for_every_recurrence(kind):
    """Silencing unit j zeroes the readout's column j and what the units read from h_j: column j of
    a dense recurrence (MGU); for an element-wise one (IndRNN) and none (minGRU, minLSTM) no other unit
    reads h_j, so every other unit's trace stays as it was. IndRNN names u_j as the unit's own weight."""
    from lstmsearch.analysis.explain import ablate, silence, traces, weight_name
    from lstmsearch.cells import Cell
    from lstmsearch.tasks import make_task

    cell = Cell(kind, 3)
    p = (np.random.default_rng(4).standard_normal(cell.n_params) * 0.5).astype(np.float32)
    q = silence(cell, p, 1)
    assert np.all(cell.unflatten(q[None])["weight_out"][0][:, 1] == 0)
    x, _ = make_task("recall_first", length=12).sample(8, seed=2)
    h0, h1 = traces(cell, p, x)["h"], traces(cell, q, x)["h"]
    if cell.spec.recurrence == "dense":
        assert np.all(cell.unflatten(q[None])["weight_hh_l0"][0][:, 1] == 0)
    else:
        np.testing.assert_array_equal(h0[:, :, [0, 2]], h1[:, :, [0, 2]])
    names = [weight_name(cell, i) for i in range(cell.n_params)]
    assert len(set(names)) == len(names)
    if kind == "indrnn":
        assert names[cell.block("weight_hh_l0").start + 2] == "h[u2] <- h[u2]"
        u0, u1 = cell.unflatten(p[None])["weight_hh_l0"][0], cell.unflatten(q[None])["weight_hh_l0"][0]
        assert u1[1] == 0 and u1[0] == u0[0] and u1[2] == u0[2]
    assert ablate(cell, p, make_task("recall_first", length=6), n_sequences=16).num_rows == 4
