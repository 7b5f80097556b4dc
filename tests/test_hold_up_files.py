"""Hold up, round three (issue 24), the store's part: every file of a study is verified, every bad
file is one line, repair leaves a clean store, and best/ is exactly the best k rows on disk after
kills. Each test is an attack of the issue: the damage, what ``check`` and the read commands say."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from lstmsearch import run_study
from lstmsearch.cli import main
from lstmsearch.errors import DamagedPartWarning
from lstmsearch.store import Store

from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "lstmsearch" / "store"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from lstmsearch.run import writer

    tmp = tmp_path_factory.mktemp("files")
    path, out = write_study(tmp, "f", strategy="sweep", budget=150, keep_weights=5)
    rows, writer.MIN_PART_ROWS = writer.MIN_PART_ROWS, 1  # one part a batch (conftest's part_per_batch)
    try:
        run_study(path, progress=False)
    finally:
        writer.MIN_PART_ROWS = rows
    return path, out


@pytest.fixture
def copy(study, tmp_path):
    """A fresh copy of the module's study (its folder and study file), to damage."""
    import shutil

    path, out = study
    new_out = tmp_path / "data" / "f"
    shutil.copytree(out, new_out)
    new_path = tmp_path / "f.toml"
    new_path.write_text(path.read_text().replace(out.as_posix(), new_out.as_posix()))
    return new_path, new_out


def _check(capsys, out, *extra):
    rc = main(["check", str(out), *extra])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    return rc, cap.out


def _one_warning(capsys, name):
    """Exactly the lines of stderr that name ``name``: at least one, each a warning, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    named = [ln for ln in err.splitlines() if name in ln]
    assert named and all(ln.startswith("lstmsearch: warning:") for ln in named), err
    return named


# ------------------------------------------------------------------ the rooms of the store
def test_the_store_is_split_into_rooms_under_400_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in STORE.glob("*.py")}
    assert max(sizes.values()) < 400, sizes
    from lstmsearch.store import Store as S

    own = [n for n, v in vars(S).items() if callable(v) and not n.startswith("__")]
    assert len(own) <= 5, own  # Store puts its rooms together; it holds no room of its own


# ------------------------------------------------------------------ best/
def test_a_best_file_with_other_weights_is_never_silent(copy, capsys):
    """A best/ file rewritten with one weight changed (a valid Parquet file: page checksums and
    all) is refused by its recorded hashes: check exit 1, every read warns, the weights read are
    the row's own (rebuilt from its key)."""
    _, out = copy
    f = out / "best" / "w0.parquet"
    before = Store(out).read()
    t = pq.read_table(f)
    w = t.column("weights").combine_chunks()
    flat = w.flatten().to_numpy(zero_copy_only=False).copy()
    flat[3] += 0.5
    t = t.set_column(t.schema.get_field_index("weights"), "weights",
                     pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), w.type.list_size))
    pq.write_table(t, f, write_page_checksum=True)
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(r"best/w0.parquet\s+\S+\s+.*differ", said), said
    got = Store(out).read()
    _one_warning(capsys, "w0.parquet")
    from lstmsearch.query import open_study, settings_of

    cfg, store = open_study(out)
    np.testing.assert_array_equal(settings_of(cfg, store, got), settings_of(cfg, Store(out), before))


def test_a_best_file_of_another_study_or_an_older_run_is_refused(copy, tmp_path, capsys):
    path, out = copy
    (tmp_path / "o").mkdir()
    other_path, other_out = write_study(tmp_path / "o", "f", strategy="sweep", budget=150, keep_weights=5,
                                        hidden=3, length=7)
    run_study(other_path, progress=False)
    mine = (out / "best" / "w0.parquet").read_bytes()
    (out / "best" / "w0.parquet").write_bytes((other_out / "best" / "w0.parquet").read_bytes())
    rc, said = _check(capsys, out)
    assert rc == 1 and "best/w0.parquet" in said, said
    with pytest.warns(DamagedPartWarning, match="w0.parquet"):
        Store(out).read()
    # a part of the other study put among this one's rows: refused by the identity in its metadata
    stray = out / "rows" / "part-w0-000000000150.parquet"
    stray.write_bytes((other_out / "rows" / "part-w0-000000000100.parquet").read_bytes())
    with pytest.warns(DamagedPartWarning, match=stray.name):
        assert Store(out).read().num_rows == 150
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(rf"{stray.name}.*belongs to another study", said), said
    stray.unlink()
    # an older file of this very study, put back after the study went on
    (out / "best" / "w0.parquet").write_bytes(mine)
    assert _check(capsys, out)[0] == 0
    run_study(path, budget=300, progress=False)
    assert (out / "best" / "w0.parquet").read_bytes() != mine
    (out / "best" / "w0.parquet").write_bytes(mine)
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(r"best/w0.parquet.*content hash differs from the manifest's", said), said


def test_a_deleted_best_file_is_named(copy, capsys):
    _, out = copy
    (out / "best" / "w0.parquet").unlink()
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(r"best/w0.parquet\s+\S+\s+missing", said), said
    with pytest.warns(DamagedPartWarning, match=r"best/w0\.parquet recorded in the manifest is missing"):
        Store(out).read()


def test_deleted_generations_are_named_by_check(tmp_path, capsys):
    import shutil

    path, out = write_study(tmp_path, "g", strategy="cmaes", budget=48, keep_weights=5)
    run_study(path, progress=False)
    shutil.rmtree(out / "generations")
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(r"generations/\S+\s+\S+\s+missing", said), said


# ------------------------------------------------------------------ parts
def test_a_deleted_part_is_named_by_every_read(copy, capsys):
    from lstmsearch.query import load_results, sql, top_rows

    _, out = copy
    gone = Store(out).parts()[1]
    gone.unlink()
    for read in (lambda: load_results(out), lambda: top_rows(out, 3)):
        with pytest.warns(DamagedPartWarning, match=gone.name):
            assert read().num_rows
    pytest.importorskip("duckdb")
    with pytest.warns(DamagedPartWarning, match=gone.name):
        sql(out, "SELECT count(*) FROM rows")
    for argv in (["top", str(out)], ["query", str(out), "--where", "nmse < 10"]):
        assert main(argv) == 0
        _one_warning(capsys, gone.name)


def _flip_footer_name(part: Path, name: bytes = b"nmse_long"):
    """A flipped bit in a column name of the part's footer: not UTF-8 any more."""
    import struct

    data = bytearray(part.read_bytes())
    footer = len(data) - 8 - struct.unpack("<i", data[-8:-4])[0]
    at = data.find(name, footer)  # the schema's element (what pq.ParquetFile decodes as UTF-8)
    assert at > 0
    data[at] |= 0x80
    part.write_bytes(bytes(data))


def test_a_flipped_bit_in_a_footer_column_name_is_one_line_everywhere(copy, capsys):
    path, out = copy
    part = Store(out).parts()[1]
    _flip_footer_name(part)
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(rf"{part.name}\s+\S+\s+unreadable", said), said
    assert main(["top", str(out)]) == 0
    _one_warning(capsys, part.name)
    rc, said = _check(capsys, out, "--repair")
    assert rc == 0 and "re-evaluated 50 row(s)" in said, said
    _flip_footer_name(Store(out).parts()[2])
    assert main(["run", str(path), "--repair", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    assert _check(capsys, out)[0] == 0


# ------------------------------------------------------------------ the manifest's content
@pytest.mark.parametrize("old, new", [("hidden = 3", "hidden = 4"), ("high = 3.0", "high = 4.0")])
def test_a_changed_digit_in_the_study_text_is_a_damaged_manifest(copy, capsys, old, new):
    _, out = copy
    m = json.loads((out / "manifest.json").read_text())
    assert old in m["study_text"]
    m["study_text"] = m["study_text"].replace(old, new, 1)
    (out / "manifest.json").write_text(json.dumps(m, indent=2))
    rc, said = _check(capsys, out)
    assert rc == 1 and "manifest.json is damaged" in said, said
    for argv in (["top", str(out)], ["show", str(out), "best"], ["export", str(out), "best", "--format", "json"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and "manifest.json is damaged" in err, err


# ------------------------------------------------------------------ strategy state, journal
def test_a_flipped_bit_in_the_cmaes_state_is_refused_in_one_line(tmp_path, capsys):
    path, out = write_study(tmp_path, "c", strategy="cmaes", budget=48, keep_weights=5)
    run_study(path, progress=False)
    state = out / "cmaes-state.pkl"
    data = bytearray(state.read_bytes())
    data[len(data) * 3 // 4] ^= 0x01  # inside the pickled arrays
    state.write_bytes(bytes(data))
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(r"cmaes-state.pkl\s+\?\s+damaged", said), said
    assert main(["run", str(path), "--budget", "96", "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cmaes-state.pkl is damaged" in lines[0] and "--repair" in lines[0], err
    assert main(["run", str(path), "--budget", "96", "--repair", "--quiet"]) == 0
    capsys.readouterr()
    assert _check(capsys, out)[0] == 0  # repaired: a clean store, the quarantine record included


def test_a_changed_byte_in_the_optuna_journal_is_named_by_check(tmp_path, capsys):
    path, out = write_study(tmp_path, "o", strategy="optuna", budget=64, keep_weights=5)
    run_study(path, progress=False)
    assert _check(capsys, out)[0] == 0
    j = out / "optuna.journal"
    data = bytearray(j.read_bytes())
    at = data.find(b'"datetime_start"')
    at = data.find(b"2", at + 20)  # a digit of a date: still valid JSON
    data[at] = ord("3")
    j.write_bytes(bytes(data))
    rc, said = _check(capsys, out)
    assert rc == 1 and re.search(r"optuna.journal\s+\?\s+damaged", said), said
    assert main(["run", str(path), "--repair", "--quiet"]) == 0
    capsys.readouterr()
    assert _check(capsys, out)[0] == 0


@pytest.mark.parametrize("old, new", [(b'"distribution"', b'"distributiom"'),
                                      (b'"datetime_start":"2', b'"datetime_start":"X')])
def test_a_journal_record_that_does_not_replay_is_one_line_and_run_repair_cuts_it(tmp_path, capsys, old, new):
    """A flipped bit that leaves valid JSON Optuna cannot replay (KeyError 'distribution', an invalid
    date): run refuses in one line naming --repair; run --repair cuts the journal back to its last good
    record, rebuilds the lost trials from the rows, and the study goes on; check is clean after."""
    path, out = write_study(tmp_path, "o", strategy="optuna", budget=64, keep_weights=5)
    run_study(path, progress=False)
    j = out / "optuna.journal"
    data = j.read_bytes()
    at = data.find(old, len(data) // 3)
    j.write_bytes(data[:at] + new + data[at + len(new):])
    assert main(["run", str(path), "--budget", "96", "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "optuna.journal is damaged" in lines[0] and "--repair" in lines[0], err
    assert main(["run", str(path), "--budget", "96", "--repair", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out
    assert Store(out).count() == 96
    assert _check(capsys, out)[0] == 0


# ------------------------------------------------------------------ repair
def test_cmaes_run_repair_leaves_check_clean(tmp_path, capsys):
    """A quarantined CMA-ES part, its generation evaluated again by run --repair: check exit 0."""
    path, out = write_study(tmp_path, "c", strategy="cmaes", budget=64, keep_weights=5)
    run_study(path, progress=False)
    part = Store(out).parts()[1]
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0x08
    part.write_bytes(bytes(data))
    assert _check(capsys, out, "--quarantine")[0] == 1
    run_study(path, budget=64, repair=True, progress=False)
    rc, said = _check(capsys, out)
    assert rc == 0, said


@pytest.mark.gathered
def test_repair_re_evaluates_a_sweep_part_of_several_batches_row_by_row(tmp_path, capsys, monkeypatch):
    """A part that holds two chunks: every row comes back with its own batch, and no weights."""
    from lstmsearch.run import writer

    monkeypatch.setattr(writer, "MIN_PART_ROWS", 100)
    path, out = write_study(tmp_path, "m", strategy="sweep", budget=300, keep_weights=5)
    run_study(path, progress=False)
    parts = Store(out).parts()
    assert all(Store(out).part_rows(p.name) == 100 for p in parts), parts
    original = Store(out).read()
    best_before = pq.read_table(out / "best" / "w0.parquet")
    data = bytearray(parts[1].read_bytes())
    data[len(data) // 3] ^= 0x08
    parts[1].write_bytes(bytes(data))
    rc, said = _check(capsys, out, "--repair")
    assert rc == 0 and "re-evaluated 100 row(s)" in said, said
    again = Store(out).read()
    cols = ["row", "batch", "index", "key_index", "weights", "readout", "nmse", "mse"]
    assert again.select(cols).equals(original.select(cols))
    assert pq.read_table(parts[1], columns=["weights"]).column("weights").null_count == 100
    assert pq.read_table(out / "best" / "w0.parquet").select(["row", "nmse", "weights"]).equals(
        best_before.select(["row", "nmse", "weights"]))


# ------------------------------------------------------------------ best/ after kills
def _best_k_from_rows(out, k):
    t = Store(out).read(columns=["row", "nmse"])
    rows, nmse = t.column("row").to_numpy(), t.column("nmse").to_numpy()
    order = np.lexsort((rows, nmse))[:k]
    return sorted(rows[order].tolist()), t


def _assert_best_is_exact(out, k):
    want, t = _best_k_from_rows(out, k)
    best = pq.read_table(out / "best" / "w0.parquet")
    assert sorted(best.column("row").to_pylist()) == want
    # the weights held are the rows' own: the same as rebuilt from their keys
    from lstmsearch.query import open_study, settings_of

    cfg, store = open_study(out)
    rows = store.read(filter=ds.field("row").isin(best.column("row")))
    rebuilt = settings_of(cfg, store, rows.set_column(rows.schema.get_field_index("weights"), "weights",
                                                      pa.nulls(rows.num_rows, rows.schema.field("weights").type)))
    held = np.asarray(best.sort_by("row").column("weights").to_pylist(), np.float32)
    np.testing.assert_array_equal(held, rebuilt)


def test_best_is_exact_after_a_kill_between_a_part_and_its_best_file(tmp_path, monkeypatch):
    """A run dies after a part that holds new best rows, before best/ is rewritten; the next run
    puts them back: best/ is exactly the best k rows on disk; and so after random SIGKILLs."""
    import lstmsearch.run.loop as loop

    path, out = write_study(tmp_path, "k", strategy="sweep", budget=100, keep_weights=5)
    run_study(path, progress=False)
    real = loop.BestRows.write
    calls = []

    def dies(self):
        if self.changed:  # the part holds new best rows: the process is killed before they reach best/
            calls.append(1)
            raise RuntimeError("killed")
        return real(self)

    monkeypatch.setattr(loop.BestRows, "write", dies)
    with pytest.raises(Exception):
        run_study(path, budget=400, progress=False)
    monkeypatch.setattr(loop.BestRows, "write", real)
    assert calls
    run_study(path, budget=450, progress=False)
    _assert_best_is_exact(out, 5)
    _random_kills(path, out, 5)


def _random_kills(path, out, k):
    """SIGKILLs at random moments of a sweep that keeps going (a few, kept fast); after the last
    continuation, best/ is exactly the best k rows on disk and check is clean."""
    rng = np.random.default_rng(24)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    budget = Store(out).count() + 6000
    killed = []
    for i in range(3):
        before = Store(out).count()
        p = subprocess.Popen([sys.executable, "-m", "lstmsearch.cli", "run", str(path), "--budget", str(budget),
                              "--quiet"], cwd=out.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120  # start-up (slow on a loaded machine): wait for its first part
        while p.poll() is None and Store(out).count() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 0.5)))  # then a random moment of the run
        p.send_signal(signal.SIGKILL)
        code = p.wait()
        assert code in (-signal.SIGKILL, 0), p.stderr.read().decode()[-2000:]
        killed.append(code == -signal.SIGKILL and Store(out).count() < budget)
        budget += 3000
    r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", "run", str(path), "--budget",
                        str(Store(out).count() + 500), "--quiet"], cwd=out.parent, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert any(killed), killed  # at least one kill landed mid-run
    _assert_best_is_exact(out, k)
    assert main(["check", str(out)]) == 0


# ------------------------------------------------------------------ the memory limit named by its source
def test_the_memory_limit_message_names_where_the_limit_comes_from(monkeypatch):
    """A size refused before allocation names the limit's real source: ``ulimit -v`` (RLIMIT_AS) in a
    process run under it, ``$LSTMSEARCH_MEMORY`` when set -- not "this machine has" for every one."""
    from lstmsearch.errors import LstmsearchError, check_memory

    code = ("import resource, sys\n"
            "from lstmsearch.errors import LstmsearchError, check_memory\n"
            "vm = int(dict(l.split(':', 1) for l in open('/proc/self/status'))['VmSize'].split()[0]) * 1024\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), resource.getrlimit(resource.RLIMIT_AS)[1]))\n"
            "try:\n    check_memory('the test', 1e15)\nexcept LstmsearchError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "the address-space limit (ulimit -v, RLIMIT_AS) leaves this process" in r.stdout, r.stdout
    assert "this machine has" not in r.stdout
    monkeypatch.setenv("LSTMSEARCH_MEMORY", str(1 << 30))
    with pytest.raises(LstmsearchError, match=r"needs about .* GiB of memory; \$LSTMSEARCH_MEMORY allows 1 GiB"):
        check_memory("the test", 1e15)


# ------------------------------------------------------------------ parts the manifest does not record
def test_an_unrecorded_part_is_adopted_after_a_kill_and_refused_from_another_copy(tmp_path, capsys):
    """Each run's id is recorded in the manifest before the run writes a part, and each part carries
    its run's id. A part a killed run wrote before the manifest recorded it is adopted by the next
    run; a part of the same study (same identity) from another copy of it -- a backup continued on
    its own -- put among the rows is refused in one line naming it, and moved to rows/damaged/
    (it used to be adopted silently: same identity)."""
    import shutil

    path, out = write_study(tmp_path, "u", strategy="sweep", budget=100, keep_weights=5)
    run_study(path, progress=False)
    # a kill between a part and the manifest's record of it
    code = ("import os, sys\nfrom lstmsearch import run_study\nfrom lstmsearch.store import Store\n"
            "Store.note_files = lambda self, files: os._exit(9)\n"
            f"run_study({str(path)!r}, budget=200, progress=False)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 9, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    unrecorded = [p.name for p in (out / "rows").glob("part-*.parquet") if p.name not in m["parts"]]
    assert unrecorded and all(r_.get("id") for r_ in m["runs"])
    n = Store(out).count()
    run_study(path, budget=n + 50, progress=False)
    m = json.loads((out / "manifest.json").read_text())
    assert set(unrecorded) <= set(m["parts"]) and Store(out).count() == n + 50
    assert main(["check", str(out)]) == 0
    # another copy of the study (a backup), continued on its own; one of its new parts is put here
    other = tmp_path / "copy"
    shutil.copytree(out, other)
    before = {p.name for p in (other / "rows").glob("part-*.parquet")}
    run_study(path, budget=n + 150, progress=False, out=other)
    foreign = sorted(p for p in (other / "rows").glob("part-*.parquet") if p.name not in before)[-1]
    rows_before = Store(out).read(columns=["row"]).column("row").to_pylist()
    shutil.copy(foreign, out / "rows" / foreign.name)
    capsys.readouterr()
    assert main(["check", str(out)]) == 1
    said = capsys.readouterr().out
    assert foreign.name in said and "none of this study's runs" in said, said
    lines = []
    run_study(path, budget=len(rows_before) + 50, progress=False, echo=lines.append)
    refused = [ln for ln in lines if foreign.name in ln]
    assert len(refused) == 1 and "none of this study's runs" in refused[0], lines
    assert (out / "rows" / "damaged" / foreign.name).exists()
    assert set(rows_before) <= set(Store(out).read(columns=["row"]).column("row").to_pylist())
