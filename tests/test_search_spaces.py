"""Search spaces map z to full settings exactly as their spec says (checked block by block)."""

import numpy as np
import pytest

from lstmsearch import Cell
from lstmsearch.errors import LstmsearchError
from lstmsearch.search.spaces import build_space, jitter


def test_masked_forget_bias_diagonal_recurrence_bias_hh_zero():
    cell = Cell("lstm", 4)
    spec = {"kind": "masked", "default": "fixed", "rule": [
        {"block": "weight_hh", "part": "diagonal", "tie": "gate", "low": -5.0, "high": 5.0},
        {"block": "bias_ih", "tie": "none", "low": -1.0, "high": 1.0},
        {"block": "bias_ih", "gate": "f", "mode": "fixed", "value": 5.0},
        {"block": "weight_ih", "gate": ["i", "g"], "tie": "unit"},
    ]}
    sp = build_space(cell, spec, searched_readout=False)
    # z follows the flat layout: 8 per-unit input weights (i, g), 4 diagonal gate values,
    # 12 free biases (i, g, o)
    assert sp.dim == 8 + 4 + 12
    assert sp.names[8:12] == ["weight_hh.i", "weight_hh.f", "weight_hh.g", "weight_hh.o"]
    assert sp.names[:2] == ["weight_ih.i[0]", "weight_ih.i[1]"]
    rng = np.random.default_rng(0)
    z = rng.uniform(sp.low, sp.high, size=(3, sp.dim))
    params = sp.to_params(z)
    b = cell.unflatten(params)
    H = 4
    for p in range(3):
        whh = b["weight_hh_l0"][p]
        for k in range(4):
            blk = whh[k * H:(k + 1) * H]
            assert np.allclose(np.diag(blk), np.float32(z[p, 8 + k]))  # tied per gate
            assert np.all(blk[~np.eye(H, dtype=bool)] == 0)  # off-diagonal fixed at 0
        f = cell.gate_rows("f")
        assert np.all(b["bias_ih_l0"][p][f] == 5.0)
        free_bias = np.delete(b["bias_ih_l0"][p], np.arange(f.start, f.stop))
        assert np.allclose(free_bias, z[p, 12:24].astype(np.float32))
        assert np.all(b["bias_hh_l0"][p] == 0)
        assert np.allclose(b["weight_ih_l0"][p][cell.gate_rows("i"), 0], z[p, 0:4].astype(np.float32))
        assert np.allclose(b["weight_ih_l0"][p][cell.gate_rows("g"), 0], z[p, 4:8].astype(np.float32))
        assert np.all(b["weight_ih_l0"][p][cell.gate_rows("f")] == 0)
        assert np.all(params[p, cell.n_recurrent:] == 0)  # readout fitted, not searched


def test_full_space_dimensions_and_bounds():
    cell = Cell("gru", 3, inputs=2)
    sp = build_space(cell, {"kind": "full", "scale": 2.0, "bias_scale": 7.0}, searched_readout=False)
    assert sp.dim == cell.n_recurrent
    bias_start = cell.block("bias_ih_l0").start
    assert np.all(sp.high[:bias_start] == 2.0) and np.all(sp.high[bias_start:] == 7.0)
    z = np.arange(sp.dim, dtype=float)[None]
    assert np.array_equal(sp.to_params(z)[0, :cell.n_recurrent], z[0].astype(np.float32))
    sp2 = build_space(cell, {"kind": "full"}, searched_readout=True)
    assert sp2.dim == cell.n_params


def test_subspace_is_affine_and_seeded():
    cell = Cell("rnn_tanh", 5)
    spec = {"kind": "subspace", "dim": 3, "seed": 4, "init": "torch"}
    a, b = build_space(cell, spec, False), build_space(cell, spec, False)
    c = build_space(cell, dict(spec, seed=5), False)
    assert np.array_equal(a.A, b.A) and not np.array_equal(a.A, c.A)
    z1, z2 = np.array([[0.3, -0.2, 0.1]]), np.array([[-0.5, 0.4, 0.9]])
    t0 = a.to_params(np.zeros((1, 3))).astype(np.float64)
    lhs = a.to_params(z1 + z2) - t0
    rhs = (a.to_params(z1) - t0) + (a.to_params(z2) - t0)
    assert np.allclose(lhs, rhs, atol=1e-5)
    assert np.allclose(t0[0, :cell.n_recurrent], a.theta0[:cell.n_recurrent])
    assert np.abs(t0[0, :cell.n_recurrent]).max() <= 1 / np.sqrt(5)  # torch init scale


def test_template_from_file(tmp_path):
    (tmp_path / "tpl.py").write_text(
        "import numpy as np\n"
        "def make(z, cell):\n"
        "    out = np.zeros((z.shape[0], cell.n_params), np.float32)\n"
        "    out[:, 0] = z[:, 0]; out[:, 1] = 2 * z[:, 0]\n"
        "    return out\n")
    cell = Cell("rnn_relu", 2)
    sp = build_space(cell, {"kind": "template", "function": "tpl.py:make", "dim": 1, "low": 0, "high": 1},
                     False, base_dir=tmp_path)
    p = sp.to_params(np.array([[0.25]]))
    assert p[0, 0] == 0.25 and p[0, 1] == 0.5
    with pytest.raises(LstmsearchError, match="has no callable"):
        build_space(cell, {"kind": "template", "function": "tpl.py:nope", "dim": 1}, False, base_dir=tmp_path)


def test_space_errors():
    cell = Cell("gru", 2)
    with pytest.raises(LstmsearchError, match="gate 'f': a gru cell has gates r, z, n"):
        build_space(cell, {"kind": "masked", "rule": [{"block": "bias_ih", "gate": "f"}]}, False)
    with pytest.raises(LstmsearchError, match="no free parameter"):
        build_space(cell, {"kind": "masked", "default": "fixed"}, False)
    with pytest.raises(LstmsearchError, match="has no key 'blocks'"):
        build_space(cell, {"kind": "masked", "rule": [{"blocks": "bias_ih"}]}, False)
    with pytest.raises(LstmsearchError, match="readout blocks are fitted"):
        build_space(cell, {"kind": "masked", "rule": [{"block": "weight_out"}]}, False)


def test_jitter_is_regenerable_and_masked():
    p = np.ones((6, 10), np.float32)
    mask = np.zeros(10, bool)
    mask[2:5] = True
    a = jitter(p, mask, np.float32(0.5), 1, 2, 3)
    b = jitter(p, mask, np.float32(0.5), 1, 2, 3)
    c = jitter(p, mask, np.float32(0.5), 1, 2, 4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(a[:, ~mask] == 1) and np.all(a[:, mask] != 1)


def test_part_on_cells_with_a_diagonal_or_no_recurrence():
    """IndRNN's weight_hh is a vector (its diagonal): part = "diagonal" selects all of it,
    "offdiagonal" nothing (one line); a minGRU has no weight_hh: one line, never a bare error."""
    cell = Cell("indrnn", 3)
    spec = {"kind": "masked", "default": "fixed", "rule": [
        {"block": "weight_hh", "part": "diagonal", "tie": "none", "low": -2.0, "high": 2.0}]}
    sp = build_space(cell, spec, searched_readout=False)
    assert sp.dim == 3
    z = np.array([[0.5, -1.0, 1.5]])
    np.testing.assert_array_equal(cell.unflatten(sp.to_params(z))["weight_hh_l0"][0], np.float32(z[0]))
    spec["rule"][0]["part"] = "offdiagonal"
    with pytest.raises(LstmsearchError, match="selects nothing.*diagonal"):
        build_space(cell, spec, searched_readout=False)
    spec = {"kind": "masked", "default": "fixed", "rule": [
        {"block": "weight_ih", "part": "diagonal", "tie": "none", "low": -2.0, "high": 2.0}]}
    with pytest.raises(LstmsearchError, match="mingru cell has none"):
        build_space(Cell("mingru", 3), spec, searched_readout=False)
