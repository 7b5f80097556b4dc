"""Store integrity (issue 16, the store part): one writer for sure, corruption detected and never
silent, a study's identity in its data. Each test is one row of the fault table in docs/guide.md:
the fault, and what the user gets."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lstmsearch import run_study
from lstmsearch.errors import LstmsearchError
from lstmsearch.store import Store

from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]


def _stale_lock(out: Path):
    """A run.lock as a SIGKILLed run leaves it: text naming a process that no longer runs."""
    import platform

    out.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    (out / "run.lock").write_text(json.dumps({"pid": p.pid, "host": platform.node(), "mode": "single"}))
    (out / "optuna.journal.lock").write_text("left by the killed run")


# ------------------------------------------------------------------ 1. one writer, for sure
def test_racing_for_a_stale_lock_exactly_one_wins(tmp_path):
    """Many takers of a stale lock at the same moment: exactly one gets it, the others the
    'being run by process' error naming the winner (an OS lock: no check-then-take)."""
    out = tmp_path / "s"
    for _ in range(20):
        _stale_lock(out)
        barrier = threading.Barrier(4)
        won, lost = [], []

        def take():
            store = Store(out)
            barrier.wait()
            try:
                store.acquire()
                won.append(store)
            except LstmsearchError as exc:
                lost.append(str(exc))

        threads = [threading.Thread(target=take) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(lost) == 3, lost
        assert all(f"is being run by process {os.getpid()}" in m for m in lost), lost
        won[0].release()
        assert not (out / "run.lock").exists()


def test_two_runs_started_together_on_a_stale_lock(tmp_path):
    """Two `lstmsearch run` started together on a study with a stale lock: exactly one runs,
    the other stops with one line; no row lost or duplicated."""
    p, out = write_study(tmp_path, strategy="sweep", budget=20000)
    _stale_lock(out)
    cmd = [sys.executable, "-m", "lstmsearch.cli", "run", str(p), "--quiet"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(pr.wait(timeout=600), pr.communicate()[1]) for pr in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    err = [e for rc, e in results if rc == 2][0]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is being run by process" in lines[0] and "Traceback" not in err, err
    store = Store(out)
    rows = store.read(columns=["row", "index"])
    assert rows.num_rows == 20000 == len(set(rows.column("index").to_pylist()))
    assert not (out / "run.lock").exists() and not (out / "optuna.journal.lock").exists()


def test_a_lock_dies_with_its_holder(tmp_path):
    """A run killed with SIGKILL leaves no lock that blocks the next one."""
    out = tmp_path / "s"
    out.mkdir()
    code = f"from lstmsearch.store import Store; Store({str(out)!r}).acquire(); import os; os.kill(os.getpid(), 9)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    assert (out / "run.lock").exists()
    assert Store(out).lock_holder() is None
    store = Store(out)
    assert "no longer runs" in store.acquire()[0]
    assert Store(out).lock_holder()["pid"] == os.getpid()
    store.release()


def test_a_part_never_overwrites_another(tmp_path):
    p, out = write_study(tmp_path, strategy="sweep", budget=50)
    run_study(p)
    store = Store(out)
    part = store.parts()[0]
    before = part.read_bytes()
    table = store.read()
    other = Store(out)
    with pytest.raises(LstmsearchError, match="already exists"):
        other.append(table)  # the same first row id: the same part name
    assert part.read_bytes() == before
    assert not list((out / "rows").glob(".*.tmp"))
