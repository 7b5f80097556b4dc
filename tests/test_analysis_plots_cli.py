"""Plots write PNGs from tables/arrays; the construct/lengths/explain sub-commands work end to end."""

import argparse

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from lstmsearch import make_task  # noqa: E402
from lstmsearch.analysis import plots  # noqa: E402
from lstmsearch.cli.analysis import add_commands  # noqa: E402
from lstmsearch.analysis.constructions import construct  # noqa: E402
from lstmsearch.analysis.explain import traces  # noqa: E402
from lstmsearch.analysis.length import length_curve  # noqa: E402
from lstmsearch.errors import LstmsearchError  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def test_best_so_far():
    np.testing.assert_array_equal(plots.best_so_far([3, np.nan, 2, 5, 1]), [3, 3, 2, 2, 1])


def test_plots_write_png(tmp_path):
    cell, p = construct("gru", 2)
    task = make_task("recall_first", length=5)
    t = length_curve(cell, p, task, factors=(1, 2, 10), n_sequences=8)
    assert is_png(plots.plot_length_curve(t, tmp_path / "len.png", labels={0: "gru"}))
    x, _ = task.sample(4, seed=0)
    assert is_png(plots.plot_traces(traces(cell, p, x), tmp_path / "tr.png", names=["flag", "memory"]))
    rng = np.random.default_rng(0)
    v = 10 ** rng.uniform(-6, 0, 500)
    v[:3] = [np.inf, np.nan, 0.0]
    assert is_png(plots.plot_nmse_hist(v, tmp_path / "hist.png", solved=1e-3))
    table = {"nmse": v, "strategy": np.repeat(["optuna", "sweep"], 250), "trial": np.arange(500)}
    assert is_png(plots.plot_best_so_far(table, tmp_path / "best.png", groups="strategy", order="trial"))
    assert is_png(plots.plot_best_so_far(v, tmp_path / "best2.png"))
    with pytest.raises(LstmsearchError, match="needs a column 'length'"):
        plots.plot_length_curve({"nmse": v}, tmp_path / "x.png")


def run(argv):
    parser = argparse.ArgumentParser(prog="lstmsearch")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_construct_lengths_explain(tmp_path, capsys):
    out = tmp_path / "tanh.npz"
    assert run(["construct", "rnn_tanh", "--hidden", "5", "--lengths", "10,1000", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "h[memory] <- h[memory]" in text and "bound" in text and out.is_file()
    data = np.load(out)
    assert str(data["kind"]) == "rnn_tanh" and int(data["hidden"]) == 5
    assert run(["lengths", "--npz", str(out), "--length", "10", "--factors", "1,10",
                "--plot", str(tmp_path / "l.png"), "--out", str(tmp_path / "l.parquet")]) == 0
    text = capsys.readouterr().out
    assert "n=100" in text and is_png(tmp_path / "l.png") and (tmp_path / "l.parquet").is_file()
    assert run(["explain", "--cell", "lstm", "--hidden", "4", "--length", "8", "--sequences", "32",
                "--plot", str(tmp_path / "t.png")]) == 0
    text = capsys.readouterr().out
    assert "flag: constant" in text and "memory: correlates with x_1" in text and is_png(tmp_path / "t.png")


@pytest.mark.parametrize("argv,message", [
    (["explain", "--npz", "/nonexistent.npz"], "no such file"),
    (["construct", "lstm", "--cell", "gru"], "cell given twice"),
    (["lengths", "--cell", "gru", "--hidden", "2", "--factors", "1,x"], "--factors must be a comma-separated list"),
    (["construct", "rnn_relu", "--hidden", "3", "--big", "1"], "needs 0 < input_range < big / 2"),
])
def test_cli_errors(argv, message):
    with pytest.raises(LstmsearchError, match=message):
        run(argv)


def test_npz_with_wrong_size(tmp_path):
    np.savez(tmp_path / "bad.npz", params=np.zeros(7, np.float32), kind="gru", hidden=2)
    with pytest.raises(LstmsearchError, match="params have 7 columns"):
        run(["explain", "--npz", str(tmp_path / "bad.npz")])
