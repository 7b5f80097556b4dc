"""Faults: a full disk while writing, a corrupt part file, a part written by an older schema."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstmsearch import load_results, run_study
from lstmsearch.errors import LstmsearchError
from lstmsearch.errors import DamagedPartWarning, DiskFullError
from lstmsearch.store import Store

from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "lstmsearch.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (a real full disk: the kernel answers ENOSPC) when this process may mount
    one (root); otherwise None and the test simulates ENOSPC in the writer."""
    d = tmp_path / "disk"
    d.mkdir()
    ok = os.geteuid() == 0 and shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True).returncode == 0
    yield d if ok else None
    if ok:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.mark.parametrize("strategy", ["sweep", "optuna"])
def test_disk_full_while_writing_then_resume(tmp_path, small_disk, monkeypatch, strategy):
    budget = 4000 if strategy == "sweep" else 2400
    if small_disk is not None:  # a real full disk
        p, out = write_study(tmp_path, strategy=strategy, budget=budget, keep_weights="\"all\"")
        p.write_text(p.read_text().replace(f'out = "{out.as_posix()}"', f'out = "{(small_disk / "s").as_posix()}"'))
        out = small_disk / "s"
    else:  # simulated: the 6th part write fails as a full disk would
        p, out = write_study(tmp_path, strategy=strategy, budget=budget, keep_weights="\"all\"")
        real = pq.write_table
        calls = [0]

        def failing(table, where, **kw):
            calls[0] += 1
            if calls[0] == 6:
                Path(where).write_bytes(b"PAR1 partial")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(table, where, **kw)

        monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(DiskFullError, match="no space left") as err:
        run_study(p)
    assert "run the study again" in str(err.value)
    store = Store(out)
    written = load_results(out)  # every part that was written is whole and readable
    assert written.num_rows == store.count() and 0 < written.num_rows < budget
    assert not list((out / "rows").glob(".*.tmp"))  # no partial file left behind
    assert not store.lock_path.exists()
    # more space (move the study to a big disk), and the study goes on from where it was
    if small_disk is not None:
        big = tmp_path / "big"
        shutil.copytree(out, big)
        out = big
    else:
        monkeypatch.setattr(pq, "write_table", real)
    r = run_study(p, out=out)
    assert r.complete
    t = load_results(out, columns=["row", "batch", "index", "nmse"])
    assert t.num_rows == budget and len(np.unique(t.column("row").to_numpy())) == budget
    keys = set(zip(t.column("batch").to_pylist(), t.column("index").to_pylist()))
    assert len(keys) == budget
    before = written.select(["row", "nmse"])
    after = t.select(["row", "nmse"]).filter(pa.compute.is_in(t.column("row"), before.column("row")))
    assert after.equals(before)  # the rows written before the disk filled up are unchanged


def test_corrupt_part_is_reported_skipped_and_quarantined(tmp_path):
    p, out = write_study(tmp_path, strategy="sweep", budget=250)
    run_study(p)
    parts = Store(out).parts()
    victim = parts[2]
    data = bytearray(victim.read_bytes())
    data[-12:-4] = b"garbage!"  # break the footer
    victim.write_bytes(bytes(data))
    with pytest.warns(DamagedPartWarning, match=victim.name):
        t = load_results(out)
    assert t.num_rows == 200  # the 4 good parts
    # the CLI names the damaged part on stderr and still answers
    r = _cli("top", out, "-k", "3")
    assert r.returncode == 0 and victim.name in r.stderr and "warning" in r.stderr
    # a run moves it aside, says so, and the study goes on; the lost rows are not hidden
    msgs = []
    rep = run_study(p, budget=300, echo=msgs.append)
    assert any("moved the damaged part" in m and victim.name in m for m in msgs)
    assert (out / "rows" / "damaged" / victim.name).exists()
    assert rep.rows == 300
    t = load_results(out, columns=["row", "index"])
    assert len(np.unique(t.column("row").to_numpy())) == 300  # new rows did not reuse the damaged ids
    assert not set(range(100, 150)) & set(t.column("row").to_pylist())


def test_part_with_bad_data_pages_is_skipped(tmp_path):
    """The footer reads, but the data does not: found when read, skipped, named."""
    p, out = write_study(tmp_path, strategy="sweep", budget=150, keep_weights='"all"')
    run_study(p)
    victim = Store(out).parts()[1]
    data = bytearray(victim.read_bytes())
    meta_len = int.from_bytes(data[-8:-4], "little")
    start = 4
    data[start:len(data) - 8 - meta_len] = os.urandom(len(data) - 8 - meta_len - start)
    victim.write_bytes(bytes(data))
    with pytest.warns(DamagedPartWarning):
        t = load_results(out, columns=["row", "nmse", "weights"])
    assert t.num_rows == 100


def test_parquet_of_an_older_schema_version(tmp_path):
    p, out = write_study(tmp_path, strategy="sweep", budget=100)
    run_study(p)
    part = Store(out).parts()[0]
    t = pq.read_table(part)
    old = t.drop_columns(["nmse_long", "long_length"]).replace_schema_metadata({"lstmsearch.schema_version": "0"})
    pq.write_table(old, out / "rows" / "part-w0-000000000100.parquet")
    with pytest.raises(LstmsearchError, match="part-w0-000000000100.parquet was written with store schema version 0"):
        load_results(out)
    m = json.loads((out / "manifest.json").read_text())
    m["schema_version"] = 0
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(LstmsearchError, match="store schema version 0"):
        run_study(p, budget=200)


def _unique_keys(out, n):
    t = load_results(out, columns=["batch", "index"])
    keys = list(zip(t.column("batch").to_pylist(), t.column("index").to_pylist()))
    assert len(keys) == n and len(set(keys)) == n  # no (trial, index) stored twice
    return t


def _optuna_trials(out):
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    return optuna.load_study(study_name="s", storage=storage).trials


def test_journal_ending_in_a_partial_record_is_repaired(tmp_path):
    """Disk full mid-write under the Optuna journal: the partial last record is dropped, one line
    says so, and the study continues to its budget (it used to die with a JSONDecodeError on
    every later run)."""
    p, out = write_study(tmp_path, strategy="optuna", budget=64)
    assert _cli("run", p, "--quiet").returncode == 0
    journal = out / "optuna.journal"
    whole = journal.read_bytes()
    last = whole.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    journal.write_bytes(whole + last[: len(last) // 2])  # half a record, no newline
    r = _cli("run", p, "--quiet", "--budget", 128)
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stdout.splitlines() if "repaired the Optuna journal" in ln]
    assert len(said) == 1 and "partial last record" in said[0]
    r = _cli("run", p, "--quiet", "--budget", 192)  # and it stays whole
    assert r.returncode == 0 and "repaired" not in r.stdout, r.stdout + r.stderr
    t = _unique_keys(out, 192)
    complete = {tr.number for tr in _optuna_trials(out) if tr.state.name == "COMPLETE"}
    assert set(t.column("batch").to_pylist()) <= complete


@pytest.mark.parametrize("damage", ["tail_dropped", "deleted"])
def test_journal_that_lost_records_is_refused_then_repaired(tmp_path, damage):
    """A journal cut short or deleted: trial numbers would be reused (duplicated (trial, index)
    rows). The run refuses with one line naming --repair; --repair rebuilds the trials from the
    rows and the study continues with unique keys."""
    p, out = write_study(tmp_path, strategy="optuna", budget=96)
    assert _cli("run", p, "--quiet").returncode == 0
    journal = out / "optuna.journal"
    if damage == "deleted":
        journal.unlink()
    else:
        lines = journal.read_bytes().splitlines(keepends=True)
        journal.write_bytes(b"".join(lines[: len(lines) // 2]))
    r = _cli("run", p, "--quiet", "--budget", 160)
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "--repair" in err[0] and "Traceback" not in r.stderr, r.stderr
    _unique_keys(out, 96)  # nothing was written
    r = _cli("run", p, "--quiet", "--budget", 160, "--repair")
    assert r.returncode == 0, r.stderr
    assert sum("repaired the Optuna storage from the rows" in ln for ln in r.stdout.splitlines()) == 1
    t = _unique_keys(out, 160)
    trials = _optuna_trials(out)
    complete = {tr.number for tr in trials if tr.state.name == "COMPLETE"}
    assert set(t.column("batch").to_pylist()) == complete
    r = _cli("run", p, "--quiet", "--budget", 192)  # consistent now: no --repair needed
    assert r.returncode == 0, r.stderr
    _unique_keys(out, 192)


def test_part_file_deleted_its_trials_are_requeued(tmp_path):
    """A part deleted: its COMPLETE trials have no rows; the next run says so in one line,
    re-queues their parameters, and reaches the budget with no (trial, index) twice."""
    p, out = write_study(tmp_path, strategy="optuna", budget=96)
    run_study(p)
    parts = sorted((out / "rows").glob("*.parquet"))
    lost = pq.read_table(parts[1], columns=["batch"]).column("batch").to_pylist()
    parts[1].unlink()
    r = run_study(p, budget=96)
    said = [m for m in r.messages if "have no stored rows" in m]
    assert len(said) == 1 and f"{len(set(lost))} COMPLETE Optuna trial(s)" in said[0]
    _unique_keys(out, 96)
    trials = _optuna_trials(out)
    retried = {tr.user_attrs.get("retry_of") for tr in trials if tr.state.name == "COMPLETE"}
    assert set(lost) <= retried
    again = run_study(p, budget=96)  # said once, not on every start
    assert not [m for m in again.messages if "have no stored rows" in m]


def _flaky(failures, then):
    """A storage call that fails ``failures`` times as with a lost connection, then does ``then``."""
    import optuna

    calls = []

    def call():
        calls.append(1)
        if len(calls) <= failures:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
        return then()

    return call


@pytest.mark.parametrize("then", ["returns", "already finished"])
def test_a_storage_outage_is_reported_when_it_ends_whatever_the_next_answer(tmp_path, then):
    """The database comes back either with the call's result or with an error of its own (a
    retried tell whose first attempt was committed: "Cannot tell a COMPLETE trial"). Both end
    the outage: it is said ("is back after") and recorded, and only the second error is raised."""
    from lstmsearch.run.loop import study_config
    from lstmsearch.search import make_strategy

    path, _ = write_study(tmp_path, "o", strategy="optuna", budget=8)
    cfg = study_config(path)
    said = []
    strategy = make_strategy(cfg, cfg.space_obj, Store(cfg.out), echo=said.append)

    def answer():
        if then == "returns":
            return 7
        raise ValueError("Cannot tell a COMPLETE trial.")

    if then == "returns":
        assert strategy.db(_flaky(2, answer)) == 7
    else:
        with pytest.raises(ValueError, match="COMPLETE"):
            strategy.db(_flaky(2, answer))
    assert len(said) == 2 and said[0].startswith("lost the Optuna storage") and "is back after" in said[1], said
    assert len(strategy.outages) == 1 and strategy.run_stats().get("storage_outages_s")
    with pytest.raises(ValueError):  # an error with no outage before it is raised as it is, and says nothing
        strategy.db(answer if then != "returns" else _flaky(0, lambda: int("x")))
    assert len(said) == 2 and len(strategy.outages) == 1


def test_a_damaged_best_file_is_reported_and_its_rows_rebuilt_from_keys(tmp_path):
    """best/w0.parquet (the best rows' weights) cut short: reading warns once per read and names
    the file; the rows read as before with null weights, and reproduce rebuilds the best row from
    its keys, identical to what the study stored; the next run writes the file again."""
    from lstmsearch import reproduce
    from lstmsearch.store.best import best_path

    p, out = write_study(tmp_path, "b", strategy="optuna", budget=48, keep_weights=3)
    run_study(p)
    f = best_path(out, 0)
    good = load_results(out, columns=["row", "nmse", "weights"])
    assert good.column("weights").null_count == good.num_rows - 3
    f.write_bytes(f.read_bytes()[:100])
    with pytest.warns(DamagedPartWarning, match=r"damaged file .*best.*w0\.parquet"):
        t = load_results(out, columns=["row", "nmse", "weights"])
    assert t.column("weights").null_count == t.num_rows and t.column("nmse").equals(good.column("nmse"))
    best = int(t.sort_by("nmse").column("row")[0].as_py())
    with pytest.warns(DamagedPartWarning):
        assert reproduce(out, best, factors=(1,), n_sequences=8, check=False)["identical"]
    with pytest.warns(DamagedPartWarning):
        run_study(p, budget=96)
    assert load_results(out, columns=["weights"]).column("weights").null_count == 96 - 3
