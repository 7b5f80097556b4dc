"""Weight guessing: counts, reproducibility, regenerated solutions checked with the reference backend."""

import numpy as np
import pytest

from lstmsearch import Cell, LstmsearchError
from lstmsearch.anchors.guessing import GuessResult, TrainingSet, draw_settings, guess
from lstmsearch.cli import main
from lstmsearch.readout import apply

SMALL = dict(lengths=(20, 30), per_length=8)


def reference_correct(cell, setting, data, tol):
    """Independent check: float64 reference backend, |y_hat - y| < tol on every training sequence."""
    from lstmsearch.evaluate import simulate

    ok = []
    for x, y in data.train:
        h = simulate(cell, setting[None].astype(np.float32), x, backend="reference")
        h = h[0] if cell.kind == "lstm" else h
        pred = apply(h, setting[None, cell.n_recurrent:], 1)[0, :, 0]
        ok.append(np.abs(pred - y[0, :, 0]) < tol)
    return np.concatenate(ok)


def test_draws_are_regenerable_from_seed_run_index():
    cell = Cell("gru", 2)
    whole = draw_settings(cell, 3, 5, 0, 2500)
    np.testing.assert_array_equal(whole[1500:2100], draw_settings(cell, 3, 5, 1500, 2100))
    assert whole.min() >= -100 and whole.max() <= 100 and whole.std() > 50
    assert not np.array_equal(whole[:10], draw_settings(cell, 3, 6, 0, 10))
    z = draw_settings(cell, 3, 5, 0, 10, zero=("bias_hh_l0",))
    assert np.all(z[:, cell.block("bias_hh_l0").slice] == 0)
    np.testing.assert_array_equal(z[:, :cell.block("bias_hh_l0").start], whole[:10, :cell.block("bias_hh_l0").start])


def test_every_draw_solves_with_a_huge_tolerance():
    r = guess(Cell("rnn_tanh", 2), "latch", runs=6, tol=1e6, readout="given", **SMALL)
    np.testing.assert_array_equal(r.draws, np.ones(6))
    assert r.solved.all() and r.stats()["mean"] == 1.0


@pytest.mark.parametrize("kind,readout,criterion", [
    ("rnn_tanh", "unit", "abs"),
    ("lstm", "given", "class"),
    ("gru", "fit", "abs"),
])
def test_counts_are_first_solving_draws_and_reproducible(kind, readout, criterion):
    cell = Cell(kind, 1)
    kw = dict(runs=4, seed=7, readout=readout, criterion=criterion, max_draws=3000, **SMALL)
    r = guess(cell, "latch", first_batch=16, **kw)
    again = guess(cell, "latch", first_batch=5, max_population=50, **kw)  # other batch sizes, same counts
    np.testing.assert_array_equal(r.draws, again.draws)
    assert r.solved.any()
    data = TrainingSet.make("latch", **SMALL)
    thr = data.task.threshold()
    for run in np.flatnonzero(r.solved):
        setting = r.setting(run)
        if criterion == "abs":
            assert reference_correct(cell, setting, data, r.tol).all()
        else:
            from lstmsearch.evaluate import simulate
            for x, y in data.train:
                h = simulate(cell, setting[None], x, backend="reference")[0]
                pred = apply(h, setting[None, cell.n_recurrent:], 1)[0, :, 0]
                np.testing.assert_array_equal(pred > thr, y[0, :, 0] > thr)
    if readout != "fit":  # every earlier draw of a run fails, checked draw by draw with the reference backend
        run = int(np.flatnonzero(r.solved)[0])
        n = int(r.draws[run])
        earlier = draw_settings(cell, 7, run, 0, n - 1)
        if readout == "unit":
            earlier[:, cell.n_recurrent:] = 0
            earlier[:, cell.n_recurrent] = 1
        for p in earlier[:200]:
            if criterion == "abs":
                assert not reference_correct(cell, p, data, r.tol).all()


def test_capped_runs_and_censored_mean():
    r = guess(Cell("rnn_tanh", 1), "parity", runs=3, readout="given", tol=1e-6, max_draws=50, **SMALL)
    assert not r.solved.any() and np.all(r.draws == 50)
    s = r.stats()
    assert s["capped"] == 3 and s["rate_mean"] == float("inf")
    with pytest.raises(LstmsearchError, match="capped"):
        r.setting(0)
    fake = GuessResult(Cell("rnn_tanh", 1), "latch", "given", "abs", 0.1, 0, 100.0, 100,
                       np.array([3, 100, 5]), np.array([True, False, True]), np.zeros((3, 2), np.float32),
                       np.array([1.0, np.nan, 1.0]))
    s = fake.stats()
    assert s["mean"] == 4.0 and s["median"] == 4.0 and s["rate_mean"] == 108 / 2
    assert s["sem"] == pytest.approx(np.std([3, 5], ddof=1) / np.sqrt(2))


def test_bad_input():
    with pytest.raises(LstmsearchError, match="weight guessing takes"):
        guess(Cell("rnn_tanh", 1), "adding", runs=2)
    with pytest.raises(LstmsearchError, match="readout"):
        guess(Cell("rnn_tanh", 1), "latch", runs=2, readout="torch", **SMALL)
    with pytest.raises(LstmsearchError, match="unknown block"):
        guess(Cell("rnn_tanh", 1), "latch", runs=2, zero=("bias_xx",), **SMALL)


def test_guess_command(capsys):
    assert main(["guess", "--cell", "rnn_tanh", "--task", "latch,parity", "--runs", "3", "--lengths", "20,30",
                 "--per-length", "8", "--mode", "unit:abs,fit:abs", "--max-draws", "2000"]) == 0
    out = capsys.readouterr().out
    assert "published mean" in out and out.count("rnn_tanh") == 4
    assert main(["guess", "--mode", "given:maybe"]) == 2
    assert "readout:criterion" in capsys.readouterr().err


def test_noise_variance_option_reaches_the_task(capsys):
    """--noise-var sets the latch's noise: the counts equal guess(..., noise_var=...) and
    differ from the default noise; parity (no noise) is refused before any work."""
    args = ["guess", "--cell", "rnn_tanh", "--task", "latch", "--runs", "4", "--lengths", "20,30",
            "--per-length", "8", "--mode", "unit:abs", "--max-draws", "3000", "--zero", "bias_hh_l0"]
    assert main(args + ["--noise-var", "3.0"]) == 0
    out = capsys.readouterr().out
    assert "noise variance 3" in out
    want = guess(Cell("rnn_tanh", 1), "latch", runs=4, readout="unit", criterion="abs", max_draws=3000,
                 zero=("bias_hh_l0",), noise_var=3.0, **SMALL)
    default = guess(Cell("rnn_tanh", 1), "latch", runs=4, readout="unit", criterion="abs", max_draws=3000,
                    zero=("bias_hh_l0",), **SMALL)
    row = [line for line in out.splitlines() if line.startswith("rnn_tanh")][0]
    assert f"{want.stats()['mean']:.1f}" in row
    assert list(want.draws) != list(default.draws)
    assert main(args[:4] + ["latch,parity", "--noise-var", "0.01"]) == 2
    assert "--noise-var applies to latch and two_sequence" in capsys.readouterr().err
