"""Issue 21, a newcomer's walk through the README: one number of fresh sequences for every
command that judges a row (and each says it), the n that ``--factors`` multiply, one certificate
claim for ``certify`` and the report, ``query --output`` with every column, ``check`` listing
``best/`` and ``generations/``, and the concepts page beginning with a sentence."""

import importlib
import inspect
import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lstmsearch import run_study
from lstmsearch.cli import main
from lstmsearch.query import load_results
from lstmsearch.reproduction import reproduce, row_setting

from search_helpers import write_study

ROOT = Path(__file__).resolve().parents[1]
verdict_mod = importlib.import_module("lstmsearch.analysis.verdict")  # the module (the package exports verdict())
EXAMPLES = ROOT / "data" / "examples"


# ---- 1. one default number of fresh sequences, said by every output that judges
def test_one_number_of_fresh_sequences_is_every_verdicts_default():
    from lstmsearch import config
    from lstmsearch.answer import answer
    from lstmsearch.report import build_report

    n = verdict_mod.CHECK_SEQUENCES
    assert n == config.CHECK_SEQUENCES == 1024
    for fn in (verdict_mod.verdicts, verdict_mod.row_verdicts, verdict_mod.precision_check, answer, build_report):
        assert inspect.signature(fn).parameters["n_sequences"].default == n, fn.__name__


def test_top_and_reproduce_give_the_readmes_digits(capsys):
    """``top``'s fresh_nmse and solved columns come from the same 1,024 fresh sequences as
    ``reproduce`` (no --sequences needed): the README's 1.7e-2 for blind_rnn32."""
    assert main(["top", "blind_rnn32", "--data", str(EXAMPLES), "-k", "2"]) == 0
    cap = capsys.readouterr()
    head, first, *_ = cap.out.splitlines()
    assert head.split()[-2:] == ["fresh_nmse", "solved"]
    row, fresh, solved = int(first.split()[0]), float(first.split()[-2]), first.split()[-1]
    assert solved == "no" and f"{fresh:.1e}" == "1.7e-02"
    assert "1024 fresh sequences" in cap.err and "held-out sequences" in cap.err
    rep = reproduce("blind_rnn32", row, data_dir=EXAMPLES, check=False)
    assert rep["n_sequences"] == 1024
    assert max(f["nmse"] for f in rep["fresh"]) == pytest.approx(fresh, rel=1e-5)
    assert main(["reproduce", "blind_rnn32", str(row), "--data", str(EXAMPLES), "--no-check"]) == 0
    assert "1024 fresh sequences per length" in capsys.readouterr().out


# ---- 2. the n that --factors multiply: the task's length, the same for lengths and reproduce
def test_lengths_and_reproduce_factors_multiply_the_same_n_and_say_it(capsys):
    study = str(EXAMPLES / "recall_first_lstm32")  # lengths = [20, 21]: n = 21, the verdict's n
    assert main(["lengths", study, "best", "--factors", "1,2", "--readout", "given", "--sequences", "16"]) == 0
    out = capsys.readouterr().out
    assert "--factors multiply n = 21, the longest trained length (20, 21)" in out
    assert re.search(r"n=21\s+n=42", out) and "16 held-out sequences per length" in out
    assert main(["reproduce", study, "best", "--factors", "1,2", "--sequences", "16", "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "16 fresh sequences per length; --factors multiply n = 21, the longest trained length (20, 21)" in out
    table = out.split("readout as stored:")[1].splitlines()[2:]
    assert [int(ln.split()[0]) for ln in table] == [21, 42]


# ---- 3. certify and the report state one claim
@pytest.mark.parametrize("case", ["construction_row", "searched_row"])
def test_certify_and_the_report_state_the_same_claim(case, tmp_path, capsys):
    from lstmsearch.answer import answer

    if case == "construction_row":  # a row scored at n = 20 whose proof covers every n >= 1
        data = tmp_path / "data"
        assert main(["construct", "lstm", "--hidden", "2", "--length", "20", "--lengths", "20", "--sequences", "32",
                     "--study", "built", "--data", str(data)]) == 0
        study, row, max_length, want = "built", "0", 1000, "For every n >= 1 and"
    else:  # a searched row that does not answer at n = 1: both claim n >= 20, its shortest trained length
        data, study, row, max_length = EXAMPLES, "smallest_recall_first_lstm", "best", 30
        want = "For every 20 <= n <= 30"
    capsys.readouterr()
    assert main(["certify", study, row, "--data", str(data), "--arithmetic", "float32",
                 "--max-length", str(max_length)]) == 0
    said = [ln.strip() for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith(("For every", "Not "))]
    a = answer(study, None if row == "best" else int(row), data_dir=data, n_sequences=64, certify_length=max_length,
               worst_budget=64, with_torch=False)
    assert said == [a.certificate.statement] and said[0].startswith(want)


# ---- 4. query --output writes every column; the screen says how many matched
@pytest.fixture(scope="module")
def keyed_study(tmp_path_factory):
    """A CMA-ES study whose rows keep keys, the best 5 their weights (best/), with generation states."""
    p, out = write_study(tmp_path_factory.mktemp("newcomer"), strategy="cmaes", budget=64, keep_weights=5)
    run_study(p)
    return out


def test_query_output_writes_every_column_and_the_screen_says_how_many(keyed_study, tmp_path, capsys):
    out = keyed_study
    everything = load_results(out)
    assert main(["query", str(out), "--limit", "3"]) == 0
    screen = capsys.readouterr().out
    assert screen.splitlines()[0] == "64 matching rows"
    assert "showing 3 of 64 matching rows (--limit N for more, --output FILE writes them all)" in screen

    assert main(["query", str(out), "--output", str(tmp_path / "all.parquet")]) == 0
    said = capsys.readouterr().out
    t = pq.read_table(tmp_path / "all.parquet")
    assert t.column_names == everything.column_names and t.num_rows == 64
    assert {"weights", "readout", "key_seed", "key_index"} <= set(t.column_names)
    assert t.column("weights").null_count == 64 - 5 and "weights stored for 5 of them" in said

    assert main(["query", str(out), "--output", str(tmp_path / "w.csv"), "--weights"]) == 0
    import pyarrow.csv as pcsv

    c = pcsv.read_csv(tmp_path / "w.csv")
    assert c.column_names == everything.column_names and c.num_rows == 64
    rows = c.column("row").to_pylist()
    keyed = next(r for r, w in zip(everything.column("row").to_pylist(), everything.column("weights").to_pylist())
                 if w is None)
    _, _, setting = row_setting(out, keyed)
    np.testing.assert_array_equal(np.asarray(json.loads(c.column("weights")[rows.index(keyed)].as_py()), np.float32),
                                  setting)

    assert main(["query", str(out), "--weights"]) == 2
    assert "--weights fills the weights of every row written by --output" in capsys.readouterr().err


# ---- 5. check lists best/ and generations/ with the parts
def test_check_lists_the_best_rows_and_the_generation_states(keyed_study, tmp_path, capsys):
    import shutil

    out = tmp_path / "s"
    shutil.copytree(keyed_study, out)
    assert main(["check", str(out)]) == 0
    text = capsys.readouterr().out
    listed = [ln.split()[0] for ln in text.splitlines()[1:-1]]
    assert "best/w0.parquet" in listed and any(p.startswith("generations/") for p in listed)
    assert re.search(r"best/w0.parquet\s+5\s+ok", text) and text.strip().endswith("1 best-rows file(s) ok")

    best = out / "best" / "w0.parquet"
    t = pq.read_table(best)
    import pyarrow as pa

    moved = t.set_column(0, "row", pa.array([r + 10_000 for r in t.column("row").to_pylist()], pa.int64()))
    pq.write_table(moved, best)
    assert main(["check", str(out)]) == 1
    text = capsys.readouterr().out
    assert re.search(r"best/w0.parquet\s+5\s+names 5 row\(s\) no readable part holds", text)
    assert "1 of 1 best-rows files not ok" in text

    best.write_bytes(best.read_bytes()[: 40])
    assert main(["check", str(out)]) == 1
    assert re.search(r"best/w0.parquet\s+\?\s+unreadable", capsys.readouterr().out)


# ---- 6. the concepts page's section begins with a sentence
def test_concepts_evaluating_settings_begins_with_a_sentence():
    text = (ROOT / "docs" / "concepts.md").read_text()
    first = text.split("## Evaluating settings\n\n")[1].split("\n\n")[0]
    assert first[0].isupper() and "ls.evaluate(" in first and "ls.simulate(" in first
