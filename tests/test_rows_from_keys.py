"""Rows cost bytes: every strategy's rows are rebuilt bit for bit from their keys and the state
stored once per generation or trial (lstmsearch.store.generations), not from a stored z."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstmsearch import load_results, run_study
from lstmsearch.query import open_study, settings_of
from lstmsearch.run import loop
from lstmsearch.search import regenerate_settings
from lstmsearch.store.generations import GenerationStore

from search_helpers import study_text, write_study

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "old_z_stores"
FULL = '[space]\nkind = "full"\n'

CASES = {
    "cmaes_sep_full_space": dict(strategy_text='[strategy]\nkind = "cmaes"\nvariant = "sep"\npopsize = 32\n'
                                               'restarts = "ipop"\n', space=FULL, budget=160),
    "cmaes_full_masked": dict(strategy_text='[strategy]\nkind = "cmaes"\nvariant = "full"\npopsize = 8\n'
                                            'restarts = "ipop"\n', budget=80),
    "optuna_region": dict(strategy="optuna", budget=96),
    # 28 dimensions, population 6: the eigendecomposition (and B D in the store) every 9 generations
    "cmaes_full_lazy": dict(strategy_text='[strategy]\nkind = "cmaes"\nvariant = "full"\npopsize = 6\n'
                                          'restarts = "none"\n', cell="rnn_tanh", hidden=4, space=FULL, budget=6 * 25),
}


def _capture(monkeypatch):
    """Wrap the run loop's evaluator: record the settings each (batch, index) was evaluated with."""
    seen = {}
    orig = loop.local_evaluate

    def spy(cfg, batch):
        table = orig(cfg, batch)
        ro = table.column("readout").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
        for b, i, p, r in zip(batch.batch, batch.index, batch.params, ro):
            seen[(int(b), int(i))] = p.copy()
            seen[("readout", int(b), int(i))] = r.copy()
        return table

    monkeypatch.setattr(loop, "local_evaluate", spy)
    return seen


@pytest.mark.parametrize("case", list(CASES))
def test_random_rows_regenerate_bit_for_bit(tmp_path, monkeypatch, case):
    seen = _capture(monkeypatch)
    p, out = write_study(tmp_path, keep_weights=0, **CASES[case])
    run_study(p)
    cfg, store = open_study(out)
    rows = load_results(out)
    assert rows.num_rows == CASES[case]["budget"] == len(seen) // 2
    assert rows.column("z").null_count == rows.num_rows  # no row keeps its search vector
    assert rows.column("readout").null_count == rows.num_rows  # nor its readout (keep_weights = 0)
    pick = np.random.default_rng(0).choice(rows.num_rows, 12, replace=False)
    sub = rows.take(pa.array(np.sort(pick)))
    got = regenerate_settings(cfg, store, sub)
    keys = list(zip(sub.column("batch").to_pylist(), sub.column("index").to_pylist()))
    want = np.stack([seen[k] for k in keys])
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert GenerationStore(out).files()  # the state they came from is stored once per batch
    # the full setting: the readout fitted again from the stored seed is the one evaluated, bit for bit
    fitted = np.stack([seen[("readout", *k)] for k in keys])
    assert np.array_equal(settings_of(cfg, store, sub), cfg.cell.with_readout(want, fitted))


def test_the_best_k_rows_and_no_other_keep_their_weights_as_evaluated(tmp_path, monkeypatch):
    """``keep_weights = 5``: after a run, and after it is continued, exactly the 5 rows with the
    smallest nmse (then row id) have weights and a readout, each exactly the setting evaluated with
    the readout fitted then; no part holds weights; a row that has left the best 5 is rebuilt from
    its keys like any other."""
    from lstmsearch.store import Store
    from lstmsearch.store.best import best_path

    seen = _capture(monkeypatch)
    case = CASES["cmaes_sep_full_space"]
    p, out = write_study(tmp_path, keep_weights=5, **case)

    def check():
        rows = load_results(out)
        has = rows.column("weights").is_valid().to_numpy(zero_copy_only=False)
        best5 = np.lexsort((rows.column("row").to_numpy(), rows.column("nmse").to_numpy()))[:5]
        assert sorted(np.flatnonzero(has).tolist()) == sorted(best5.tolist())
        assert np.array_equal(has, rows.column("readout").is_valid().to_numpy(zero_copy_only=False))
        kept = rows.filter(pa.array(has))
        keys = list(zip(kept.column("batch").to_pylist(), kept.column("index").to_pylist()))
        w = np.asarray(kept.column("weights").to_pylist(), np.float32)
        cfg, store = open_study(out)
        want = cfg.cell.with_readout(np.stack([seen[k] for k in keys]), np.stack([seen[("readout", *k)] for k in keys]))
        assert np.array_equal(w, want)
        assert np.array_equal(np.asarray(kept.column("readout").to_pylist(), np.float32),
                              np.stack([seen[("readout", *k)] for k in keys]))
        for q in (out / "rows").glob("*.parquet"):
            assert pq.read_table(q, columns=["weights"]).column("weights").null_count == pq.read_metadata(q).num_rows
        return rows, has

    run_study(p, budget=64)
    rows1, has1 = check()
    run_study(p, budget=160)
    rows2, has2 = check()
    assert pq.read_metadata(best_path(out, 0)).num_rows == 5
    left = [r for r, h in zip(rows1.column("row").to_pylist(), has1) if h and not has2[r]]
    assert left  # rows of the first run left the best 5 when better ones came ...
    cfg, store = open_study(out)
    sub = Store(out).read(filter=pa.compute.field("row").isin(left))
    assert sub.column("weights").null_count == len(left)  # ... and are rebuilt like the others
    keys = list(zip(sub.column("batch").to_pylist(), sub.column("index").to_pylist()))
    assert np.array_equal(settings_of(cfg, store, sub), cfg.cell.with_readout(
        np.stack([seen[k] for k in keys]), np.stack([seen[("readout", *k)] for k in keys])))


@pytest.mark.gathered
@pytest.mark.parametrize("hidden", [32, 64])
def test_rows_cost_bytes_whatever_the_hidden_size(tmp_path, hidden):
    """LSTM H = 32 and 64, full weight space (4,480 and 16,896 dimensions), sep-CMA, population 1024:
    a row costs the same few dozen bytes at either size (keys and errors; neither z nor the fitted
    readout, 4 (H + 1) bytes, is kept below the best ``keep_weights``); the generation state
    (mean and sqrt(diag C) in float64, once per generation) costs 16 d / 1024 bytes a row."""
    st = '[strategy]\nkind = "cmaes"\nvariant = "sep"\npopsize = 1024\nrestarts = "none"\n'
    p = tmp_path / "big.toml"
    out = tmp_path / "big"
    p.write_text(study_text("big", out, strategy_text=st, space=FULL, hidden=hidden, length=3, budget=1024,
                            keep_weights=0).replace("sequences = 24", "sequences = 8").replace("heldout = 24",
                                                                                                "heldout = 8"))
    run_study(p)
    cfg, _ = open_study(out)
    d = cfg.space_obj.dim
    assert d == 4 * hidden * (hidden + 3)
    n = load_results(out, columns=["row"]).num_rows
    row_bytes = sum(q.stat().st_size for q in (out / "rows").glob("*.parquet")) / n
    state_bytes = sum(q.stat().st_size for q in GenerationStore(out).files()) / n
    assert row_bytes < 64, row_bytes  # 49 B measured at both sizes: no term grows with H
    assert state_bytes < 16 * d / 1024 + 8, state_bytes
    assert row_bytes + state_bytes < d * 4 / 40  # the z that rows kept before: 4 d bytes


@pytest.mark.gathered
def test_full_cma_stores_its_matrix_once_per_eigendecomposition(tmp_path):
    """A full CMA-ES refreshes B D every eigen_gap generations (the lazy update) and stores it then
    only; the generations between name the one that holds it. A study run in three pieces asks
    and stores exactly what one uninterrupted run does."""
    from lstmsearch.search.cma import eigen_gap

    case = dict(CASES["cmaes_full_lazy"], budget=6 * 40)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pa_, outa = write_study(a, keep_weights=0, **case)
    run_study(pa_)
    pb, outb = write_study(b, keep_weights=0, **case)
    for budget in (6 * 7, 6 * 23, 6 * 40):
        run_study(pb, budget=budget)
    cols = ["batch", "index", "nmse"]
    order = [("batch", "ascending"), ("index", "ascending")]
    assert load_results(outa, columns=cols).sort_by(order).equals(load_results(outb, columns=cols).sort_by(order))
    cfg, store = open_study(outa)
    d, gap = cfg.space_obj.dim, eigen_gap(cfg.space_obj.dim, 6)
    assert d == 28 and gap == 9  # ceil(8 * 28^2 / (6 * 128)): B D costs at most 128 bytes a row
    ta, tb = (GenerationStore(o).read("cmaes").sort_by("batch") for o in (outa, outb))
    assert ta.equals(tb)
    recs = ta.to_pylist()
    assert [r["batch"] for r in recs] == list(range(40))
    held = [r["batch"] for r in recs if r["matrix"] is not None]
    assert held == [0, 9, 18, 27, 36]  # one decomposition per gap (a lazy update at generation g sets eigen_at = g)
    assert all(r["matrix_batch"] == r["batch"] // gap * gap for r in recs)
    # the sampling matrices differ across refreshes (C adapts) and are filled in for every record
    full = GenerationStore(outa).records("cmaes", range(40))
    assert all(np.array_equal(full[g]["matrix"], full[g // gap * gap]["matrix"]) for g in range(40))
    assert not np.array_equal(full[0]["matrix"], full[9]["matrix"])
    state_bytes = sum(q.stat().st_size for q in GenerationStore(outa).files()) / (6 * 40)
    assert state_bytes < 8 * d * d / (6 * gap) + 8 * d / 6 + 200, state_bytes


@pytest.mark.gathered
def test_the_run_says_what_a_small_population_costs_in_state(tmp_path):
    """sep-CMA over 1,120 dimensions with a population of 16 stores the mean and sqrt(diag C) once per
    16 rows: about 16 d / 16 = 1,120 bytes a row. The run's summary says so, and the estimate is
    within a quarter of what the store holds."""
    from lstmsearch.search.cma import state_bytes_per_row

    st = '[strategy]\nkind = "cmaes"\nvariant = "sep"\npopsize = 16\nrestarts = "none"\n'
    p, out = write_study(tmp_path, strategy_text=st, cell="rnn_tanh", hidden=32, space=FULL, budget=16 * 20,
                         keep_weights=0)
    rep = run_study(p)
    d = open_study(out)[0].space_obj.dim
    assert d == 1120
    line = next(m for m in rep.messages if m.startswith("CMA-ES"))
    assert "generation state costs about 1120 bytes a row (popsize >= 90 keeps it under 200)" in line, line
    stored = sum(q.stat().st_size for q in GenerationStore(out).files()) / (16 * 20)
    assert 0.75 < stored / state_bytes_per_row("sep", d, 16) < 1.25, stored  # "about": Parquet adds its own bytes


def test_sigkill_mid_study_leaves_rows_that_all_regenerate(tmp_path):
    """SIGKILL a real run between any two writes: every row on disk regenerates (its state was
    written before it), and the continued study's rows do too."""
    st = '[strategy]\nkind = "cmaes"\nvariant = "sep"\npopsize = 64\nrestarts = "ipop"\n'
    p, out = write_study(tmp_path, strategy_text=st, space=FULL, budget=64 * 400, keep_weights='"all"')
    cmd = [sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "rows").glob("part-*.parquet"))) < 5:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_killed = load_results(out, columns=["row"]).num_rows
    assert 0 < n_killed < 64 * 400

    def all_rows_regenerate():
        cfg, store = open_study(out)
        rows = load_results(out)
        params = regenerate_settings(cfg, store, rows)
        ro = rows.column("readout").combine_chunks().flatten().to_numpy().reshape(rows.num_rows, -1)
        w = np.asarray(rows.column("weights").to_pylist(), np.float32)
        assert np.array_equal(cfg.cell.with_readout(params, ro), w)
        return rows.num_rows

    assert all_rows_regenerate() == n_killed
    r = subprocess.run(cmd + ["--budget", str(n_killed + 64 * 3)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert all_rows_regenerate() == n_killed + 64 * 3


@pytest.mark.parametrize("name", ["old_cmaes", "old_optuna_region"])
def test_old_stores_with_z_stay_readable_and_continue(tmp_path, name):
    """Stores written before rows lost their z (made by the code of main before this change):
    their rows still rebuild from z, and a continued study mixes z rows and keyed rows."""
    src = FIXTURES / name
    cfg, store = open_study(src)
    rows = load_results(src)
    assert rows.column("z").null_count == 0
    params = regenerate_settings(cfg, store, rows)
    ro = rows.column("readout").combine_chunks().flatten().to_numpy().reshape(rows.num_rows, -1)
    assert np.array_equal(cfg.cell.with_readout(params, ro), np.asarray(rows.column("weights").to_pylist(), np.float32))
    if name != "old_cmaes":
        return
    copy = tmp_path / name
    shutil.copytree(src, copy)
    run_study(copy, out=copy, budget=rows.num_rows + 16)
    cfg, store = open_study(copy)
    rows = load_results(copy)
    assert rows.num_rows == 40 and 0 < rows.column("z").null_count < rows.num_rows
    params = regenerate_settings(cfg, store, rows)
    ro = rows.column("readout").combine_chunks().flatten().to_numpy().reshape(rows.num_rows, -1)
    assert np.array_equal(cfg.cell.with_readout(params, ro), np.asarray(rows.column("weights").to_pylist(), np.float32))


def test_a_damaged_state_file_is_named_not_used(tmp_path, capsys):
    from lstmsearch.cli.main import main

    p, out = write_study(tmp_path, **CASES["cmaes_full_masked"])
    run_study(p)
    n_states = len(GenerationStore(out).files())
    assert main(["check", str(out)]) == 0
    assert f"{n_states} generation state file(s) ok" in capsys.readouterr().out
    f = GenerationStore(out).files()[0]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    cfg, store = open_study(out)
    rows = load_results(out)
    from lstmsearch.errors import LstmsearchError

    with pytest.raises(LstmsearchError, match="does not match the checksum in its name"):
        regenerate_settings(cfg, store, rows.slice(0, 1))
    # lstmsearch check names the damaged state file and fails
    assert main(["check", str(out)]) == 1
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(f"generations/{f.name}"))
    assert "content hash differs" in line
    assert pq.read_metadata(sorted((out / "rows").glob("*.parquet"))[0]).num_rows > 0


def test_vector_sep_cma_update_is_the_librarys_bit_for_bit():
    """VectorSepCMA.tell_arrays (whole-population array operations) against cmaes.SepCMA.tell (a
    Python loop over the members) on the same solutions, tied values included: after 40
    generations mean, step size, covariance and both paths are identical, bit for bit."""
    from cmaes import SepCMA

    from lstmsearch.search.sepcma import VectorSepCMA

    d, lam = 30, 96
    kw = dict(sigma=0.5, bounds=np.stack([-np.ones(d), np.ones(d)], 1), population_size=lam, seed=1)
    lib, ours = SepCMA(mean=np.zeros(d), **kw), VectorSepCMA(mean=np.zeros(d), **kw)  # (cmaes keeps the array)
    # cmaes allocates its history of best and worst values with np.empty: the slots not written yet
    # hold whatever the memory held, so both start from the same copy (the written slots are compared)
    ours._funhist_values = lib._funhist_values.copy()
    rng = np.random.default_rng(5)
    scale = np.linspace(1, 30, d)
    for _ in range(40):
        xs = np.clip(lib._mean + lib._sigma * lib._eigen_decomposition() * rng.standard_normal((lam, d)), -1, 1)
        values = np.round(np.sum(scale * (xs - 0.3) ** 2, axis=1), 1)  # rounded: ties in the ranking
        lib.tell(list(zip(xs, values)))
        ours.tell_arrays(xs, values)
        for a in ("_mean", "_C", "_p_sigma", "_pc", "_funhist_values"):
            assert np.array_equal(getattr(lib, a), getattr(ours, a)), a
        assert lib._sigma == ours._sigma and lib.generation == ours.generation
    assert lib._sigma < 0.5  # it did move


def test_show_and_answer_name_the_searched_values_of_a_keyed_row(tmp_path):
    """A row that keeps no z still shows its searched values: rebuilt from its trial's stored centre
    (the Optuna trial's parameters, checked against the journal)."""
    import optuna

    from lstmsearch.answer import named_values
    from lstmsearch.reproduction import row_setting

    p, out = write_study(tmp_path, strategy="optuna", budget=32)
    run_study(p)
    rows = load_results(out).sort_by("nmse")
    row, trial = rows.column("row")[0].as_py(), rows.column("batch")[0].as_py()
    assert rows.column("z")[0].as_py() is None
    cfg, r, _ = row_setting(out, row)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    params = optuna.load_study(study_name="s", storage=storage).trials[trial].params
    assert named_values(cfg, r) == [(n, float(np.float32(params[n]))) for n in cfg.space_obj.names]
