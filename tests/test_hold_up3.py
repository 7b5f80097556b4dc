"""Hold up, round two, the rest (issue 16): quarantined rows re-evaluated, a damaged manifest,
checksums on the SQL path, workers and a cut journal, ``--repair`` for every strategy, control
characters in names and paths. Each test is one row of the fault and bad-input tables in
docs/guide.md: the fault or input, and what the user gets."""

import json
import re
from pathlib import Path

import pytest

from lstmsearch import run_study
from lstmsearch.cli import main
from lstmsearch.config import parse_study
from lstmsearch.errors import ConfigError
from lstmsearch.store import Store

from search_helpers import one_line, study_text, write_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("h3")
    path, out = write_study(tmp, "h", strategy="sweep", budget=100, keep_weights=5)
    run_study(path, progress=False)
    return path, out


# ------------------------------------------------------------ control characters
@pytest.mark.parametrize("argv, what", [
    (["top", "h\x00x"], "STUDY"),
    (["top", "h", "--data", "data\x00x"], "--data"),
    (["run", "{path}", "--out", "{tmp}/o\x00x", "--quiet"], "--out"),
    (["run", "{path}", "--data", "{tmp}/d\x1bx", "--quiet"], "--data"),
    (["run", "{path}", "--storage", "sqlite:///{tmp}/x\x00y.db", "--quiet"], "--storage"),
    (["show", "{out}", "1\x00"], "ROW"),
    (["export", "{out}", "best", "--format", "json", "-o", "{tmp}/a\x00.json"], "--output"),
    (["check", "{out}\x00"], "STUDY"),
    (["report", "{out}", "x\x07y", "--out", "{tmp}/rep"], "STUDY"),
])
def test_a_control_character_on_the_command_line_is_a_one_line_refusal(study, tmp_path, capsys, argv, what):
    path, out = study
    argv = [a.format(path=path, out=out, tmp=tmp_path) for a in argv]
    line = one_line(capsys, main(argv), rf"{re.escape(what)} holds the control character .*remove it")
    assert "\x00" not in line and "\x1b" not in line
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("key, value", [("name", "h\\u0000x"), ("out", "{tmp}/o\\u0000x"),
                                        ("description", "a\\u001b[31m red")])
def test_a_control_character_in_a_study_file_is_refused(tmp_path, capsys, key, value):
    text = study_text("c", tmp_path / "d")
    if key == "description":
        text = text.replace("[study]\n", f'[study]\ndescription = "{value}"\n')
    else:
        line = f'{key} = "{value.format(tmp=tmp_path.as_posix())}"'
        text = re.sub(rf'(?m)^{key} = ".*"$', lambda _: line, text)
    with pytest.raises(ConfigError, match=rf"\[study\] {key} holds the control character"):
        parse_study(text, "c.toml")
    (tmp_path / "c.toml").write_text(text)
    one_line(capsys, main(["run", str(tmp_path / "c.toml"), "--quiet"]), rf"\[study\] {key} holds the control")
    assert not (tmp_path / "d").exists()


def test_a_storage_url_with_a_nul_in_a_study_file_is_refused(tmp_path):
    text = study_text("c", tmp_path / "d", strategy="optuna").replace(
        "[strategy]\n", '[strategy]\nstorage = "sqlite:///x\\u0000.db"\n')
    with pytest.raises(ConfigError, match=r"\[strategy\] storage holds the control character '\\x00'"):
        parse_study(text, "c.toml")


def test_a_description_may_hold_newlines(tmp_path):
    text = study_text("c", tmp_path / "d").replace("[study]\n", '[study]\ndescription = "two\\nlines\\tok"\n')
    assert parse_study(text, "c.toml").description == "two\nlines\tok"


def test_a_nul_in_a_library_path_is_a_one_line_error(tmp_path):
    from lstmsearch import load_results
    from lstmsearch.errors import LstmsearchError

    with pytest.raises(LstmsearchError, match="the study folder holds the control character"):
        Store(tmp_path / "a\x00b")
    with pytest.raises(LstmsearchError, match="control character"):
        load_results(str(tmp_path / "a\x00b.toml"))


# ------------------------------------------------------------ a damaged (not deleted) manifest
DAMAGE = {
    "truncated": lambda b: b[: len(b) // 2],
    "garbage": lambda b: bytes(range(256)) * 4,
    "a JSON list": lambda b: b"[1, 2, 3]",
    "study_text missing": lambda b: json.dumps({k: v for k, v in json.loads(b).items() if k != "study_text"}).encode(),
    "runs not a list": lambda b: json.dumps(dict(json.loads(b), runs="x")).encode(),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_manifest_is_refused_by_readers_and_rebuilt_by_run(tmp_path, capsys, damage):
    path, out = write_study(tmp_path, "m", strategy="sweep", budget=100, keep_weights=5)
    run_study(path)
    rows = Store(out).read()
    bad = DAMAGE[damage]((out / "manifest.json").read_bytes())
    (out / "manifest.json").write_bytes(bad)
    for argv in (["top", str(out), "--no-check"], ["query", str(out)], ["show", str(out), "3"],
                 ["reproduce", str(out), "3", "--no-check"], ["export", str(out), "3", "-o", str(tmp_path / "x.json")],
                 ["report", str(out), "--out", str(tmp_path / "rep")], ["run", str(out), "--quiet"]):
        one_line(capsys, main(argv), r"manifest\.json is damaged \(.+\); its rows are intact: run the study file")
        assert (out / "manifest.json").read_bytes() == bad  # never silently replaced
    assert main(["check", str(out)]) == 1
    said = capsys.readouterr().out
    assert "2 parts ok" not in said and "manifest.json is damaged" in said and "100 rows readable" in said
    rc = main(["run", str(path), "--budget", "150", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    warn = [ln for ln in cap.err.splitlines() if "rebuilt" in ln]
    assert len(warn) == 1 and warn[0].startswith("lstmsearch: warning:") and "was damaged" in warn[0], cap.err
    kept = list(out.glob("manifest.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == bad and kept[0].name in warn[0]
    store = Store(out)
    assert store.count() == 150 and store.read().slice(0, 100).equals(rows)
    assert main(["check", str(out)]) == 0 and main(["top", str(out), "--no-check"]) == 0


# ------------------------------------------------------------ checksums on the --sql path
@pytest.mark.parametrize("recorded", [True, False])
def test_query_sql_leaves_out_a_corrupt_part_and_says_so(tmp_path, capsys, recorded):
    """A part changed on disk: with the manifest's hash it is caught by the hash (even where its
    pages still read), without one by the page checksums; either way one warning line names it
    and the SQL sees the other parts' rows only, as the pyarrow path does."""
    pytest.importorskip("duckdb")
    path, out = write_study(tmp_path, "q", strategy="sweep", budget=150, keep_weights='"all"')
    run_study(path)
    if not recorded:  # a store written before hashes were recorded
        m = json.loads((out / "manifest.json").read_text())
        del m["parts"]
        (out / "manifest.json").write_text(json.dumps(m))
    part = Store(out).parts()[1]
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0x10  # inside a data page
    part.write_bytes(bytes(data))
    assert main(["query", str(out), "--sql", "SELECT count(*) AS n, count(DISTINCT row) AS r FROM rows"]) == 0
    cap = capsys.readouterr()
    warn = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(warn) == 1 and warn[0].startswith("lstmsearch: warning: skipped the damaged part file"), cap.err
    assert part.name in warn[0] and ("content hash differs" in warn[0]) == recorded, warn[0]
    assert re.search(r"\b100\s+100\b", cap.out), cap.out


# ------------------------------------------------------------ quarantined rows re-evaluated
def _flip(part, where=3):
    data = bytearray(part.read_bytes())
    data[len(data) // where] ^= 0x08
    part.write_bytes(bytes(data))


def test_check_repair_re_evaluates_a_quarantined_sweep_part_bit_for_bit(tmp_path, capsys):
    path, out = write_study(tmp_path, "r", strategy="sweep", budget=200, keep_weights='"all"')
    run_study(path)
    original = Store(out).read()
    part = Store(out).parts()[1]
    _flip(part)
    assert main(["check", str(out)]) == 1
    capsys.readouterr()
    assert main(["check", str(out), "--repair"]) == 0
    said = capsys.readouterr().out
    assert f"moved the damaged part {part.name}" in said
    assert "re-evaluated 50 row(s) of 1 quarantined part(s) from their sweep keys" in said, said
    assert said.strip().splitlines()[-1].endswith("4 parts ok, 200 rows")
    assert (out / "rows" / "damaged" / part.name).exists() and part.exists()
    again = Store(out).read()
    cols = [c for c in original.column_names if c not in ("time", "wall_s")]
    assert again.select(cols).equals(original.select(cols))
    assert main(["check", str(out), "--repair"]) == 0  # nothing left to do
    assert "re-evaluated" not in capsys.readouterr().out
    report = run_study(path, budget=250)  # and the study goes on from setting 200
    t = Store(out).read(columns=["index"])
    assert report.rows == 250 and sorted(t.column("index").to_pylist()) == list(range(250))


def test_run_repair_re_evaluates_a_lost_sweep_gap_that_a_run_never_fills(tmp_path, capsys):
    path, out = write_study(tmp_path, "g", strategy="sweep", budget=200, keep_weights='"all"')
    run_study(path)
    original = Store(out).read()
    _flip(Store(out).parts()[2])
    assert main(["check", str(out), "--quarantine"]) == 1
    assert "(run --repair re-evaluates them where they can be regenerated)" in capsys.readouterr().out
    run_study(path, budget=250)  # the gap stays: the sweep goes on after setting 199
    assert sorted(Store(out).read(columns=["index"]).column("index").to_pylist()) == \
        list(range(100)) + list(range(150, 300))
    r = run_study(path, budget=350, repair=True)
    assert any("re-evaluated 50 row(s) of 1 quarantined part(s)" in m for m in r.messages), r.messages
    t = Store(out).read()
    assert sorted(t.column("index").to_pylist()) == list(range(350)) and t.num_rows == 350
    cols = ["row", "batch", "index", "z", "key_index", "weights", "readout", "nmse", "mse", "max_abs_err"]
    assert t.filter(pa_field("row") < 200).select(cols).equals(original.select(cols))


def pa_field(name):
    import pyarrow.dataset as ds

    return ds.field(name)


def test_repair_says_in_one_line_that_optuna_rows_are_not_regenerable(tmp_path, capsys):
    path, out = write_study(tmp_path, "o", strategy="optuna", budget=64)
    run_study(path)
    _flip(Store(out).parts()[0])
    assert main(["check", str(out), "--repair"]) == 1
    said = [ln for ln in capsys.readouterr().out.splitlines() if "not re-evaluated" in ln]
    assert len(said) == 1 and "optuna rows are not regenerable from a key" in said[0]
    assert "re-queues" in said[0]


def test_cmaes_damaged_state_and_lost_generation_repaired_by_replay(tmp_path, capsys):
    """CMA-ES: a damaged state file is a one-line refusal naming --repair; run --repair replays the
    optimizer from the stored generations, evaluates again a generation whose part was lost, and
    the study goes on exactly as an uninterrupted run (same z and nmse for every (generation, index))."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path, out = write_study(tmp_path / "a", "c", strategy="cmaes", budget=160)
    ref_path, ref_out = write_study(tmp_path / "b", "c", strategy="cmaes", budget=320)
    run_study(ref_path)
    run_study(path)
    _flip(Store(out).parts()[3])
    assert main(["check", str(out), "--quarantine"]) == 1
    state = out / "cmaes-state.pkl"
    state.write_bytes(state.read_bytes()[:100])
    one_line(capsys, main(["run", str(path), "--budget", "320", "--quiet"]),
             r"cmaes-state\.pkl is damaged .*--repair")
    assert main(["check", str(out), "--repair"]) == 1
    said = capsys.readouterr().out
    assert "16 row(s) of 1 quarantined part(s) were not re-evaluated: cmaes rows" in said and "run STUDY --repair" in said
    r = run_study(path, budget=320, repair=True)
    assert any("set the CMA-ES state aside" in m for m in r.messages), r.messages
    key = ["batch", "index"]
    got = Store(out).read(columns=key + ["z", "nmse"]).sort_by([("batch", "ascending"), ("index", "ascending")])
    ref = Store(ref_out).read(columns=key + ["z", "nmse"]).sort_by([("batch", "ascending"), ("index", "ascending")])
    assert got.num_rows == 320 and got.drop(["row"]).equals(ref.drop(["row"]))


# ------------------------------------------------------------ workers never cut a partial journal
def _journal_study(path):
    import optuna

    return optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path))))


def test_an_append_after_a_partial_journal_record_cuts_it_first(tmp_path):
    """A worker killed (or a full disk) mid-write leaves half a record; the next append (by any
    worker) cuts it and says so, instead of gluing its record to it (which made every later read
    of the journal fail with a JSONDecodeError)."""
    import optuna

    from lstmsearch.search.optuna_search import SafeJournalFile

    path = tmp_path / "optuna.journal"
    said = []
    st = optuna.create_study(study_name="s", storage=optuna.storages.JournalStorage(
        SafeJournalFile(str(path), echo=said.append)))
    st.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines()[-1][:17])  # half a record, no newline
    assert len(_journal_study(path).trials) == 3  # readers skip it
    other = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        SafeJournalFile(str(path), echo=said.append)))
    other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(said) == 1 and "cut a partial record (17 bytes)" in said[0]
    assert path.read_bytes().startswith(whole) and path.read_bytes().endswith(b"\n")
    trials = _journal_study(path).trials  # Optuna's own reader: whole and valid
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5


@pytest.mark.slow
def test_workers_killed_at_random_moments_leave_a_journal_the_next_start_reads(tmp_path):
    """run --workers 2 on the journal storage, a worker SIGKILLed at three random moments: the
    supervisor replaces it, the study reaches its budget, a later run continues it, and no
    (trial, index) is stored twice."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from lstmsearch import load_results

    optuna_text = '[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 2\nregion = { size = 8, scale = 0.1 }\n'
    path, out = write_study(tmp_path, "s", strategy_text=optuna_text, budget=640, length=30)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    sup = subprocess.Popen([sys.executable, "-m", "lstmsearch.cli", "run", str(path), "--workers", "2", "--quiet"],
                           env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rnd = random.Random(16)
    killed = 0
    deadline = time.monotonic() + 120
    while killed < 3 and sup.poll() is None and time.monotonic() < deadline:
        time.sleep(rnd.uniform(0.2, 1.5))
        leases = [json.loads(p.read_text()) for p in (out / "workers").glob("w*.json")] \
            if (out / "workers").is_dir() else []
        pids = [d.get("pid") for d in leases if d.get("pid")]
        if pids:
            try:
                os.kill(rnd.choice(pids), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    o, e = sup.communicate(timeout=300)
    assert sup.returncode == 0, e
    assert killed >= 1
    assert [t.state.name for t in _journal_study(out / "optuna.journal").trials].count("RUNNING") == 0
    r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", "run", str(path), "--budget", "704", "--quiet"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    t = load_results(out, columns=["batch", "index"])
    keys = list(zip(t.column("batch").to_pylist(), t.column("index").to_pylist()))
    assert t.num_rows >= 704 and len(set(keys)) == len(keys)
