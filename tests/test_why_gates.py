"""Why gates: the NIG/NFG/NOG spaces hold their gate at 1; the committed study files are the
generator's output; a tiny grid run writes the table and the plot."""

import sys
from pathlib import Path

import numpy as np
import pytest

from lstmsearch import make_task
from lstmsearch.anchors import why_gates as wg
from lstmsearch.analysis.explain import traces
from lstmsearch.config import load_study, parse_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("variant,gate", [("lstm_nig", "i"), ("lstm_nfg", "f"), ("lstm_nog", "o")])
def test_held_gate_is_one_for_random_settings_of_the_space(variant, gate):
    cfg = parse_study(wg.study_text(variant, 10))
    space = cfg.space_obj
    assert space.dim == 9  # 12 gate-tied dimensions of the LSTM space minus the held gate's 3
    rng = np.random.default_rng(1)
    z = rng.uniform(space.low, space.high, size=(4, space.dim))
    params = space.to_params(z)
    # the region jitter perturbs free weights only: the held gate's weights are not free
    rows = cfg.cell.gate_rows(gate)
    blocks = cfg.cell.unflatten(params)
    assert not space.free_mask()[cfg.cell.block("bias_ih_l0").start + rows.start]
    np.testing.assert_array_equal(blocks["bias_ih_l0"][:, rows], wg.HELD_BIAS)
    x, _ = make_task("recall_first", length=30).sample(16, seed=3)
    x = x * 5.0  # inputs well outside [-1, 1] too: the gate must not depend on them
    for p in params:
        tr = traces(cfg.cell, p, x)
        assert np.max(np.abs(tr[gate] - 1.0)) < 1e-6
        others = [g for g in "ifo" if g != gate]
        assert any(np.max(np.abs(tr[g] - 1.0)) > 1e-3 for g in others)  # the other gates do move


def test_full_lstm_space_keeps_every_gate_free():
    cfg = parse_study(wg.study_text("lstm", 10))
    assert cfg.space_obj.dim == 12
    assert parse_study(wg.study_text("gru", 10)).space_obj.dim == 9
    assert parse_study(wg.study_text("rnn_tanh", 10)).space_obj.dim == 3
    # the newer cells: no recurrent weight (minGRU, minLSTM), an element-wise one (IndRNN: its diagonal)
    dims = {v: parse_study(wg.study_text(v, 10)).space_obj for v in ("mgu", "mingru", "minlstm", "indrnn")}
    assert {v: s.dim for v, s in dims.items()} == {"mgu": 6, "mingru": 4, "minlstm": 6, "indrnn": 3}
    assert "weight_hh.h" in dims["indrnn"].names and not any("weight_hh" in n for n in dims["mingru"].names)


def test_committed_study_files_are_the_generators_output():
    for v in wg.VARIANTS:
        for n in wg.LENGTHS:
            p = ROOT / "studies" / "why_gates" / f"{v}_n{n}.toml"
            assert p.read_text() == wg.study_text(v, n), f"{p} is stale: run python studies/why_gates.py --write"
            cfg = load_study(p)
            # scored at n and n + 1: a setting that only works at even n (or at one n) scores badly
            assert cfg.task.lengths == (n, n + 1) and cfg.cell.hidden == wg.HIDDEN


def test_tiny_grid_run_writes_the_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "studies"))
    import why_gates as script

    studies = tmp_path / "studies"
    wg.write_studies(studies, ["lstm_nig", "rnn_tanh"], [3, 5], budget=64, region=8, sequences=16)
    data = tmp_path / "data"
    assert script.main(["--studies", str(studies), "--data", str(data), "--variants", "lstm_nig,rnn_tanh",
                        "--lengths", "3,5"]) == 0
    md = (data / "table.md").read_text()
    assert "LSTM NIG (input gate = 1)" in md and "RNN (tanh, no gates)" in md and "n = 5" in md
    import pyarrow.csv as pacsv

    t = pacsv.read_csv(data / "table.csv")
    assert t.num_rows == 4
    assert t.column("settings").to_pylist() == [64] * 4
    # the table's best nmse is the minimum over the study's stored rows
    from lstmsearch import load_results

    best = load_results(data / "why_gates_rnn_tanh_n5", columns=["nmse"]).column("nmse").to_numpy().min()
    row = [r for r in t.to_pylist() if r["variant"] == "rnn_tanh" and r["length"] == 5][0]
    assert row["nmse"] == pytest.approx(best, rel=1e-12)
    # solved means solved at every checked length with the stored readout, not under 1e-5 at n
    from lstmsearch.analysis.verdict import SHORT, row_verdicts

    v = row_verdicts(data / "why_gates_rnn_tanh_n5", [row["best_row"]])[row["best_row"]]
    assert row["solved"] == v.solved and row["verdict"] == SHORT[v.status]
    assert not row["solved"] or best < 1e-5
    assert (data / "why_gates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
