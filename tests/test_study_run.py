"""Running studies: the store's rows, continuing, crash safety (SIGKILL and the write/tell gap)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pyarrow.parquet as pq
import pytest

from lstmsearch import evaluate, load_results, run_study
from lstmsearch.errors import LstmsearchError
from lstmsearch.store import SCHEMA_VERSION, Store
from lstmsearch.query import open_study, settings_of

from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]


def _check_unique(out, budget):
    t = load_results(out, columns=["row", "strategy", "batch", "index"])
    rows = t.column("row").to_numpy()
    assert t.num_rows == budget
    assert np.array_equal(np.sort(rows), np.arange(budget))  # row ids 0..n-1, none duplicated
    keys = set(zip(t.column("batch").to_pylist(), t.column("index").to_pylist()))
    assert len(keys) == budget  # no setting evaluated twice
    return t


@pytest.mark.parametrize("strategy", ["sweep", "optuna", "cmaes"])
def test_run_writes_rows_that_match_an_independent_evaluation(tmp_path, strategy):
    p, out = write_study(tmp_path, strategy=strategy, budget=96, keep_weights=5)
    r = run_study(p)
    assert r.complete and r.rows == 96 and r.settings == 96
    t = _check_unique(out, 96)
    full = load_results(out)
    assert full.schema.metadata[b"lstmsearch.schema_version"] == str(SCHEMA_VERSION).encode()
    nmse = full.column("nmse").to_numpy()
    assert r.best_nmse == nmse.min() and r.best_row == int(full.column("row")[int(nmse.argmin())].as_py())
    # weights are kept for (at least) the best 5 rows, not for every row
    has_w = np.array(full.column("weights").is_valid())
    assert has_w[np.argsort(nmse)[:5]].all() and has_w.sum() < 96
    # every row's setting (stored or rebuilt from z / the sweep key) scores exactly the stored error
    cfg, store = open_study(out)
    settings = settings_of(cfg, store, full)
    w = np.asarray([v for v in full.column("weights").to_pylist() if v is not None], np.float32)
    assert np.array_equal(settings[has_w], w)
    recurrent = settings.copy()
    recurrent[:, cfg.cell.n_recurrent:] = 0
    again = evaluate(cfg.cell, recurrent, cfg.task, n_sequences=24, seed=3, n_heldout=24)
    assert np.array_equal(again.column("nmse").to_numpy(), nmse)
    # the readout of every setting is the fit again (refitted where the row keeps none), and the
    # stored one where it is kept (with the weights)
    fitted = np.stack(again.column("readout").to_numpy(zero_copy_only=False)).astype(np.float32)
    assert np.array_equal(settings[:, cfg.cell.n_recurrent:], fitted)
    has_ro = np.array(full.column("readout").is_valid())
    assert np.array_equal(has_ro, has_w)
    assert np.array_equal(np.asarray([v for v in full.column("readout").to_pylist() if v is not None], np.float32),
                          fitted[has_ro])


def test_continue_and_budget_override(tmp_path):
    p, out = write_study(tmp_path, strategy="optuna", budget=64)
    run_study(p)
    again = run_study(p)  # budget spent: nothing to do
    assert again.settings == 0 and again.rows == 64
    more = run_study(p, budget=128)
    assert more.settings == 64
    _check_unique(out, 128)
    m = json.loads((out / "manifest.json").read_text())
    assert [r["settings"] for r in m["runs"]] == [64, 0, 64]
    assert m["versions"]["optuna"] and m["seeds"]["eval"] == 3 and m["study_text"]
    # the Optuna study in the journal knows every trial the rows came from
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    st = optuna.load_study(study_name="s", storage=storage)
    assert len([t for t in st.trials if t.state.name == "COMPLETE"]) == 128 // 8


def test_changed_study_content_is_refused(tmp_path):
    p, out = write_study(tmp_path, budget=50)
    run_study(p)
    p.write_text(p.read_text().replace("hidden = 3", "hidden = 4"))
    with pytest.raises(LstmsearchError, match="holds results of a study with different content"):
        run_study(p)
    p.write_text(p.read_text().replace("hidden = 4", "hidden = 3").replace("settings = 50", "settings = 100"))
    assert run_study(p).rows == 100  # a budget change is a continuation, not a new study


class Boom(Exception):
    pass


@pytest.mark.parametrize("strategy", ["optuna", "cmaes"])
@pytest.mark.parametrize("where", ["after_write", "before_write"])
def test_killed_between_write_and_tell_loses_and_duplicates_nothing(tmp_path, monkeypatch, strategy, where):
    """A run stopped right after a part is written (before the strategy hears of it), or right
    before, resumes without losing or re-evaluating any row."""
    from lstmsearch.search import STRATEGIES
    from lstmsearch.store import Store as S

    p, out = write_study(tmp_path, strategy=strategy, budget=128)
    cls = STRATEGIES[strategy][1]
    calls = {"n": 0}
    if where == "after_write":
        orig = cls.tell

        def tell(self, batch, table):
            calls["n"] += 1
            if calls["n"] == 3 and batch.stored is None:
                raise Boom()
            return orig(self, batch, table)

        monkeypatch.setattr(cls, "tell", tell)
    else:
        orig = S.append

        def append(self, table, **kw):
            calls["n"] += 1
            if calls["n"] == 3:
                raise Boom()
            return orig(self, table, **kw)

        monkeypatch.setattr(S, "append", append)
    # an error on the writer thread reaches the caller as one line naming it
    with pytest.raises(Boom if where == "after_write" else LstmsearchError, match=None if where == "after_write"
                       else r"writing the study's files failed \(Boom\)"):
        run_study(p)
    before = load_results(out)
    assert 0 < before.num_rows < 128  # three parts written (after_write), or two
    monkeypatch.undo()
    r = run_study(p)
    t = _check_unique(out, 128)
    after = load_results(out)
    # the rows written before the stop are unchanged
    assert after.slice(0, before.num_rows).select(["row", "batch", "index", "nmse"]).equals(
        before.select(["row", "batch", "index", "nmse"]))
    if where == "after_write":
        assert any("stored rows" in m for m in r.messages)
    if strategy == "optuna":
        import optuna

        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
        trials = optuna.load_study(study_name="s", storage=storage).trials
        complete = {tr.number for tr in trials if tr.state.name == "COMPLETE"}
        assert complete == set(t.column("batch").to_pylist())  # every row's trial was told, once
        assert not [tr for tr in trials if tr.state.name == "RUNNING"]


def test_sigkill_mid_run(tmp_path):
    """SIGKILL a real `lstmsearch run` mid-study; running again loses no row and duplicates none."""
    budget = 4096
    strategy = '[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 2\nregion = { size = 128, scale = 0.1 }\n'
    p, out = write_study(tmp_path, strategy_text=strategy, budget=budget)
    cmd = [sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows_dir = out / "rows"
    deadline = time.time() + 120
    while time.time() < deadline:
        if rows_dir.is_dir() and len(list(rows_dir.glob("part-*.parquet"))) >= 3:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    parts = {q.name: pq.read_table(q).select(["row", "batch", "index", "nmse"]) for q in rows_dir.glob("part-*.parquet")}
    n_before = sum(v.num_rows for v in parts.values())
    assert 0 < n_before < budget, "the run finished before it could be killed; raise the budget"
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    _check_unique(out, budget)
    for name, before in parts.items():  # every part written before the kill is intact
        assert pq.read_table(rows_dir / name).select(["row", "batch", "index", "nmse"]).equals(before)
    assert not list(rows_dir.glob(".*.tmp"))


def test_one_run_per_study_folder(tmp_path):
    p, out = write_study(tmp_path, budget=50)
    store = Store(out)
    store.acquire()  # held by this (live) process, as by a concurrent run
    with pytest.raises(LstmsearchError, match="is being run by process"):
        run_study(p)
    store.release()
    assert run_study(p).rows == 50
    assert not (out / "run.lock").exists()


def _run_until_parts(tmp_path, budget, strategy, extra_args=()):
    p, out = write_study(tmp_path, strategy_text=strategy, budget=budget)
    cmd = [sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--quiet", *extra_args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows_dir = out / "rows"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if rows_dir.is_dir() and len(list(rows_dir.glob("part-*.parquet"))) >= 2:
            break
        time.sleep(0.01)
    return p, out, cmd, proc


def test_sigterm_mid_run_is_like_ctrl_c(tmp_path):
    """SIGTERM to `lstmsearch run`: one line, exit 143, lock released, no Optuna trial left
    RUNNING, every written part intact; the next run continues to the budget."""
    budget = 4096
    strategy = '[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 2\nregion = { size = 128, scale = 0.1 }\n'
    p, out, cmd, proc = _run_until_parts(tmp_path, budget, strategy)
    os.kill(proc.pid, signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and "Traceback" not in err, err
    assert not (out / "run.lock").exists()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert not [tr for tr in trials if tr.state.name == "RUNNING"]
    n_before = Store(out).count()
    assert 0 < n_before < budget, "the run finished before it could be stopped; raise the budget"
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    _check_unique(out, budget)


def test_sigterm_to_the_supervisor_stops_its_workers(tmp_path):
    """SIGTERM to `run --workers 2`: the workers stop too (no orphan keeps writing), exit 143."""
    budget = 1 << 20
    strategy = '[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 2\nregion = { size = 64, scale = 0.1 }\n'
    p, out, cmd, proc = _run_until_parts(tmp_path, budget, strategy, ("--workers", "2"))
    os.kill(proc.pid, signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err.strip().splitlines()[-1]
    n = Store(out).count()
    time.sleep(3)  # a worker left running would go on writing parts
    assert Store(out).count() == n
    assert not [d for d in Store(out).leases() if d["alive"]]


def test_cmaes_stopped_and_continued_equals_an_uninterrupted_run(tmp_path):
    """Resume is exact: a CMA-ES study stopped after k generations and continued to 2k gives the
    same rows, bit for bit, as an uninterrupted 2k run. (Before the covariance matrix was saved
    exactly, this configuration drifted apart at generation 508: cmaes pickles only C's upper
    triangle.)"""
    k, pop = 300, 8
    st = f'[strategy]\nkind = "cmaes"\npopsize = {pop}\nrestarts = "ipop"\n'
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pa_, outa = write_study(tmp_path / "a", strategy_text=st, budget=2 * k * pop)
    run_study(pa_)
    pb, outb = write_study(tmp_path / "b", strategy_text=st, budget=2 * k * pop)
    assert run_study(pb, budget=k * pop).rows == k * pop
    assert run_study(pb).rows == 2 * k * pop
    cols = ["batch", "index", "z", "nmse", "readout"]
    order = [("batch", "ascending"), ("index", "ascending")]
    a = load_results(outa, columns=cols).sort_by(order)
    b = load_results(outb, columns=cols).sort_by(order)
    assert a.num_rows == b.num_rows == 2 * k * pop
    for c in cols:
        assert a.column(c).equals(b.column(c)), c
    # the rows keep (generation, index); the settings rebuilt from the stored generation states agree too
    from lstmsearch.search import regenerate_settings

    (ca, sa), (cb, sb) = open_study(outa), open_study(outb)
    assert np.array_equal(regenerate_settings(ca, sa, a), regenerate_settings(cb, sb, b))
