"""Cell layout, flatten/unflatten, torch conversion and initialisers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmsearch import Cell, LstmsearchError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kind,G", [("rnn_tanh", 1), ("rnn_relu", 1), ("lstm", 4), ("gru", 3)])
def test_parameter_count_matches_torch(kind, G):
    H, I, O = 5, 3, 2
    cell = Cell(kind, H, inputs=I, outputs=O)
    rnn = cell.torch_model().rnn
    n_torch = sum(p.numel() for p in rnn.parameters())
    assert cell.n_recurrent == n_torch == G * H * (I + H + 2)
    assert cell.n_params == n_torch + O * H + O
    assert [b.name for b in cell.blocks] == list(rnn.state_dict()) + ["weight_out", "bias_out"]


def test_blocks_tile_the_vector_in_order():
    cell = Cell("lstm", 3, inputs=2, outputs=2)
    pos = 0
    for b in cell.blocks:
        assert b.start == pos
        pos += b.size
    assert pos == cell.n_params
    assert cell.block("weight_hh_l0").shape == (12, 3)
    assert cell.gate_rows("f") == slice(3, 6)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["rnn_tanh", "rnn_relu", "lstm", "gru"]),
       H=st.integers(1, 6), I=st.integers(1, 4), O=st.integers(1, 3), P=st.integers(1, 3))
def test_flatten_unflatten_roundtrip(kind, H, I, O, P):
    cell = Cell(kind, H, inputs=I, outputs=O)
    params = np.random.default_rng(H * 100 + I).normal(size=(P, cell.n_params)).astype(np.float32)
    blocks = cell.unflatten(params)
    assert blocks["weight_ih_l0"].shape == (P, cell.gates * H, I)
    np.testing.assert_array_equal(cell.flatten(blocks), params)
    np.testing.assert_array_equal(cell.flatten(cell.unflatten(params[0])), params[0])


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_torch_roundtrip(kind):
    cell = Cell(kind, 4, inputs=2, outputs=3)
    params = cell.init(1, seed=3)[0]
    model = cell.torch_model(params)
    # rows of weight_hh are gate-major in PyTorch's order: compare one named block directly
    np.testing.assert_array_equal(model.rnn.weight_hh_l0.detach().numpy(), cell.unflatten(params)["weight_hh_l0"])
    back_cell, back = Cell.from_torch(model.rnn, model.readout)
    assert back_cell == cell
    np.testing.assert_array_equal(back, params)


def test_from_torch_without_readout_has_zero_readout():
    rnn = torch.nn.GRU(2, 3)
    cell, params = Cell.from_torch(rnn)
    assert cell.kind == "gru" and cell.hidden == 3 and cell.inputs == 2
    assert not params[cell.n_recurrent:].any()


def test_init_distributions():
    cell = Cell("lstm", 16)
    p = cell.init(200, seed=0)
    k = 1 / np.sqrt(16)
    assert p.dtype == np.float32 and p.shape == (200, cell.n_params)
    assert p.min() >= -k and p.max() <= k and p.std() == pytest.approx(k / np.sqrt(3), rel=0.02)
    u = cell.init(200, seed=0, method="uniform", scale=100)
    assert u.min() >= -100 and u.max() <= 100 and u.std() == pytest.approx(100 / np.sqrt(3), rel=0.02)
    n = cell.init(200, seed=0, method="normal", scale=2)
    assert n.std() == pytest.approx(2, rel=0.02)
    np.testing.assert_array_equal(cell.init(5, seed=7), cell.init(5, seed=7))
    assert not np.array_equal(cell.init(5, seed=7), cell.init(5, seed=8))


@pytest.mark.parametrize("args,match", [
    (("lstmm", 4), "unknown cell kind 'lstmm'"),
    (("lstm", 0), "hidden must be a positive integer"),
    (("lstm", -3), "hidden must be a positive integer"),
    (("lstm", 2.5), "hidden must be a positive integer"),
    (("gru", 4, 0), "inputs must be a positive integer"),
    (("gru", 4, 1, 0), "outputs must be a positive integer"),
])
def test_bad_cell_arguments(args, match):
    with pytest.raises(LstmsearchError, match=match):
        Cell(*args)


def test_bad_params():
    cell = Cell("lstm", 2)
    with pytest.raises(LstmsearchError, match=r"expected \(P, 43\)"):
        cell.check_params(np.zeros((4, 30), np.float32))
    with pytest.raises(LstmsearchError, match="float32"):
        cell.check_params(np.zeros((4, 43), np.int32))
    with pytest.raises(LstmsearchError, match="numpy array"):
        cell.check_params([0.0] * 43)
    with pytest.raises(LstmsearchError, match="positive finite scale"):
        cell.init(3, method="uniform")
