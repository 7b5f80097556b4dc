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
