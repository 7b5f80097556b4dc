"""Many workers on one study: a real PostgreSQL server on loopback, worker processes, faults.

The server is started by ``tests/pg_server.py`` (installed with apt-get where missing and
allowed); without one, these tests are skipped with the reason.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from lstmsearch import load_results, run_study
from lstmsearch.errors import LstmsearchError
from lstmsearch.store import ROW_SLOT, Store

from pg_server import wait_for
from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

OPTUNA = '[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 2\nregion = { size = 8, scale = 0.1 }\n'


_n = [0]


def _db(pg):
    _n[0] += 1
    wait_for(lambda: _try_connect(pg), 60)
    return pg.create_db(f"t{os.getpid()}_{_n[0]}")


def _try_connect(pg):
    import psycopg

    try:
        psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres", connect_timeout=2).close()
        return True
    except psycopg.Error:
        return False


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _worker(study, url, *args, stdout=None):
    """A worker process; its output is piped, or written (unbuffered) to the file ``stdout``."""
    cmd = [sys.executable, "-m", "lstmsearch.cli", "worker", str(study), "--storage", url, "--quiet",
           "--heartbeat", "1", "--grace", "4", *args]
    if stdout is None:
        return subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with open(stdout, "w") as f:  # the child has its own copy of the file
        return subprocess.Popen(cmd, env=dict(_env(), PYTHONUNBUFFERED="1"), cwd=ROOT, stdout=f,
                                stderr=subprocess.PIPE, text=True)


def check_rows(out, url, name="s", budget=None, slack=0):
    """Every trial's rows are there once, row ids are unique, no trial is left RUNNING, and
    every COMPLETE trial's value is the best objective of stored rows (no row lost)."""
    t = load_results(out, columns=["row", "batch", "index", "nmse"])
    rows = t.column("row").to_numpy()
    assert len(np.unique(rows)) == t.num_rows
    keys = list(zip(t.column("batch").to_pylist(), t.column("index").to_pylist()))
    assert len(set(keys)) == len(keys)  # no setting evaluated twice
    if budget is not None:
        assert budget <= t.num_rows <= budget + slack
    st = optuna.load_study(study_name=name, storage=url)
    states = [tr.state.name for tr in st.trials]
    assert "RUNNING" not in states
    by_trial = {}
    for (b, i), v in zip(keys, t.column("nmse").to_numpy()):
        by_trial.setdefault(b, []).append(v)
    from lstmsearch.search.base import objective

    complete = [tr for tr in st.trials if tr.state.name == "COMPLETE"]
    for tr in complete:
        src = tr.user_attrs.get("rows_of_trial", tr.number)
        assert src in by_trial, f"trial {tr.number} is COMPLETE but its rows are missing"
        assert len(by_trial[src]) == 8
        assert np.isclose(tr.value, objective(np.array(by_trial[src])).min())
    # every stored trial is known to Optuna as COMPLETE (directly, or through a recovered copy)
    told = {tr.user_attrs.get("rows_of_trial", tr.number) for tr in complete}
    assert set(by_trial) <= told
    return t


def test_three_workers_share_one_study(pg, tmp_path):
    url = _db(pg)
    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=240)
    procs = [_worker(p, url) for _ in range(3)]
    for pr in procs:
        o, e = pr.communicate(timeout=300)
        assert pr.returncode == 0, e
    t = check_rows(out, url, budget=240, slack=2 * 16)
    slots = set((t.column("row").to_numpy() // ROW_SLOT).tolist())
    assert slots == {1, 2, 3}  # each worker wrote its own parts
    assert {p.name.split("-")[1] for p in Store(out).parts()} == {"w1", "w2", "w3"}
    m = json.loads((out / "manifest.json").read_text())
    assert sorted(r["worker"] for r in m["runs"]) == [1, 2, 3]
    assert sum(r["settings"] for r in m["runs"]) == t.num_rows
    assert not list((out / "workers").glob("w*.json"))  # leases released


def test_run_workers_with_postgres_and_show_a_worker_row(pg, tmp_path):
    url = _db(pg)
    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=160)
    r = run_study(p, workers=2, storage=url, heartbeat_s=1, grace_s=4)
    assert r.complete and r.rows >= 160
    t = check_rows(out, url, budget=160, slack=16)
    from lstmsearch.reproduction import reproduce

    row = int(t.sort_by("nmse").column("row")[0].as_py())
    assert row >= ROW_SLOT
    rep = reproduce(out, row, factors=(1,), n_sequences=8)
    assert rep["identical"]
    # the Optuna trials of this study are in PostgreSQL: continuing it elsewhere is refused
    with pytest.raises(LstmsearchError, match="pass --storage with that URL"):
        run_study(p, budget=200)


def _lease(out, slot):
    try:
        return json.loads((out / "workers" / f"w{slot}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def test_sigkill_a_worker_mid_batch_its_trials_are_retried(pg, tmp_path):
    url = _db(pg)
    # bigger sequences: a batch takes long enough to be killed in the middle of it
    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=100000, length=300)
    victim = _worker(p, url, "--slot", "1")
    survivor = _worker(p, url, "--slot", "2")
    try:
        assert wait_for(lambda: Store(out).count() > 0, 60, 0.02)
        assert wait_for(lambda: _lease(out, 1).get("trials"), 60, 0.002)
        victim.send_signal(signal.SIGKILL)
        in_flight = _lease(out, 1)["trials"]
        victim.wait()

        def killed_trials():
            return [tr for tr in optuna.load_study(study_name="s", storage=url).trials if tr.number in in_flight]

        # the survivor fails them once their heartbeat is older than the grace period (4 s); it is
        # stopped when that has happened, not after a fixed time that a loaded machine may overrun
        assert wait_for(lambda: all(tr.state.name != "RUNNING" for tr in killed_trials()), 90, 0.2)
    finally:
        survivor.send_signal(signal.SIGTERM)
        o, e = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, e
    st = optuna.load_study(study_name="s", storage=url)
    killed = [tr for tr in st.trials if tr.number in in_flight]
    assert killed and all(tr.state.name in ("FAIL", "COMPLETE") for tr in killed)
    m = json.loads((out / "manifest.json").read_text())
    rec = [r.get("recovered_trials") for r in m["runs"] if r.get("worker") == 2][0]
    assert rec and sum(rec.values()) >= 1  # the survivor's heartbeat check recovered them
    retried = [tr for tr in st.trials if tr.system_attrs.get("failed_trial") is not None
               or tr.user_attrs.get("rows_of_trial") is not None]
    assert retried
    check_rows(out, url)


def test_database_lost_mid_study_and_back(pg, tmp_path):
    """The server stops mid-study and comes back: the workers say so, wait for it and go on.

    The outage lasts until a worker has noticed it (not a fixed number of seconds, which a
    loaded machine can spend in one batch), and the workers are stopped by SIGTERM once they
    have written rows after it (not by a time budget that could run out during the outage)."""
    url = _db(pg)
    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=100000)
    logs = [tmp_path / f"worker{i}.out" for i in range(2)]
    procs = [_worker(p, url, "--grace", "10", stdout=log) for log in logs]
    said = lambda text: any(text in log.read_text() for log in logs)  # noqa: E731
    try:
        assert wait_for(lambda: Store(out).count() >= 64, 90, 0.05)
        pg.stop("immediate")
        assert wait_for(lambda: said("lost the Optuna storage"), 60, 0.05), [log.read_text() for log in logs]
        time.sleep(1)
        n_down = Store(out).count()
        pg.start()
        # the workers went on after the outage: more rows, and a worker that lost the storage found it again
        assert wait_for(lambda: said("is back after") and Store(out).count() >= n_down + 64, 120, 0.1), \
            (n_down, Store(out).count(), [log.read_text() for log in logs])
    finally:
        for pr in procs:
            pr.send_signal(signal.SIGTERM)
        outs = [pr.communicate(timeout=180) for pr in procs]
    for pr, (_, e) in zip(procs, outs):
        assert pr.returncode == 0, e
    for log in logs:  # a worker that noticed the outage also saw the end of it
        text = log.read_text()
        assert "lost the Optuna storage" not in text or "is back after" in text, text
    check_rows(out, url)


def test_supervisor_replaces_a_killed_worker(tmp_path):
    """run --workers 2 on the default journal storage (no heartbeats): the supervisor sees a
    worker die, recovers its trials from its lease and starts another in its slot."""
    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=480, length=30)
    sup = subprocess.Popen([sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--workers", "2", "--quiet"],
                           env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: Store(out).count() > 0 and _lease(out, 1).get("trials"), 90, 0.02)
    os.kill(_lease(out, 1)["pid"], signal.SIGKILL)
    o, e = sup.communicate(timeout=300)
    assert sup.returncode == 0, e
    assert "worker w1 stopped (signal 9)" in o
    st = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))))
    assert "RUNNING" not in [tr.state.name for tr in st.trials]
    t = load_results(out, columns=["row", "batch", "index"])
    assert 480 <= t.num_rows <= 480 + 16
    keys = list(zip(t.column("batch").to_pylist(), t.column("index").to_pylist()))
    assert len(set(keys)) == len(keys) and len(np.unique(t.column("row").to_numpy())) == t.num_rows
    m = json.loads((out / "manifest.json").read_text())
    assert "worker w1 started again" in o
    # the replacement w1 records a run of its own unless w2 finished the budget while it started
    assert sorted({r["worker"] for r in m["runs"]}) == [1, 2] and len(m["runs"]) >= 2


def _alive(pid):
    """Is ``pid`` a live process (not gone, not a zombie)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("gap", [0.0, 0.5, 2.5])
def test_a_second_sigterm_still_ends_the_supervisor_cleanly(tmp_path, gap):
    """Two SIGTERMs to ``run --workers 2`` (at once, while its workers finish their batches, or as the
    supervisor exits -- where Python restores SIGTERM's default action): the
    supervisor exits 143 (not killed by the signal), after every worker has ended (no orphan), with
    no trial left RUNNING and every stored row once; the same command then continues the study."""
    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=100000, length=30)
    cmd = [sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--workers", "2", "--quiet"]
    sup = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: Store(out).exists() and Store(out).count() > 0 and _lease(out, 1).get("pid")
                    and _lease(out, 2).get("pid"), 90, 0.02)
    pids = [_lease(out, s)["pid"] for s in (1, 2)]
    sup.send_signal(signal.SIGTERM)
    time.sleep(gap)
    sup.send_signal(signal.SIGTERM)
    o, e = sup.communicate(timeout=180)
    assert sup.returncode == 143, (sup.returncode, e)
    assert "Traceback" not in e and "stopped by SIGTERM" in e, e
    assert not [q for q in pids if _alive(q)]  # no worker outlives its supervisor
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    check_rows(out, journal)
    n = Store(out).count()
    r = subprocess.run(cmd[:5] + ["--budget", str(n + 32), "--workers", "2", "--quiet"], env=_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    check_rows(out, journal)


def test_workers_starting_together_evaluate_no_region_centre_twice(tmp_path):
    """run --workers 3 on the journal storage: the workers start together (they see the same
    number of trials), yet no region centre is evaluated by two trials. (Each worker used to seed
    its sampler from the study's seed and the trial count alone, so all three drew the same
    centres: 16 centres evaluated by 3 workers each.)"""
    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=288)
    r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--workers", "3", "--quiet"],
                       env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    t = load_results(out, columns=["batch", "index", "z", "run"])
    assert len({r_ for r_ in t.column("run").to_pylist()}) >= 2  # more than one worker wrote rows
    centres = t.filter(pa_compute().equal(t.column("index"), 0))
    # the centres from the trials' state stored once per batch (rows keep only trial and index)
    from lstmsearch.search.optuna_search import fill_z
    from lstmsearch.store import Store

    centres = fill_z(Store(out), centres)
    seen = {}
    for b, z in zip(centres.column("batch").to_pylist(), centres.column("z").to_pylist()):
        seen.setdefault(tuple(z), []).append(b)
    st = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))))
    retry = {tr.number: tr.user_attrs.get("retry_of") for tr in st.trials}
    twice = {z: bs for z, bs in seen.items() if len(bs) > 1 and not all(retry.get(b) in bs for b in bs[1:])}
    assert not twice, f"{len(twice)} region centre(s) evaluated by several trials: {list(twice.values())[:5]}"


def pa_compute():
    import pyarrow.compute as pc

    return pc


def test_best_is_exactly_the_best_k_after_workers_a_kill_and_a_continuation(tmp_path):
    """run --workers 2 keeps the best rows' weights in one file per worker (best/w1, best/w2); once
    every worker has stopped -- here after one was SIGKILLed mid-run and replaced, and again after a
    continuation -- the union of the files is exactly the best k rows on disk (each worker used to
    keep its own best k, so together they held up to 2k), with the rows' own weights."""
    import pyarrow.parquet as pq

    p, out = write_study(tmp_path, strategy_text=OPTUNA, budget=320, length=30, keep_weights=5)
    cmd = [sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--workers", "2", "--quiet"]
    sup = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: Store(out).count() > 0 and _lease(out, 1).get("trials"), 90, 0.02)
    os.kill(_lease(out, 1)["pid"], signal.SIGKILL)
    o, e = sup.communicate(timeout=300)
    assert sup.returncode == 0, e

    def assert_exact():
        t = Store(out).read(columns=["row", "nmse"])
        rows, nmse = t.column("row").to_numpy(), t.column("nmse").to_numpy()
        want = sorted(rows[np.lexsort((rows, nmse))[:5]].tolist())
        held = [pq.read_table(f) for f in sorted((out / "best").glob("w*.parquet"))]
        got = sorted(r for b in held for r in b.column("row").to_pylist())
        assert got == want, (got, want)
        from lstmsearch.query import open_study, settings_of

        cfg, store = open_study(out)
        for b in held:
            if not b.num_rows:
                continue
            b = b.sort_by("row")
            rows_t = store.read(filter=ds.field("row").isin(b.column("row")))
            rebuilt = settings_of(cfg, store, rows_t.set_column(
                rows_t.schema.get_field_index("weights"), "weights",
                pa.nulls(rows_t.num_rows, rows_t.schema.field("weights").type)))
            np.testing.assert_array_equal(np.asarray(b.column("weights").to_pylist(), np.float32), rebuilt)

    assert_exact()
    r = subprocess.run(cmd[:5] + ["--budget", str(Store(out).count() + 64), "--workers", "2", "--quiet"],
                       env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert_exact()
    from lstmsearch.cli import main

    assert main(["check", str(out)]) == 0
