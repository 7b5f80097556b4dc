"""Analysis: constructions within their stated bounds, length curves, traces, ablation,
pruning and plots — each checked against the simulator or a closed form."""

import numpy as np
import pytest

from lstmsearch import Cell, evaluate, make_task, simulate
from lstmsearch.analysis.constructions import construct, error_bound
from lstmsearch.analysis.explain import ablate, prune, traces, unit_roles
from lstmsearch.analysis.length import length_curve


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_relu", "rnn_tanh"])
@pytest.mark.parametrize("length", [10, 1000, 100000])
def test_constructions_within_their_bounds(kind, length):
    """max |y - x_1| of each flag_memory construction stays within its docstring bound."""
    hidden = {"lstm": 2, "gru": 2, "rnn_relu": 3, "rnn_tanh": 4}[kind]
    cell, p = construct(kind, hidden)
    B = 4 if length == 100000 else 64
    table = evaluate(cell, p[None], make_task("recall_first", length=length), n_sequences=B,
                     seed=1, readout="given")
    err = table.column("max_abs_err")[0].as_py()
    bound = error_bound(kind, length)
    # float32 rounding of the stored state adds about one ulp of x_1 times the readout gain
    assert err <= bound + 1e-4, f"{kind} n={length}: max error {err:.3g} above bound {bound:.3g}"
    if kind in ("lstm", "gru"):
        assert table.column("nmse")[0].as_py() < 1e-5


def test_tanh_rnn_bound_grows_with_length():
    """The ungated tanh RNN cannot shut out later inputs: its bound grows with n."""
    assert error_bound("rnn_tanh", 100000) > 10 * error_bound("rnn_tanh", 100)
    assert error_bound("lstm", 100000) < 1e-3


def test_length_curve_matches_evaluate():
    cell, p = construct("gru", 3)
    task = make_task("recall_first", length=20)
    rnd = cell.init(1, seed=3)[0]
    params = np.stack([p, rnd])
    table = length_curve(cell, params, task, factors=(1, 10), readout=("given",), n_sequences=50, seed=2)
    d = table.to_pydict()
    assert sorted(set(d["length"])) == [20, 200]
    for s, L, nmse in zip(d["setting"], d["length"], d["nmse"]):
        want = evaluate(cell, params[s:s + 1], task.with_length(L), n_sequences=50, seed=2,
                        readout="given").column("nmse")[0].as_py()
        assert nmse == pytest.approx(want, rel=1e-3, abs=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_traces_equal_the_reference_trajectory(kind):
    cell = Cell(kind, 3)
    p = cell.init(1, seed=4, method="normal", scale=1.0)
    x = np.random.default_rng(0).uniform(-1, 1, (9, 5, 1)).astype(np.float32)
    tr = traces(cell, p, x)
    seq = simulate(cell, p, x, backend="reference", return_sequence=True)
    h = seq[0][0] if kind == "lstm" else seq[0]
    np.testing.assert_allclose(tr["h"], h, atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(tr["c"], seq[1][0], atol=1e-12)
        np.testing.assert_allclose(tr["h"], tr["o"] * np.tanh(tr["c"]), atol=1e-12)
        assert tr["i"].min() >= 0 and tr["i"].max() <= 1


def test_roles_ablation_and_pruning_find_flag_and_memory():
    cell, p = construct("lstm", 4)  # unit 0 flag, unit 1 memory, units 2-3 silent
    task = make_task("recall_first", length=15)
    x, _ = task.sample(32, seed=0)
    roles = unit_roles(traces(cell, p[None], x)["h"], x)
    assert "flag" in roles[0] and "memory" in roles[1]
    tab = ablate(cell, p[None], task, n_sequences=64)
    delta = dict(zip(tab.column("unit").to_pylist(), tab.column("delta_nmse").to_pylist()))
    assert delta[1] > 0.5 and delta[0] > 0.5  # silencing flag or memory breaks recall
    assert abs(delta[2]) < 1e-9 and abs(delta[3]) < 1e-9  # silent units do not matter
    pr = prune(cell, p[None], task, n_sequences=64)
    assert len(pr.kept) <= np.count_nonzero(p)
    assert pr.nmse <= pr.max_nmse and pr.check_nmse < 1e-5
    again = evaluate(cell, pr.params[None], task, n_sequences=64, seed=0, readout="given")
    assert again.column("nmse")[0].as_py() == pytest.approx(pr.nmse, rel=1e-3, abs=1e-12)


def test_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from lstmsearch.analysis import plots

    cell, p = construct("gru", 2)
    task = make_task("recall_first", length=10)
    curve = length_curve(cell, p[None], task, factors=(1, 2), readout=("given",), n_sequences=16)
    x, _ = task.sample(4, seed=0)
    outs = [
        plots.plot_length_curve(curve, tmp_path / "len.png"),
        plots.plot_best_so_far(np.array([3.0, 1.0, 2.0, 0.5]), tmp_path / "best.png"),
        plots.plot_traces(traces(cell, p[None], x), tmp_path / "tr.png"),
        plots.plot_nmse_hist(np.array([0.1, 1.0, 1e-6, 0.5]), tmp_path / "hist.png"),
    ]
    for name in ("len.png", "best.png", "tr.png", "hist.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    np.testing.assert_array_equal(plots.best_so_far([3.0, 1.0, 2.0, 0.5]), [3.0, 1.0, 1.0, 0.5])
    assert outs is not None
