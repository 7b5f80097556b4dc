"""Hold up (issue 16): nothing of the user's is destroyed, secrets stay secret, reading is safe,
signals, refuse before allocating. Each test is one row of the fault and bad-input tables in
docs/guide.md: the fault or input, and what the user gets."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstmsearch import run_study
from lstmsearch.cli import main
from lstmsearch.config import parse_study
from lstmsearch.errors import ConfigError, LstmsearchError, check_output, redact_url

from search_helpers import one_line, study_text, write_study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hold")
    path, out = write_study(tmp, "h", strategy="sweep", budget=100, keep_weights=5)
    run_study(path, progress=False)
    return path, out


# ------------------------------------------------------------ 1. nothing of the user's is destroyed
def test_export_onto_the_manifest_is_refused(study, capsys):
    _, out = study
    before = (out / "manifest.json").read_bytes()
    for fmt in ("json", "npz", "torch"):
        one_line(capsys, main(["export", str(out), "best", "--format", fmt, "-o", str(out / "manifest.json")]),
                 r"inside the study folder .*never writes there")
    one_line(capsys, main(["export", str(out), "best", "--format", "json", "-o", str(out / "rows" / "x.json")]),
             r"inside the study folder")
    assert (out / "manifest.json").read_bytes() == before
    assert not (out / "rows" / "x.json").exists()


def test_export_onto_an_existing_file_needs_force(study, tmp_path, capsys):
    _, out = study
    mine = tmp_path / "mine.json"
    mine.write_text("precious")
    line = one_line(capsys, main(["export", str(out), "best", "--format", "json", "-o", str(mine)]),
                    r"already exists; pass --force")
    assert str(mine) in line
    assert mine.read_text() == "precious"
    assert main(["export", str(out), "best", "--format", "json", "-o", str(mine), "--force"]) == 0
    assert json.loads(mine.read_text())["study"] == "h"


def test_every_command_that_writes_refuses_an_existing_path(study, tmp_path, capsys):
    _, out = study
    f = tmp_path / "taken"
    f.write_text("precious")
    for argv, option in [
        (["query", str(out), "--output", str(f.with_suffix(".csv"))], "--output"),
        (["lengths", str(out), "best", "--factors", "1", "--out", str(f.with_suffix(".parquet"))], "--out"),
        (["lengths", str(out), "best", "--factors", "1", "--plot", str(f.with_suffix(".png"))], "--plot"),
        (["explain", str(out), "best", "--plot", str(f.with_suffix(".png"))], "--plot"),
        (["construct", "--hidden", "2", "--lengths", "10", "--out", str(f.with_suffix(".npz"))], "--out"),
    ]:
        target = Path(argv[-1])
        target.write_text("precious")
        one_line(capsys, main(argv), rf"{option} .* already exists; pass --force")
        assert target.read_text() == "precious"
    # and inside a study folder, even with --force
    for argv in [["query", str(out), "--output", str(out / "q.parquet"), "--force"],
                 ["lengths", str(out), "best", "--factors", "1", "--out", str(out / "l.parquet"), "--force"],
                 ["explain", str(out), "best", "--plot", str(out / "plots" / "t.png"), "--force"]]:
        one_line(capsys, main(argv), r"inside the study folder")
        assert not Path(argv[-2]).exists()
    assert main(["query", str(out), "--output", str(f.with_suffix(".csv")), "--force"]) == 0
    assert f.with_suffix(".csv").read_text() != "precious"


def test_report_and_extract_never_write_into_a_study(study, tmp_path, capsys):
    _, out = study
    one_line(capsys, main(["report", str(out), "--out", str(out / "rep"), "--no-plots", "--top", "1"]),
             r"--out .*inside the study folder")
    assert not (out / "rep").exists()
    one_line(capsys, main(["extract", str(out), "--top", "1", "--to", str(out)]), r"--to .*inside the study folder")
    assert not (out / "h").exists()
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "report.md").write_text("precious")
    one_line(capsys, main(["report", str(out), "--out", str(rep), "--no-plots", "--top", "1", "--lengths", "1"]),
             r"report\.md.* already exists; pass --force")
    assert (rep / "report.md").read_text() == "precious"


def test_check_output_allows_new_paths(tmp_path):
    assert check_output(tmp_path / "new.json") == tmp_path / "new.json"
    with pytest.raises(LstmsearchError, match="already exists"):
        check_output(tmp_path)


# ------------------------------------------------------------ 2. secrets stay secret
@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:secret@host/db", "postgresql://u:***@host/db"),
    ("postgresql://u:p@ss@host/db", "postgresql://u:***@host/db"),
    ("postgresql+psycopg://u:a@b@c@host:5432/db?x=1", "postgresql+psycopg://u:***@host:5432/db?x=1"),
    ("cannot open postgresql://u:p@ss@host/db: refused (x@y)", "cannot open postgresql://u:***@host/db: refused (x@y)"),
    ("postgresql://u@host/db", "postgresql://u@host/db"),
    ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
])
def test_redact_url_hides_the_whole_password(url, shown):
    assert redact_url(url) == shown
    assert "ss@" not in redact_url(url).split("://", 1)[-1].split("@")[0]


def test_a_password_in_a_study_file_is_refused(tmp_path, capsys):
    text = study_text("pw", tmp_path / "data" / "pw", strategy="optuna", budget=8).replace(
        '[strategy]\n', '[strategy]\nstorage = "postgresql://u:hunter2@localhost/db"\n')
    with pytest.raises(ConfigError, match=r"\[strategy\] storage holds a password .*PGPASSFILE.*LSTMSEARCH_STORAGE"):
        parse_study(text, source="pw.toml")
    (tmp_path / "pw.toml").write_text(text)
    line = one_line(capsys, main(["run", str(tmp_path / "pw.toml"), "--quiet"]), r"PGPASSFILE")
    assert "hunter2" not in line and "u:***@localhost" in line
    assert not (tmp_path / "data" / "pw").exists()


def test_a_password_given_with_storage_is_written_nowhere(tmp_path):
    from lstmsearch.run.loop import study_config
    from lstmsearch.search import make_strategy
    from lstmsearch.store import Store
    from lstmsearch.store.manifest import prepare_manifest, storage_key

    path, out = write_study(tmp_path, "ps", strategy="optuna", budget=8)
    url = "postgresql://u:p@ss-hunter2@127.0.0.1:1/db"  # nothing listens on port 1: refused at once
    cfg = study_config(path, storage=url)
    assert "hunter2" not in cfg.text
    assert "hunter2" not in json.dumps(prepare_manifest(cfg, Store(cfg.out)), default=str)
    assert storage_key(cfg) == "postgresql://u:***@127.0.0.1:1/db"
    with pytest.raises(LstmsearchError) as exc:
        make_strategy(cfg, cfg.space_obj, Store(cfg.out), storage_retry_s=0.0)
    assert "hunter2" not in str(exc.value) and "ss-" not in str(exc.value)


# ------------------------------------------------------------ 3. reading is safe
TEMPLATE = '''
import pathlib
with open(pathlib.Path(__file__).with_name("imported.txt"), "a") as f:
    f.write("x")
import numpy as np


def make(z, cell):
    out = np.zeros((z.shape[0], cell.n_params), np.float32)
    out[:, :z.shape[1]] = z
    return out
'''


def test_read_only_commands_never_import_a_template(tmp_path, capsys):
    (tmp_path / "tpl.py").write_text(TEMPLATE)
    marker = tmp_path / "imported.txt"
    path, out = write_study(tmp_path, "t", strategy="sweep", budget=50, keep_weights='"all"',
                            space='[space]\nkind = "template"\nfunction = "tpl.py:make"\ndim = 2\n')
    parse_study(path.read_text(), str(path), base_dir=tmp_path)
    assert not marker.exists()  # parsing the study file runs nothing
    assert main(["run", str(path), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert re.search(r"space: template make from .*tpl\.py; this run imports and runs that code", said), said
    assert marker.exists()
    marker.unlink()
    for argv in (["top", str(out)], ["query", str(out), "--where", "nmse >= 0"], ["show", str(out), "best"],
                 ["query", str(out), "--sql", "SELECT count(*) AS n FROM rows"]):
        assert main(argv) == 0, argv
    assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--no-plots", "--top", "1",
                 "--lengths", "1", "--sequences", "8"]) == 0
    assert main(["reproduce", str(out), "best", "--factors", "1", "--sequences", "8"]) == 0
    capsys.readouterr()
    assert not marker.exists()


def test_a_missing_template_function_is_refused_without_running_the_file(tmp_path):
    (tmp_path / "tpl.py").write_text(TEMPLATE)
    text = study_text("t2", tmp_path / "d", space='[space]\nkind = "template"\nfunction = "tpl.py:nope"\ndim = 2\n')
    with pytest.raises(ConfigError, match=r"has no callable 'nope'"):
        parse_study(text, "t2.toml", base_dir=tmp_path)
    assert not (tmp_path / "imported.txt").exists()


@pytest.mark.parametrize("query, refused", [
    ("SELECT * FROM read_csv('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_text('/etc/passwd')", "/etc/passwd"),
    ("COPY (SELECT * FROM rows) TO '{tmp}/leak.csv'", "leak.csv"),
    ("COPY rows TO '{out}/rows/part-w0-0.parquet'", "part-w0-0"),
    ("ATTACH '{tmp}/x.db' AS x", "x.db"),
    ("SET enable_external_access = true", "locked"),
])
def test_query_sql_reads_only_the_study_rows(study, tmp_path, capsys, query, refused):
    pytest.importorskip("duckdb")
    _, out = study
    parts = {p: p.read_bytes() for p in (out / "rows").glob("*.parquet")}
    line = one_line(capsys, main(["query", str(out), "--sql", query.format(tmp=tmp_path, out=out)]),
                    r"SQL refused: .*only the study's own rows")
    assert refused in line
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "x.db").exists()
    assert {p: p.read_bytes() for p in (out / "rows").glob("*.parquet")} == parts
    assert main(["query", str(out), "--sql", "SELECT count(*) AS n FROM rows"]) == 0
    assert "100" in capsys.readouterr().out


# ------------------------------------------------------------ 5. refuse before allocating
@pytest.mark.parametrize("argv, pattern", [
    (["reproduce", "{out}", "best", "--factors", "1,x"], r"--factors must be a comma-separated list"),
    (["reproduce", "{out}", "best", "--factors", "1000000000"],
     r"sequences of length 6000000000 needs about .* GiB of memory; (this machine has|.* leaves this process) .* GiB"),
    (["reproduce", "{out}", "best", "--factors", "1,inf"], r"--factors must hold finite numbers"),
    (["extract", "{out}", "--rows", "abc", "--to", "{tmp}/e"], r"ROW must be a row id .* got 'abc'"),
    (["show", "{out}", str(2 ** 64)], r"ROW must be a row id from 0 to"),
    (["export", "{out}", str(2 ** 63), "--format", "json", "-o", "{tmp}/a.json"], r"ROW must be a row id from 0"),
    (["run", "{path}", "--budget", "99999999999999999999999", "--quiet"], r"budget .* more settings than a store"),
    (["evaluate", "--n-settings", "1000000000000", "--quiet"],
     r"1000000000000 settings of .* parameters needs about .* GiB of memory; (this machine has|.* leaves this process)"),
    (["evaluate", "--n-settings", "10", "--sequences", "1000000", "--length", "10000000", "--quiet"],
     r"sequences of length 10000000 needs about .* GiB"),
])
def test_bad_numbers_are_one_line_refusals(study, tmp_path, capsys, argv, pattern):
    path, out = study
    argv = [a.format(out=out, tmp=tmp_path, path=path) for a in argv]
    one_line(capsys, main(argv), pattern)
    assert not (tmp_path / "e").exists() and not (tmp_path / "a.json").exists()


def test_n_settings_not_a_number_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--n-settings", "1e9"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid int value: '1e9'" in err and "Traceback" not in err


@pytest.mark.parametrize("strategy_text, key", [
    ('[strategy]\nkind = "optuna"\nsampler = "random"\nbatch = 4\nregion = { size = 1000000000, scale = 0.1 }\n',
     r"\[strategy\] batch x region size .*4000000000 settings"),
    ('[strategy]\nkind = "cmaes"\npopsize = 100000000000\n', r"\[strategy\] popsize .*100000000000 settings"),
    ('[strategy]\nkind = "sweep"\nmethod = "random"\nbatch = 100000000000\n', r"\[strategy\] batch"),
])
def test_a_population_too_big_for_the_machine_is_refused_when_parsed(tmp_path, strategy_text, key):
    text = study_text("big", tmp_path / "d", strategy_text=strategy_text)
    with pytest.raises(ConfigError, match=key + r".*needs about .* GiB of memory; (this machine has|.* leaves this process)"):
        parse_study(text, "big.toml")


def test_sequences_times_length_too_big_is_refused_when_parsed(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMSEARCH_MEMORY", str(2 ** 30))
    text = study_text("long", tmp_path / "d", length=10_000_000).replace("sequences = 24", "sequences = 1000000")
    with pytest.raises(ConfigError, match=r"\[eval\] sequences .*of length 10000000 needs about .* 1 GiB"):
        parse_study(text, "long.toml")
