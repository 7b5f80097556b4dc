"""The smallest network that remembers: the committed study files are the generator's output,
the step size is what the module says, and a tiny grid's table agrees with its stores, with
"solved" taken from the verdict (not from nmse at the trained lengths)."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from lstmsearch.analysis import constructions
from lstmsearch.cells import Cell
from lstmsearch.anchors import smallest as sm
from lstmsearch.config import load_study, parse_study
from lstmsearch.query import open_study

ROOT = Path(__file__).resolve().parents[1]
verdict_mod = importlib.import_module("lstmsearch.analysis.verdict")  # the package exports a function of that name


def test_committed_study_files_are_the_generators_output():
    paths = sorted((ROOT / "studies" / "smallest").glob("*.toml"))
    assert len(paths) == sum(len(sm.CELLS_BY_TASK[t]) for t in sm.TASKS) * sm.CAP * len(sm.SEEDS)
    for t in sm.TASKS:
        for k in sm.CELLS_BY_TASK[t]:
            for h in range(1, sm.CAP + 1):
                for s in sm.SEEDS:
                    p = sm.study_file(ROOT / "studies" / "smallest", t, k, h, s)
                    assert p.read_text() == sm.study_text(t, k, h, s), \
                        f"{p} is stale: run python studies/smallest.py --write"
    cfg = load_study(sm.study_file(ROOT / "studies" / "smallest", "recall_lag", "gru", 3, 2))
    assert cfg.task.lengths == (20, 21) and cfg.task.lag == 5 and cfg.cell.hidden == 3
    assert cfg.strategy["seed"] == 2 and cfg.strategy["restarts"] == "ipop"


def test_blind_space_is_every_weight_with_the_stated_bounds_and_step():
    for task in sm.TASKS:
        for kind in sm.CELLS_BY_TASK[task]:
            for h in (1, 4, 6):
                cfg = parse_study(sm.study_text(task, kind, h))
                space = cfg.space_obj
                assert space.dim == cfg.cell.n_params - cfg.cell.n_readout  # nothing tied, nothing fixed
                w, b = sm.BOUNDS[sm.regime(task, kind)]
                bias = np.zeros(cfg.cell.n_params, bool)
                for blk in cfg.cell.blocks:  # minGRU, minLSTM: no bias_hh_l0
                    if blk.name in ("bias_ih_l0", "bias_hh_l0"):
                        bias[blk.start:blk.start + blk.size] = True
                bias = bias[:space.dim]
                assert np.all(space.high[~bias] == w) and np.all(space.high[bias] == b)
                step = cfg.strategy["sigma"] * np.mean(space.high - space.low)
                assert abs(step - sm.STEP[sm.regime(task, kind)]) < 1e-3 * step
                assert cfg.strategy["variant"] == ("full" if space.dim <= 100 else "sep")
    assert sm.regime("recall_first", "gru") == "wide" and sm.regime("recall_lag", "gru") == "tight"
    # gated = a sigmoid gate in the kind's equations, read from them
    assert [k for k in sm.CELLS if sm.regime("recall_first", k) == "wide"] == ["lstm", "gru", "mgu", "mingru", "minlstm"]


def test_construction_unit_counts_are_solved_by_the_verdict():
    task = parse_study(sm.study_text("recall_first", "lstm", 2)).task
    for kind, units in sm.CONSTRUCTION_UNITS["recall_first"].items():
        if units is None:
            continue
        cell = parse_study(sm.study_text("recall_first", kind, units)).cell
        p = constructions.CONSTRUCTIONS[("flag_memory", kind)](hidden=units)
        assert verdict_mod.verdict(cell, p, task, 1e-5, n_sequences=32).status == verdict_mod.ALL, kind
    lag = parse_study(sm.study_text("recall_lag", "gru", 6)).task
    for kind, units in sm.CONSTRUCTION_UNITS["recall_lag"].items():
        if units is None:
            continue
        cell = parse_study(sm.study_text("recall_lag", kind, units)).cell
        p = constructions.delay_line(units, outputs=6, kind=kind)
        # the delay line's output 5 is x_{n-5}: keep that output's readout row only
        blocks = Cell(kind, units, 1, 6).unflatten(p)
        ro = np.concatenate([blocks["weight_out"][5], blocks["bias_out"][5:6]])
        q = np.concatenate([p[:cell.n_params - cell.n_readout], ro]).astype(np.float32)
        assert verdict_mod.verdict(cell, q, lag, 1e-5, n_sequences=32).status == verdict_mod.ALL, kind
        # one unit fewer holds lags 0..4 only: the output reads nothing
        fewer = constructions.delay_line(units - 1, outputs=6, kind=kind)
        blocks = Cell(kind, units - 1, 1, 6).unflatten(fewer)
        small = parse_study(sm.study_text("recall_lag", kind, units - 1)).cell
        q = np.concatenate([fewer[:small.n_params - small.n_readout], blocks["weight_out"][5],
                            blocks["bias_out"][5:6]]).astype(np.float32)
        assert verdict_mod.verdict(small, q, lag, 1e-5, n_sequences=32).status == verdict_mod.NONE, kind


def _tiny(tmp_path, threshold="1e-5"):
    folder = tmp_path / "studies"
    paths = sm.write_studies(folder, ["recall_first"], ["lstm"], [1, 2], [0], budget=1024, popsize=128)
    for p in paths:  # a loose threshold: many rows are under it at the trained lengths
        p.write_text(p.read_text().replace("solved = 1e-5", f"solved = {threshold}"))
    return folder


def test_tiny_grid_table_agrees_with_the_stores_and_solved_is_the_verdict(tmp_path):
    folder = _tiny(tmp_path, "0.5")
    data = tmp_path / "data"
    runs = sm.run_grid(folder, ["recall_first"], ["lstm"], cap=2, seeds=[0], data_dir=data, chunk=512,
                       max_checks=64, echo=lambda s: None)
    for r in runs.to_pylist():
        cfg, store = open_study(data / sm.study_name(r["task"], r["cell"], r["hidden"], r["seed"]))
        t = store.read(columns=["row", "nmse", "wall_s"])
        nmse = t.column("nmse").to_numpy()
        assert r["settings"] == t.num_rows and r["best_nmse"] == np.nanmin(nmse)
        assert r["dim"] == cfg.space_obj.dim
        cand = np.sort(t.column("row").to_numpy()[nmse < 0.5])
        assert len(cand) > 0  # the loose threshold gives candidates at n
        if r["solved"]:
            row = r["solved_row"]
            assert r["settings_to_solve"] == int(np.sum(t.column("row").to_numpy() <= row))
            upto = pc.less_equal(t.column("row"), row)
            assert r["evaluate_s_to_solve"] == sum(t.filter(upto).column("wall_s").to_pylist())
            before = [int(x) for x in cand[cand < row]][:8]
            vs = verdict_mod.row_verdicts(store.root, [row] + before)
            assert vs[row].status == verdict_mod.ALL
            assert all(vs[b].status != verdict_mod.ALL for b in before)
            assert r["rejected"] == int(np.sum(cand < row))
        else:  # every candidate was checked (at most 64 per chunk) and rejected
            assert r["rejected"] >= min(len(cand), 64)
    again = sm.run_grid(folder, ["recall_first"], ["lstm"], cap=2, seeds=[0], data_dir=data, chunk=512,
                        max_checks=64, echo=lambda s: None)  # a re-read: nothing run, the same table
    assert again.drop(["wall_s"]).equals(runs.drop(["wall_s"]))
    table = sm.smallest_table(runs).to_pylist()
    assert len(table) == 1 and table[0]["construction"] == 2
    solved_h = [r["hidden"] for r in runs.to_pylist() if r["solved"]]
    assert table[0]["smallest"] == (min(solved_h) if solved_h else None)
    assert "| recall-first | LSTM |" in sm.format_table(runs)
    assert ("**solved 1/1**" in sm.format_ladder(runs)) == bool(solved_h)


def test_rows_under_the_threshold_at_n_are_not_solved_when_the_verdict_says_no(tmp_path, monkeypatch):
    folder = _tiny(tmp_path, "0.5")

    def nothing_holds(study, rows, **kw):
        return {int(r): verdict_mod.Verdict(status=verdict_mod.N_ONLY, n=20, lengths=(20,), nmse=(0.0,),
                                            max_abs_err=(0.0,), threshold=0.5, n_sequences=1, seed=0,
                                            backend="cpu") for r in rows}

    monkeypatch.setattr(verdict_mod, "row_verdicts", nothing_holds)
    runs = sm.run_grid(folder, ["recall_first"], ["lstm"], cap=2, seeds=[0], data_dir=tmp_path / "data",
                       chunk=512, max_checks=10_000, echo=lambda s: None)
    d = runs.to_pylist()
    assert [r["hidden"] for r in d] == [1, 2] and not any(r["solved"] for r in d)
    for r in d:
        _, store = open_study(tmp_path / "data" / sm.study_name("recall_first", "lstm", r["hidden"], 0))
        assert r["rejected"] == int(np.sum(store.read(columns=["nmse"]).column("nmse").to_numpy() < 0.5)) > 0
    assert sm.smallest_table(runs).to_pylist()[0]["smallest"] is None
    assert "none up to H = 2" in sm.format_table(runs)
    assert sm.format_ladder(runs).count("(n only: 1/1)") == 2


def test_script_writes_table_and_csv(tmp_path):
    sys.path.insert(0, str(ROOT / "studies"))
    import smallest as script

    folder = _tiny(tmp_path)
    assert script.main(["--studies", str(folder), "--data", str(tmp_path / "data"), "--tasks", "recall_first",
                        "--cells", "lstm", "--cap", "1", "--seeds", "0"]) == 0
    for name in ("table.md", "runs.csv", "summary.csv"):
        assert (tmp_path / "data" / name).stat().st_size > 0
