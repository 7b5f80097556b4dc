"""Solved means solved: the verdict of the shipped rows and of a construction at odd and long
lengths, each per-length number checked against evaluate(readout="given") run here directly,
and the float64 / PyTorch precision check."""

from pathlib import Path

import numpy as np
import pytest

from lstmsearch import evaluate, make_task
from lstmsearch.analysis.constructions import construct
from lstmsearch.analysis.verdict import (ALL, CHECK_SEQUENCES, FRESH_SEED, N_ONLY, NONE, SOME, PrecisionCheck,
                                         check_lengths, precision_check, row_verdicts, verdict)
from lstmsearch.reproduction import row_setting

EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "v1"  # the first release: a parity exploit, a solved LSTM
LSTM, RNN = EXAMPLES / "recall_first_lstm32", EXAMPLES / "recall_first_rnn32"
SEQ = 128


def _oracle(cfg, setting, lengths, n_sequences=SEQ, backend="cpu"):
    """nmse at each length by evaluate(readout="given"): the public scoring path, not the verdict's."""
    return [evaluate(cfg.cell, setting[None], cfg.task.with_length(L), n_sequences=n_sequences, seed=FRESH_SEED,
                     backend=backend, readout="given").column("nmse")[0].as_py() for L in lengths]


def test_check_lengths_are_odd_and_long():
    assert check_lengths(20) == [20, 21, 41, 203, 2003]
    for n in (2, 3, 5, 7, 10, 33):
        L = check_lengths(n)
        assert L[0] == n and len(L) == 5 and L == sorted(L)
        assert all(x % n for x in L[1:]), (n, L)  # none of the others is a multiple of n
        assert L[3] >= 10 * n and L[4] >= 100 * n
    assert check_lengths(3) == [3, 4, 7, 34, 304]  # 10n + 3 = 33 is a multiple of 3: raised to 34
    assert check_lengths(1) == [1, 2, 3, 13, 103]


def test_shipped_rnn_row_is_not_solved_and_fails_off_multiples():
    """Row 32586: nmse ~0.014 at n = 20 but ~4 at 21, 41, 203, 2003 (it decodes even steps only)."""
    v = row_verdicts(RNN, [32586], n_sequences=SEQ)[32586]
    assert v.status == NONE and not v.solved and v.lengths == (20, 21, 41, 203, 2003)
    assert 1e-3 < v.nmse[0] < 0.05 and all(e > 1.0 for e in v.nmse[1:])
    cfg, _, setting = row_setting(RNN, 32586)
    np.testing.assert_allclose(v.nmse, _oracle(cfg, setting, v.lengths), rtol=1e-5)
    # with a threshold it meets at n (0.1) it is "solved at n only": never at an odd or long length
    loose = verdict(cfg.cell, setting, cfg.task, 0.1, n_sequences=SEQ)
    assert loose.status == N_ONLY and loose.failing == [21, 41, 203, 2003] and "solved at n = 20 only" in loose.text


def test_shipped_lstm_row_is_solved_at_every_checked_length():
    v = row_verdicts(LSTM, [27457], n_sequences=SEQ)[27457]
    assert v.status == ALL and v.solved and v.short == "every length"
    cfg, _, setting = row_setting(LSTM, 27457)
    assert v.threshold == cfg.eval.solved
    oracle = _oracle(cfg, setting, v.lengths)
    np.testing.assert_allclose(v.nmse, oracle, rtol=1e-4)
    assert max(oracle) < cfg.eval.solved


def test_construction_is_solved_at_every_length():
    task = make_task("recall_first", length=20)
    cell, p = construct("lstm", 2)
    v = verdict(cell, p, task, 1e-5, n_sequences=64)
    assert v.status == ALL and max(v.nmse) < 1e-5
    np.testing.assert_allclose(
        v.nmse, [evaluate(cell, p[None], task.with_length(L), n_sequences=64, seed=FRESH_SEED,
                          readout="given").column("nmse")[0].as_py() for L in v.lengths], rtol=1e-4)


def test_some_lengths_and_defaults():
    """The tanh relay with a large gain decays with length: solved up to 10n+3, not at 100n+3."""
    task = make_task("recall_first", length=10)
    cell, p = construct("rnn_tanh", 4, gain=1e-2)
    v = verdict(cell, p, task, 1e-5, n_sequences=32)
    assert v.n_sequences == 32 and v.seed == FRESH_SEED and v.backend == "cpu" and CHECK_SEQUENCES == 1024
    assert v.status == SOME and v.failing == [1003] and v.nmse[0] < 1e-5 < v.nmse[-1]
    assert v.text.startswith("solved at 10, 11, 21, 103 only: fails at 1003")
    assert v.as_dict()["lengths"] == [10, 11, 21, 103, 1003]


def test_precision_float64_of_the_lstm_row_at_a_long_length():
    cfg, _, setting = row_setting(LSTM, 27457)
    pc = precision_check(cfg.cell, setting, cfg.task, cfg.eval.solved, n_sequences=64)
    assert pc.length == 2003
    ref = _oracle(cfg, setting, [2003], 64, backend="reference")[0]  # float64 by evaluate(), independently
    assert pc.float64 == pytest.approx(ref, rel=1e-6)
    assert np.isfinite(pc.float64) and pc.float64 < cfg.eval.solved and pc.float32 < cfg.eval.solved
    assert not pc.saturation and not pc.torch_drift
    if pc.torch_skipped is None:  # torch is a test dependency, but optional for users
        assert pc.torch < cfg.eval.solved


def test_precision_without_torch_says_so_in_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    cfg, _, setting = row_setting(RNN, 32586)
    pc = precision_check(cfg.cell, setting, cfg.task, cfg.eval.solved, n_sequences=16)
    assert pc.torch is None and "\n" not in pc.torch_skipped
    assert pc.torch_skipped.startswith("PyTorch check skipped") and "lstmsearch[torch]" in pc.torch_skipped


def test_precision_flags():
    sat = PrecisionCheck(length=2003, threshold=1e-5, n_sequences=8, float32=1e-9, float64=0.5, torch=1e-9)
    assert sat.saturation and not sat.torch_drift
    drift = PrecisionCheck(length=2003, threshold=1e-5, n_sequences=8, float32=1e-9, float64=1e-9, torch=0.2)
    assert drift.torch_drift and not drift.saturation
    both_bad = PrecisionCheck(length=2003, threshold=1e-5, n_sequences=8, float32=2.0, float64=2.0, torch=2.0)
    assert not both_bad.saturation and not both_bad.torch_drift


# ---- reproduce: odd and long lengths by default, the verdict, float64 and PyTorch
def test_reproduce_checks_odd_and_long_lengths_by_default():
    from lstmsearch.reproduction import format_reproduction, reproduce

    rep = reproduce(RNN, 32586, n_sequences=64)
    assert [f["length"] for f in rep["fresh"]] == [20, 21, 41, 203, 2003]
    assert rep["verdict"]["status"] == NONE and rep["verdict"]["n_sequences"] == 64
    assert all(f["nmse"] > 1.0 for f in rep["fresh"][1:])  # ~4 at every odd length
    np.testing.assert_allclose([f["nmse"] for f in rep["fresh"]], rep["verdict"]["nmse"], rtol=1e-5)
    pc = rep["precision"]
    assert pc["length"] == 2003 and pc["float64"] > 1.0 and not pc["saturation"]
    text = "\n".join(format_reproduction(rep))
    assert "verdict: not solved" in text and "float64, reference backend" in text
    assert reproduce(RNN, 32586, factors=(1,), n_sequences=8, check=False)["verdict"] is None


def test_reproduce_cli_says_the_verdict_and_the_precision(capsys):
    from lstmsearch.cli.main import main

    assert main(["reproduce", str(LSTM), "best", "--sequences", "32"]) == 0
    out = capsys.readouterr().out
    assert "verdict: solved at every checked length (20, 21, 41, 203, 2003)" in out
    assert "precision at length 2003" in out and "float64, reference backend" in out
    assert ("nn.LSTM, float32" in out) or ("PyTorch check skipped" in out)
    lengths = [int(ln.split()[0]) for ln in out.split("readout as stored:")[1].splitlines()[2:]]
    assert lengths == [20, 21, 41, 203, 2003]


def test_format_names_saturation_and_drift():
    from lstmsearch.reproduction import format_reproduction

    pc = PrecisionCheck(length=2003, threshold=1e-5, n_sequences=8, float32=1e-9, float64=0.5, torch=0.3,
                        torch_version="2.x", cell="gru")
    pc.notes.append("depends on float32 saturation: ...")
    pc.notes.append("drifts under PyTorch's kernels: ...")
    rep = {"study": "s", "row": 1, "cell": "gru", "hidden": 2, "backend": "cpu", "task": "t", "seed": 0,
           "stored": {}, "same": {}, "identical": True, "fresh_seed": FRESH_SEED, "fresh": [],
           "verdict": None, "precision": pc.as_dict()}
    text = "\n".join(format_reproduction(rep))
    assert "NOTE: depends on float32 saturation" in text and "NOTE: drifts under PyTorch's kernels" in text
    assert "agree with float32" not in text


# ---- top, report and the run summary say which rows are solved at every checked length
def test_top_has_a_solved_column(capsys):
    from lstmsearch.cli.main import main

    assert main(["top", str(RNN), "-k", "2"]) == 0
    out, err = capsys.readouterr()
    head, *rows = out.splitlines()
    assert head.split()[-1] == "solved" and len(rows) == 2 and all(r.split()[-1] == "no" for r in rows)
    assert "n, n+1" not in err and "20, 21, 41, 203, 2003" in err and "--no-check" in err
    assert main(["top", str(LSTM), "-k", "3"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [" ".join(r.split()[-2:]) for r in rows] == ["every length"] * 3
    assert main(["top", str(LSTM), "-k", "1", "--no-check"]) == 0
    assert "solved" not in capsys.readouterr().out


def test_report_leads_with_the_verdict(tmp_path):
    from lstmsearch.report import build_report

    rep = build_report([LSTM, RNN], out=tmp_path, top=2, n_sequences=16, plots=False, max_refine=8,
                       certificates=False)
    text = rep.text
    # the page leads with the answer table: per cell, solved at every checked length or not
    lines = text.splitlines()
    assert lines.index(next(ln for ln in lines if ln.startswith("## Answer"))) < \
        lines.index(next(ln for ln in lines if ln.startswith("## Studies")))
    assert next(ln for ln in lines if ln.startswith("| lstm H=32 |")).split(" | ")[2] == "yes"
    assert next(ln for ln in lines if ln.startswith("| rnn_tanh H=32 |")).split(" | ")[2].startswith("no")
    head = next(ln for ln in text.splitlines() if ln.startswith("| study | cell | H |"))
    assert head.rstrip(" |").endswith("verdict (best row)")
    assert "| recall_first_lstm32 |" in text and ALL in next(ln for ln in text.splitlines()
                                                           if ln.startswith("| recall_first_lstm32 | lstm | 32"))
    solved = next(ln for ln in text.splitlines() if ln.startswith("Solved at every checked length"))
    assert "(recall_first_lstm32)" in solved and "Not solved: rnn_tanh H=32 (recall_first_rnn32)" in solved
    section = text.split("## Study recall_first_rnn32")[1].split("\n\n")
    assert section[1].startswith("Verdict: best row 32586 not solved")
    assert [s.verdict.status for s in rep.summaries] == [ALL, NONE]
    # the length table uses the checked lengths by default
    assert "| nmse n=20 | nmse n=21 | nmse n=41 | nmse n=203 | nmse n=2003 |" in text


def test_run_summary_has_the_best_rows_verdict(tmp_path):
    from lstmsearch import run_study

    root = Path(__file__).resolve().parents[1]
    text = (root / "studies" / "quickstart.toml").read_text()
    text = text.replace("sequences = 256", "sequences = 32").replace("heldout = 256", "heldout = 32")
    text = text.replace("settings = 32768", "settings = 256")
    p = tmp_path / "q.toml"
    p.write_text(text)
    r = run_study(p, out=tmp_path / "q")
    line = next(ln for ln in r.lines() if ln.startswith("verdict"))
    v = row_verdicts(tmp_path / "q", [r.best_row])[r.best_row]
    assert line.startswith(f"verdict  row {r.best_row}: {v.text}") and f"{CHECK_SEQUENCES} fresh sequences" in line
