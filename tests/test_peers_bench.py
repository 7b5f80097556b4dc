"""benchmarks/peers_time_to_solution.py without jax: its arguments, and its problem definition (the
NumPy path of the function the JAX contenders jit) against :func:`lstmsearch.evaluate`."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lstmsearch import evaluate

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("peers_time_to_solution",
                                                  ROOT / "benchmarks" / "peers_time_to_solution.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_arguments():
    pt = _script()
    a = pt.parse_args(["--cells", "gru", "--hidden", "8,32", "--seeds", "0,3", "--contenders", "lstmsearch,evosax"])
    assert (a.cells, a.hidden, a.seeds, a.contenders) == (["gru"], [8, 32], [0, 3], ["lstmsearch", "evosax"])
    assert a.threads == 2 and a.popsize == 1024
    for bad in (["--cells", "rnn_tanh"], ["--contenders", "torch"], ["--max-settings", "10"]):
        with pytest.raises(SystemExit):
            pt.parse_args(bad)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_problem_matches_evaluate(cell):
    pt = _script()
    cfg = pt.study(cell, 4, seed=5, popsize=16)
    assert (cfg.cell.hidden, cfg.strategy["seed"], cfg.strategy["popsize"], cfg.eval.seed) == (4, 5, 16, 0)
    assert list(cfg.task.scored_lengths) == [20, 21] and cfg.space_obj.dim == cfg.cell.n_recurrent
    x, y_tr, y_te = pt.sequences(cfg)
    assert x.shape == (21, 256, 1) and y_tr.shape == y_te.shape == (256,)
    d = cfg.cell.n_recurrent
    z = np.random.default_rng(1).uniform(-2, 2, (6, d)).astype(np.float32).astype(np.float64)
    ours = pt.population_nmse(np, cell, 4, z, x.astype(np.float64), [19, 20], y_tr, y_te, 128,
                              cfg.task.baseline)
    full = np.zeros((6, cfg.cell.n_params), np.float32)
    full[:, :d] = z
    ref = evaluate(cfg.cell, full, cfg.task, n_sequences=128, n_heldout=128, seed=0, backend="reference")
    np.testing.assert_allclose(ours, ref.column("nmse").to_numpy(), rtol=1e-4)
    assert np.all(pt.objective_of(np, np.array([1e-8, np.inf])) == np.array([-8.0, 6.0]))


def test_without_jax_says_how_to_install(monkeypatch, capsys):
    pt = _script()
    monkeypatch.setitem(__import__("sys").modules, "jax", None)  # as if jax were not installed
    monkeypatch.setattr(pt, "set_threads", lambda n: "")
    assert pt.main(["--contenders", "evosax", "--out", "unused.md"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['this benchmark needs jax and evosax: pip install -e ".[bench]"']


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("H", [1, 3])
def test_every_formulation_matches_the_reference(cell, H):
    """Each way the benchmark writes the JAX recurrence (run here in NumPy, float32) agrees with the
    reference within the tolerance the benchmark accepts; one with two gates swapped does not."""
    pt = _script()
    params, x, steps = pt.workload(cell, H, 12, B=16, T=21)
    members = np.arange(12)
    for form in pt.forms(H):
        states = np.stack(pt.recurrence(np, form, cell, H, params, x, steps), 1)   # (P, S, B, H)
        assert states.dtype == np.float32 and states.shape == (12, 2, 16, H)
        assert pt.check_states(cell, H, params, x, steps, states, members) <= pt.CHECK_TOL, form
    G = 4 if cell == "lstm" else 3
    swapped = params.copy()      # the first two gates' rows swapped in every block: a wrong gate order
    for start, width in ((0, 1), (G * H, H), (G * H + G * H * H, 1), (2 * G * H + G * H * H, 1)):
        blk = swapped[:, start:start + G * H * width].reshape(12, G, H * width)
        blk[:, [0, 1]] = blk[:, [1, 0]]
        swapped[:, start:start + G * H * width] = blk.reshape(12, -1)
    wrong = np.stack(pt.recurrence(np, pt.BEST_GUESS, cell, H, swapped, x, steps), 1)
    assert pt.check_states(cell, H, params, x, steps, wrong, members) > 100 * pt.CHECK_TOL


def test_flops_per_cell_step():
    pt = _script()
    assert pt.flops_per_cell_step("lstm", 32) == 8 * 32 * 33 + 21 * 32
    assert pt.flops_per_cell_step("gru", 8) == 6 * 8 * 9 + 17 * 8
