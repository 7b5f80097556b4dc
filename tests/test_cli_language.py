"""The command line speaks one language: one --data everywhere, ROW = best, export --format npz
read back by --npz, a hint where a study may be, quiet pipes, a spent budget said plainly, one
solve threshold, real reproduce factors, lengths --readout both."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lstmsearch.cli import build_parser
from lstmsearch.cli.args import DATA_HELP
from lstmsearch.config import SOLVED_NMSE, parse_study
from lstmsearch.query import load_results

from search_helpers import study_text

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def cli(*args, cwd=ROOT, ok=True):
    r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", *map(str, args)], capture_output=True, text=True,
                       env=ENV, cwd=cwd, timeout=300)
    if ok:
        assert r.returncode == 0, (r.stdout, r.stderr)
    return r


def one_line_error(r, pattern):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lstmsearch: error: "), r.stderr
    assert re.search(pattern, lines[0]), lines[0]


def _no_out(text):
    """A study file without [study] out: its results go to DATA/NAME."""
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith("out = "))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny sweep study run with ``run --data d`` from a scratch folder: (cwd, folder, best row)."""
    cwd = tmp_path_factory.mktemp("lang")
    (cwd / "s.toml").write_text(_no_out(study_text("s", "unused", budget=50)))
    r = cli("run", "s.toml", "--data", "d", "--quiet", cwd=cwd)
    assert "50 settings evaluated" in r.stdout
    folder = cwd / "d" / "s"
    t = load_results(folder, columns=["row", "nmse"]).sort_by([("nmse", "ascending"), ("row", "ascending")])
    return cwd, folder, int(t.column("row")[0].as_py())


# ---- 1. one --data everywhere
def test_run_data_puts_the_results_in_data_name(study):
    cwd, folder, _ = study
    assert (folder / "manifest.json").is_file() and not (cwd / "data").exists()
    assert "(no rows)" not in cli("top", "s", "--data", "d", cwd=cwd).stdout
    assert "(no rows)" not in cli("top", "s.toml", "--data", "d", cwd=cwd).stdout  # the file, same folder


def test_run_out_is_the_exact_folder_and_study_out_wins_over_data(tmp_path):
    (tmp_path / "a.toml").write_text(_no_out(study_text("a", "unused", budget=50)))
    cli("run", "a.toml", "--out", "exact", "--data", "d", "--quiet", cwd=tmp_path)
    assert (tmp_path / "exact" / "manifest.json").is_file() and not (tmp_path / "d").exists()
    (tmp_path / "b.toml").write_text(study_text("b", "mine/b", budget=50))
    cli("run", "b.toml", "--data", "d", "--quiet", cwd=tmp_path)
    assert (tmp_path / "mine" / "b" / "manifest.json").is_file() and not (tmp_path / "d").exists()


def test_every_data_option_says_the_same():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    having = {}
    for name, p in sub.choices.items():
        for a in p._actions:
            if "--data" in a.option_strings:
                having[name] = a.help
    assert {"run", "worker", "top", "query", "show", "reproduce", "export", "extract", "lengths", "explain",
            "construct", "report"} <= set(having)
    assert set(having.values()) == {DATA_HELP}


# ---- 2. ROW = best
def test_row_best_in_every_row_command(study, tmp_path):
    cwd, folder, best = study
    assert f"row {best}:" in cli("show", "s", "best", "--data", "d", cwd=cwd).stdout
    assert f"row {best}:" in cli("reproduce", "s", "best", "--data", "d", "--factors", "1", "--sequences", "8",
                                 cwd=cwd).stdout
    out = cli("export", "s", "best", "--data", "d", "--format", "json", "-o", tmp_path / "b.json", cwd=cwd)
    assert json.loads((tmp_path / "b.json").read_text())["row"] == best, out.stdout
    assert f"s row {best}" in cli("lengths", "s", "best", "--data", "d", "--factors", "1", cwd=cwd).stdout
    assert f"study s row {best}" in cli("explain", "s", "best", "--data", "d", "--no-prune", cwd=cwd).stdout


@pytest.mark.parametrize("command", ["show", "reproduce", "export", "lengths", "explain"])
def test_row_that_is_neither_integer_nor_best(study, command):
    cwd, _, _ = study
    one_line_error(cli(command, "s", "bset", "--data", "d", cwd=cwd, ok=False), r"ROW must be a row id .* or best")


# ---- 3. export --format npz is what --npz reads
def test_export_npz_read_by_lengths_and_explain(study, tmp_path):
    cwd, _, best = study
    npz = tmp_path / "row.npz"
    cli("export", "s", best, "--data", "d", "--format", "npz", "-o", npz, cwd=cwd)
    same_task = ["--task", "recall_first", "--length", "6", "--dist", "uniform", "--seed", "3", "--sequences", "24"]
    cli("lengths", "s", best, "--data", "d", "--factors", "1,2,10", "--out", tmp_path / "row.parquet", cwd=cwd)
    cli("lengths", "--npz", npz, *same_task, "--factors", "1,2,10", "--out", tmp_path / "npz.parquet", cwd=cwd)
    a, b = pq.read_table(tmp_path / "row.parquet"), pq.read_table(tmp_path / "npz.parquet")
    assert a.num_rows == 6 and a.equals(b)
    e_row = cli("explain", "s", best, "--data", "d", cwd=cwd).stdout.splitlines()
    e_npz = cli("explain", "--npz", npz, *same_task, cwd=cwd).stdout.splitlines()
    assert "nmse" in "\n".join(e_row) and e_row[1:] == e_npz[1:]


# ---- 4. a study not found under --data: where it may be
def test_missing_study_suggests_data_examples(tmp_path):
    (tmp_path / "data" / "examples" / "foo").mkdir(parents=True)
    (tmp_path / "data" / "examples" / "foo" / "manifest.json").write_text("{}")
    one_line_error(cli("top", "foo", cwd=tmp_path, ok=False), r"no study 'foo'.*; try --data data/examples$")
    one_line_error(cli("top", "bar", cwd=tmp_path, ok=False), r"no study 'bar'.*under 'data'/$")


# ---- 5. a reader that goes away ends the output quietly
@pytest.mark.parametrize("args", [["layout", "--cell", "lstm", "--hidden", "32"],
                                  ["query", "recall_first_lstm32", "--data", "data/examples"],
                                  ["--help"]])
def test_closed_pipe_ends_quietly(args):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line (| head -0, or head done early)
    try:
        r = subprocess.run([sys.executable, "-m", "lstmsearch.cli", *args], stdout=write, stderr=subprocess.PIPE,
                           text=True, env=ENV, cwd=ROOT, timeout=120)
    finally:
        os.close(write)
    assert r.stderr == "", r.stderr
    assert r.returncode == (0 if args == ["--help"] else 141)  # argparse's own help ignores a closed pipe


def test_head_reads_the_first_line():
    r = subprocess.run(f"{sys.executable} -m lstmsearch.cli layout --cell lstm --hidden 32 | head -1", shell=True,
                       capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and r.stderr == "" and r.stdout.startswith("lstm: I=1 H=32")


# ---- 6. a spent budget says so and how to go on
def test_run_at_a_spent_budget(study):
    cwd, folder, _ = study
    r = cli("run", "s.toml", "--data", "d", "--quiet", cwd=cwd)
    assert f"study s: the budget of 50 settings is spent (50 rows in {Path('d') / 's'}); run with --budget N " \
           "(N > 50) to continue" in r.stdout.splitlines()
    assert "0 settings evaluated" not in r.stdout


# ---- 7. one solve threshold
def test_evaluate_and_studies_share_the_solved_default():
    evaluate = build_parser().parse_args(["evaluate"]).solved
    study = parse_study(study_text("t", "unused")).eval.solved
    assert evaluate == study == SOLVED_NMSE
    assert f"default {SOLVED_NMSE:g}" in " ".join(cli("evaluate", "--help").stdout.split())


# ---- two bugs
def test_reproduce_takes_real_factors(study):
    cwd, _, best = study
    out = cli("reproduce", "s", best, "--data", "d", "--factors", "1,2.5", "--sequences", "8", cwd=cwd).stdout
    lengths = [int(ln.split()[0]) for ln in out.split("readout as stored:")[1].splitlines()[2:]]
    assert lengths == [6, 15]
    one_line_error(cli("reproduce", "s", best, "--data", "d", "--factors", "1,-2", cwd=cwd, ok=False),
                   "length factors must be positive numbers")


def test_lengths_readout_both_as_its_help_says(study, tmp_path):
    cwd, _, best = study
    assert "(default both)" in cli("lengths", "--help").stdout
    cli("lengths", "s", best, "--data", "d", "--factors", "1", "--readout", "both", "--out", tmp_path / "b.parquet",
        cwd=cwd)
    assert sorted(set(pq.read_table(tmp_path / "b.parquet").column("readout").to_pylist())) == ["given", "refit"]
    one_line_error(cli("lengths", "s", best, "--data", "d", "--readout", "all", cwd=cwd, ok=False),
                   "--readout takes given, refit or both")


def test_reproduce_at_lengths_the_user_names(study):
    """``--lengths`` scores fresh sequences at exactly those lengths (odd ones, far from n = 6),
    and each nmse is what a float64 NumPy simulation of the stored setting with its stored
    readout gives on the same sequences."""
    from lstmsearch.analysis.verdict import FRESH_SEED
    from lstmsearch.kernels import reference
    from lstmsearch.reproduction import row_setting
    from lstmsearch.tasks import HELDOUT_STREAM

    cwd, folder, best = study
    out = cli("reproduce", "s", best, "--data", "d", "--lengths", "7,37,613", "--sequences", "64",
              "--no-check", cwd=cwd).stdout
    table = [ln.split() for ln in out.split("readout as stored:")[1].splitlines()[2:] if ln.strip()]
    assert [int(r[0]) for r in table] == [7, 37, 613]
    cfg, _, setting = row_setting(folder, best)
    cell, H = cfg.cell, cfg.cell.hidden
    for (length, nmse, _), L in zip(table, (7, 37, 613)):
        task = cfg.task.with_length(L)
        x, y = task.sample(64, FRESH_SEED, HELDOUT_STREAM)
        h = reference.run(cell, setting[None], x, [L - 1])[0][0, 0]  # float64, (B, H) after the last step
        w_out = setting[cell.n_recurrent:cell.n_recurrent + H].astype(np.float64)
        y_hat = h @ w_out + float(setting[-1])
        oracle = np.mean((y_hat - y[-1, :, 0]) ** 2) / task.baseline
        assert float(nmse) == pytest.approx(oracle, rel=1e-3), (L, nmse, oracle)
    one_line_error(cli("reproduce", "s", best, "--data", "d", "--lengths", "7", "--factors", "2", cwd=cwd, ok=False),
                   "not both")
    one_line_error(cli("reproduce", "s", best, "--data", "d", "--lengths", "0", cwd=cwd, ok=False),
                   "fresh lengths must be whole numbers")
