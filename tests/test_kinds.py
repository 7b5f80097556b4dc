"""Every executor derived from each cell kind's one definition (lstmsearch/kinds/<kind>.py) agrees
with the others and with an oracle written here independently of the definitions: PyTorch for
the kinds PyTorch has, the papers' equations in NumPy for the others.

Executors: the float64 reference, the Numba CPU kernel, explain's traces, certify's real and
float32 steps (each must enclose the reference / the kernel), the PyTorch export.
"""

from __future__ import annotations

import numpy as np
import pytest

import lstmsearch as ls
from lstmsearch import kinds
from lstmsearch.analysis.explain import traces
from lstmsearch.certify import steps as csteps
from lstmsearch.errors import LstmsearchError
from lstmsearch.kernels import cpu, reference
from lstmsearch.kinds.spec import CellKind


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def oracle_step(kind, p, x, h, c):
    """The papers' equations for one setting, written out here: x (B, I), h and c (B, H)."""
    H = h.shape[1]
    Wih, bih = p["weight_ih_l0"], p["bias_ih_l0"]
    gx = x @ Wih.T + bih
    if kind == "indrnn":
        return np.maximum(gx + p["weight_hh_l0"] * h + p["bias_hh_l0"], 0.0), c
    if kind == "mingru":
        z, n = sig(gx[:, :H]), gx[:, H:]
        return (1 - z) * h + z * n, c
    if kind == "minlstm":
        f, i, n = sig(gx[:, :H]), sig(gx[:, H:2 * H]), gx[:, 2 * H:]
        return f / (f + i) * h + i / (f + i) * n, c
    gh = h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
    if kind == "mgu":  # Zhou et al. 2016 with the reset applied after the product (as PyTorch's GRU)
        f = sig(gx[:, :H] + gh[:, :H])
        n = np.tanh(gx[:, H:] + f * gh[:, H:])
        return (1 - f) * h + f * n, c
    raise AssertionError(kind)


def oracle_run(cell, params, x):
    """Final (h, c) by the oracle: PyTorch's module for its kinds, else :func:`oracle_step`."""
    if cell.spec.torch is not None:
        torch = pytest.importorskip("torch")
        module, kwargs = cell.spec.torch
        rnn = getattr(torch.nn, module)(cell.inputs, cell.hidden, **kwargs).double()
        blocks = cell.unflatten(params.astype(np.float64))
        rnn.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in blocks.items() if k.endswith("_l0")})
        with torch.no_grad():
            _, state = rnn(torch.from_numpy(x.astype(np.float64)))
        if cell.memory:
            return state[0][0].numpy(), state[1][0].numpy()
        return state[0].numpy(), None
    p = cell.unflatten(params.astype(np.float64))
    B = x.shape[1]
    h = np.zeros((B, cell.hidden))
    c = None
    for t in range(x.shape[0]):
        h, c = oracle_step(cell.kind, p, x[t].astype(np.float64), h, c)
    return h, c


def setting(cell, seed, scale=1.5):
    return cell.init(1, seed=seed, method="uniform", scale=scale)[0]


@pytest.mark.parametrize("kind", kinds.BUILTIN)
@pytest.mark.parametrize("H,I", [(3, 1), (4, 2)])
def test_reference_cpu_and_explain_agree_with_the_oracle(kind, H, I):
    cell = ls.Cell(kind, hidden=H, inputs=I)
    rng = np.random.default_rng(H)
    x = rng.uniform(-1, 1, (9, 13, I)).astype(np.float32)
    params = np.stack([setting(cell, s) for s in range(2)])
    h_ref, c_ref = reference.run(cell, params, x, [8])
    h_cpu, c_cpu = cpu.run(cell, params, x, np.array([8]))
    for p in range(2):
        h_or, c_or = oracle_run(cell, params[p], x)
        np.testing.assert_allclose(h_ref[p, 0], h_or, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(h_cpu[p, 0], h_or, rtol=2e-5, atol=2e-6)
        if cell.memory:
            np.testing.assert_allclose(c_ref[p, 0], c_or, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(c_cpu[p, 0], c_or, rtol=2e-5, atol=2e-6)
    tr = traces(cell, params[0], x)
    assert set(tr) == set(cell.spec.traced) and "h" in tr
    np.testing.assert_allclose(tr["h"][-1], h_ref[0, 0], rtol=1e-12, atol=1e-15)
    if cell.memory:
        np.testing.assert_allclose(tr["c"][-1], c_ref[0, 0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", kinds.BUILTIN)
def test_torch_export_computes_the_same_cell(kind):
    torch = pytest.importorskip("torch")
    cell = ls.Cell(kind, hidden=3)
    params = setting(cell, 7)
    x = np.random.default_rng(0).uniform(-1, 1, (12, 5, 1)).astype(np.float32)
    model = cell.torch_model(params)
    with torch.no_grad():
        seq, _ = model.rnn(torch.from_numpy(x))
    h_ref, _ = reference.run(cell, params[None], x, [11])
    np.testing.assert_allclose(seq.numpy()[-1], h_ref[0, 0], rtol=1e-5, atol=1e-6)
    back, flat = ls.Cell.from_torch(model.rnn, model.readout)
    assert back == cell and np.array_equal(flat, params)


@pytest.mark.parametrize("kind", kinds.BUILTIN)
def test_certify_steps_enclose_the_reference_and_the_kernel(kind):
    """One step over point boxes: the real-arithmetic box holds the float64 reference, the float32
    box holds the cpu kernel's float32 result bit for bit (both derived from the same graph)."""
    cell = ls.Cell(kind, hidden=4)
    rng = np.random.default_rng(3)
    params = setting(cell, 11, scale=2.0)
    K = 64
    h = rng.uniform(-0.9, 0.9, (K, 4)).astype(np.float32)
    if kind in ("rnn_relu", "indrnn"):
        h = np.abs(h)
    c = rng.uniform(-2, 2, (K, 4)).astype(np.float32)
    x = rng.uniform(-1, 1, (K, 1)).astype(np.float32)
    state = {"h": (h.astype(np.float64),) * 2}
    if cell.memory:
        state["c"] = (c.astype(np.float64),) * 2
    w = csteps.weights(cell, params)
    xb = (x.astype(np.float64),) * 2
    real = csteps.step(cell, w, state, xb, "real")
    f32 = csteps.step(cell, w, state, xb, "float32")
    p64 = cell.unflatten(params.astype(np.float64)[None])
    h_ref, c_ref = reference.step(cell, p64, x.astype(np.float64), h[None].astype(np.float64),
                                  c[None].astype(np.float64))
    hs, cs = cpu.run(cell, params[None], x[None], np.array([0]), h0=h[None], c0=c[None] if cell.memory else None)
    for name, ref_v, ker_v in (("h", h_ref[0], hs[0, 0]),) + ((("c", c_ref[0], cs[0, 0]),) if cell.memory else ()):
        lo, hi = real[name]
        assert np.all((lo <= ref_v) & (ref_v <= hi)), f"{kind} {name}: real box misses the reference"
        lo, hi = f32[name]
        assert np.all((lo <= ker_v) & (ker_v <= hi)), f"{kind} {name}: float32 box misses the kernel"
        assert np.all(hi - lo <= 1e-5 * (1 + np.abs(ker_v))), f"{kind} {name}: float32 box is not tight"


def test_a_cell_of_ones_own_runs_everywhere():
    """An Elman cell with the logistic function, defined in a few lines and registered."""
    def update(ops, x, hh, h, c):
        return {"h": ops.sigmoid(x.h + hh.h)}

    mine = CellKind(name="rnn_sigmoid_test", title="Elman cell with sigmoid", gates=("h",),
                    update=update, equations="h_t = sigma(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)")
    cell = ls.Cell(mine, hidden=3)
    assert cell.kind == "rnn_sigmoid_test" and kinds.get("rnn_sigmoid_test") is mine
    params = setting(cell, 2)
    x = np.random.default_rng(0).uniform(-1, 1, (6, 8, 1)).astype(np.float32)
    p = cell.unflatten(params.astype(np.float64))
    h = np.zeros((8, 3))
    for t in range(6):
        h = sig(x[t] @ p["weight_ih_l0"].T + p["bias_ih_l0"] + h @ p["weight_hh_l0"].T + p["bias_hh_l0"])
    h_ref, _ = reference.run(cell, params[None], x, [5])
    h_cpu, _ = cpu.run(cell, params[None], x, np.array([5]))
    np.testing.assert_allclose(h_ref[0, 0], h, rtol=1e-12)
    np.testing.assert_allclose(h_cpu[0, 0], h, rtol=1e-6, atol=1e-7)


def test_bad_definitions_fail_where_they_are_written():
    def branching(ops, x, hh, h, c):
        return {"h": x.h if x.h > 0 else hh.h}

    with pytest.raises(LstmsearchError, match="cannot branch"):
        CellKind(name="bad_branch", title="t", gates=("h",), update=branching, equations="")
    with pytest.raises(LstmsearchError, match="no gate 'q'"):
        CellKind(name="bad_gate", title="t", gates=("h",), update=lambda ops, x, hh, h, c: {"h": x.q}, equations="")
    with pytest.raises(LstmsearchError, match="must return"):
        CellKind(name="bad_out", title="t", gates=("h",), update=lambda ops, x, hh, h, c: x.h, equations="")
    with pytest.raises(LstmsearchError, match="recurrence must be one of"):
        CellKind(name="bad_rec", title="t", gates=("h",), update=lambda ops, x, hh, h, c: {"h": x.h},
                 equations="", recurrence="sparse")
    with pytest.raises(LstmsearchError, match="unknown cell kind 'nope'.*mgu"):
        ls.Cell("nope", hidden=2)


def test_layouts_follow_the_recurrence():
    assert [b.name for b in ls.Cell("mingru", 2).blocks] == ["weight_ih_l0", "bias_ih_l0", "weight_out", "bias_out"]
    assert ls.Cell("indrnn", 3).block("weight_hh_l0").shape == (3,)
    assert ls.Cell("mgu", 2).n_params == 2 * 2 * (1 + 2 + 2) + 2 + 1
    assert ls.Cell("lstm", 2).gate_names == ("i", "f", "g", "o")


def test_concepts_page_shows_every_kind_as_defined():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text()
    shown = page.split("<!-- kinds:begin -->\n")[1].split("<!-- kinds:end -->")[0]
    assert shown == kinds.markdown(), "docs/concepts.md is stale: paste lstmsearch.kinds.markdown() between the markers"
    for name in kinds.BUILTIN:
        assert f"| `{name}` |" in shown and kinds.get(name).equations.strip() in shown
