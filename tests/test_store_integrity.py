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


# ------------------------------------------------------- 2. corruption is detected, never silent
@pytest.fixture()
def stored(tmp_path):
    p, out = write_study(tmp_path, strategy="sweep", budget=150, keep_weights=150)
    run_study(p)
    return p, out


def _check(capsys, out):
    from lstmsearch.cli import main

    rc = main(["check", str(out)])
    return rc, capsys.readouterr()


def test_parts_carry_checksums_hash_rows_and_identity(stored):
    import pyarrow.parquet as pq

    p, out = stored
    store = Store(out)
    m = store.read_manifest()
    parts = store.parts()
    assert sorted(m["parts"]) == [q.name for q in parts] and len(parts) == 3
    for q in parts:
        md = pq.read_metadata(q)
        assert md.metadata[b"lstmsearch.study_identity"].decode() == m["identity"]
        assert m["parts"][q.name]["rows"] == md.num_rows == 50
        import hashlib
        assert m["parts"][q.name]["sha256"] == hashlib.sha256(q.read_bytes()).hexdigest()


def test_check_a_clean_store(stored, capsys):
    _, out = stored
    rc, cap = _check(capsys, out)
    assert rc == 0, cap
    lines = cap.out.strip().splitlines()
    assert lines[0].split() == ["part", "rows", "status"] and len(lines) == 6
    assert all(ln.split()[1:] == ["50", "ok"] for ln in lines[1:4])
    assert lines[4].split() == ["best/w0.parquet", "150", "ok"]  # the best rows' weights are listed with the parts
    assert lines[-1].endswith("3 parts ok, 150 rows, 1 best-rows file(s) ok")


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "data" / "examples").iterdir()
                                           if (p / "manifest.json").is_file()))
def test_check_a_shipped_store_without_hashes(example, capsys):
    """Stores written before hashes were recorded: 'ok (no recorded hash)', not damage."""
    rc, cap = _check(capsys, ROOT / "data" / "examples" / example)
    assert rc == 0, cap.out + cap.err
    assert "not ok" not in cap.out


def test_a_flipped_bit_is_never_silent(stored, capsys):
    """One bit flipped anywhere in a part: `check` reports it (exit 1), and a read either leaves
    the part out with a warning or returns exactly the stored rows -- never different data."""
    import warnings

    _, out = stored
    store = Store(out)
    part = store.parts()[1]
    good = part.read_bytes()
    expected = Store(out).read()
    size = len(good)
    for k in range(40):
        pos = (k * 7919 + 13) % size
        bad = bytearray(good)
        bad[pos] ^= 1 << (k % 8)
        part.write_bytes(bytes(bad))
        rc, cap = _check(capsys, out)
        assert rc == 1 and "content hash differs" in cap.out, (pos, cap.out)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s = Store(out)
            try:
                t = s.read()
            except Exception:  # noqa: BLE001 - an error is not silent either
                continue
        if part.name in s.damaged:
            assert any("damaged part" in str(w.message) for w in caught)
            assert t.num_rows == expected.num_rows - 50
        else:
            assert t.equals(expected), pos
    part.write_bytes(good)
    assert _check(capsys, out)[0] == 0


def test_a_deleted_part_is_noticed(stored, capsys):
    p, out = stored
    store = Store(out)
    gone = store.parts()[1]
    gone.unlink()
    rc, cap = _check(capsys, out)
    assert rc == 1 and f"{gone.name}" in cap.out and "missing" in cap.out
    report = run_study(p)  # the run says so, one line for the part
    lines = [m for m in report.messages if gone.name in m]
    assert len(lines) == 1 and "missing" in lines[0], report.messages


def test_a_part_with_other_row_count_is_quarantined(stored, capsys):
    import pyarrow.parquet as pq

    p, out = stored
    store = Store(out)
    part = store.parts()[2]
    pq.write_table(pq.read_table(part).slice(0, 10), part)
    rc, cap = _check(capsys, out)
    assert rc == 1 and "10 rows, the manifest records 50" in cap.out
    report = run_study(p)
    assert any("moved the damaged part" in m and part.name in m for m in report.messages), report.messages
    assert (out / "rows" / "damaged" / part.name).exists()
    rc, cap = _check(capsys, out)  # the sweep went on from the rows it had: that chunk is evaluated again
    assert rc == 0 and "quarantined in rows/damaged/; its batches 2 to 2 were evaluated again" in cap.out


def test_check_quarantine_moves_a_changed_part_aside(stored, capsys):
    """A part whose bytes changed but still reads (a run does not re-hash): `check --quarantine`
    moves it to rows/damaged/; reads and runs leave it out; `check` then says quarantined."""
    from lstmsearch.cli import main

    p, out = stored
    part = Store(out).parts()[0]
    data = bytearray(part.read_bytes())
    data[5] ^= 1
    part.write_bytes(bytes(data))
    assert main(["check", str(out), "--quarantine"]) == 1
    cap = capsys.readouterr()
    assert f"moved the damaged part {part.name}" in cap.out and "content hash differs" in cap.out
    assert (out / "rows" / "damaged" / part.name).exists() and not part.exists()
    assert Store(out).count() == 100
    assert main(["check", str(out)]) == 1 and "quarantined in rows/damaged/" in capsys.readouterr().out


# ------------------------------------------------------------ 3. a study's identity is in its data
def test_manifest_deleted_then_another_study_is_refused(stored, tmp_path, capsys):
    """Manifest deleted, then a different study (another hidden size) run into the folder:
    refused with one line, nothing written."""
    from lstmsearch.cli import main

    p, out = stored
    (out / "manifest.json").unlink()
    before = sorted((q.name, q.stat().st_size) for q in out.rglob("*"))
    (tmp_path / "other").mkdir()
    other, _ = write_study(tmp_path / "other", strategy="sweep", budget=300, hidden=4)
    rc = main(["run", str(other), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "holds rows of another study" in lines[0], err
    assert "nothing was written" in lines[0]
    assert sorted((q.name, q.stat().st_size) for q in out.rglob("*")) == before


def test_a_replaced_manifest_does_not_hide_the_parts_study(stored, tmp_path):
    p, out = stored
    (tmp_path / "other").mkdir()
    other, other_out = write_study(tmp_path / "other", strategy="sweep", budget=50, hidden=4)
    run_study(other)
    (out / "manifest.json").write_bytes((other_out / "manifest.json").read_bytes())
    n = Store(out).count()
    with pytest.raises(LstmsearchError, match="holds rows of another study"):
        run_study(other, out=out)
    assert Store(out).count() == n


def test_a_deleted_manifest_is_rebuilt_for_the_same_study(stored, capsys):
    from lstmsearch.cli import main

    p, out = stored
    old = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()
    rows_before = Store(out).read()
    rc = main(["run", str(p), "--budget", "200", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    warn = [ln for ln in cap.err.splitlines() if "rebuilt" in ln]
    assert len(warn) == 1 and warn[0].startswith("lstmsearch: warning:") and "missing" in warn[0], cap.err
    m = json.loads((out / "manifest.json").read_text())
    assert m["identity"] == old["identity"] and m["rebuilt"]
    assert {k: v for k, v in m["parts"].items() if k in old["parts"]} == old["parts"]
    assert m["runs"][0] == {"run": 0, "rebuilt": True} and m["runs"][1]["run"] == 1
    store = Store(out)
    assert store.count() == 200
    t = store.read()
    # the rows are as they were; weights and readout are those of the best keep_weights rows now
    same = [c for c in rows_before.column_names if c not in ("weights", "readout")]
    assert t.slice(0, 150).select(same).equals(rows_before.select(same))
    assert main(["check", str(out)]) == 0
